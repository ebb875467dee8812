//! The header: its fields, limits, and reading and writing it
//! (docs/FORMAT.md section 2, "Header").

use std::collections::BTreeMap;
use std::io::Read;

use crate::{Error, KeyRef, WrapAlgorithm};

/// `89 53 52 4D 0D 0A 1A 0A`: a high byte, "SRM", CR LF, ^Z, LF, so text-mode
/// transfers and truncation to 7 bits are caught at once (as PNG does).
pub const MAGIC: [u8; 8] = [0x89, b'S', b'R', b'M', 0x0D, 0x0A, 0x1A, 0x0A];
/// The format version this library writes and reads.
pub const VERSION: u8 = 1;
/// Suite 1: HKDF-SHA-256 key schedule, AES-256-GCM STREAM chunks,
/// HMAC-SHA-256 header MAC, SHA-256 key commitment.
pub const SUITE_AES256GCM_STREAM: u8 = 1;

/// Smallest chunk: 2^12 = 4 KiB of plaintext.
pub const MIN_CHUNK_LOG2: u8 = 12;
/// Largest chunk: 2^24 = 16 MiB of plaintext.
pub const MAX_CHUNK_LOG2: u8 = 24;
/// Default chunk: 2^20 = 1 MiB of plaintext.
pub const DEFAULT_CHUNK_LOG2: u8 = 20;

/// At most this many wrapped copies of the DEK in one header.
pub const MAX_RECORDS: usize = 16;
/// At most this many bytes in one wrapped DEK (RSA-4096 needs 512).
pub const MAX_WRAPPED_LEN: usize = 1024;
/// At most this many metadata entries.
pub const MAX_METADATA_ENTRIES: usize = 64;
/// At most this many bytes in one metadata value.
pub const MAX_METADATA_VALUE_LEN: usize = 4096;
/// Length of the salt.
pub const SALT_LEN: usize = 32;
/// Length of the header MAC.
pub const MAC_LEN: usize = 32;
/// Length of the fixed part: magic, version, suite, chunk size, flags, salt,
/// commitment.
pub const FIXED_LEN: usize = 8 + 4 + SALT_LEN + strongroom_aes::COMMITMENT_LEN;

/// One wrapped copy of the DEK, with the key it was wrapped under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The key-encryption key that wrapped it.
    pub key_ref: KeyRef,
    /// The wrapped DEK.
    pub wrapped: Vec<u8>,
}

/// A parsed header: everything public about a stream. Open it with
/// [`Header::open`] to get the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub(crate) chunk_log2: u8,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) commitment: [u8; strongroom_aes::COMMITMENT_LEN],
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) records: Vec<WrappedKey>,
    /// The whole header as serialized, MAC included.
    pub(crate) bytes: Vec<u8>,
    /// `bytes[..stable_len]` is the part the body's AAD binds: everything
    /// up to and including the metadata, none of the wrapped keys.
    pub(crate) stable_len: usize,
}

impl Header {
    /// Plaintext bytes per chunk.
    #[must_use]
    pub fn chunk_size(&self) -> usize {
        1 << self.chunk_log2
    }

    /// The authenticated metadata (item id, recovery point id, ...).
    ///
    /// Read before [`Header::open`] it is only *claimed*; after a successful
    /// open it is authenticated.
    #[must_use]
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The wrapped copies of the DEK, with their key references: the keys
    /// (and key versions) this stream still needs (R14).
    #[must_use]
    pub fn wrapped_keys(&self) -> &[WrappedKey] {
        &self.records
    }

    /// The key references of [`wrapped_keys`](Self::wrapped_keys).
    pub fn key_refs(&self) -> impl Iterator<Item = &KeyRef> {
        self.records.iter().map(|r| &r.key_ref)
    }

    /// The serialized header, as stored in front of the body.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Parses a header from the start of `input`, reading exactly the
    /// header's bytes and no more.
    ///
    /// Every length is checked against the format's limits before anything
    /// is allocated: a header is at most about 300 KB (64 metadata entries
    /// of 4 KiB, 16 records of 1 KiB), and memory grows only as its bytes
    /// actually arrive.
    ///
    /// Fields are checked in byte order and the first rule broken is the
    /// error (docs/FORMAT.md sections 2.4 and 6), before any key is used.
    ///
    /// # Errors
    /// [`Error::Malformed`] (with the offset) for a header that breaks the
    /// format, [`Error::UnsupportedVersion`] / [`Error::UnsupportedSuite`],
    /// [`Error::Truncated`] when the input ends inside the header,
    /// [`Error::Io`] when reading fails.
    pub fn read_from<R: Read + ?Sized>(input: &mut R) -> Result<Self, Error> {
        read::header(input)
    }

