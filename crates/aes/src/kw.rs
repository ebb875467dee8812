//! AES-256 Key Wrap (RFC 3394) and Key Wrap with Padding (RFC 5649), as NIST
//! SP 800-38F calls KW and KWP.
//!
//! Both use the index-based form of the wrapping function `W` (RFC 3394
//! section 2.2.1, second form). Every length rule of the RFCs is enforced
//! before any work is done, and the integrity check of an unwrap (the initial
//! value, and for KWP also the message length indicator and the zero padding)
//! is evaluated in constant time and reported as one error: an attacker who
//! submits forged wrapped keys learns only "it failed", never which check.
//!
//! ```
//! use strongroom_aes::{Aes256Key, kw::Aes256Kw};
//!
//! let kek = Aes256Kw::new(&Aes256Key::from_bytes([1; 32]));
//! let dek = [2u8; 32];
//!
//! let wrapped = kek.wrap(&dek)?;            // RFC 3394: 40 bytes
//! assert_eq!(wrapped.len(), 40);
//! assert_eq!(kek.unwrap(&wrapped)?.as_slice(), &dek);
//!
//! let wrapped = kek.wrap_padded(b"any length")?; // RFC 5649
//! assert_eq!(kek.unwrap_padded(&wrapped)?.as_slice(), b"any length");
//! # Ok::<(), strongroom_aes::kw::KeyWrapError>(())
//! ```

use aead::{array::Array, consts::U16};
use aes::Aes256;
use aes::cipher::{
    BlockCipherDecBackend, BlockCipherDecClosure, BlockCipherDecrypt, BlockCipherEncBackend,
    BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, KeyInit,
};
use core::fmt;
use subtle::{Choice, ConstantTimeEq, ConstantTimeGreater};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Aes256Key;

/// The default initial value of RFC 3394 section 2.2.3.1.
const KW_IV: [u8; 8] = [0xA6; 8];
/// The constant half of the alternative initial value of RFC 5649 section 3.
const KWP_PREFIX: [u8; 4] = [0xA6, 0x59, 0x59, 0xA6];
/// Semiblock size.
const SEMIBLOCK: usize = 8;

/// Why a wrap or unwrap was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyWrapError {
    /// The data to wrap has a length the algorithm does not allow: RFC 3394
    /// needs a multiple of 8 bytes, at least 16; RFC 5649 needs 1 to
    /// 2^32 - 1 bytes.
    InvalidInputLength {
        /// The length that was given.
        len: usize,
    },
    /// The wrapped key has a length no wrap can produce: RFC 3394 output is a
    /// multiple of 8 bytes, at least 24; RFC 5649 output a multiple of 8, at
    /// least 16.
    InvalidWrappedLength {
        /// The length that was given.
        len: usize,
    },
    /// The wrapped key failed its integrity check: it was made under another
    /// key, with the other algorithm, or changed since.
    IntegrityCheckFailed,
}

impl fmt::Display for KeyWrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidInputLength { len } => write!(
                f,
                "cannot wrap {len} bytes: key wrap (RFC 3394) takes a multiple of 8 bytes, at least 16, and key wrap with padding (RFC 5649) 1 to 2^32-1 bytes"
            ),
            Self::InvalidWrappedLength { len } => write!(
                f,
                "a {len}-byte wrapped key cannot be valid: wrapped keys are a multiple of 8 bytes, at least 24 (RFC 3394) or 16 (RFC 5649); check that the whole value was passed"
            ),
            Self::IntegrityCheckFailed => f.write_str(
                "the wrapped key failed its integrity check: it was wrapped under another key or algorithm, or was altered",
            ),
        }
    }
}

impl std::error::Error for KeyWrapError {}

/// An AES-256 key-encryption key for RFC 3394 and RFC 5649 key wrapping.
///
/// Holds the expanded AES key schedule, which is zeroized on drop. It is
/// boxed when it is made, so that moving an `Aes256Kw` moves a pointer, not
/// a copy of the schedule.
pub struct Aes256Kw {
    cipher: Box<Aes256>,
}

impl Aes256Kw {
    /// Expands the key-encryption key. The `aes` crate builds the schedule
    /// by value, which may leave a copy on the stack that this crate cannot
    /// reach; once boxed it is not moved again.
    #[must_use]
    pub fn new(key: &Aes256Key) -> Self {
        Self {
            cipher: Box::new(Aes256::new(key.expose_secret().into())),
        }
    }

