//! Envelope encryption and the streaming format of Strongroom.
//!
//! One fresh data-encryption key ([`Dek`]) per recovery point (DESIGN.md
//! R2), wrapped by one or more key-encryption keys ([`KeyWrapper`]: a local
//! AES key, a local RSA key, or a key inside a key vault), each wrapped copy
//! recorded with a versioned [`KeyRef`] (R7). The data is a STREAM of
//! fixed-size AES-256-GCM chunks (R3): bounded memory, parallel on all
//! cores, truncation / reordering / splicing / header tampering detected,
//! any byte range readable on its own, no plaintext released before its
//! chunk verified. A key commitment in the header is checked before
//! anything is decrypted (R4). The format is documented byte by byte in
//! `docs/FORMAT.md` (R5). Rotating keys rewrites only the header (R8).
//!
//! # Encrypt and decrypt a stream
//!
//! ```
//! use std::io::{Read, Write};
//! use strongroom_aes::Aes256Key;
//! use strongroom_envelope::{
//!     AesKeyWrapper, Decryptor, Encryptor, HeaderOptions, KeyRef, WrapAlgorithm,
//! };
//!
//! let kek = AesKeyWrapper::new(
//!     KeyRef::new("vault-1", "platform-key", "v1", WrapAlgorithm::A256Kw),
//!     &Aes256Key::generate()?,
//! );
//! let options = HeaderOptions::default().metadata("item", "vm-42");
//!
//! let mut encryptor = Encryptor::new(Vec::new(), &[&kek], &options)?;
//! encryptor.write_all(b"the first disk block")?;
//! let stored: Vec<u8> = encryptor.finish()?;
//!
//! let mut decryptor = Decryptor::new(stored.as_slice(), &[&kek])?;
//! let mut plain = Vec::new();
//! decryptor.read_to_end(&mut plain)?;
//! assert_eq!(plain, b"the first disk block");
//! assert_eq!(decryptor.header().unwrap().metadata()["item"], "vm-42");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Header and body apart; rotating the key
//!
//! Store the header and the body as separate objects and key rotation
//! rewrites a few hundred bytes, whatever the body's size:
//!
//! ```
//! use std::io::{Read, Write};
//! use strongroom_aes::Aes256Key;
//! use strongroom_envelope::{
//!     AesKeyWrapper, Decryptor, Dek, Encryptor, Header, HeaderOptions, KeyRef, WrapAlgorithm,
//! };
//!
//! let old = AesKeyWrapper::new(
//!     KeyRef::new("vault-1", "cmk", "v1", WrapAlgorithm::A256Kw),
//!     &Aes256Key::generate()?,
//! );
//! let new = AesKeyWrapper::new(
//!     KeyRef::new("vault-1", "cmk", "v2", WrapAlgorithm::A256Kw),
//!     &Aes256Key::generate()?,
//! );
//!
//! // A new header seals exactly one body: `Encryptor::body` takes it by value.
//! let sealing = Header::create(Dek::generate()?, &[&old], &HeaderOptions::default())?;
//! let header_v1 = sealing.header().as_bytes().to_vec();
//! let mut body = Encryptor::body(Vec::new(), sealing)?;
//! body.write_all(&[7u8; 10_000])?;
//! let body = body.finish()?;
//!
//! // Rotation: open with the old key (an opened header decrypts and
//! // rewraps, and cannot seal), rewrap under the new one.
//! let header_v2 = Header::from_bytes(&header_v1)?.open(&[&old])?.rewrap(&[&new])?;
//! assert_eq!(header_v2.key_refs().next().unwrap().version, "v2");
//!
//! let opened = Header::from_bytes(header_v2.as_bytes())?.open(&[&new])?;
//! let mut plain = Vec::new();
//! Decryptor::body(body.as_slice(), &opened)?.read_to_end(&mut plain)?;
//! assert_eq!(plain, [7u8; 10_000]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod buffer;
mod decrypt;
mod dek;
mod encrypt;
mod error;
pub mod format;
mod keyref;
mod keys;
mod parts;
mod slices;
mod stream;
mod wrapper;

pub use decrypt::{Decryptor, SeekableDecryptor};
pub use dek::Dek;
pub use encrypt::Encryptor;
pub use error::Error;
pub use format::{Header, WrappedKey};
pub use keyref::{KeyRef, WrapAlgorithm};
pub use keys::{HeaderOptions, MAX_ATTACHMENT, MAX_ATTACHMENT_LABEL, OpenedHeader, SealingHeader};
pub use parts::{BodyOpener, BodySealer};
pub use wrapper::{AesKeyWrapper, KeyWrapper, RsaOaepWrapper, WrapError};

/// `rsa`, re-exported for building [`RsaOaepWrapper`] keys.
pub use rsa;

/// The examples in `README.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
