//! The streaming encryptor.

use std::io::{self, Write};
use std::sync::Arc;

use strongroom_aes::TAG_LEN;

use crate::buffer::SecretBuf;
use crate::format::Header;
use crate::keys::{HeaderOptions, SealingHeader, StreamKeys};
use crate::stream::{MAX_CHUNK_INDEX, Workers};
use crate::{Dek, Error, KeyWrapper};

/// Encrypts a stream: `Write` plaintext in, call [`finish`](Self::finish).
///
/// Small writes are gathered into a batch of `2 x threads` chunks; when
/// the batch is full and more data arrives, its chunks are sealed in
/// parallel and written out. A write of more than a chunk is sealed
/// straight from the caller's data (every whole chunk that more data
/// follows), in batches that alternate between two buffers so that writing
/// one batch out overlaps with sealing the next. Memory stays at most two
/// batches, whatever the stream's size. The bytes written do not depend on
/// the number of threads or on how the data was split into writes.
///
/// Without [`finish`](Self::finish) the stream has no final chunk and will
/// not decrypt: dropping an unfinished encryptor leaves a truncated stream,
/// never one that reads as complete.
///
/// `Write` costs one copy of every byte: the writer copies what it is
/// handed. A program whose data already sits in buffers of its own can
/// stream without that copy through [`BodySealer`](crate::BodySealer).
pub struct Encryptor<W: Write> {
    out: Option<W>,
    keys: Arc<StreamKeys>,
    header: Option<Header>,
    workers: Workers,
    /// A batch of chunks at stride `chunk + 16`: plaintext goes in at its
    /// chunk's offset, leaving room for each tag.
    buf: SecretBuf,
    /// Plaintext bytes in `buf`.
    filled: usize,
    /// The second buffer of the direct path (see `write_direct`), which
    /// alternates with `buf`: one is sealed into while the other is
    /// written out.
    spare: SecretBuf,
    /// Index of the first chunk in `buf`.
    next_index: u64,
    failed: Option<Error>,
}

impl<W: Write> Encryptor<W> {
    /// Starts a new stream with a fresh DEK wrapped under each of
    /// `wrappers`, writes its header to `out`, and returns the encryptor for
    /// the body. Uses all cores.
    ///
    /// # Errors
    /// As [`Header::create`], and [`Error::Io`] when writing the header
    /// fails.
    pub fn new(
        out: W,
        wrappers: &[&dyn KeyWrapper],
        options: &HeaderOptions,
    ) -> Result<Self, Error> {
        let dek = Dek::generate().map_err(|_| Error::RandomnessUnavailable)?;
        let sealing = Header::create(dek, wrappers, options)?;
        let header = sealing.header().clone();
        let mut out = out;
        out.write_all(header.as_bytes())?;
        let mut encryptor = Self::body(out, sealing)?;
        encryptor.header = Some(header);
        Ok(encryptor)
    }

    /// An encryptor for the body only, for a header stored separately (so
    /// that rewrapping never touches the body). Uses all cores.
    ///
    /// It takes the [`SealingHeader`] by value: one header seals one body,
    /// so its nonces are never used twice. Store the header's bytes first.
    ///
    /// # Errors
    /// None yet; the `Result` leaves room for checks on the header.
    pub fn body(out: W, header: SealingHeader) -> Result<Self, Error> {
        let workers = Workers::new(None)?;
        Ok(Self {
            out: Some(out),
            keys: header.into_opened().keys,
            header: None,
            workers,
            buf: SecretBuf::default(),
            filled: 0,
            spare: SecretBuf::default(),
            next_index: 0,
            failed: None,
        })
    }

    /// Seals chunks on `threads` threads (1 = this thread only). Call before
    /// the first write.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 or more than 256 threads, or after
    /// data was written.
    pub fn threads(mut self, threads: usize) -> Result<Self, Error> {
        if self.filled > 0 || self.next_index > 0 {
            return Err(Error::InvalidArgument {
                reason: "set the number of threads before writing",
            });
        }
        self.workers = Workers::new(Some(threads))?;
        Ok(self)
    }

    /// The header written in front of the body by [`Encryptor::new`].
    #[must_use]
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    fn chunk(&self) -> usize {
        self.keys.chunk_size()
    }

    fn capacity(&self) -> usize {
        self.workers.batch_chunks() * self.chunk()
    }

    /// Seals the buffered chunks (the stream's end if `last`) and writes
    /// them out.
    fn flush_batch(&mut self, last: bool) -> Result<(), Error> {
        let chunk = self.chunk();
        let stride = chunk + TAG_LEN;
        let count = self.filled.div_ceil(chunk).max(1);
        if self.next_index + count as u64 - 1 > MAX_CHUNK_INDEX {
            return Err(Error::TooLarge);
        }
        let len = (count - 1) * stride + (self.filled - (count - 1) * chunk) + TAG_LEN;
        self.buf.resize(self.buf.len().max(len));
        self.workers.process_batch(
            &self.keys,
            self.next_index,
            &mut self.buf[..len],
            last,
            true,
        )?;
        let out = self.out.as_mut().ok_or(Error::InvalidArgument {
            reason: "the encryptor was already finished",
        })?;
        out.write_all(&self.buf[..len])?;
        self.next_index += count as u64;
        self.filled = 0;
        Ok(())
    }