    /// Parses a header held in a byte slice, which must hold exactly the
    /// header.
    ///
    /// # Errors
    /// As [`Header::read_from`], plus [`Error::Malformed`] when bytes follow
    /// the header.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut input = bytes;
        let header = read::header(&mut input)?;
        if !input.is_empty() {
            return Err(Error::Malformed {
                offset: header.bytes.len() as u64,
                reason: "bytes after the end of the header",
            });
        }
        Ok(header)
    }
}

/// Writing (docs/FORMAT.md section 2).
pub(crate) mod write {
    use super::*;

    /// Serializes the stable part: fixed fields and metadata.
    pub(crate) fn stable_part(
        chunk_log2: u8,
        salt: &[u8; SALT_LEN],
        commitment: &[u8; strongroom_aes::COMMITMENT_LEN],
        metadata: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, Error> {
        check_metadata(metadata)?;
        let mut out = Vec::with_capacity(FIXED_LEN + 2 + 64 * metadata.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(SUITE_AES256GCM_STREAM);
        out.push(chunk_log2);
        out.push(0); // flags
        out.extend_from_slice(salt);
        out.extend_from_slice(commitment);
        // safe: check_metadata bounded the count to 64.
        out.extend_from_slice(&(metadata.len() as u16).to_be_bytes());
        for (key, value) in metadata {
            out.push(key.len() as u8);
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&(value.len() as u16).to_be_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        Ok(out)
    }

    /// Appends the wrapped-key records.
    pub(crate) fn records(out: &mut Vec<u8>, records: &[WrappedKey]) -> Result<(), Error> {
        if records.is_empty() || records.len() > MAX_RECORDS {
            return Err(Error::InvalidArgument {
                reason: "a header holds 1 to 16 wrapped copies of the DEK",
            });
        }
        out.push(records.len() as u8);
        for record in records {
            let r = &record.key_ref;
            out.push(r.algorithm.to_byte());
            for (field, s) in [
                ("vault", &r.vault),
                ("name", &r.name),
                ("version", &r.version),
            ] {
                if s.len() > 255 || (field != "version" && s.is_empty()) {
                    return Err(Error::InvalidArgument {
                        reason: "key vault and key names are 1 to 255 bytes, versions 0 to 255",
                    });
                }
                out.push(s.len() as u8);
                out.extend_from_slice(s.as_bytes());
            }
            let len = record.wrapped.len();
            if len == 0 || len > MAX_WRAPPED_LEN {
                return Err(Error::InvalidArgument {
                    reason: "a wrapped DEK is 1 to 1024 bytes",
                });
            }
            out.extend_from_slice(&(len as u16).to_be_bytes());
            out.extend_from_slice(&record.wrapped);
        }
        Ok(())
    }

    fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), Error> {
        if metadata.len() > MAX_METADATA_ENTRIES {
            return Err(Error::InvalidArgument {
                reason: "at most 64 metadata entries",
            });
        }
        for (key, value) in metadata {
            if key.is_empty() || key.len() > 255 || value.len() > MAX_METADATA_VALUE_LEN {
                return Err(Error::InvalidArgument {
                    reason: "metadata keys are 1 to 255 bytes, values at most 4096 bytes",
                });
            }
        }
        Ok(())
    }
}

/// Reading (docs/FORMAT.md sections 2 and 6), bounded and offset-tracked.
pub(crate) mod read {
    use super::*;

    /// Reads fields and keeps every byte read, for the MAC and the AAD.
    struct Cursor<'r, R: Read + ?Sized> {
        input: &'r mut R,
        bytes: Vec<u8>,
    }

    impl<R: Read + ?Sized> Cursor<'_, R> {
        fn offset(&self) -> u64 {
            self.bytes.len() as u64
        }

        /// Reads `n` bytes; the caller has bounded `n` by a format limit.
        fn take(&mut self, n: usize) -> Result<&[u8], Error> {
            let start = self.bytes.len();
            self.bytes.resize(start + n, 0);
            let mut filled = 0;
            while filled < n {
                match self.input.read(&mut self.bytes[start + filled..]) {
                    Ok(0) => return Err(Error::Truncated),
                    Ok(k) => filled += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::Io(e)),
                }
            }
            Ok(&self.bytes[start..])
        }

        fn u8(&mut self) -> Result<u8, Error> {
            Ok(self.take(1)?[0])
        }

