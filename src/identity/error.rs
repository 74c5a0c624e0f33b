//! Why parsing an identity failed, in words a support agent can act on.
//!
//! Contract: no message ever repeats the full input. Error values end up in
//! logs and in replies posted to Slack/Zendesk/Discord, and the input is
//! usually a customer's email address, so a message names at most the
//! offending character, a domain label or the top-level domain.

use thiserror::Error;

/// What is wrong with a piece of text that was meant to be an email address
/// or a FullStory uid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The email address was empty, or only whitespace.
    #[error("the email address is empty")]
    EmptyEmail,

    /// The whole address is longer than email allows.
    #[error("the email address is {len} characters long, but at most {max} are allowed")]
    EmailTooLong { len: usize, max: usize },

    /// A character that cannot appear in an address we accept.
    #[error(
        "the email address contains {0:?}, which is not allowed (spaces, control characters, \
         quotes, brackets and non-ASCII letters are not accepted)"
    )]
    ForbiddenCharacter(char),

    /// There is no `@`.
    #[error("the email address has no @ sign")]
    MissingAt,

    /// There is more than one `@`.
    #[error("the email address has more than one @ sign")]
    MultipleAt,

    /// Nothing before the `@`.
    #[error("the email address has nothing before the @ sign")]
    EmptyLocalPart,

    /// The part before the `@` is too long.
    #[error("the part before the @ sign is {len} characters long, but at most {max} are allowed")]
    LocalPartTooLong { len: usize, max: usize },

    /// A dot at the start or end of the part before the `@`, or two in a row.
    #[error("the part before the @ sign starts or ends with a dot, or has two dots in a row")]
    MisplacedDot,

    /// Nothing after the `@`.
    #[error("the email address has nothing after the @ sign")]
    EmptyDomain,

    /// The domain has no dot (`jane@localhost`), so mail to it cannot leave a machine.
    #[error("the domain after the @ sign has no dot, so it is not a public domain like acme.com")]
    DomainWithoutDot,

    /// One of the dot-separated parts of the domain is malformed.
    #[error(
        "the domain part {label:?} is not valid: each part must be 1 to 63 letters, digits or \
         hyphens, and must not start or end with a hyphen"
    )]
    InvalidDomainLabel { label: String },

    /// The last part of the domain is not a top-level domain.
    #[error("the domain ends in {tld:?}, which is not a top-level domain (at least two letters)")]
    InvalidTopLevelDomain { tld: String },

    /// The "domain" ends in a file extension (`logo@2x.png`): a file name, not an address.
    #[error("this looks like a file name ending in .{extension}, not an email address")]
    LooksLikeFileName { extension: String },

    /// The uid was empty, or only whitespace.
    #[error("the uid is empty")]
    EmptyUid,

    /// The uid is longer than FullStory allows.
    #[error("the uid is {len} characters long, but at most {max} are allowed")]
    UidTooLong { len: usize, max: usize },

    /// The uid contains a control character (a newline, a tab, a NUL, ...).
    #[error("the uid contains a control character such as a newline or a tab")]
    UidControlCharacter,
}
