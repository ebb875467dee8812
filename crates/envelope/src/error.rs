//! The envelope's error type.

use core::fmt;
use std::io;

use crate::{KeyRef, WrapError};

/// Everything that can go wrong encrypting or decrypting an envelope.
///
/// Variants about public facts carry detail (a version, an offset, the key
/// references a header names); every authentication failure — a chunk tag, the
/// header MAC, the key commitment, a wrapped key that does not unwrap — is
/// the one detail-free [`Error::DecryptionFailed`]. docs/FORMAT.md section 6
/// lists the error classes a reader reports, the order of its checks, and
/// the variant of each class.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The stream is a Strongroom stream of a format version this library
    /// does not read.
    UnsupportedVersion(u8),
    /// The header names an algorithm suite this library does not know.
    UnsupportedSuite(u8),
    /// The header is not well formed at `offset` (bytes from the start of
    /// the header).
    Malformed {
        /// Byte offset of the offending field.
        offset: u64,
        /// What is wrong there.
        reason: &'static str,
    },
    /// The input ended early: inside the header, or before the body's
    /// final chunk was complete.
    Truncated,
    /// None of the given key wrappers can open any wrapped copy of the DEK;
    /// these are the keys the header names.
    NoMatchingKey {
        /// The key references recorded in the header.
        recorded: Vec<KeyRef>,
    },
    /// A key wrapper that matched could not be used: its key vault refused
    /// (access denied, key disabled, ...) or failed. `source` says why.
    KeyUnavailable {
        /// The key that was tried.
        key: Box<KeyRef>,
        /// The wrapper's own error.
        source: Box<WrapError>,
    },
    /// Authentication failed: wrong key, or the header or body was altered,
    /// reordered, truncated at a chunk boundary or spliced. No plaintext of
    /// the failing part was released.
    DecryptionFailed,
    /// An argument is outside what the format allows (chunk size, metadata,
    /// number of wrapped keys, a byte range past the end, ...).
    InvalidArgument {
        /// Which rule was broken.
        reason: &'static str,
    },
    /// The stream would need more than 2^32 chunks.
    TooLarge,
    /// The operating system's random generator could not be read.
    RandomnessUnavailable,
    /// Reading or writing the underlying stream failed.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion(v) => write!(
                f,
                "format version {v} is not supported by this library (it reads version 1); upgrade strongroom"
            ),
            Self::UnsupportedSuite(s) => write!(
                f,
                "algorithm suite {s} is not supported (suite 1 is AES-256-GCM STREAM); upgrade strongroom"
            ),
            Self::Malformed { offset, reason } => {
                write!(f, "malformed header at byte {offset}: {reason}")
            }
            Self::Truncated => f.write_str(
                "the encrypted stream ended early; it was cut short in storage or transit",
            ),
            Self::NoMatchingKey { recorded } => {
                f.write_str("none of the given keys can open this stream; it needs one of: ")?;
                for (i, key) in recorded.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key}")?;
                }
                Ok(())
            }
            Self::KeyUnavailable { key, source } => {
                write!(f, "key {key} could not be used: {source}")
            }
            Self::DecryptionFailed => f.write_str(
                "decryption failed: wrong key, or the data was altered; no plaintext of the failed part was released",
            ),
            Self::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
            Self::TooLarge => f.write_str(
                "the stream would exceed 2^32 chunks; use a larger chunk size or split the data",
            ),
            Self::RandomnessUnavailable => f.write_str(
                "the operating system's random generator failed; check that getrandom(2) is allowed",
            ),
            Self::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::KeyUnavailable { source, .. } => Some(source.as_ref()),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        // An error we put inside an io::Error on the way through `Read` /
        // `Write` comes back out as itself.
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            if let Some(inner) = e.into_inner()
                && let Ok(err) = inner.downcast::<Error>()
            {
                return *err;
            }
            return Error::Io(io::Error::other("unrecoverable nested error"));
        }
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return Error::Truncated;
        }
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            other => {
                let kind = match other {
                    Error::Truncated => io::ErrorKind::UnexpectedEof,
                    Error::InvalidArgument { .. } => io::ErrorKind::InvalidInput,
                    _ => io::ErrorKind::InvalidData,
                };
                io::Error::new(kind, other)
            }
        }
    }
}

impl Error {
    /// Recovers the envelope error carried inside an `io::Error` returned by
    /// [`Decryptor`](crate::Decryptor)'s `Read` or
    /// [`Encryptor`](crate::Encryptor)'s `Write`.
    #[must_use]
    pub fn from_io(e: io::Error) -> Self {
        Self::from(e)
    }

    /// A copy of this error for a stream that has failed and keeps failing;
    /// `Io` errors, which cannot be copied, become their kind and message.
    pub(crate) fn repeat(&self) -> Self {
        match self {
            Self::UnsupportedVersion(v) => Self::UnsupportedVersion(*v),
            Self::UnsupportedSuite(s) => Self::UnsupportedSuite(*s),
            Self::Malformed { offset, reason } => Self::Malformed {
                offset: *offset,
                reason,
            },
            Self::Truncated => Self::Truncated,
            Self::DecryptionFailed => Self::DecryptionFailed,
            Self::InvalidArgument { reason } => Self::InvalidArgument { reason },
            Self::TooLarge => Self::TooLarge,
            Self::RandomnessUnavailable => Self::RandomnessUnavailable,
            Self::NoMatchingKey { recorded } => Self::NoMatchingKey {
                recorded: recorded.clone(),
            },
            Self::KeyUnavailable { key, source } => Self::KeyUnavailable {
                key: key.clone(),
                source: Box::new(WrapError::Backend(source.to_string().into())),
            },
            Self::Io(e) => Self::Io(io::Error::new(e.kind(), e.to_string())),
        }
    }
}
