//! What every platform's inbound route shares: the refusals (with their status codes), the durable
//! enqueue that must happen before the acknowledgement, and the inbound metrics.
//!
//! Order in every handler: verify the signature on the raw bytes (401) → check the tenant (403) → parse
//! (400 naming the field) → [`accept`] (the delivery key and the job in one transaction) → acknowledge.
//! Nothing is enqueued for a refused request, and no upstream is called before the acknowledgement.
//! A store that cannot record the delivery answers 503, so the platform retries later: a 2xx always
//! means "stored".
//!
//! The first step is a type, not a habit: a signed route's handler takes a [`Verified<P>`], which
//! axum builds only after `P`'s [`Signed::verify`] accepted the raw body with the app's clock (else the
//! request is refused, counted, with 401; an oversized body is 413 before that). A handler cannot reach
//! the bytes any other way, so a new platform cannot forget the check. What follows returns a
//! `Result<Response, Rejection>`, and [`respond`] turns a refusal into its status, counted once.

use std::marker::PhantomData;

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderMap, HeaderValue, StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::signing::SignatureError;
use crate::{
    app::AppState,
    metrics::{InboundLabels, SignatureLabels},
    store::NewJob,
};

/// Why an inbound request was refused.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("invalid signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("temporarily unavailable")]
    Unavailable,
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `outcome` label of the inbound metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Signature(_) => "bad_signature",
            // Every 403 is a tenant check: workspace, guild, application or account not allowed.
            Self::Forbidden(_) => "forbidden",
            Self::Malformed(_) => "malformed",
            Self::Unavailable => "unavailable",
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        // The reason is ours (never the request's content), so it is safe to echo.
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// A platform's proof that a request is its own: its signature over the raw body, checked with the
/// app's clock (`state.clock`). Implemented by each platform's unit struct in its `verify.rs`.
pub trait Signed: Send + Sync + 'static {
    /// The platform, for the refusal's metrics.
    const PLATFORM: &'static str;

    /// Whether `body`, sent with `request`'s headers (and whatever the platform's routes layered into
    /// its extensions), is signed by the platform, now.
    fn verify(state: &AppState, request: &Parts, body: &[u8]) -> Result<(), SignatureError>;
}

/// A request `P` signed: its headers and raw body, built only once the signature holds.
///
/// Both are copies, not views of what the connection read. hyper hands over a request's head and a
/// small body as slices of the connection's read buffer, and a handler keeps its request until it
/// answers, after the store's commit (a disk flush); meanwhile hyper reads on into a new buffer, so
/// with views every waiting connection kept two buffers of 8 KiB alive instead of one. Copying what
/// the platform sent (a few hundred bytes for a slash command) frees the first as soon as the
/// signature is checked (issue 27: 1.1 to 1.4 MB less resident at 64 connections under
/// `benches/load.sh`; docs/performance.md).
pub struct Verified<P> {
    pub headers: HeaderMap,
    pub body: Bytes,
    signed_by: PhantomData<fn() -> P>,
}

impl<P: Signed> FromRequest<AppState> for Verified<P> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        // The body limit (413) and a broken body answer here, before anything is verified or counted.
        let body = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        match P::verify(state, &parts, &body) {
            Ok(()) => Ok(Self {
                headers: copied(&parts.headers),
                body: Bytes::copy_from_slice(&body),
                signed_by: PhantomData,
            }),
            Err(error) => Err(refuse(state, P::PLATFORM, Rejection::Signature(error))),
        }
    }
}

/// `headers` with every value in its own memory (see [`Verified`]).
fn copied(headers: &HeaderMap) -> HeaderMap {
    let mut copy = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        // A value hyper accepted is a valid one: the copy cannot fail; if it did, the view stays.
        let mut owned = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        owned.set_sensitive(value.is_sensitive());
        copy.append(name.clone(), owned);
    }
    copy
}

/// The answer to a verified request: its response, or its refusal (counted and logged by [`refuse`];
/// a store that could not take the delivery was logged by [`accept`]).
pub fn respond(
    state: &AppState,
    platform: &'static str,
    result: Result<Response, Rejection>,
) -> Response {
    match result {
        Ok(response) => response,
        Err(rejection) => refuse(state, platform, rejection),
    }
}

/// Counts one inbound request of `platform` with `outcome` (`accepted`, `duplicate`, `immediate`,
/// `ignored`, `not_permitted`, or a [`Rejection::outcome`]; the metric's help lists them all).
pub fn count(state: &AppState, platform: &'static str, outcome: &'static str) {
    state
        .metrics
        .inbound
        .requests
        .get_or_create(&InboundLabels { platform, outcome })
        .inc();
}

