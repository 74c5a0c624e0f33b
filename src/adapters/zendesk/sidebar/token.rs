//! replaydesk's own short-lived token for the sidebar page's JSON calls, so no secret ever reaches the
//! browser and Zendesk's JWT (whose lifetime Zendesk decides) is used once, on the first load.
//!
//! A token is `base64url(claims JSON) "." base64url(HMAC-SHA256)`, the MAC keyed by the first
//! `zendesk.webhook_secret` over a fixed label and the encoded claims ([`signing::hmac_sha256`]);
//! checked against every configured secret ([`signing::any_secret_matches`]), so rotating the webhook
//! secret keeps tokens valid on every replica and needs no new key. It lives [`TTL`] and is bound to:
//! - the account (`acct`: the Zendesk host the JWT's `iss` named; another account's token gets 403),
//! - the agent (`agent`: the JWT's `sub` when Zendesk sends one, else the ZAF client's current user),
//! - the ticket (`ticket`): Zendesk's JWT does not name the ticket, so the first token (from the
//!   signed load) has none and is exchanged once, by the page, for one naming the ticket the ZAF client
//!   reports; every data call then needs a token of that very ticket;
//! - the page load (`load`): a random id, so repeated clicks on one page are recognisably one.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::signing;

/// How long one of our tokens is accepted.
pub const TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

const LABEL: &[u8] = b"replaydesk zendesk app token\n";

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidebarToken {
    pub acct: String,
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<u64>,
    pub load: String,
    pub exp: i64,
}

/// Why a token was refused (401, except [`TokenError::OtherAccount`] and [`TokenError::OtherTicket`]: 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no token: reload the app in the ticket sidebar")]
    Missing,
    #[error("the token is not valid: reload the app in the ticket sidebar")]
    Invalid,
    #[error("the token has expired: reload the app in the ticket sidebar")]
    Expired,
    #[error("the token belongs to another Zendesk account")]
    OtherAccount,
    #[error("the token belongs to another ticket")]
    OtherTicket,
}

impl TokenError {
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::OtherAccount | Self::OtherTicket)
    }
}

impl SidebarToken {
    /// A new token from `now` for [`TTL`].
    pub fn new(acct: &str, agent: &str, ticket: Option<u64>, now: DateTime<Utc>) -> Self {
        Self {
            acct: acct.to_owned(),
            agent: agent.to_owned(),
            ticket,
            load: uuid::Uuid::new_v4().simple().to_string(),
            exp: (now + TTL).timestamp(),
        }
    }

    /// The token's text, signed with `secret`.
    pub fn sign(&self, secret: &str) -> String {
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        let mac = signing::hmac_sha256(secret.as_bytes(), &[LABEL, claims.as_bytes()]);
        format!("{claims}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// Reads and checks `text` against `secrets`, the account `acct` and the time `now`.
    pub fn verify<'s>(
        text: &str,
        secrets: impl Iterator<Item = &'s str>,
        acct: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, TokenError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TokenError::Missing);
        }
        let (claims, mac) = text.split_once('.').ok_or(TokenError::Invalid)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenError::Invalid)?;
        signing::any_secret_matches(secrets, &[LABEL, claims.as_bytes()], &mac)
            .map_err(|_| TokenError::Invalid)?;
        let token: Self = URL_SAFE_NO_PAD
            .decode(claims)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(TokenError::Invalid)?;
        if token.exp <= now.timestamp() {
            return Err(TokenError::Expired);
        }
        if token.acct != acct {
            return Err(TokenError::OtherAccount);
        }
        Ok(token)
    }

    /// The token, when it names `ticket`.
    pub fn for_ticket(self, ticket: u64) -> Result<Self, TokenError> {
        if self.ticket == Some(ticket) {
            Ok(self)
        } else {
            Err(TokenError::OtherTicket)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_refuses_what_it_should() {
        let now = Utc::now();
        let token = SidebarToken::new("acme.zendesk.com", "77", Some(5), now);
        let text = token.sign("s1");
        let ok = SidebarToken::verify(&text, ["s0", "s1"].into_iter(), "acme.zendesk.com", now);
        assert_eq!(ok.unwrap(), token);
        let verify =
            |text: &str, acct: &str, at| SidebarToken::verify(text, ["s1"].into_iter(), acct, at);
        assert_eq!(
            verify(&text, "beta.zendesk.com", now),
            Err(TokenError::OtherAccount)
        );
        assert_eq!(
            verify(&text, "acme.zendesk.com", now + TTL),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify("", "acme.zendesk.com", now),
            Err(TokenError::Missing)
        );
        assert_eq!(
            verify("x.y", "acme.zendesk.com", now),
            Err(TokenError::Invalid)
        );
        let forged = format!("{}x", &text[..text.len() - 1]);
        assert_eq!(
            verify(&forged, "acme.zendesk.com", now),
            Err(TokenError::Invalid)
        );
        assert_eq!(token.clone().for_ticket(6), Err(TokenError::OtherTicket));
        assert!(token.for_ticket(5).is_ok());
    }
}