    /// Wraps `key_data` with AES Key Wrap (RFC 3394); the result is 8 bytes
    /// longer than the input.
    ///
    /// # Errors
    /// [`KeyWrapError::InvalidInputLength`] unless `key_data` is a multiple of
    /// 8 bytes and at least 16 bytes long (RFC 3394 section 2: n >= 2).
    pub fn wrap(&self, key_data: &[u8]) -> Result<Vec<u8>, KeyWrapError> {
        if !key_data.len().is_multiple_of(SEMIBLOCK) || key_data.len() < 2 * SEMIBLOCK {
            return Err(KeyWrapError::InvalidInputLength {
                len: key_data.len(),
            });
        }
        Ok(self.wrap_semiblocks(KW_IV, key_data))
    }

    /// Unwraps an RFC 3394 wrapped key.
    ///
    /// # Errors
    /// [`KeyWrapError::InvalidWrappedLength`] unless `wrapped` is a multiple
    /// of 8 bytes and at least 24 bytes long;
    /// [`KeyWrapError::IntegrityCheckFailed`] when the integrity check fails.
    pub fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyWrapError> {
        if !wrapped.len().is_multiple_of(SEMIBLOCK) || wrapped.len() < 3 * SEMIBLOCK {
            return Err(KeyWrapError::InvalidWrappedLength { len: wrapped.len() });
        }
        let (a, r) = self.unwrap_semiblocks(wrapped);
        if bool::from(a.ct_eq(&KW_IV)) {
            Ok(r)
        } else {
            Err(KeyWrapError::IntegrityCheckFailed)
        }
    }

    /// Wraps `key_data` of any length from 1 to 2^32 - 1 bytes with AES Key
    /// Wrap with Padding (RFC 5649); the result is the input rounded up to a
    /// multiple of 8, plus 8 bytes.
    ///
    /// # Errors
    /// [`KeyWrapError::InvalidInputLength`] when `key_data` is empty or
    /// longer than 2^32 - 1 bytes.
    pub fn wrap_padded(&self, key_data: &[u8]) -> Result<Vec<u8>, KeyWrapError> {
        let mli = u32::try_from(key_data.len())
            .ok()
            .filter(|&len| len > 0)
            .ok_or(KeyWrapError::InvalidInputLength {
                len: key_data.len(),
            })?;
        let mut aiv = [0u8; SEMIBLOCK];
        aiv[..4].copy_from_slice(&KWP_PREFIX);
        aiv[4..].copy_from_slice(&mli.to_be_bytes());

        let padded_len = key_data.len().div_ceil(SEMIBLOCK) * SEMIBLOCK;
        if padded_len == SEMIBLOCK {
            // RFC 5649 section 4.1 step 2: one semiblock is encrypted as a
            // single AES block, AIV || P.
            let mut block = Array::<u8, U16>::default();
            block[..SEMIBLOCK].copy_from_slice(&aiv);
            block[SEMIBLOCK..SEMIBLOCK + key_data.len()].copy_from_slice(key_data);
            self.cipher.encrypt_block(&mut block);
            let out = block.to_vec();
            block.zeroize();
            return Ok(out);
        }
        let mut padded = Zeroizing::new(vec![0u8; padded_len]);
        padded[..key_data.len()].copy_from_slice(key_data);
        Ok(self.wrap_semiblocks(aiv, &padded))
    }

    /// Unwraps an RFC 5649 wrapped key.
    ///
    /// # Errors
    /// [`KeyWrapError::InvalidWrappedLength`] unless `wrapped` is a multiple
    /// of 8 bytes and at least 16 bytes long;
    /// [`KeyWrapError::IntegrityCheckFailed`] when the initial value, the
    /// message length indicator or the padding is wrong.
    pub fn unwrap_padded(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyWrapError> {
        if !wrapped.len().is_multiple_of(SEMIBLOCK) || wrapped.len() < 2 * SEMIBLOCK {
            return Err(KeyWrapError::InvalidWrappedLength { len: wrapped.len() });
        }
        let (aiv, mut plain) = if wrapped.len() == 2 * SEMIBLOCK {
            let mut block = Array::<u8, U16>::try_from(wrapped)
                .map_err(|_| KeyWrapError::InvalidWrappedLength { len: wrapped.len() })?;
            self.cipher.decrypt_block(&mut block);
            let mut aiv = [0u8; SEMIBLOCK];
            aiv.copy_from_slice(&block[..SEMIBLOCK]);
            let plain = Zeroizing::new(block[SEMIBLOCK..].to_vec());
            block.zeroize();
            (aiv, plain)
        } else {
            self.unwrap_semiblocks(wrapped)
        };

        // RFC 5649 section 3: the prefix matches, 8(n-1) < MLI <= 8n, and the
        // 8n - MLI padding bytes are zero. All three in constant time.
        let padded_len = plain.len() as u64;
        let mut mli_bytes = [0u8; 4];
        mli_bytes.copy_from_slice(&aiv[4..]);
        let mli = u64::from(u32::from_be_bytes(mli_bytes));
        let mut ok: Choice = aiv[..4].ct_eq(&KWP_PREFIX);
        ok &= mli.ct_gt(&(padded_len - SEMIBLOCK as u64));
        ok &= !mli.ct_gt(&padded_len);
        let last = plain.len() - SEMIBLOCK;
        for (offset, byte) in plain[last..].iter().enumerate() {
            let index = (last + offset) as u64;
            let is_padding = !mli.ct_gt(&index);
            ok &= !is_padding | byte.ct_eq(&0);
        }
        if bool::from(ok) {
            // safe: ok implies mli <= padded_len, which is plain.len().
            plain.truncate(mli as usize);
            Ok(plain)
        } else {
            Err(KeyWrapError::IntegrityCheckFailed)
        }
    }

    /// `W(S)` of RFC 3394 section 2.2.1 with initial value `iv` over
    /// `plain` (n >= 2 semiblocks); returns `C = A || R[1] || ... || R[n]`.
    fn wrap_semiblocks(&self, iv: [u8; SEMIBLOCK], plain: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; SEMIBLOCK + plain.len()];
        out[..SEMIBLOCK].copy_from_slice(&iv);
        out[SEMIBLOCK..].copy_from_slice(plain);
        // One backend for all 6n block operations: `encrypt_block` on the
        // cipher would pick the CPU backend again for every block.
        self.cipher.encrypt_with_backend(Wrap { buf: &mut out });
        out
    }

