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

/// Seals or opens consecutive chunks laid out at `stride = chunk + 16`
/// bytes in `buf`, the first being chunk `first`; the last chunk of `buf`
/// carries the last-chunk flag when `ends_stream`. Runs on `pool` when
/// given, else on this thread; the bytes produced are the same either way.
pub(crate) fn process_batch(
    keys: &StreamKeys,
    pool: Option<&rayon::ThreadPool>,
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
    match pool {
        Some(pool) if count > 1 => {
            pool.install(|| buf.par_chunks_mut(stride).enumerate().try_for_each(one))
        }
        _ => buf.chunks_mut(stride).enumerate().try_for_each(one),
    }
}

/// A thread pool for `threads` workers, or none for one thread.
pub(crate) fn pool(threads: usize) -> Result<Option<rayon::ThreadPool>, Error> {
    if threads <= 1 {
        return Ok(None);
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("strongroom-chunk-{i}"))
        .build()
        .map(Some)
        .map_err(|e| Error::Io(std::io::Error::other(e)))
}

/// All cores, as the default thread count.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Chunks per batch for `threads` workers: two each, so a slow chunk does
/// not idle the others, while memory stays at `threads x 2 x stride`.
pub(crate) fn batch_chunks(threads: usize) -> usize {
    threads.max(1) * 2
}
