//! A body streamed through buffers the caller owns: each call seals (or
//! opens) whole chunks from one slice into another, in parallel, with no
//! staging copy (docs/FORMAT.md section 4, the same bytes as every other
//! path).
//!
//! [`Encryptor`](crate::Encryptor) and [`Decryptor`](crate::Decryptor) sit
//! behind `std::io::Write` and `Read`, and those traits cost one copy of
//! every byte: the caller's writer copies what the encryptor hands it, the
//! caller's reader copies into the decryptor's buffer. A program that holds
//! its data in buffers of its own (blocks read from a disk, parts of a
//! multipart upload) can skip that copy here, and still stream: memory is
//! whatever the caller's parts take, whatever the body's size.
//!
//! Those buffers must be private to the process. Opening a chunk in one pass
//! writes keystream-derived bytes into the output before the tag is checked,
//! and on failure puts the ciphertext back or zeroes the part: a process
//! sharing the memory (a shared memory map of a file, say) could read the
//! bytes in between. Map files privately, or read them into owned buffers.

use std::sync::Arc;

use strongroom_aes::TAG_LEN;
use zeroize::Zeroize;

use crate::Error;
use crate::keys::{OpenedHeader, SealingHeader, StreamKeys};
use crate::slices;
use crate::stream::{MAX_CHUNK_INDEX, Workers};

/// Seals a body in parts, each a whole number of chunks, from the caller's
/// plaintext slices into the caller's body slices
/// ([`SealingHeader::body_sealer`], which it consumes: one header, one
/// body).
///
/// Each [`seal`](Self::seal) call writes `len / chunk` sealed chunks,
/// [`finish`](Self::finish) the rest of the stream and its final chunk.
/// Parts may differ in size; the body is the concatenation of the sealed
/// parts, byte for byte what [`Encryptor`](crate::Encryptor) writes for the
/// same plaintext. Without `finish` the body has no final chunk and will
/// not decrypt.
///
/// The format has one encoding per plaintext (docs/FORMAT.md section 4):
/// the final chunk is empty only when the whole body is. So `finish` needs
/// the stream's last plaintext byte: keep the last part back until you know
/// no more data follows, and pass it to `finish` rather than `seal`.
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
/// let stored_header = sealing.header().as_bytes().to_vec();
/// let chunk = sealing.chunk_size();
///
/// // Two parts of 4 chunks each (a disk read, say), then the tail.
/// let data = vec![7u8; 8 * chunk + 1000];
/// let mut sealer = sealing.body_sealer(2)?;
/// let mut body = Vec::new();
/// let mut part = vec![0u8; sealer.sealed_len(4 * chunk)?];
/// for plain in data[..8 * chunk].chunks(4 * chunk) {
///     sealer.seal(plain, &mut part)?;
///     body.extend_from_slice(&part); // or upload it
/// }
/// let tail = &data[8 * chunk..];
/// let mut last = vec![0u8; sealer.final_len(tail.len())?];
/// sealer.finish(tail, &mut last)?;
/// body.extend_from_slice(&last);
///
/// let opened = Header::from_bytes(&stored_header)?.open(&[&kek])?;
/// let mut plain = vec![0u8; data.len()];
/// opened.decrypt_slice(&body, &mut plain, 2)?;
/// assert_eq!(plain, data);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BodySealer {
    keys: Arc<StreamKeys>,
    workers: Workers,
    next_index: u64,
    finished: bool,
}

/// Opens a body in parts, each a whole number of sealed chunks, from the
/// caller's body slices into the caller's plaintext slices
/// ([`OpenedHeader::body_opener`]).
///
/// Every chunk of a part is verified before any of the part's plaintext is
/// released: if one fails, the part's whole plaintext slice is zeroed and
/// the opener refuses every later part. Only [`finish`](Self::finish),
/// which opens the part holding the final chunk, proves that the body is
/// complete: a body cut after a whole part opens part by part, and then
/// fails at `finish` or never reaches it.
///
/// ```
/// # use strongroom_aes::Aes256Key;
/// # use strongroom_envelope::{AesKeyWrapper, Dek, Header, HeaderOptions, KeyRef, WrapAlgorithm};
/// # let kek = AesKeyWrapper::new(
/// #     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
/// #     &Aes256Key::generate()?,
/// # );
/// # let sealing = Header::create(Dek::generate()?, &[&kek], &HeaderOptions::default())?;
/// # let stored_header = sealing.header().as_bytes().to_vec();
/// # let data = vec![7u8; 5 * sealing.chunk_size() + 3];
/// # let mut body = vec![0u8; sealing.body_len(data.len() as u64)? as usize];
/// # sealing.encrypt_slice(&data, &mut body, 2)?;
/// // `body` is 5 chunks and 3 bytes, sealed under `stored_header`.
/// let opened = Header::from_bytes(&stored_header)?.open(&[&kek])?;
/// let mut opener = opened.body_opener(2)?;
/// let stride = opened.chunk_size() + 16;
/// let (first, rest) = body.split_at(4 * stride);
/// let mut plain = vec![0u8; opener.opened_len(first.len())?];
/// opener.open(first, &mut plain)?;
/// let mut tail = vec![0u8; opener.final_opened_len(rest.len())?];
/// opener.finish(rest, &mut tail)?;
/// plain.extend_from_slice(&tail);
/// assert_eq!(plain, data);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BodyOpener {
    keys: Arc<StreamKeys>,
    workers: Workers,
    next_index: u64,
    failed: bool,
    finished: bool,
}

