//! Whole bodies between slices: the zero-copy path for data already in
//! memory (docs/FORMAT.md section 4, the same bytes as the streaming path).

use strongroom_aes::TAG_LEN;
use zeroize::Zeroize;

use crate::Error;
use crate::keys::{OpenedHeader, SealingHeader, StreamKeys};
use crate::stream::{MAX_CHUNK_INDEX, Workers};

/// Chunks in a body of `plaintext_len` bytes: at least one.
fn chunk_count(keys: &StreamKeys, plaintext_len: u64) -> Result<u64, Error> {
    let chunks = plaintext_len.div_ceil(keys.chunk_size() as u64).max(1);
    if chunks - 1 > MAX_CHUNK_INDEX {
        return Err(Error::TooLarge);
    }
    Ok(chunks)
}

/// The length of the body (or of its final part, from the chunk where it
/// starts) that encrypts `plaintext_len` bytes.
pub(crate) fn body_len(keys: &StreamKeys, plaintext_len: u64) -> Result<u64, Error> {
    let chunks = chunk_count(keys, plaintext_len)?;
    Ok(plaintext_len + chunks * TAG_LEN as u64)
}

/// The plaintext length of a body (or of its final part) of `body_len`
/// bytes.
pub(crate) fn plaintext_len(keys: &StreamKeys, body_len: u64) -> Result<u64, Error> {
    let stride = (keys.chunk_size() + TAG_LEN) as u64;
    let chunks = body_len.div_ceil(stride);
    let last = body_len - chunks.saturating_sub(1) * stride;
    if chunks == 0 || last < TAG_LEN as u64 {
        return Err(Error::Truncated);
    }
    if chunks - 1 > MAX_CHUNK_INDEX {
        return Err(Error::TooLarge);
    }
    Ok(body_len - chunks * TAG_LEN as u64)
}

impl SealingHeader {
    /// The length of the body that encrypts `plaintext_len` bytes: the
    /// plaintext plus 16 bytes per chunk.
    ///
    /// # Errors
    /// [`Error::TooLarge`] past 2^32 chunks.
    pub fn body_len(&self, plaintext_len: u64) -> Result<u64, Error> {
        body_len(&self.opened().keys, plaintext_len)
    }

    /// Encrypts all of `plaintext` into `body`, which must be exactly
    /// [`body_len`](Self::body_len) bytes, on `threads` threads, and
    /// returns the header opened, for reading the body back. The header is
    /// consumed: one header seals one body.
    ///
    /// For data already in memory this is the fastest path: each chunk is
    /// read once from `plaintext` and written once to `body`, in parallel,
    /// with no staging buffer. The bytes are the same as
    /// [`Encryptor`](crate::Encryptor) writes.
    ///
    /// ```
    /// use strongroom_aes::Aes256Key;
    /// use strongroom_envelope::{AesKeyWrapper, Dek, Header, HeaderOptions, KeyRef, WrapAlgorithm};
    ///
    /// let kek = AesKeyWrapper::new(
    ///     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
    ///     &Aes256Key::generate()?,
    /// );
    /// let sealing = Header::create(Dek::generate()?, &[&kek], &HeaderOptions::default())?;
    /// let data = vec![42u8; 3_000_000];
    /// let mut body = vec![0u8; sealing.body_len(data.len() as u64)? as usize];
    /// let opened = sealing.encrypt_slice(&data, &mut body, 2)?;
    ///
    /// let mut plain = vec![0u8; opened.plaintext_len(body.len() as u64)? as usize];
    /// opened.decrypt_slice(&body, &mut plain, 2)?;
    /// assert_eq!(plain, data);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `body` has the wrong length or
    /// `threads` is not 1 to 256; [`Error::TooLarge`]. Nothing is sealed
    /// then, but the header is spent: make a new one.
    pub fn encrypt_slice(
        self,
        plaintext: &[u8],
        body: &mut [u8],
        threads: usize,
    ) -> Result<OpenedHeader, Error> {
        if body.len() as u64 != self.body_len(plaintext.len() as u64)? {
            return Err(Error::InvalidArgument {
                reason: "the body buffer must be body_len(plaintext length) bytes",
            });
        }
        let mut workers = Workers::new(Some(threads))?;
        let opened = self.into_opened();
        let keys = &*opened.keys;
        workers.run(|w| w.seal_into(keys, 0, plaintext, body, true))?;
        Ok(opened)
    }
}

impl OpenedHeader {
    /// The plaintext length of a body of `body_len` bytes.
    ///
    /// # Errors
    /// [`Error::Truncated`] for a length no body can have.
    pub fn plaintext_len(&self, body_len: u64) -> Result<u64, Error> {
        plaintext_len(&self.keys, body_len)
    }

    /// Decrypts a whole `body` into `plaintext`, which must be exactly
    /// [`plaintext_len`](Self::plaintext_len) bytes, on `threads` threads.
    ///
    /// Every chunk's tag is checked before its plaintext is written; if any
    /// chunk fails, all of `plaintext` is zeroed and the error returned, so
    /// nothing of a failed body is released.
    ///
    /// # Errors
    /// [`Error::DecryptionFailed`] when a chunk does not verify (changed,
    /// moved, from another stream, or the body was cut at a chunk
    /// boundary); [`Error::Truncated`]; [`Error::InvalidArgument`] when
    /// `plaintext` has the wrong length or `threads` is not 1 to 256.
    pub fn decrypt_slice(
        &self,
        body: &[u8],
        plaintext: &mut [u8],
        threads: usize,
    ) -> Result<(), Error> {
        let keys = &*self.keys;
        if plaintext.len() as u64 != self.plaintext_len(body.len() as u64)? {
            return Err(Error::InvalidArgument {
                reason: "the plaintext buffer must be plaintext_len(body length) bytes",
            });
        }
        let mut workers = Workers::new(Some(threads))?;
        let result = workers.run(|w| w.open_into(keys, 0, body, plaintext, true));
        if result.is_err() {
            plaintext.zeroize();
        }
        result
    }
}
