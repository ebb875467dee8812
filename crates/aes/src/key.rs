//! The AES-256 secret key type.

use core::fmt;

use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::KEY_LEN;

/// A 256-bit AES secret key.
///
/// The bytes are zeroized when the key is dropped. The type deliberately has
/// no `Clone`, `Copy` or byte-printing `Debug`: a key lives in one place, and
/// moving it is the only way to hand it on.
///
/// That place is on the heap: every constructor writes the key bytes
/// straight into an allocation made first, so returning or moving a key
/// moves a pointer and leaves no copy of the bytes on the stack.
///
/// ```
/// use strongroom_aes::Aes256Key;
///
/// let key = Aes256Key::generate().expect("the OS random generator is available");
/// assert_eq!(format!("{key:?}"), "Aes256Key(..)");
/// ```
pub struct Aes256Key(Box<[u8; KEY_LEN]>);

impl Aes256Key {
    /// An all-zero key, to be filled in place.
    fn zeroed() -> Self {
        Self(Box::new([0; KEY_LEN]))
    }

    /// Wraps existing key bytes.
    ///
    /// The bytes are copied into the key and this function's copy of them
    /// is zeroized. An array passed by value is a copy, though: if the
    /// caller keeps one, zeroizing it is the caller's job, and a key held
    /// in a buffer (a `Zeroizing<Vec<u8>>`, say) is better passed to
    /// [`try_from_slice`](Self::try_from_slice), which makes no copy.
    #[must_use]
    pub fn from_bytes(mut bytes: [u8; KEY_LEN]) -> Self {
        let mut key = Self::zeroed();
        key.0.copy_from_slice(&bytes);
        bytes.zeroize();
        key
    }

    /// Copies a key out of a slice, which must be exactly 32 bytes long,
    /// straight into the key's zeroizing storage: no intermediate array.
    ///
    /// ```
    /// use strongroom_aes::{Aes256Key, kw::Aes256Kw};
    ///
    /// let kek = Aes256Kw::new(&Aes256Key::generate()?);
    /// let wrapped = kek.wrap(&[9; 32])?;
    /// // The unwrapped bytes are in a `Zeroizing<Vec<u8>>`; no copy of
    /// // them lands on the stack on the way into the key.
    /// let key = Aes256Key::try_from_slice(&kek.unwrap(&wrapped)?)?;
    /// assert_eq!(key.expose_secret(), &[9; 32]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`InvalidKeyLength`] when `bytes` is not 32 bytes long.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, InvalidKeyLength> {
        if bytes.len() != KEY_LEN {
            return Err(InvalidKeyLength { len: bytes.len() });
        }
        let mut key = Self::zeroed();
        key.0.copy_from_slice(bytes);
        Ok(key)
    }

    /// Draws a fresh key from the operating system's random generator.
    ///
    /// # Errors
    /// [`RandomnessUnavailable`] when the operating system's generator fails
    /// (for example, a sandbox that forbids `getrandom(2)`).
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        use rand_core::TryRng;
        let mut key = Self::zeroed();
        getrandom::SysRng
            .try_fill_bytes(&mut key.0[..])
            .map_err(|_| RandomnessUnavailable)?;
        Ok(key)
    }

    /// Draws a fresh key from the given cryptographic random generator.
    pub fn generate_with<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut key = Self::zeroed();
        rng.fill_bytes(&mut key.0[..]);
        key
    }

    /// The raw key bytes, for handing to another cipher implementation.
    ///
    /// Do not copy them anywhere that outlives the key.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl Drop for Aes256Key {
    fn drop(&mut self) {
        let bytes: &mut [u8; KEY_LEN] = &mut self.0;
        bytes.zeroize();
    }
}

impl ZeroizeOnDrop for Aes256Key {}

impl fmt::Debug for Aes256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Aes256Key(..)")
    }
}

/// A key was given with the wrong length; AES-256 keys are 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidKeyLength {
    /// The length that was given.
    pub len: usize,
}

impl fmt::Display for InvalidKeyLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an AES-256 key is 32 bytes, but {} bytes were given; pass the full key",
            self.len
        )
    }
}

impl std::error::Error for InvalidKeyLength {}

/// The operating system's random generator could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomnessUnavailable;

impl fmt::Display for RandomnessUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the operating system's random generator failed; no key was made, check that getrandom(2) is allowed",
        )
    }
}

impl std::error::Error for RandomnessUnavailable {}
