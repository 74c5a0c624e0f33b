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
//! ring wants an RSA public key as PKCS#1 `RSAPublicKey` DER, while Zendesk hands out the usual SPKI PEM
//! (`-----BEGIN PUBLIC KEY-----`); [`RsaPublicKey::from_pem`] unwraps one into the other with a tiny
//! DER reader (two nested SEQUENCEs and a BIT STRING), so no ASN.1 crate is needed.

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use chrono::{DateTime, Utc};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
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

/// An RSA public key as ring wants it (PKCS#1 `RSAPublicKey` DER).
#[derive(Clone, Debug)]
pub struct RsaPublicKey(Vec<u8>);

impl RsaPublicKey {
    /// Reads `-----BEGIN PUBLIC KEY-----` (SPKI) or `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1) PEM.
    pub fn from_pem(pem: &str) -> Option<Self> {
        let pkcs1 = pem.contains("BEGIN RSA PUBLIC KEY");
        let body: String = pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("-----") && !l.is_empty())
            .collect();
        let der = STANDARD.decode(body).ok()?;
        if pkcs1 {
            return Some(Self(der));
        }
        spki_to_pkcs1(&der).map(|k| Self(k.to_vec()))
    }
}

/// One DER element: its tag and contents, and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}

/// `SubjectPublicKeyInfo ::= SEQUENCE { algorithm SEQUENCE {…}, subjectPublicKey BIT STRING }`: the
/// BIT STRING's bytes (after its "unused bits" byte, which must be 0) are the PKCS#1 key.
pub fn spki_to_pkcs1(der: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const BIT_STRING: u8 = 0x03;
    let (tag, spki, _) = der_element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, _algorithm, rest) = der_element(spki)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, bits, _) = der_element(rest)?;
    if tag != BIT_STRING {
        return None;
    }
    match bits.split_first() {
        Some((0, key)) if !key.is_empty() => Some(key),
        _ => None,
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
    fn audience_ok(&self, aud: &str) -> bool {
        let prefix = format!("{}/api/v2/apps/installations/", self.base_url);
        let Some(id) = aud
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".json"))
        else {
            return false;
        };
        match &self.installation_id {
            Some(expected) => id == expected,
            None => !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
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
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwtError::Malformed)
    };
    let head: Header = serde_json::from_slice(&decode(header)?).map_err(|_| JwtError::Malformed)?;
    if head.alg != "RS256" {
        return Err(JwtError::Algorithm(head.alg.chars().take(16).collect()));
    }
    let key = key.ok_or(JwtError::NoKey)?;
    let signed = &token[..header.len() + 1 + payload.len()];
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key.0)
        .verify(signed.as_bytes(), &decode(signature)?)
        .map_err(|_| JwtError::Signature)?;
    let claims: Claims =
        serde_json::from_slice(&decode(payload)?).map_err(|_| JwtError::Malformed)?;
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
    if claims.iss != expected.host {
        let other = claims.iss.ends_with(".zendesk.com")
            && claims.iss.len() <= 100
            && claims
                .iss
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        return Err(if other {
            JwtError::OtherAccount(claims.iss)
        } else {
            JwtError::Audience
        });
    }
    if !expected.audience_ok(&claims.aud) {
        return Err(JwtError::Audience);
    }
    Ok(claims)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PUBLIC: &str = include_str!("../../../../tests/data/zendesk-app-test-key.pub.pem");

    #[test]
    fn an_spki_pem_unwraps_to_the_pkcs1_key() {
        let key = RsaPublicKey::from_pem(PUBLIC).unwrap();
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        let (tag, contents, rest) = der_element(&key.0).unwrap();
        assert_eq!(tag, 0x30);
        assert!(rest.is_empty());
        let (tag, modulus, rest) = der_element(contents).unwrap();
        assert_eq!(tag, 0x02);
        assert_eq!(modulus.len(), 257, "2048 bits and a leading zero");
        let (tag, exponent, _) = der_element(rest).unwrap();
        assert_eq!((tag, exponent), (0x02, &[1u8, 0, 1][..]));
    }

    #[test]
    fn the_der_reader_refuses_truncated_and_odd_input() {
        assert!(spki_to_pkcs1(&[]).is_none());
        assert!(spki_to_pkcs1(&[0x30, 0x82, 0xff]).is_none());
        assert!(spki_to_pkcs1(&[0x30, 0x05, 0x30, 0x00, 0x03, 0x01, 0x00]).is_none());
        assert!(spki_to_pkcs1(&[0x30, 0x06, 0x30, 0x00, 0x03, 0x02, 0x01, 0x00]).is_none());
        assert_eq!(
            spki_to_pkcs1(&[0x30, 0x06, 0x30, 0x00, 0x03, 0x02, 0x00, 0x2a]),
            Some(&[0x2a][..])
        );
        assert!(RsaPublicKey::from_pem("not a key").is_none());
    }

    #[test]
    fn garbage_tokens_are_refused_without_panicking() {
        let expected = Expected {
            host: "acme.zendesk.com".into(),
            base_url: "https://acme.zendesk.com".into(),
            installation_id: None,
        };
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
    }
}
