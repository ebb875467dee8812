//! STREAM chunks (docs/FORMAT.md section 4): nonces, sealing and opening
//! one chunk, and whole batches of chunks in parallel.

use rayon::prelude::*;
use strongroom_aes::TAG_LEN;

use crate::Error;
use crate::keys::{PREFIX_LEN, StreamKeys};

/// The largest chunk index: a stream holds at most 2^32 chunks.
pub(crate) const MAX_CHUNK_INDEX: u64 = u32::MAX as u64;

/// A chunk's nonce: `prefix (7) || index (u32, big-endian) || last (1)`.
///
/// Private, and built only from a checked index: callers never supply
/// nonces, and no two chunks of a stream share one.
struct ChunkNonce([u8; 12]);

impl ChunkNonce {
    fn new(prefix: &[u8; PREFIX_LEN], index: u64, last: bool) -> Result<Self, Error> {
        let index = u32::try_from(index).map_err(|_| Error::TooLarge)?;
        let mut nonce = [0u8; 12];
        nonce[..PREFIX_LEN].copy_from_slice(prefix);
        nonce[PREFIX_LEN..11].copy_from_slice(&index.to_be_bytes());
        nonce[11] = u8::from(last);
        Ok(Self(nonce))
    }
}

/// The nonce of chunk `index` of a stream with `keys`.
pub(crate) fn nonce(keys: &StreamKeys, index: u64, last: bool) -> Result<[u8; 12], Error> {
    ChunkNonce::new(&keys.prefix, index, last).map(|n| n.0)
}

/// Seals one chunk in place: `chunk` is plaintext followed by 16 bytes of
/// room for the tag.
fn seal_chunk(keys: &StreamKeys, index: u64, last: bool, chunk: &mut [u8]) -> Result<(), Error> {
    let nonce = ChunkNonce::new(&keys.prefix, index, last)?;
    let (plain, tag) = chunk.split_at_mut(chunk.len() - TAG_LEN);
    let t = keys
        .gcm
        .seal_in_place_detached(&nonce.0, &keys.aad, plain)
        .map_err(|_| Error::TooLarge)?;
    tag.copy_from_slice(&t);
    Ok(())
}

/// Opens one chunk in place: `chunk` is ciphertext followed by its tag. On
/// failure the ciphertext is left as it was.
pub(crate) fn open_chunk(
    keys: &StreamKeys,
    index: u64,
    last: bool,
    chunk: &mut [u8],
) -> Result<(), Error> {
    if chunk.len() < TAG_LEN {
        return Err(Error::Truncated);
    }
    let nonce = ChunkNonce::new(&keys.prefix, index, last)?;
    let (body, tag) = chunk.split_at_mut(chunk.len() - TAG_LEN);
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(tag);
    keys.gcm
        .open_in_place_detached(&nonce.0, &keys.aad, body, &t)
        .map_err(|_| Error::DecryptionFailed)
}

/// Most threads one encryptor or decryptor may use: memory is
/// `2 x threads x (chunk + 16)` bytes, so this also bounds memory.
pub(crate) const MAX_THREADS: usize = 256;

/// The threads that seal or open a batch's chunks.
///
/// The pool is started on the first batch with more than one chunk, so a
/// small stream, or a single-threaded one, never starts threads at all.
pub(crate) struct Workers {
    threads: usize,
    pool: Option<rayon::ThreadPool>,
}

impl Workers {
    /// `threads` workers (1 = the calling thread only); all cores when
    /// `None`.
    pub(crate) fn new(threads: Option<usize>) -> Result<Self, Error> {
        let threads = threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
        });
        if !(1..=MAX_THREADS).contains(&threads) {
            return Err(Error::InvalidArgument {
                reason: "use 1 to 256 threads",
            });
        }
        Ok(Self {
            threads,
            pool: None,
        })
    }

    /// Chunks per batch: two per thread, so a slow chunk does not idle the
    /// others, while memory stays at `2 x threads x stride`.
    pub(crate) fn batch_chunks(&self) -> usize {
        self.threads * 2
    }

    /// Seals or opens consecutive chunks laid out at `stride = chunk + 16`
    /// bytes in `buf`, the first being chunk `first`; the last chunk of
    /// `buf` carries the last-chunk flag when `ends_stream`. The bytes
    /// produced do not depend on the number of threads.
    pub(crate) fn process_batch(
        &mut self,
        keys: &StreamKeys,
        first: u64,
        buf: &mut [u8],
        ends_stream: bool,
        seal: bool,
    ) -> Result<(), Error> {
        let stride = keys.chunk_size() + TAG_LEN;
        let count = buf.len().div_ceil(stride);
        let one = |(i, chunk): (usize, &mut [u8])| {
            let index = first + i as u64;
            let last = ends_stream && i + 1 == count;
            if seal {
                seal_chunk(keys, index, last, chunk)
            } else {
                open_chunk(keys, index, last, chunk)
            }
        };
        if self.threads == 1 || count == 1 {
            return buf.chunks_mut(stride).enumerate().try_for_each(one);
        }
        self.run(|| buf.par_chunks_mut(stride).enumerate().try_for_each(one))
    }

    /// Runs `work` (parallel iterators) on this pool of `threads` threads,
    /// starting the pool on first use.
    pub(crate) fn run<T: Send>(
        &mut self,
        work: impl FnOnce() -> Result<T, Error> + Send,
    ) -> Result<T, Error> {
        if self.pool.is_none() {
            self.pool = Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(self.threads)
                    .thread_name(|i| format!("strongroom-chunk-{i}"))
                    .build()
                    .map_err(|e| Error::Io(std::io::Error::other(e)))?,
            );
        }
        match self.pool.as_ref() {
            Some(pool) => pool.install(work),
            None => Err(Error::Io(std::io::Error::other("no thread pool"))),
        }
    }
}
