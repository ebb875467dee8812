//! The facade's one error type.

use core::fmt;

use strongroom_envelope::{KeyRef, WrapError};
use strongroom_keyvault::VaultError;
use strongroom_policy::{Problem, TransitionError};

/// Everything that can go wrong in a recovery vault. Each variant says what
/// failed and what to do next; none carries a secret.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The store failed or could not be reached (after its own retries).
    /// Nothing of the operation is visible: retry when the store is back.
    Store {
        /// What was being done (`"put"`, `"get"`, `"list"`, ...).
        operation: &'static str,
        /// The object's path in the store.
        path: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// The store could not be reached after the client's retries
    /// (connection refused, reset or timed out). Nothing of the operation is visible and the source was not
    /// touched: retry when the store is back.
    StoreUnreachable {
        /// What was being done (`"upload"`, `"read"`, `"create"`, ...).
        operation: &'static str,
        /// The object's path in the store.
        path: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// A store endpoint would carry data in plain HTTP (R19): refused.
    /// Only an emulator on a loopback IP address may be reached over HTTP,
    /// and only when the caller allows it.
    InsecureTransport {
        /// The endpoint refused.
        endpoint: String,
        /// Why, and what is allowed.
        reason: String,
    },
    /// No vault, item or recovery point of that name.
    NotFound {
        /// What was looked for (`item "vm-42"`, `recovery point ...`).
        what: String,
    },
    /// A vault or item of that name exists already.
    AlreadyExists {
        /// What exists (`item "vm-42"`, `a vault in ...`).
        what: String,
    },
    /// A key vault refused or failed: the key disabled, expired, deleted
    /// or missing, or the vault's identity lacks a permission on it. The
    /// inner error names the key, the principal and the permission.
    Key {
        /// The key concerned (`vault/name/version`, or `vault/name`).
        key: String,
        /// The key vault's error.
        source: VaultError,
    },
    /// The key a recovery point was wrapped under was purged: the point
    /// cannot be restored by anyone, ever (crypto-shredded).
    KeyPurged {
        /// The purged key (`vault/name`).
        key: String,
    },
    /// None of the keys this vault holds opens the recovery point: it names
    /// keys in key vaults that are not attached to this vault.
    NoKey {
        /// The keys the point's header names.
        recorded: Vec<KeyRef>,
    },
    /// A recovery point failed authentication: its header or body was
    /// altered, cut or swapped. No byte of the failing part was released;
    /// bytes already written to a sink must be discarded.
    Integrity {
        /// The point.
        point: String,
        /// What failed.
        reason: String,
    },
    /// An object in the store is not what Strongroom writes there (another
    /// program's file, another format version, another vault).
    Corrupt {
        /// The object's path in the store.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading the source or writing the sink failed.
    Io(std::io::Error),
    /// An argument is out of range.
    InvalidArgument {
        /// Which rule was broken.
        reason: String,
    },
    /// The encryption library refused (a bound of the format).
    Envelope(strongroom_envelope::Error),
    /// The vault's encryption rules refuse the change (R12); the error
    /// says what to do instead.
    Policy(TransitionError),
    /// The customer key failed its preflight checks (R13): every problem
    /// found, each saying what to fix. Nothing was changed.
    Preflight {
        /// The key reference checked.
        key: String,
        /// Every problem, in a stable order.
        problems: Vec<Problem>,
    },
    /// Something this version of Strongroom does not do.
    Unsupported {
        /// What.
        what: String,
    },
    /// Something in the store is older than what the vault has written
    /// (records deleted or put back): refused rather than acted on.
    RolledBack {
        /// What was rolled back, and what to do.
        what: String,
    },
    /// A key version still holds the only DEK copy of recovery points:
    /// disabling it would make them unrestorable. Rewrap them first (or
    /// force it, knowingly).
    KeyStillNeeded {
        /// The key version (`vault/name/version`).
        key: String,
        /// The points (`item/point`) whose only copy is under it.
        points: Vec<String>,
    },
    /// Other writers kept changing the same record: retry.
    Conflict {
        /// What kept changing.
        what: String,
    },
    /// A disk key or secret cannot be put back where it was asked
    /// ([`RecoveryVault::restore_disk_keys`](crate::RecoveryVault::restore_disk_keys)):
    /// it is soft-deleted there, or exists without the point's version.
    /// Nothing was changed; the message says what to do.
    DiskKeyConflict {
        /// What is in the way, and what to do.
        what: String,
    },
    /// The vault's identity lacks permissions an in-guest-encrypted item's
    /// backup needs on its disk keys (get, list and backup on the BEK
    /// secret and the KEK): every missing one, named. Refused before any
    /// data moved.
    MissingPermissions {
        /// Each missing permission, with its key vault, identity and object.
        missing: Vec<crate::MissingPermission>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store {
                operation,
                path,
                source,
            } => write!(
                f,
                "the store failed to {operation} {path}: {source}; nothing was committed, retry once the store is reachable"
            ),
            Self::StoreUnreachable {
                operation,
                path,
                source,
            } => write!(
                f,
                "the store was unreachable: {operation} {path} failed after retries ({source}); nothing was committed and the source was not touched, retry once the store is reachable"
            ),
            Self::InsecureTransport { endpoint, reason } => {
                write!(f, "store endpoint {endpoint} refused: {reason}")
            }
            Self::NotFound { what } => write!(f, "{what} not found"),
            Self::AlreadyExists { what } => write!(f, "{what} already exists"),
            Self::Key { key, source } => write!(f, "key {key} cannot be used: {source}"),
            Self::KeyPurged { key } => write!(
                f,
                "key {key} was purged: the recovery points wrapped under it are lost for good"
            ),
            Self::NoKey { recorded } => {
                write!(
                    f,
                    "no key attached to this vault opens the recovery point; it names "
                )?;
                for (i, key) in recorded.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key}")?;
                }
                f.write_str(": attach the key vault that holds one of them")
            }
            Self::Integrity { point, reason } => write!(
                f,
                "recovery point {point} failed its integrity check ({reason}): it was altered or damaged; discard anything restored from it"
            ),
            Self::Corrupt { path, reason } => {
                write!(
                    f,
                    "{path} in the store is not a valid Strongroom object: {reason}"
                )
            }
            Self::Io(e) => write!(f, "reading the source or writing the output failed: {e}"),
            Self::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
            Self::Envelope(e) => write!(f, "{e}"),
            Self::Policy(e) => write!(f, "{e}"),
            Self::Preflight { key, problems } => {
                write!(
                    f,
                    "customer key {key} is not usable yet ({} problems): ",
                    problems.len()
                )?;
                for (i, problem) in problems.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{problem}")?;
                }
                Ok(())
            }
            Self::Unsupported { what } => write!(f, "not supported: {what}"),
            Self::RolledBack { what } => write!(f, "rolled back: {what}"),
            Self::KeyStillNeeded { key, points } => write!(
                f,
                "key version {key} still holds the only copy of {} recovery points' keys (first: {}): rewrap them before disabling it",
                points.len(),
                points.first().map_or("none", String::as_str)
            ),
            Self::Conflict { what } => write!(f, "{what}: retry"),
            Self::DiskKeyConflict { what } => f.write_str(what),
            Self::MissingPermissions { missing } => {
                f.write_str("the vault's identity lacks permissions on the disk's keys: ")?;
                for (i, m) in missing.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{m}")?;
                }
                f.write_str("; grant them in the key vault's access policy, then back up again (no data was read)")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store { source, .. } | Self::StoreUnreachable { source, .. } => Some(source),
            Self::Key { source, .. } => Some(source),
            Self::Io(e) => Some(e),
            Self::Envelope(e) => Some(e),
            Self::Policy(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// A key vault's error about `key`: a purge is its own variant.
pub(crate) fn key_error(key: String, source: VaultError) -> Error {
    match source {
        VaultError::KeyPurged { .. } => Error::KeyPurged { key },
        source => Error::Key { key, source },
    }
}

/// What the envelope's error means for point `point`.
pub(crate) fn envelope_error(point: &str, e: strongroom_envelope::Error) -> Error {
    use strongroom_envelope::Error as E;
    match e {
        E::DecryptionFailed => Error::Integrity {
            point: point.to_owned(),
            reason: "a chunk or the header did not authenticate".into(),
        },
        E::Truncated => Error::Integrity {
            point: point.to_owned(),
            reason: "the body ends before its final chunk".into(),
        },
        E::Malformed { offset, reason } => Error::Integrity {
            point: point.to_owned(),
            reason: format!("the header is malformed at byte {offset}: {reason}"),
        },
        E::NoMatchingKey { recorded } => Error::NoKey { recorded },
        E::KeyUnavailable { key, source } => {
            let name = key.to_string();
            match *source {
                WrapError::Backend(inner) => match inner.downcast::<VaultError>() {
                    Ok(vault) => key_error(name, *vault),
                    Err(other) => Error::Key {
                        key: name,
                        source: VaultError::InvalidArgument {
                            reason: other.to_string(),
                        },
                    },
                },
                WrapError::DecryptionFailed => Error::Integrity {
                    point: point.to_owned(),
                    reason: format!("the DEK copy wrapped under {name} did not unwrap"),
                },
                other => Error::Key {
                    key: name,
                    source: VaultError::InvalidArgument {
                        reason: other.to_string(),
                    },
                },
            }
        }
        E::Io(e) => Error::Io(e),
        other => Error::Envelope(other),
    }
}
