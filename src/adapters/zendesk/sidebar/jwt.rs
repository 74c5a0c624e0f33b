//! Zendesk's signed-URL JWT: the proof, on the sidebar's first load, that an agent of the configured
//! account opened replaydesk's app.
//!
//! With `signedUrls: true` in the manifest, Zendesk loads the sidebar with an HTTP POST whose form field
//! `token` is a JWT signed **RS256** with the app's private key (developer.zendesk.com, "Building a
//! server-side app, part 5: secure the app"; PLATFORMS.md §1.4). We verify it with the app's public key
//! (`zendesk.app_public_key`, PEM, from `GET /api/v2/apps/{app_id}/public_key.pem`), and check:
//! - `alg` is exactly `RS256`: `none`, and HS256 "signed" with the public key as the HMAC secret (the
//!   classic key-confusion attack), are refused before any key is touched;
//! - `exp` is in the future and `iat`/`nbf` not in the future, each with [`SKEW`] of slack;
//! - `iss` is the configured account's host (`acme.zendesk.com`): a well-formed token of *another*
//!   account is [`JwtError::OtherAccount`] (403), anything else wrong is 401;
//! - `aud` is an installation of that account (`https://acme.zendesk.com/api/v2/apps/installations/{id}.json`),
//!   exactly `zendesk.app_installation_id`'s when that is set, any installation of the account otherwise.
//!
//! # What the `jsonwebtoken` crate checks, and what this module does
//! jsonwebtoken parses the token (shape, base64url, header, claims), pins the algorithm to RS256,
//! checks the signature (on ring: [`provider`]), that `iss` and `aud` are present, that `iss` is the
//! account's host and, when `zendesk.app_installation_id` is set, that `aud` is that installation.
//! The PEM key is read by it too ([`RsaPublicKey::from_pem`]).
//!
//! Two checks stay here, on claims jsonwebtoken has verified and parsed:
//! - **The time windows** (`exp`, `nbf`, `iat`). replaydesk reads the time from its injectable clock
//!   (`AppState::clock`: the system clock in production, a manual one the tests move), and
//!   jsonwebtoken reads the system clock with no way to give it another, so its `exp`/`nbf` checks
//!   are off and [`verify`] checks the three against the `now` it is given (jsonwebtoken never
//!   checks `iat`). The claims are typed (`i64`, `exp` required): a claim of the wrong JSON type makes
//!   the token malformed, it is never skipped.
//! - **"Any installation of the account"** when `zendesk.app_installation_id` is not set: a set of exact
//!   audiences cannot say that, so jsonwebtoken's audience check is off in that case and
//!   [`Expected::any_installation`] checks the form (the account's URL, a numeric installation id).
//!
//! jsonwebtoken 12 rather than 9 (the last that bundles ring): 9.3.1 has GHSA-h395-gr6q-cpjc (a claim
//! of the wrong type skips its check; fixed in 10.3) and gets no more fixes; 10 and later take their
//! cryptography from a provider, and replaydesk's ([`provider`]) is ring, already built for rustls.

mod provider;

pub(crate) use provider::install as install_provider;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;

/// Clock difference tolerated on `exp`, `iat` and `nbf`.
pub const SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Why a token was refused. Every variant but [`JwtError::OtherAccount`] is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error(
        "no token: open replaydesk from the ticket sidebar in Zendesk (the app needs signedUrls)"
    )]
    Missing,
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token is signed with {0}, not RS256")]
    Algorithm(String),
    #[error(
        "the token's signature does not match zendesk.app_public_key (was the app re-uploaded? fetch its key again)"
    )]
    Signature,
    #[error("the token has expired or is not valid yet (check this server's clock)")]
    Expired,
    #[error("the token is for {0}, not this replaydesk's Zendesk account")]
    OtherAccount(String),
    #[error("the token's issuer or audience is not this account's app installation")]
    Audience,
    #[error("zendesk.app_public_key is not set or is not an RSA public key in PEM")]
    NoKey,
}

impl JwtError {
    /// 403 for a good token of another account, 401 for everything else.
    pub fn is_other_account(&self) -> bool {
        matches!(self, Self::OtherAccount(_))
    }
}

/// The app's RSA public key, read by jsonwebtoken.
#[derive(Clone, Debug)]
pub struct RsaPublicKey(DecodingKey);

