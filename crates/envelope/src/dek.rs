//! The data-encryption key.

use core::fmt;

use strongroom_aes::{Aes256Key, RandomnessUnavailable};

/// A data-encryption key: the AES-256 key that encrypts one recovery point
/// (DESIGN.md R2).
///
/// Fresh from the operating system's generator, zeroized on drop, never
/// printed, not `Clone`. It leaves this type only through a [`KeyWrapper`],
/// wrapped.
///
/// [`KeyWrapper`]: crate::KeyWrapper
pub struct Dek(Aes256Key);

impl Dek {
    /// Draws a fresh DEK from the operating system's random generator.
    ///
    /// # Errors
    /// [`RandomnessUnavailable`] when the generator cannot be read.
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        Aes256Key::generate().map(Self)
    }

    /// Wraps existing key bytes, e.g. as unwrapped by a key vault.
    #[must_use]
    pub fn from_key(key: Aes256Key) -> Self {
        Self(key)
    }

    /// The key, for a [`KeyWrapper`](crate::KeyWrapper) to wrap.
    #[must_use]
    pub fn key(&self) -> &Aes256Key {
        &self.0
    }
}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(..)")
    }
}