impl SealingHeader {
    /// The [`BodySealer`] for this header's one body, sealing on `threads`
    /// threads. It takes the header by value: one header seals one body.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `threads` is not 1 to 256 (the
    /// header is spent then: make a new one).
    pub fn body_sealer(self, threads: usize) -> Result<BodySealer, Error> {
        Ok(BodySealer {
            workers: Workers::new(Some(threads))?,
            keys: self.into_opened().keys,
            next_index: 0,
            finished: false,
        })
    }
}

impl OpenedHeader {
    /// A [`BodyOpener`] for this header's body, opening on `threads`
    /// threads.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `threads` is not 1 to 256.
    pub fn body_opener(&self, threads: usize) -> Result<BodyOpener, Error> {
        Ok(BodyOpener {
            keys: Arc::clone(&self.keys),
            workers: Workers::new(Some(threads))?,
            next_index: 0,
            failed: false,
            finished: false,
        })
    }
}

/// Refuses a call after `finish` succeeded.
fn check_open(finished: bool) -> Result<(), Error> {
    if finished {
        return Err(Error::InvalidArgument {
            reason: "the body was already finished",
        });
    }
    Ok(())
}

/// Checks that chunks `first .. first + count` exist (at most 2^32 in a
/// stream).
fn check_indices(first: u64, count: u64) -> Result<(), Error> {
    match first.checked_add(count) {
        Some(end) if count == 0 || end - 1 <= MAX_CHUNK_INDEX => Ok(()),
        _ => Err(Error::TooLarge),
    }
}

impl BodySealer {
    /// The sealed length of a part of `plaintext_len` bytes passed to
    /// [`seal`](Self::seal): 16 bytes more per chunk.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `plaintext_len` is not a whole
    /// number of chunks.
    pub fn sealed_len(&self, plaintext_len: usize) -> Result<usize, Error> {
        let chunk = self.keys.chunk_size();
        if !plaintext_len.is_multiple_of(chunk) {
            return Err(Error::InvalidArgument {
                reason: "a part before the last must be a whole number of chunks",
            });
        }
        Ok(plaintext_len + plaintext_len / chunk * TAG_LEN)
    }

    /// The sealed length of the last part, of `plaintext_len` bytes, passed
    /// to [`finish`](Self::finish): 16 bytes more per chunk, and at least
    /// one chunk.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty last part after sealed
    /// parts: the final chunk must hold the stream's last byte (see the
    /// type's docs). [`Error::TooLarge`] past 2^32 chunks.
    pub fn final_len(&self, plaintext_len: usize) -> Result<usize, Error> {
        if plaintext_len == 0 && self.next_index > 0 {
            return Err(Error::InvalidArgument {
                reason: "the last part must hold the stream's last byte: pass the last whole chunks to finish, not seal",
            });
        }
        let len = slices::body_len(&self.keys, plaintext_len as u64)?;
        usize::try_from(len).map_err(|_| Error::TooLarge)
    }

    /// Seals `plaintext`, a whole number of chunks that are not the
    /// stream's last, into `body`, exactly [`sealed_len`](Self::sealed_len)
    /// bytes.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for the wrong lengths; [`Error::TooLarge`]
    /// past 2^32 chunks. Nothing is sealed then, and the sealer goes on as
    /// before.
    pub fn seal(&mut self, plaintext: &[u8], body: &mut [u8]) -> Result<(), Error> {
        check_open(self.finished)?;
        if body.len() != self.sealed_len(plaintext.len())? {
            return Err(Error::InvalidArgument {
                reason: "the body part must be sealed_len(plaintext length) bytes",
            });
        }
        if plaintext.is_empty() {
            return Ok(());
        }
        let count = (plaintext.len() / self.keys.chunk_size()) as u64;
        check_indices(self.next_index, count)?;
        let keys = &*self.keys;
        let first = self.next_index;
        self.workers
            .run(|w| w.seal_into(keys, first, plaintext, body, false))?;
        self.next_index += count;
        Ok(())
    }