/// Refuses a request, counting it and logging why (without its content).
pub fn refuse(state: &AppState, platform: &'static str, rejection: Rejection) -> Response {
    count(state, platform, rejection.outcome());
    if let Rejection::Signature(error) = &rejection {
        state
            .metrics
            .inbound
            .signature_failures
            .get_or_create(&SignatureLabels {
                platform,
                reason: error.reason(),
            })
            .inc();
    }
    tracing::info!(platform, reason = %rejection, "refused");
    rejection.into_response()
}

/// Whether a lookup of `identities` customers from `tenant` (workspace, guild) fits
/// `limits.per_source_per_minute` and `per_source_burst` ([`super::sources`]: identities are counted,
/// at most `identity.max_per_request`, the most one request looks up); when it does not, counts
/// `rate_limited` and logs it, and the adapter answers [`crate::source_limits::OVER_LIMIT`] without
/// enqueueing anything.
pub fn within_source_limit(
    state: &AppState,
    platform: &'static str,
    tenant: &str,
    identities: usize,
) -> bool {
    let identities = identities.min(state.config.identity.max_per_request);
    if state.sources.allow(platform, tenant, identities) {
        return true;
    }
    count(state, platform, "rate_limited");
    tracing::info!(platform, "refused: over limits.per_source_per_minute");
    false
}

/// Reads `T` from a JSON body, or says which field is wrong (a 400's reason): `serde_path_to_error`
/// names the field, never echoing its value, which may be a customer's data. Every platform's
/// `wire.rs` reads its JSON with it.
pub fn read_json<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        // serde's "missing field `x`" names a field; other messages may quote the value, which is
        // the customer's data: leave them out.
        let what = match message.find(" at line ") {
            Some(end) if message.starts_with("missing field") => message[..end].to_owned(),
            _ if inner.is_syntax() || inner.is_eof() => "the body is not valid JSON".to_owned(),
            _ => "invalid value".to_owned(),
        };
        if path == "." || path == "?" {
            what
        } else {
            format!("{path}: {what}")
        }
    })
}

/// Whether a delivery was new or seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    New(i64),
    Duplicate(i64),
}

/// Records the delivery key and its job durably (one transaction), then wakes a worker. Only after this
/// returns `Ok` may the handler answer 2xx. A duplicate key is `Ok(Accepted::Duplicate)`: answer 2xx
/// again, do nothing else.
pub async fn accept(
    state: &AppState,
    platform: &'static str,
    delivery_key: &str,
    job: NewJob,
) -> Result<Accepted, Rejection> {
    let key = format!("{platform}:{delivery_key}");
    match state.queue.enqueue(&key, job).await {
        Ok(enqueued) if enqueued.duplicate => {
            count(state, platform, "duplicate");
            tracing::info!(platform, job_id = enqueued.job_id, "duplicate delivery");
            Ok(Accepted::Duplicate(enqueued.job_id))
        }
        Ok(enqueued) => {
            count(state, platform, "accepted");
            tracing::info!(platform, job_id = enqueued.job_id, "accepted");
            Ok(Accepted::New(enqueued.job_id))
        }
        Err(error) => {
            tracing::error!(platform, error = %format!("{error:#}"), "could not store the delivery");
            Err(Rejection::Unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copied_headers_are_the_same_headers_in_their_own_memory() {
        // As hyper builds them: values that are slices of the bytes the connection read.
        let read = Bytes::from_static(b"v0=abc1234567 x-first x-second");
        let view = |range: std::ops::Range<usize>| {
            HeaderValue::from_maybe_shared(read.slice(range))
                .unwrap_or_else(|_| unreachable!("the test's values are valid"))
        };
        let mut signature = view(0..13);
        signature.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-slack-signature", signature);
        headers.append("x-repeated", view(14..21));
        headers.append("x-repeated", view(22..30));

        let copy = copied(&headers);

        assert_eq!(copy, headers);
        assert_eq!(
            copy.get_all("x-repeated").iter().collect::<Vec<_>>(),
            [&view(14..21), &view(22..30)],
            "every value of a repeated header, in order"
        );
        assert!(copy["x-slack-signature"].is_sensitive());
        let within_read = |value: &HeaderValue| {
            let at = value.as_bytes().as_ptr() as usize;
            let start = read.as_ptr() as usize;
            (start..start + read.len()).contains(&at)
        };
        assert!(headers.values().all(within_read), "the originals are views");
        assert!(
            !copy.values().any(within_read),
            "no copy points into what was read"
        );
    }
}
