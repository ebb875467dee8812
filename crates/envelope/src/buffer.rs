//! Buffers that hold plaintext, or ciphertext being opened (whose bytes a
//! one-pass open overwrites with keystream-revealing data before the tag
//! check and restores after): zeroized when dropped and when they grow.

use core::ops::{Deref, DerefMut};

use zeroize::Zeroize;

/// A byte buffer that never leaves its contents behind in freed memory.
///
/// `Vec::resize` past the capacity moves the bytes to a new allocation and
/// frees the old one as it is; here the old allocation is zeroized first,
/// and the whole capacity is zeroized on drop.
#[derive(Default)]
pub(crate) struct SecretBuf(Vec<u8>);

impl SecretBuf {
    /// Sets the length to `len`, new bytes zero. Growing past the capacity
    /// moves the contents to a new allocation and zeroizes the old one.
    pub(crate) fn resize(&mut self, len: usize) {
        if len > self.0.capacity() {
            let mut grown = Vec::with_capacity(len);
            grown.extend_from_slice(&self.0);
            core::mem::swap(&mut self.0, &mut grown);
            grown.zeroize();
        }
        self.0.resize(len, 0);
    }

    /// Zeroizes the contents and the spare capacity, and empties the buffer.
    pub(crate) fn clear(&mut self) {
        self.0.zeroize();
    }
}

impl Deref for SecretBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for SecretBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Drop for SecretBuf {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::SecretBuf;

    #[test]
    fn growth_keeps_the_contents_and_zeroes_new_bytes() {
        let mut buf = SecretBuf::default();
        buf.resize(3);
        buf.copy_from_slice(b"abc");
        buf.resize(4096);
        assert_eq!(&buf[..3], b"abc");
        assert!(buf[3..].iter().all(|&b| b == 0));
        buf.resize(2);
        assert_eq!(&buf[..], b"ab");
        buf.clear();
        assert!(buf.is_empty());
    }
}
