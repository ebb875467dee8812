//! Key commitment (DESIGN.md R4).
//!
//! AES-GCM is not key-committing: one ciphertext and tag can be crafted to
//! open under two different keys (Albertini et al., "How to Abuse and Fix
//! Authenticated Encryption Without Key Commitment", USENIX Security 2022).
//! Storing a commitment to the key beside the ciphertext, and checking it
//! before decrypting, closes that gap: opening under any other key fails at
//! the commitment, because finding a second key with the same commitment is
//! a SHA-256 collision.
//!
//! The value is
//!
//! ```text
//! key_commitment(K) = SHA-256( "strongroom key commitment v1" || 0x00 || K )
//! ```
//!
//! 28 ASCII bytes of label, one zero byte, then the 32 key bytes: 61 bytes in
//! all, hashed once. A third party recomputes it with any SHA-256, e.g.
//! `(printf 'strongroom key commitment v1\0'; cat key.bin) | sha256sum`.
//!
//! A hash is used, not AES itself (such as `AES_K(c1) || AES_K(c2)`),
//! because the adversary here chooses the keys, and AES-256 has known
//! related-key and chosen-key weaknesses that a hash function's collision
//! resistance does not share. The label keeps these values apart from every
//! other use of SHA-256 over key bytes. The key is a uniformly random
//! 256-bit secret, so the commitment reveals nothing useful about it.

use sha2::{Digest, Sha256};

use crate::Aes256Key;

/// Length of a key commitment in bytes.
pub const COMMITMENT_LEN: usize = 32;

/// Domain-separation label hashed before the key.
const LABEL: &[u8] = b"strongroom key commitment v1\0";

// `key_commitment` relies on the hasher clearing itself on drop (sha2's
// `zeroize` feature): this does not compile without it.
const _: fn() = zeroize_on_drop::<Sha256>;
const fn zeroize_on_drop<T: zeroize::ZeroizeOnDrop>() {}

/// Computes the commitment to `key`: `SHA-256("strongroom key commitment v1"
/// || 0x00 || key)`: binding because a second key with the same commitment
/// would be a SHA-256 collision (docs/FORMAT.md section 3.1 says why a hash
/// and not AES).
///
/// Compare commitments with [`verify_key_commitment`], which runs in
/// constant time.
///
/// ```
/// use strongroom_aes::{Aes256Key, key_commitment, verify_key_commitment};
///
/// let key = Aes256Key::from_bytes([0; 32]);
/// let commitment = key_commitment(&key);
/// assert!(verify_key_commitment(&key, &commitment));
/// assert!(!verify_key_commitment(&Aes256Key::from_bytes([1; 32]), &commitment));
/// ```
#[must_use]
pub fn key_commitment(key: &Aes256Key) -> [u8; COMMITMENT_LEN] {
    // The 61 bytes hashed fit one block, so the key stays in the hasher's
    // buffer until the end. It is finalized in place rather than consumed
    // (moved), and dropped where it is: sha2's `zeroize` feature clears the
    // buffer and state on drop.
    let mut hasher = Sha256::new();
    hasher.update(LABEL);
    hasher.update(key.expose_secret());
    hasher.finalize_reset().into()
}

/// Checks in constant time that `commitment` is the commitment to `key`.
#[must_use]
pub fn verify_key_commitment(key: &Aes256Key, commitment: &[u8; COMMITMENT_LEN]) -> bool {
    use subtle::ConstantTimeEq;
    key_commitment(key).ct_eq(commitment).into()
}
