//! Failures as the command reports them: one sentence naming what failed,
//! one saying what to do next, and an exit code per class.
//!
//! | code | class |
//! |---|---|
//! | 0 | success |
//! | 1 | anything else |
//! | 2 | usage: a wrong command line or argument |
//! | 3 | not found: no vault, item or point of that name |
//! | 4 | access denied or key unusable: a key disabled, revoked, purged or not reachable |
//! | 5 | integrity failure: a point or vault object altered, cut or swapped |
//! | 6 | storage: the store, a file or stdin/stdout failed |

use std::process::ExitCode;

use strongroom::Error;

/// A failure's class, and its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Other = 1,
    Usage = 2,
    NotFound = 3,
    Key = 4,
    Integrity = 5,
    Storage = 6,
}

impl Class {
    pub(crate) fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// What the command reports when it fails.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) class: Class,
    pub(crate) message: String,
    /// What to do next, when there is something to say.
    pub(crate) next: Option<String>,
}

impl Failure {
    pub(crate) fn new(class: Class, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            next: None,
        }
    }

    pub(crate) fn next(mut self, next: impl Into<String>) -> Self {
        self.next = Some(next.into());
        self
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(Class::Usage, message)
    }

    /// A file or stream of the command's own (not the vault's) failed.
    pub(crate) fn io(what: &str, e: &std::io::Error) -> Self {
        Self::new(Class::Storage, format!("{what}: {e}"))
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        let (class, next) = match &e {
            Error::NotFound { .. } => (
                Class::NotFound,
                Some(
                    "check the name with `strongroom points` (or `strongroom init` for a new vault)",
                ),
            ),
            Error::AlreadyExists { .. } => (Class::Usage, None),
            Error::Key { .. } => (
                Class::Key,
                Some(
                    "enable the key or grant the vault's identity get, wrapKey and unwrapKey on it (`strongroom access grant --vault-identity`), then retry",
                ),
            ),
            Error::NoKey { .. } => (
                Class::Key,
                Some(
                    "its key vault is not attached: a key vault with a passphrase needs STRONGROOM_KEYVAULT_PASSPHRASE or --passphrase-file",
                ),
            ),
            Error::Preflight { .. } => (
                Class::Key,
                Some(
                    "fix each problem in the key vault, then run the command again: nothing was changed",
                ),
            ),
            Error::KeyPurged { .. } => (
                Class::Key,
                Some("the key was purged: the points under it cannot be restored by anyone"),
            ),
            Error::KeyStillNeeded { .. } => (
                Class::Key,
                Some("run `strongroom rewrap` first, then disable the version"),
            ),
            Error::Integrity { .. } => (
                Class::Integrity,
                Some("the point was altered or damaged in the store; restore another point"),
            ),
            Error::Corrupt { .. } | Error::RolledBack { .. } => (
                Class::Integrity,
                Some("the vault directory was altered or damaged; restore it from a copy"),
            ),
            Error::Store { .. } | Error::Io(_) => (
                Class::Storage,
                Some(
                    "check the store (a local path there, writable, the disk not full; a container or bucket that exists, with credentials that may use it), then retry",
                ),
            ),
            Error::StoreUnreachable { .. } => (
                Class::Storage,
                Some(
                    "check the network and the store's endpoint, then retry: nothing was committed",
                ),
            ),
            Error::InsecureTransport { .. } => (
                Class::Usage,
                Some(
                    "use an https:// endpoint; for an emulator on this machine, give --allow-http-loopback",
                ),
            ),
            Error::InvalidArgument { .. } | Error::Policy(_) => (Class::Usage, None),
            Error::Conflict { .. } => (Class::Other, Some("retry")),
            Error::MissingPermissions { .. } => (
                Class::Key,
                Some(
                    "grant the vault's identity each permission named on the disk's key vault, then back up again: nothing was read or written",
                ),
            ),
            Error::DiskKeyConflict { .. } => (Class::Key, None),
            _ => (Class::Other, None),
        };
        Self {
            class,
            message,
            next: next.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_have_distinct_codes() {
        let codes = [
            Class::Other,
            Class::Usage,
            Class::NotFound,
            Class::Key,
            Class::Integrity,
            Class::Storage,
        ]
        .map(|c| c as u8);
        let mut sorted = codes.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), codes.len());
        assert_eq!(
            Failure::from(Error::NotFound { what: "x".into() }).class,
            Class::NotFound
        );
        assert_eq!(
            Failure::from(Error::Integrity {
                point: "p".into(),
                reason: "r".into()
            })
            .class,
            Class::Integrity
        );
    }
}