impl RsaPublicKey {
    /// Reads `-----BEGIN PUBLIC KEY-----` (SPKI) or `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1) PEM; a
    /// private key, or a key of another kind, is `None`. The lines may be indented (a TOML string).
    pub fn from_pem(pem: &str) -> Option<Self> {
        let lines: Vec<&str> = pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let public = matches!(
            lines.first(),
            Some(&"-----BEGIN PUBLIC KEY-----" | &"-----BEGIN RSA PUBLIC KEY-----")
        );
        if !public {
            return None;
        }
        DecodingKey::from_rsa_pem(lines.join("\n").as_bytes())
            .ok()
            .map(Self)
    }
}

/// What the token must say: the configured account and, optionally, installation.
#[derive(Clone, Debug)]
pub struct Expected {
    /// The account's host, `acme.zendesk.com` (with a port in tests).
    pub host: String,
    /// The account's base URL, `https://acme.zendesk.com`.
    pub base_url: String,
    /// `zendesk.app_installation_id`.
    pub installation_id: Option<String>,
}

impl Expected {
    /// The audience of the account's installation `id`.
    fn installation(&self, id: &str) -> String {
        format!("{}{id}.json", self.installations())
    }

    fn installations(&self) -> String {
        format!("{}/api/v2/apps/installations/", self.base_url)
    }

    /// Whether `aud` is some installation of the account (a numeric id): the check when
    /// `installation_id` is not set (jsonwebtoken checks the one installation when it is).
    fn any_installation(&self, aud: &str) -> bool {
        aud.strip_prefix(&self.installations())
            .and_then(|rest| rest.strip_suffix(".json"))
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// The claims replaydesk uses.
#[derive(Clone, Debug, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub nbf: Option<i64>,
    /// The agent, when Zendesk names one ([unconfirmed] in its docs: see PLATFORMS.md §1.4).
    #[serde(default)]
    pub sub: Option<serde_json::Value>,
    /// The token's id, when Zendesk sends one: what a load is remembered by (accepted once).
    #[serde(default)]
    pub jti: Option<String>,
}

impl Claims {
    /// The agent's Zendesk user id, when the token names it.
    pub fn agent(&self) -> Option<String> {
        match &self.sub {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// What [`verify`] words a header whose `alg` jsonwebtoken does not know (`none` among them).
const UNKNOWN_ALGORITHM: &str = "an unknown algorithm (or none)";

/// Verifies `token` (see the module docs) at `now`.
pub fn verify(
    token: &str,
    key: Option<&RsaPublicKey>,
    expected: &Expected,
    now: DateTime<Utc>,
) -> Result<Claims, JwtError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(JwtError::Missing);
    }
    // The header alone first, so a token of another algorithm is refused as such before any key.
    let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
        ErrorKind::Json(json) if json.classify() == serde_json::error::Category::Data => {
            JwtError::Algorithm(UNKNOWN_ALGORITHM.into())
        }
        _ => JwtError::Malformed,
    })?;
    if header.alg != Algorithm::RS256 {
        return Err(JwtError::Algorithm(format!("{:?}", header.alg)));
    }
    let key = key.ok_or(JwtError::NoKey)?;
    install_provider();
    let validation = validation(expected);
    let claims = match jsonwebtoken::decode::<Claims>(token, &key.0, &validation) {
        Ok(data) => data.claims,
        Err(e) if matches!(e.kind(), ErrorKind::InvalidIssuer) => {
            // Signed with the app's key, but not by this account: read whose it is (the same checks
            // but the issuer's) to tell another Zendesk account (403) from anything else (401).
            let any_issuer = Validation {
                iss: None,
                validate_aud: false,
                ..validation
            };
            let claims = jsonwebtoken::decode::<Claims>(token, &key.0, &any_issuer)
                .map_err(|e| refusal(e.kind()))?
                .claims;
            check_times(&claims, now)?;
            return Err(other_issuer(claims.iss));
        }
        Err(e) => return Err(refusal(e.kind())),
    };
    check_times(&claims, now)?;
    if expected.installation_id.is_none() && !expected.any_installation(&claims.aud) {
        return Err(JwtError::Audience);
    }
    Ok(claims)
}

/// What jsonwebtoken checks: RS256, the signature, `iss` and `aud` present, `iss` the account's host,
/// `aud` the configured installation (when there is one). Not the times (see the module docs).
fn validation(expected: &Expected) -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    // `exp` is required by `Claims`' type, and checked by `check_times`.
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.set_issuer(&[&expected.host]);
    match &expected.installation_id {
        Some(id) => validation.set_audience(&[expected.installation(id)]),
        None => validation.validate_aud = false,
    }
    validation
}

