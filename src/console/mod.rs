//! What every command line shares, below everything that has a command: a command's [`Failure`] (its
//! message and exit code) and [`progress`] on stderr. A leaf module (it uses nothing of the crate), so
//! `queue`, `adapters` and `demo` give their commands these without importing `cli`, which runs them
//! all (no two top-level modules import each other: `tests/modules.rs`).

pub mod progress;

/// A command's failure: what to print and which exit code to use.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Exit 1: something failed at run time.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit 2: the command line or the configuration is wrong.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::failed(format!("{error:#}"))
    }
}