        fn u16(&mut self) -> Result<u16, Error> {
            let b = self.take(2)?;
            Ok(u16::from_be_bytes([b[0], b[1]]))
        }

        fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
            let mut out = [0u8; N];
            out.copy_from_slice(self.take(N)?);
            Ok(out)
        }

        fn malformed(&self, at: u64, reason: &'static str) -> Error {
            Error::Malformed { offset: at, reason }
        }

        /// A length-prefixed (u8) UTF-8 string.
        fn string(&mut self, what: &'static str) -> Result<String, Error> {
            let len = usize::from(self.u8()?);
            let at = self.offset();
            let bytes = self.take(len)?.to_vec();
            String::from_utf8(bytes).map_err(|_| self.malformed(at, what))
        }
    }

    pub(crate) fn header<R: Read + ?Sized>(input: &mut R) -> Result<Header, Error> {
        let mut c = Cursor {
            input,
            bytes: Vec::with_capacity(256),
        };
        if c.array::<8>()? != MAGIC {
            return Err(c.malformed(0, "not a Strongroom stream (wrong magic bytes)"));
        }
        let version = c.u8()?;
        if version != VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let suite = c.u8()?;
        if suite != SUITE_AES256GCM_STREAM {
            return Err(Error::UnsupportedSuite(suite));
        }
        let chunk_log2 = c.u8()?;
        if !(MIN_CHUNK_LOG2..=MAX_CHUNK_LOG2).contains(&chunk_log2) {
            return Err(c.malformed(10, "chunk size outside 2^12..=2^24 bytes"));
        }
        if c.u8()? != 0 {
            return Err(c.malformed(11, "unknown flags set"));
        }
        let salt = c.array::<SALT_LEN>()?;
        let commitment = c.array::<{ strongroom_aes::COMMITMENT_LEN }>()?;

        let at = c.offset();
        let count = usize::from(c.u16()?);
        if count > MAX_METADATA_ENTRIES {
            return Err(c.malformed(at, "more than 64 metadata entries"));
        }
        let mut metadata = BTreeMap::new();
        for _ in 0..count {
            let at = c.offset();
            let key = c.string("metadata key is not UTF-8")?;
            if key.is_empty() {
                return Err(c.malformed(at, "empty metadata key"));
            }
            // Keys strictly increasing: one canonical encoding per map.
            // Checked before the value is read, so errors follow byte order.
            if metadata
                .last_key_value()
                .is_some_and(|(last, _)| *last >= key)
            {
                return Err(c.malformed(at, "metadata keys not in strictly increasing order"));
            }
            let len_at = c.offset();
            let len = usize::from(c.u16()?);
            if len > MAX_METADATA_VALUE_LEN {
                return Err(c.malformed(len_at, "metadata value longer than 4096 bytes"));
            }
            let value_at = c.offset();
            let value = String::from_utf8(c.take(len)?.to_vec())
                .map_err(|_| c.malformed(value_at, "metadata value is not UTF-8"))?;
            metadata.insert(key, value);
        }
        let stable_len = c.bytes.len();

        let at = c.offset();
        let count = usize::from(c.u8()?);
        if count == 0 || count > MAX_RECORDS {
            return Err(c.malformed(at, "a header holds 1 to 16 wrapped keys"));
        }
        let mut records = Vec::with_capacity(count);
        for _ in 0..count {
            let at = c.offset();
            let algorithm = WrapAlgorithm::from_byte(c.u8()?)
                .ok_or_else(|| c.malformed(at, "unknown wrap algorithm"))?;
            let at = c.offset();
            let vault = c.string("key vault name is not UTF-8")?;
            if vault.is_empty() {
                return Err(c.malformed(at, "empty key vault name"));
            }
            let at = c.offset();
            let name = c.string("key name is not UTF-8")?;
            if name.is_empty() {
                return Err(c.malformed(at, "empty key name"));
            }
            let version = c.string("key version is not UTF-8")?;
            let at = c.offset();
            let len = usize::from(c.u16()?);
            if len == 0 || len > MAX_WRAPPED_LEN {
                return Err(c.malformed(at, "wrapped key length outside 1..=1024"));
            }
            let wrapped = c.take(len)?.to_vec();
            records.push(WrappedKey {
                key_ref: KeyRef {
                    vault,
                    name,
                    version,
                    algorithm,
                },
                wrapped,
            });
        }
        c.take(MAC_LEN)?;
        Ok(Header {
            chunk_log2,
            salt,
            commitment,
            metadata,
            records,
            bytes: c.bytes,
            stable_len,
        })
    }
}