/// A refusal by jsonwebtoken, in replaydesk's words.
fn refusal(kind: &ErrorKind) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::Signature,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            JwtError::Algorithm(UNKNOWN_ALGORITHM.into())
        }
        ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => JwtError::Audience,
        ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => JwtError::Expired,
        ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => JwtError::NoKey,
        _ => JwtError::Malformed,
    }
}

/// `exp` in the future and `iat`/`nbf` not, at `now`, each with [`SKEW`] of slack.
fn check_times(claims: &Claims, now: DateTime<Utc>) -> Result<(), JwtError> {
    // Whole seconds, saturating: a token's numbers are the sender's, and must not overflow our arithmetic.
    let (now, skew) = (now.timestamp(), SKEW.num_seconds());
    if claims.exp.saturating_add(skew) <= now {
        return Err(JwtError::Expired);
    }
    for not_before in [claims.iat, claims.nbf].into_iter().flatten() {
        if not_before.saturating_sub(skew) > now {
            return Err(JwtError::Expired);
        }
    }
    Ok(())
}

/// A verified token whose issuer is not the account: another Zendesk account's (403), or not Zendesk's.
fn other_issuer(iss: String) -> JwtError {
    let zendesk = iss.ends_with(".zendesk.com")
        && iss.len() <= 100
        && iss
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if zendesk {
        JwtError::OtherAccount(iss)
    } else {
        JwtError::Audience
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{Value, json};

    use super::*;

    const PRIVATE: &str = include_str!("../../../../tests/data/zendesk-app-test-key.pem");
    const PUBLIC: &str = include_str!("../../../../tests/data/zendesk-app-test-key.pub.pem");
    const PUBLIC_PKCS1: &str =
        include_str!("../../../../tests/data/zendesk-app-test-key.pkcs1.pub.pem");

    fn expected(installation_id: Option<&str>) -> Expected {
        Expected {
            host: "acme.zendesk.com".into(),
            base_url: "https://acme.zendesk.com".into(),
            installation_id: installation_id.map(Into::into),
        }
    }

    /// A token signed as Zendesk signs it, with `claims`.
    fn signed(claims: &Value) -> String {
        install_provider();
        let key = EncodingKey::from_rsa_pem(PRIVATE.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
    }

    /// Zendesk's claims for installation 7 of acme, issued at `iat`, valid five minutes.
    fn claims(iat: i64) -> Value {
        json!({
            "iss": "acme.zendesk.com",
            "aud": "https://acme.zendesk.com/api/v2/apps/installations/7.json",
            "iat": iat,
            "exp": iat + 300,
            "sub": 42,
            "jti": "d3f1c2",
        })
    }

    fn at(timestamp: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(timestamp, 0).unwrap()
    }

    #[test]
    fn both_pem_forms_of_the_public_key_are_read_and_a_private_key_or_garbage_is_not() {
        let token = signed(&claims(1_000_000_000));
        let indented: String = PUBLIC.lines().map(|l| format!("    {l}\n")).collect();
        for pem in [PUBLIC, PUBLIC_PKCS1, &indented] {
            let key = RsaPublicKey::from_pem(pem).unwrap();
            let verified = verify(&token, Some(&key), &expected(None), at(1_000_000_060));
            assert_eq!(verified.unwrap().agent().as_deref(), Some("42"), "{pem}");
        }
        assert!(RsaPublicKey::from_pem(PRIVATE).is_none());
        assert!(RsaPublicKey::from_pem("not a key").is_none());
        assert!(
            RsaPublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .is_none()
        );
    }

    #[test]
    fn the_time_windows_are_checked_at_the_given_now_not_the_system_clock() {
        let key = RsaPublicKey::from_pem(PUBLIC);
        let issued = 1_000_000_000; // 2001: long expired by the system clock
        let token = signed(&claims(issued));
        let check = |now: i64| verify(&token, key.as_ref(), &expected(Some("7")), at(now));
        let verified = check(issued + 10).unwrap();
        assert_eq!(verified.jti.as_deref(), Some("d3f1c2"));
        assert!(check(issued - 59).is_ok(), "iat with a minute of slack");
        assert_eq!(check(issued - 61).unwrap_err(), JwtError::Expired);
        assert!(
            check(issued + 300 + 59).is_ok(),
            "exp with a minute of slack"
        );
        assert_eq!(check(issued + 300 + 60).unwrap_err(), JwtError::Expired);
        let now = Utc::now().timestamp();
        let fresh = signed(&claims(now));
        let later = verify(&fresh, key.as_ref(), &expected(Some("7")), at(now + 3600));
        assert_eq!(
            later.unwrap_err(),
            JwtError::Expired,
            "valid by the system clock"
        );
    }

    #[test]
    fn a_time_claim_of_the_wrong_type_makes_the_token_malformed_not_unchecked() {
        let key = RsaPublicKey::from_pem(PUBLIC);
        let now = 1_000_000_000;
        for (claim, value) in [
            ("nbf", json!("99999999999")),
            ("exp", json!("never")),
            ("iat", json!(null)),
        ] {
            let mut c = claims(now);
            c[claim] = value;
            let refused = verify(&signed(&c), key.as_ref(), &expected(None), at(now));
            if claim == "iat" {
                assert!(refused.is_ok(), "iat is optional");
            } else {
                assert_eq!(refused.unwrap_err(), JwtError::Malformed, "{claim}");
            }
        }
        let mut no_exp = claims(now);
        no_exp.as_object_mut().unwrap().remove("exp");
        let refused = verify(&signed(&no_exp), key.as_ref(), &expected(None), at(now));
        assert_eq!(refused.unwrap_err(), JwtError::Malformed);
    }

    #[test]
    fn issuer_and_audience_are_refused_as_the_page_says() {
        let key = RsaPublicKey::from_pem(PUBLIC);
        let now = 1_000_000_000;
        let with = |claim: &str, value: Value| {
            let mut c = claims(now);
            c[claim] = value;
            signed(&c)
        };
        let check = |token: &str, installation: Option<&str>| {
            verify(token, key.as_ref(), &expected(installation), at(now))
        };
        let other = with("iss", json!("beta.zendesk.com"));
        assert_eq!(
            check(&other, None).unwrap_err(),
            JwtError::OtherAccount("beta.zendesk.com".into())
        );
        assert!(check(&other, None).unwrap_err().is_other_account());
        let evil = with("iss", json!("evil.example"));
        assert_eq!(check(&evil, None).unwrap_err(), JwtError::Audience);
        let token = signed(&claims(now));
        assert!(
            check(&token, None).is_ok(),
            "any installation of the account"
        );
        assert!(check(&token, Some("7")).is_ok());
        assert_eq!(check(&token, Some("8")).unwrap_err(), JwtError::Audience);
        for aud in [
            "https://acme.zendesk.com/api/v2/apps/installations/x.json",
            "https://acme.zendesk.com/api/v2/apps/installations/.json",
            "https://beta.zendesk.com/api/v2/apps/installations/7.json",
        ] {
            let token = with("aud", json!(aud));
            assert_eq!(
                check(&token, None).unwrap_err(),
                JwtError::Audience,
                "{aud}"
            );
        }
        let mut stale_other = claims(now - 3600);
        stale_other["iss"] = json!("beta.zendesk.com");
        let stale = check(&signed(&stale_other), None).unwrap_err();
        assert_eq!(
            stale,
            JwtError::Expired,
            "a stale token of another account: 401"
        );
    }

    #[test]
    fn garbage_tokens_are_refused_without_panicking() {
        let expected = expected(None);
        let key = RsaPublicKey::from_pem(PUBLIC);
        let now = Utc::now();
        for token in [
            "",
            "a",
            "a.b",
            "a.b.c",
            "...",
            "a.b.c.d",
            "eyJhbGciOiJub25lIn0.e30.",
        ] {
            assert!(
                verify(token, key.as_ref(), &expected, now).is_err(),
                "{token}"
            );
        }
        assert_eq!(
            verify("eyJhbGciOiJub25lIn0.e30.", key.as_ref(), &expected, now).unwrap_err(),
            JwtError::Algorithm(UNKNOWN_ALGORITHM.into())
        );
        assert_eq!(
            verify("not.a.jwt", key.as_ref(), &expected, now).unwrap_err(),
            JwtError::Malformed
        );
        assert_eq!(
            verify(&signed(&claims(now.timestamp())), None, &expected, now).unwrap_err(),
            JwtError::NoKey
        );
    }
}
