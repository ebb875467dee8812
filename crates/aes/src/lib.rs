//! AES-256-GCM, AES-256 key wrap and key commitment for Strongroom.
//!
//! The cryptographic floor of the Strongroom workspace (DESIGN.md R1, R4, R6):
//!
//! - [`Aes256Gcm`]: AES-256-GCM exactly as NIST SP 800-38D defines it
//!   (96-bit nonce, 128-bit tag, associated data). On x86-64 it runs a
//!   fused kernel chosen at runtime: VAES and VPCLMULQDQ on AVX-512 or AVX2
//!   vectors, or AES-NI and PCLMULQDQ on 128-bit ones; elsewhere it is
//!   composed from the RustCrypto `aes`, `ctr` and `ghash` crates. It implements the RustCrypto [`aead`] traits, so it drops in
//!   wherever `aes_gcm::Aes256Gcm` is used.
//! - [`kw::Aes256Kw`]: AES-256 Key Wrap (RFC 3394) and Key Wrap with Padding
//!   (RFC 5649), with every length rule of the RFCs enforced.
//! - [`key_commitment`]: a commitment to a key, so that a ciphertext can be
//!   made to open under exactly one key.
//! - [`Aes256Key`]: the secret key type: zeroized on drop, never printed.
//!
//! No I/O. `unsafe` is denied everywhere but on the items of the private
//! x86-64 kernel module that need it (vector loads/stores and calls into
//! `#[target_feature]` functions after CPU detection), each block with a
//! `// SAFETY:` comment. On any authentication failure the error is the opaque
//! [`Error`], and the caller's buffer is left exactly as it was.
//!
//! # Example
//!
//! ```
//! use strongroom_aes::{Aead, Aes256Gcm, Aes256Key, KeyInit};
//!
//! let key = Aes256Key::generate()?;
//! let gcm = Aes256Gcm::with_key(&key);
//!
//! // The nonce must never repeat under one key; callers of the envelope
//! // crate never choose it themselves.
//! let nonce = [0x24; 12];
//! let sealed = gcm.encrypt(&nonce.into(), b"disk block 0".as_slice())?;
//! assert_eq!(sealed.len(), 12 + 16); // ciphertext || tag
//!
//! let opened = gcm.decrypt(&nonce.into(), sealed.as_slice())?;
//! assert_eq!(opened, b"disk block 0");
//!
//! // Any change is detected, and nothing is returned.
//! let mut forged = sealed.clone();
//! forged[0] ^= 1;
//! assert!(gcm.decrypt(&nonce.into(), forged.as_slice()).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Wrapping a data-encryption key under a key-encryption key, with the
//! commitment that lets a reader reject a wrong key before decrypting:
//!
//! ```
//! use strongroom_aes::{Aes256Key, key_commitment, kw::Aes256Kw};
//!
//! let kek = Aes256Kw::new(&Aes256Key::generate()?);
//! let dek = Aes256Key::generate()?;
//! let wrapped = kek.wrap(dek.expose_secret())?;
//! let commitment = key_commitment(&dek);
//!
//! let unwrapped = Aes256Key::try_from_slice(&kek.unwrap(&wrapped)?)?;
//! assert_eq!(key_commitment(&unwrapped), commitment);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![deny(missing_docs)]

mod commit;
mod gcm;
mod key;
pub mod kw;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use aead::{self, Aead, AeadCore, AeadInOut, Error, KeyInit};

pub use commit::{COMMITMENT_LEN, key_commitment, verify_key_commitment};
pub use gcm::Aes256Gcm;
#[doc(hidden)]
pub use gcm::Backend;
pub use key::{Aes256Key, InvalidKeyLength, RandomnessUnavailable};

/// AES-256 key length in bytes.
pub const KEY_LEN: usize = 32;
/// AES-GCM nonce length in bytes (96 bits, the only size this crate takes).
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length in bytes (128 bits, the only size this crate makes).
pub const TAG_LEN: usize = 16;
/// Longest plaintext one AES-GCM call may seal: 2^36 - 32 bytes
/// (SP 800-38D section 5.2.1.1: 2^39 - 256 bits).
pub const P_MAX: u64 = (1 << 36) - 32;
/// Longest associated data one AES-GCM call may take: 2^61 - 1 bytes
/// (SP 800-38D: 2^64 - 1 bits, rounded down to whole bytes).
pub const A_MAX: u64 = (1 << 61) - 1;

/// The examples in `README.md` and the workspace README, compiled and run as
/// doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
