//! [`Uid`]: the app's own user id, as FullStory knows it (`FS.identify(uid)`).
//!
//! Why it exists: when an agent already knows the customer's user id, it is
//! a more precise key than an email, and it must not be confused with one.
//!
//! Contract: a `Uid` is trimmed, non-empty, at most 256 characters and free
//! of control characters; otherwise it is opaque (any other text, case
//! preserved). Unlike an email it is not treated as personal data on its
//! own, so `Display` shows it in full.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::IdentityError;

/// Longest uid accepted, in characters.
pub const MAX_UID_LEN: usize = 256;

/// A FullStory app user id. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(String);

impl Uid {
    /// Parses a uid: trims it and checks it is usable.
    ///
    /// # Errors
    /// [`IdentityError::EmptyUid`], [`IdentityError::UidTooLong`] or
    /// [`IdentityError::UidControlCharacter`].
    pub fn parse(input: &str) -> Result<Self, IdentityError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(IdentityError::EmptyUid);
        }
        let len = s.chars().count();
        if len > MAX_UID_LEN {
            return Err(IdentityError::UidTooLong {
                len,
                max: MAX_UID_LEN,
            });
        }
        if s.chars().any(char::is_control) {
            return Err(IdentityError::UidControlCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    /// The uid.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the value, returning the uid.
    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Uid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Uid {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Uid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Uid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_uid_is_trimmed_and_otherwise_kept_as_typed() {
        assert_eq!(Uid::parse("  User-12345 ").unwrap().as_str(), "User-12345");
        assert_eq!(
            Uid::parse("jane@acme.com").unwrap().to_string(),
            "jane@acme.com"
        );
        assert_eq!(Uid::parse("ü ser").unwrap().as_str(), "ü ser");
        assert_eq!(
            Uid::parse(&"é".repeat(256))
                .unwrap()
                .as_str()
                .chars()
                .count(),
            256
        );
    }

    #[test]
    fn empty_long_or_control_character_uids_are_rejected() {
        assert_eq!(Uid::parse(""), Err(IdentityError::EmptyUid));
        assert_eq!(Uid::parse(" \t\n"), Err(IdentityError::EmptyUid));
        assert_eq!(
            Uid::parse(&"x".repeat(257)),
            Err(IdentityError::UidTooLong { len: 257, max: 256 })
        );
        assert_eq!(Uid::parse("a\nb"), Err(IdentityError::UidControlCharacter));
        assert_eq!(
            Uid::parse("a\u{0}"),
            Err(IdentityError::UidControlCharacter)
        );
    }

    #[test]
    fn a_uid_round_trips_through_serde_and_is_validated_on_the_way_in() {
        let uid = Uid::parse("12345").unwrap();
        assert_eq!(serde_json::to_string(&uid).unwrap(), "\"12345\"");
        assert_eq!(serde_json::from_str::<Uid>("\" 12345 \"").unwrap(), uid);
        assert!(serde_json::from_str::<Uid>("\"\"").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn parsing_any_uid_never_panics_and_accepted_uids_reparse_to_themselves(s in any::<String>()) {
            if let Ok(uid) = Uid::parse(&s) {
                prop_assert_eq!(Uid::parse(uid.as_str()), Ok(uid.clone()));
            }
        }
    }
}