    /// `W^-1(C)` of RFC 3394 section 2.2.2 over `wrapped` (n >= 2
    /// semiblocks after `A`); returns the recovered `A` and `R`, unchecked.
    fn unwrap_semiblocks(&self, wrapped: &[u8]) -> ([u8; SEMIBLOCK], Zeroizing<Vec<u8>>) {
        let mut a = [0u8; SEMIBLOCK];
        let mut r = Zeroizing::new(wrapped[SEMIBLOCK..].to_vec());
        a.copy_from_slice(&wrapped[..SEMIBLOCK]);
        self.cipher.decrypt_with_backend(Unwrap {
            a: &mut a,
            r: &mut r,
        });
        (a, r)
    }
}

/// `W` as a backend closure over `A || R[1] || ... || R[n]`, in place.
struct Wrap<'a> {
    buf: &'a mut [u8],
}

impl BlockSizeUser for Wrap<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for Wrap<'_> {
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        let (a, r) = self.buf.split_at_mut(SEMIBLOCK);
        let n = r.len() / SEMIBLOCK;
        let mut block = Array::<u8, U16>::default();
        for j in 0..6 {
            for (i, ri) in r.chunks_exact_mut(SEMIBLOCK).enumerate() {
                block[..SEMIBLOCK].copy_from_slice(a);
                block[SEMIBLOCK..].copy_from_slice(ri);
                backend.encrypt_block((&mut block).into());
                let t = (n * j + i + 1) as u64;
                xor_into(a, &block[..SEMIBLOCK], &t.to_be_bytes());
                ri.copy_from_slice(&block[SEMIBLOCK..]);
            }
        }
        block.zeroize();
    }
}

/// `W^-1` as a backend closure: `a` is `A`, `r` is `R[1] || ... || R[n]`.
struct Unwrap<'a> {
    a: &'a mut [u8; SEMIBLOCK],
    r: &'a mut [u8],
}

impl BlockSizeUser for Unwrap<'_> {
    type BlockSize = U16;
}

impl BlockCipherDecClosure for Unwrap<'_> {
    fn call<B: BlockCipherDecBackend<BlockSize = U16>>(self, backend: &B) {
        let n = self.r.len() / SEMIBLOCK;
        let mut block = Array::<u8, U16>::default();
        for j in (0..6).rev() {
            for (i, ri) in self.r.chunks_exact_mut(SEMIBLOCK).enumerate().rev() {
                let t = (n * j + i + 1) as u64;
                let (hi, lo) = block.split_at_mut(SEMIBLOCK);
                xor_into(hi, self.a, &t.to_be_bytes());
                lo.copy_from_slice(ri);
                backend.decrypt_block((&mut block).into());
                self.a.copy_from_slice(&block[..SEMIBLOCK]);
                ri.copy_from_slice(&block[SEMIBLOCK..]);
            }
        }
        block.zeroize();
    }
}

/// `out = x ^ y` over one semiblock.
fn xor_into(out: &mut [u8], x: &[u8], y: &[u8; SEMIBLOCK]) {
    for ((o, x), y) in out.iter_mut().zip(x).zip(y) {
        *o = x ^ y;
    }
}

impl fmt::Debug for Aes256Kw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Aes256Kw { .. }")
    }
}

// `Aes256` (feature `zeroize`) clears its round keys in its own `Drop`.
impl ZeroizeOnDrop for Aes256Kw {}