    /// Seals the stream's last part into `body`, exactly
    /// [`final_len`](Self::final_len) bytes: its last chunk is the stream's
    /// final chunk. `plaintext` is of any length, but empty only when the
    /// whole body is. After it, the sealer refuses every call.
    ///
    /// # Errors
    /// As [`seal`](Self::seal): on an error nothing is sealed and the
    /// sealer goes on as before (call `finish` again with the right
    /// lengths). [`Error::InvalidArgument`] after `finish` succeeded.
    pub fn finish(&mut self, plaintext: &[u8], body: &mut [u8]) -> Result<(), Error> {
        check_open(self.finished)?;
        if body.len() != self.final_len(plaintext.len())? {
            return Err(Error::InvalidArgument {
                reason: "the last body part must be final_len(plaintext length) bytes",
            });
        }
        let count = plaintext.len().div_ceil(self.keys.chunk_size()).max(1) as u64;
        check_indices(self.next_index, count)?;
        let keys = &*self.keys;
        let first = self.next_index;
        self.workers
            .run(|w| w.seal_into(keys, first, plaintext, body, true))?;
        self.next_index += count;
        self.finished = true;
        Ok(())
    }
}

impl BodyOpener {
    /// The plaintext length of a part of `body_len` bytes passed to
    /// [`open`](Self::open).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `body_len` is not a whole number of
    /// sealed chunks.
    pub fn opened_len(&self, body_len: usize) -> Result<usize, Error> {
        let stride = self.keys.chunk_size() + TAG_LEN;
        if !body_len.is_multiple_of(stride) {
            return Err(Error::InvalidArgument {
                reason: "a part before the last must be a whole number of sealed chunks",
            });
        }
        Ok(body_len - body_len / stride * TAG_LEN)
    }

    /// The plaintext length of the last part, of `body_len` bytes, passed
    /// to [`finish`](Self::finish).
    ///
    /// # Errors
    /// [`Error::Truncated`] for a length no body can end with (its final
    /// chunk shorter than a tag); [`Error::TooLarge`] past 2^32 chunks.
    pub fn final_opened_len(&self, body_len: usize) -> Result<usize, Error> {
        let len = slices::plaintext_len(&self.keys, body_len as u64)?;
        usize::try_from(len).map_err(|_| Error::TooLarge)
    }

    fn open_part(&mut self, body: &[u8], plaintext: &mut [u8], ends: bool) -> Result<(), Error> {
        check_open(self.finished)?;
        if self.failed {
            return Err(Error::InvalidArgument {
                reason: "an earlier part failed to open; the body cannot be trusted",
            });
        }
        let stride = self.keys.chunk_size() + TAG_LEN;
        let count = body.len().div_ceil(stride).max(1) as u64;
        check_indices(self.next_index, count)?;
        let keys = &*self.keys;
        let first = self.next_index;
        let result = self
            .workers
            .run(|w| w.open_into(keys, first, body, plaintext, ends));
        if result.is_err() {
            // Chunks other than the failed one may have been opened:
            // nothing of the part is released.
            plaintext.zeroize();
            self.failed = true;
        } else {
            self.next_index += count;
            self.finished = ends;
        }
        result
    }

    /// Opens `body`, a whole number of sealed chunks that are not the
    /// stream's last, into `plaintext`, exactly
    /// [`opened_len`](Self::opened_len) bytes.
    ///
    /// # Errors
    /// [`Error::DecryptionFailed`] when a chunk does not verify (changed,
    /// moved, from another stream, or the stream's final chunk, which only
    /// [`finish`](Self::finish) opens): `plaintext` is zeroed and every
    /// later call fails. [`Error::InvalidArgument`] for the wrong lengths
    /// (nothing is opened).
    pub fn open(&mut self, body: &[u8], plaintext: &mut [u8]) -> Result<(), Error> {
        if plaintext.len() != self.opened_len(body.len())? {
            return Err(Error::InvalidArgument {
                reason: "the plaintext part must be opened_len(body part length) bytes",
            });
        }
        if body.is_empty() {
            return Ok(());
        }
        self.open_part(body, plaintext, false)
    }

    /// Opens the body's last part, which ends with its final chunk, into
    /// `plaintext`, exactly [`final_opened_len`](Self::final_opened_len)
    /// bytes. Success proves the whole body was there, in order; after it,
    /// the opener refuses every call.
    ///
    /// # Errors
    /// As [`open`](Self::open); [`Error::Truncated`] for a length no body
    /// can end with. A length error opens nothing and changes nothing.
    pub fn finish(&mut self, body: &[u8], plaintext: &mut [u8]) -> Result<(), Error> {
        if plaintext.len() != self.final_opened_len(body.len())? {
            return Err(Error::InvalidArgument {
                reason: "the last plaintext part must be final_opened_len(body part length) bytes",
            });
        }
        self.open_part(body, plaintext, true)
    }
}

impl core::fmt::Debug for BodySealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BodySealer")
            .field("chunk_size", &self.keys.chunk_size())
            .field("threads", &self.workers.threads())
            .field("chunks_sealed", &self.next_index)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for BodyOpener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BodyOpener")
            .field("chunk_size", &self.keys.chunk_size())
            .field("threads", &self.workers.threads())
            .field("chunks_opened", &self.next_index)
            .field("failed", &self.failed)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