    fn write_inner(&mut self, mut data: &[u8]) -> Result<usize, Error> {
        let total = data.len();
        let chunk = self.chunk();
        let stride = chunk + TAG_LEN;
        while !data.is_empty() {
            if self.filled.is_multiple_of(chunk) && data.len() > chunk {
                // Whole chunks are buffered and more than a chunk follows:
                // seal the buffered ones, then the rest straight from
                // `data`, without staging it.
                if self.filled > 0 {
                    self.flush_batch(false)?;
                }
                data = &data[self.write_direct(data)?..];
                continue;
            }
            if self.filled == self.capacity() {
                // More data follows, so none of these chunks is the last.
                self.flush_batch(false)?;
            }
            let index = self.filled / chunk;
            let offset = self.filled % chunk;
            let n = data.len().min(chunk - offset);
            let at = index * stride + offset;
            // The batch buffer grows a chunk at a time, so a small stream
            // never allocates a whole batch.
            if self.buf.len() < (index + 1) * stride {
                self.buf.resize((index + 1) * stride);
            }
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
        }
        Ok(total)
    }

    /// Seals every whole chunk of `data` that has at least one byte after
    /// it (so is not the stream's last) straight from `data`, and writes
    /// them out; returns the bytes consumed. Batches of two chunks per
    /// thread alternate between two buffers, so that writing one batch to
    /// the output overlaps with sealing the next. Needs no staged
    /// plaintext (`filled == 0`).
    fn write_direct(&mut self, data: &[u8]) -> Result<usize, Error> {
        debug_assert_eq!(self.filled, 0);
        let chunk = self.chunk();
        let stride = chunk + TAG_LEN;
        let whole = (data.len() - 1) / chunk;
        if self.next_index + whole as u64 > MAX_CHUNK_INDEX {
            return Err(Error::TooLarge);
        }
        // Two chunks per thread, as the staged path: one per thread kept
        // 2 threads waiting on each other more (measured: see the
        // CHANGELOG's "Measured" section).
        let per = self.workers.batch_chunks();
        let out = self.out.as_mut().ok_or(Error::InvalidArgument {
            reason: "the encryptor was already finished",
        })?;
        let mut bufs = [
            core::mem::take(&mut self.buf),
            core::mem::take(&mut self.spare),
        ];
        let keys = &*self.keys;
        let mut pending = 0;
        let mut result = Ok(());
        for (k, first) in (0..whole).step_by(per).enumerate() {
            let n = per.min(whole - first);
            let input = &data[first * chunk..(first + n) * chunk];
            let [a, b] = &mut bufs;
            let (cur, prev) = if k % 2 == 0 { (a, &*b) } else { (b, &*a) };
            if cur.len() < n * stride {
                cur.resize(n * stride);
            }
            let index = self.next_index + first as u64;
            let sealed = &mut cur[..n * stride];
            let (sealing, writing) = self.workers.seal_sharing(keys, index, input, sealed, || {
                out.write_all(&prev[..pending])
            });
            if let Err(e) = writing.map_err(Error::Io).and(sealing) {
                result = Err(e);
                pending = 0;
                break;
            }
            pending = n * stride;
        }
        if result.is_ok() && pending > 0 {
            // The last batch sealed is in the buffer `whole` batches in.
            let last = whole.div_ceil(per) - 1;
            result = out.write_all(&bufs[last % 2][..pending]).map_err(Error::Io);
        }
        let [a, b] = bufs;
        self.buf = a;
        self.spare = b;
        result?;
        self.next_index += whole as u64;
        Ok(whole * chunk)
    }

    /// Seals the final chunk, flushes, and returns the output.
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails, [`Error::TooLarge`] past 2^32
    /// chunks, or the error that made an earlier write fail.
    pub fn finish(mut self) -> Result<W, Error> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.flush_batch(true)?;
        let mut out = self.out.take().ok_or(Error::InvalidArgument {
            reason: "the encryptor was already finished",
        })?;
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(e.repeat().into());
        }
        self.write_inner(data).map_err(|e| {
            let err = e.repeat();
            self.failed = Some(e);
            err.into()
        })
    }

    /// Flushes the inner writer. Buffered plaintext stays buffered: a chunk
    /// can be sealed only once it is known whether it is the last one.
    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> core::fmt::Debug for Encryptor<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Encryptor")
            .field("chunk_size", &self.chunk())
            .field("batch_chunks", &self.workers.batch_chunks())
            .field("chunks_written", &self.next_index)
            .finish_non_exhaustive()
    }
}
