//! Who the customer is: the identities replaydesk looks up in FullStory,
//! and the text handling that finds them.
//!
//! Why this module exists: every integration (Slack, Zendesk, Intercom, Discord, the
//! job queue) starts from untrusted text and needs the same answer, "which
//! customer(s) is this about?", plus the same care not to leak their email
//! address into logs. Keeping that here, with no knowledge of any platform
//! or of HTTP, makes it testable on its own and impossible to do twice
//! differently.
//!
//! Contract:
//! * [`CustomerEmail`] and [`Uid`] can only hold valid values (parse, don't
//!   validate); serde goes through the same parsers;
//! * a [`CustomerEmail`] never prints in full: `Display` and `Debug` show
//!   `j•••@acme.com`; code that needs the address asks for it explicitly
//!   (`as_str`/`expose`);
//! * [`extract_emails`], [`extract_identities`], [`parse_query`] and
//!   [`redact_emails`] accept any text, never panic and run in linear time;
//! * errors are [`IdentityError`]s that say what is wrong in plain words and
//!   never repeat the input.

mod email;
mod error;
mod extract;
mod normalize;
mod query;
mod redact;
mod uid;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use email::{CustomerEmail, MAX_EMAIL_LEN, MAX_LOCAL_PART_LEN};
pub use error::IdentityError;
pub use extract::{extract_emails, extract_identities, mentions};
pub use normalize::normalize_text;
pub use query::{ParsedQuery, parse_query};
pub use redact::redact_emails;
pub use uid::{MAX_UID_LEN, Uid};

/// One address an operator typed (`replaydesk forget`), read as a reader sees it first
/// ([`normalize_text`]): `ja\u{200B}ne@acme.com`, `jane＠acme.com` or `jane%40acme.com` is jane@acme.com.
///
/// # Errors
/// What [`CustomerEmail::parse`] finds wrong with the normalised text.
pub fn parse_address(text: &str) -> Result<CustomerEmail, IdentityError> {
    CustomerEmail::parse(normalize_text(text).trim())
}

/// One way of naming a customer in FullStory.
///
/// Serialised externally tagged: `{"email":"jane@acme.com"}` or
/// `{"uid":"12345"}`. `Display` redacts an email (`j•••@acme.com`) and shows
/// a uid as `uid:12345`; `Debug` redacts too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    /// The customer's email address.
    Email(CustomerEmail),
    /// The app's own user id for the customer.
    Uid(Uid),
}

impl Identity {
    /// The email, if this is one.
    #[must_use]
    pub fn as_email(&self) -> Option<&CustomerEmail> {
        match self {
            Self::Email(email) => Some(email),
            Self::Uid(_) => None,
        }
    }

    /// The uid, if this is one.
    #[must_use]
    pub fn as_uid(&self) -> Option<&Uid> {
        match self {
            Self::Uid(uid) => Some(uid),
            Self::Email(_) => None,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Email(email) => fmt::Display::fmt(email, f),
            Self::Uid(uid) => write!(f, "uid:{uid}"),
        }
    }
}

impl From<CustomerEmail> for Identity {
    fn from(email: CustomerEmail) -> Self {
        Self::Email(email)
    }
}

impl From<Uid> for Identity {
    fn from(uid: Uid) -> Self {
        Self::Uid(uid)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn email(s: &str) -> Identity {
        CustomerEmail::parse(s).unwrap().into()
    }

    fn uid(s: &str) -> Identity {
        Uid::parse(s).unwrap().into()
    }

    #[test]
    fn an_address_typed_in_any_form_a_reader_sees_as_it_is_that_address() {
        for typed in [
            "jane@acme.com",
            " Jane@Acme.com ",
            "ja\u{200B}ne@acme.com",
            "jane\u{FF20}acme.com",
            "jane%40acme.com",
            "<b>jane</b>@acme.com",
        ] {
            assert_eq!(
                parse_address(typed).map(CustomerEmail::into_inner),
                Ok("jane@acme.com".to_owned()),
                "{typed:?}"
            );
        }
        assert!(parse_address("jane").is_err());
    }

    #[test]
    fn an_identity_displays_a_redacted_email_or_a_prefixed_uid() {
        assert_eq!(email("Jane@acme.com").to_string(), "j•••@acme.com");
        assert_eq!(uid("12345").to_string(), "uid:12345");
        assert!(!format!("{:?}", email("jane@acme.com")).contains("jane@"));
    }

    #[test]
    fn an_identity_serialises_externally_tagged_and_round_trips() {
        let ids = vec![email("Jane@Acme.com"), uid("12345")];
        let json = serde_json::to_string(&ids).unwrap();
        assert_eq!(json, r#"[{"email":"jane@acme.com"},{"uid":"12345"}]"#);
        let back: Vec<Identity> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ids);
    }

    #[test]
    fn deserialising_an_identity_validates_its_value() {
        assert!(serde_json::from_str::<Identity>(r#"{"email":"user@localhost"}"#).is_err());
        assert!(serde_json::from_str::<Identity>(r#"{"uid":"  "}"#).is_err());
        assert!(serde_json::from_str::<Identity>(r#"{"phone":"123"}"#).is_err());
    }

    #[test]
    fn identities_compare_hash_and_sort_by_their_normal_form() {
        use std::collections::HashSet;
        assert_eq!(email("JANE@acme.com"), email("jane@ACME.com"));
        let set: HashSet<_> = [email("a@b.io"), email("A@B.IO"), uid("1")]
            .into_iter()
            .collect();
        assert_eq!(set.len(), 2);
        let mut sorted = vec![uid("1"), email("b@b.io"), email("a@b.io")];
        sorted.sort();
        assert_eq!(sorted, [email("a@b.io"), email("b@b.io"), uid("1")]);
        assert_eq!(
            sorted[0].as_email().map(CustomerEmail::as_str),
            Some("a@b.io")
        );
        assert_eq!(sorted[2].as_uid().map(Uid::as_str), Some("1"));
    }
}
