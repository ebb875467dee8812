//! STREAM chunks (docs/FORMAT.md section 4): nonces, sealing and opening
//! one chunk, and whole batches of chunks in parallel.

use rayon::prelude::*;
use strongroom_aes::{AeadInOut, TAG_LEN, aead::inout::InOutBuf};

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

/// Whether a final chunk of `len` plaintext bytes at `index` is the
/// format's one encoding (docs/FORMAT.md section 4): the final chunk is
/// empty only when it is the only chunk.
fn canonical_final(index: u64, len: usize) -> bool {
    len > 0 || index == 0
}

/// Seals chunk `index` of a stream, `data` in to out (one buffer or two),
/// and writes its tag to `tag`.
fn seal_data(
    keys: &StreamKeys,
    index: u64,
    last: bool,
    data: InOutBuf<'_, '_, u8>,
    tag: &mut [u8],
) -> Result<(), Error> {
    if last && !canonical_final(index, data.len()) {
        return Err(Error::InvalidArgument {
            reason: "the final chunk must hold the stream's last byte",
        });
    }
    let nonce = ChunkNonce::new(&keys.prefix, index, last)?;
    let t = keys
        .gcm
        .encrypt_inout_detached(&nonce.0.into(), &keys.aad, data)
        .map_err(|_| Error::TooLarge)?;
    tag.copy_from_slice(&t);
    Ok(())
}

/// Opens chunk `index` of a stream, `data` in to out, against `tag`. On
/// failure no plaintext is left: in place the ciphertext is as it was, out
/// of place the output holds the ciphertext.
///
/// An empty final chunk after other chunks is refused unopened: no writer
/// makes one, so it can only be a body cut at a chunk boundary with a tag's
/// worth of bytes appended, or a key holder's non-canonical encoding.
fn open_data(
    keys: &StreamKeys,
    index: u64,
    last: bool,
    data: InOutBuf<'_, '_, u8>,
    tag: &[u8; TAG_LEN],
) -> Result<(), Error> {
    if last && !canonical_final(index, data.len()) {
        return Err(Error::DecryptionFailed);
    }
    let nonce = ChunkNonce::new(&keys.prefix, index, last)?;
    keys.gcm
        .decrypt_inout_detached(&nonce.0.into(), &keys.aad, data, tag.into())
        .map_err(|_| Error::DecryptionFailed)
}

/// Seals one chunk in place: `chunk` is plaintext followed by 16 bytes of
/// room for the tag.
fn seal_chunk(keys: &StreamKeys, index: u64, last: bool, chunk: &mut [u8]) -> Result<(), Error> {
    let (plain, tag) = chunk.split_at_mut(chunk.len() - TAG_LEN);
    seal_data(keys, index, last, plain.into(), tag)
}

/// Opens one chunk in place: `chunk` is ciphertext followed by its tag. On
/// failure the ciphertext is left as it was.
pub(crate) fn open_chunk(
    keys: &StreamKeys,
    index: u64,
    last: bool,
    chunk: &mut [u8],
) -> Result<(), Error> {
    let split = chunk.len().checked_sub(TAG_LEN).ok_or(Error::Truncated)?;
    let (body, tag) = chunk.split_at_mut(split);
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(tag);
    open_data(keys, index, last, body.into(), &t)
}

/// Seals one chunk from `plain` into `out`, which is `plain.len() + 16`
/// bytes: ciphertext, then tag.
pub(crate) fn seal_chunk_into(
    keys: &StreamKeys,
    index: u64,
    last: bool,
    plain: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    let (ct, tag) = out.split_at_mut(out.len() - TAG_LEN);
    let data = InOutBuf::new(plain, ct).map_err(|_| Error::TooLarge)?;
    seal_data(keys, index, last, data, tag)
}

/// Opens one chunk, `sealed` = ciphertext then tag, into `out` (16 bytes
/// shorter). On failure `out` holds no plaintext.
pub(crate) fn open_chunk_into(
    keys: &StreamKeys,
    index: u64,
    last: bool,
    sealed: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    let split = sealed.len().checked_sub(TAG_LEN).ok_or(Error::Truncated)?;
    let (ct, tag) = sealed.split_at(split);
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(tag);
    let data = InOutBuf::new(ct, out).map_err(|_| Error::Truncated)?;
    open_data(keys, index, last, data, &t)
}

/// Most threads one encryptor or decryptor may use: memory is at most
/// `4 x threads x (chunk + 16)` bytes (a batch of two chunks per thread,
/// and a second batch buffer on the direct path), so this also bounds
/// memory.
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

    /// The number of threads.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Chunks per batch: two per thread, so a slow chunk does not idle the
    /// others; one batch is `2 x threads x stride` bytes.
    pub(crate) fn batch_chunks(&self) -> usize {
        self.threads * 2
    }

    /// Runs `one` on each item with its position: in order on this thread
    /// when there is one thread or one item, else in parallel on the pool
    /// this is called from (see [`run`](Self::run)). Stops at the first
    /// error; the bytes produced do not depend on the number of threads.
    fn each<I: Send>(
        &self,
        items: Vec<I>,
        one: impl Fn((usize, I)) -> Result<(), Error> + Sync + Send,
    ) -> Result<(), Error> {
        if self.threads == 1 || items.len() <= 1 {
            return items.into_iter().enumerate().try_for_each(one);
        }
        items.into_par_iter().enumerate().try_for_each(one)
    }

    /// Seals or opens consecutive chunks laid out at `stride = chunk + 16`
    /// bytes in `buf`, the first being chunk `first`; the last chunk of
    /// `buf` carries the last-chunk flag when `ends_stream`. The bytes
    /// produced do not depend on the number of threads. A single chunk
    /// never starts the pool.
    pub(crate) fn process_batch(
        &mut self,
        keys: &StreamKeys,
        first: u64,
        buf: &mut [u8],
        ends_stream: bool,
        seal: bool,
    ) -> Result<(), Error> {
        let chunks: Vec<&mut [u8]> = buf.chunks_mut(keys.chunk_size() + TAG_LEN).collect();
        let count = chunks.len();
        let one = |(i, chunk): (usize, &mut [u8])| {
            let index = first + i as u64;
            let last = ends_stream && i + 1 == count;
            if seal {
                seal_chunk(keys, index, last, chunk)
            } else {
                open_chunk(keys, index, last, chunk)
            }
        };
        if count == 1 {
            return self.each(chunks, one);
        }
        self.run(|w| w.each(chunks, one))
    }

    /// Seals the plaintext `input`, chunk `first` onwards, into `out` at
    /// stride `chunk + 16` (`out` is exactly the sealed length). The last
    /// chunk carries the last-chunk flag when `ends_stream`; an empty
    /// `input` is one empty chunk. Parallel when called on the pool (from
    /// [`run`](Self::run) or [`overlap`](Self::overlap)).
    pub(crate) fn seal_into(
        &self,
        keys: &StreamKeys,
        first: u64,
        input: &[u8],
        out: &mut [u8],
        ends_stream: bool,
    ) -> Result<(), Error> {
        let chunk = keys.chunk_size();
        let count = input.len().div_ceil(chunk).max(1);
        let plains = pieces_of(input, chunk);
        let sealed = pieces(out, chunk + TAG_LEN, count)?;
        let pairs: Vec<(&[u8], &mut [u8])> = plains.into_iter().zip(sealed).collect();
        self.each(pairs, |(i, (plain, sealed))| {
            let last = ends_stream && i + 1 == count;
            seal_chunk_into(keys, first + i as u64, last, plain, sealed)
        })
    }

    /// Opens the sealed chunks `input` (stride `chunk + 16`), chunk `first`
    /// onwards, into `out` (exactly their plaintext length). On failure the
    /// caller must not release `out`: chunks other than the failed one may
    /// have been opened into it. Parallel when called on the pool.
    pub(crate) fn open_into(
        &self,
        keys: &StreamKeys,
        first: u64,
        input: &[u8],
        out: &mut [u8],
        ends_stream: bool,
    ) -> Result<(), Error> {
        let chunk = keys.chunk_size();
        let sealed = pieces_of(input, chunk + TAG_LEN);
        let count = sealed.len();
        let plains = pieces(out, chunk, count)?;
        let pairs: Vec<(&[u8], &mut [u8])> = sealed.into_iter().zip(plains).collect();
        self.each(pairs, |(i, (sealed, plain))| {
            let last = ends_stream && i + 1 == count;
            open_chunk_into(keys, first + i as u64, last, sealed, plain)
        })
    }

    /// Opens, in place, the chunks whose ciphertext lies in `buf` at
    /// `chunk` bytes apart (the last possibly shorter) with their tags in
    /// `tags`, chunk `first` onwards. On failure the failed chunk is left
    /// as it was, but others may have been opened: the caller must not
    /// release `buf`. Parallel when called on the pool.
    pub(crate) fn open_with_tags(
        &self,
        keys: &StreamKeys,
        first: u64,
        buf: &mut [u8],
        tags: &[[u8; TAG_LEN]],
        ends_stream: bool,
    ) -> Result<(), Error> {
        let count = tags.len();
        let bodies = pieces(buf, keys.chunk_size(), count)?;
        let pairs: Vec<(&mut [u8], &[u8; TAG_LEN])> = bodies.into_iter().zip(tags).collect();
        self.each(pairs, |(i, (body, tag))| {
            let last = ends_stream && i + 1 == count;
            open_data(keys, first + i as u64, last, body.into(), tag)
        })
    }

    /// Seals whole, non-final chunks of `input` (chunk `first` onwards) into
    /// `out` at stride `chunk + 16`, while this thread also runs `here`
    /// (writing the previous batch out) and then seals a share of the
    /// chunks itself. Each of `threads - 1` pool threads seals one run of
    /// the rest: no more busy threads than `threads`, which on a machine
    /// with as many cores as threads keeps the writer from competing with
    /// the sealers. The caller's share is one chunk in `2 x threads`,
    /// leaving it time for the write.
    pub(crate) fn seal_sharing<B>(
        &mut self,
        keys: &StreamKeys,
        first: u64,
        input: &[u8],
        out: &mut [u8],
        here: impl FnOnce() -> B,
    ) -> (Result<(), Error>, B) {
        let chunk = keys.chunk_size();
        let stride = chunk + TAG_LEN;
        if self.threads == 1 {
            let b = here();
            return (seal_run(keys, first, input, out, false), b);
        }
        if let Err(e) = self.start_pool() {
            return (Err(e), here());
        }
        let Some(pool) = self.pool.as_ref() else {
            return (Err(no_pool()), here());
        };
        let n = input.len() / chunk;
        let mine = n / (2 * self.threads);
        let theirs = n - mine;
        let (their_in, my_in) = input.split_at(theirs * chunk);
        let (their_out, my_out) = out.split_at_mut(theirs * stride);
        let per_job = theirs.div_ceil(self.threads - 1).max(1);
        let mut results: Vec<Result<(), Error>> = Vec::new();
        results.resize_with(theirs.div_ceil(per_job), || Ok(()));
        let (b, my_result) = pool.in_place_scope(|scope| {
            let runs = their_in
                .chunks(per_job * chunk)
                .zip(their_out.chunks_mut(per_job * stride))
                .zip(results.iter_mut())
                .enumerate();
            for (j, ((run_in, run_out), slot)) in runs {
                let at = first + (j * per_job) as u64;
                scope.spawn(move |_| *slot = seal_run(keys, at, run_in, run_out, false));
            }
            let b = here();
            (
                b,
                seal_run(keys, first + theirs as u64, my_in, my_out, false),
            )
        });
        let result = results
            .into_iter()
            .collect::<Result<(), Error>>()
            .and(my_result);
        (result, b)
    }

    /// Runs `pooled` on the pool while this thread runs `here`: I/O on the
    /// caller's reader or writer overlaps with sealing or opening another
    /// batch. On one thread, `here` runs first, then `pooled`.
    pub(crate) fn overlap<A: Send, B>(
        &mut self,
        pooled: impl FnOnce(&Self) -> Result<A, Error> + Send,
        here: impl FnOnce() -> B,
    ) -> (Result<A, Error>, B) {
        if self.threads == 1 {
            let b = here();
            return (pooled(self), b);
        }
        if let Err(e) = self.start_pool() {
            return (Err(e), here());
        }
        let this = &*self;
        let Some(pool) = this.pool.as_ref() else {
            return (Err(no_pool()), here());
        };
        let mut a = None;
        let b = pool.in_place_scope(|scope| {
            scope.spawn(|_| a = Some(pooled(this)));
            here()
        });
        // The scope waits for its jobs, so `a` is set unless the job
        // panicked (which the scope re-raises here).
        (a.unwrap_or_else(|| Err(no_pool())), b)
    }

    fn start_pool(&mut self) -> Result<(), Error> {
        if self.pool.is_none() {
            self.pool = Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(self.threads)
                    .thread_name(|i| format!("strongroom-chunk-{i}"))
                    .build()
                    .map_err(|e| Error::Io(std::io::Error::other(e)))?,
            );
        }
        Ok(())
    }

    /// Runs `work` (parallel iterators) on this pool of `threads` threads,
    /// starting the pool on first use.
    pub(crate) fn run<T: Send>(
        &mut self,
        work: impl FnOnce(&Self) -> Result<T, Error> + Send,
    ) -> Result<T, Error> {
        if self.threads == 1 {
            return work(self);
        }
        self.start_pool()?;
        let this = &*self;
        match this.pool.as_ref() {
            Some(pool) => pool.install(|| work(this)),
            None => Err(no_pool()),
        }
    }
}

/// `input` cut into `size`-byte pieces, the last possibly shorter; an empty
/// `input` is one empty piece (the final chunk of an empty stream).
fn pieces_of(input: &[u8], size: usize) -> Vec<&[u8]> {
    if input.is_empty() {
        return vec![input];
    }
    input.chunks(size).collect()
}

/// `buf` cut into exactly `count` chunk-sized pieces, the last possibly
/// shorter or empty: a stream's final chunk may hold no plaintext, and it
/// must still be opened (its tag authenticates the stream's end), so it
/// cannot be left out the way `chunks_mut` leaves out an empty remainder.
fn pieces(buf: &mut [u8], chunk: usize, count: usize) -> Result<Vec<&mut [u8]>, Error> {
    let mut pieces: Vec<&mut [u8]> = buf.chunks_mut(chunk).collect();
    if pieces.len() + 1 == count {
        pieces.push(&mut []);
    }
    if pieces.len() != count {
        return Err(Error::Truncated);
    }
    Ok(pieces)
}

/// Seals the whole chunks of `input` (chunk `first` onwards) into `out` at
/// stride `chunk + 16`, one after the other on this thread; the last of them
/// carries the last-chunk flag when `ends_stream`.
fn seal_run(
    keys: &StreamKeys,
    first: u64,
    input: &[u8],
    out: &mut [u8],
    ends_stream: bool,
) -> Result<(), Error> {
    let chunk = keys.chunk_size();
    let count = input.len().div_ceil(chunk);
    input
        .chunks(chunk)
        .zip(out.chunks_mut(chunk + TAG_LEN))
        .enumerate()
        .try_for_each(|(i, (plain, sealed))| {
            let last = ends_stream && i + 1 == count;
            seal_chunk_into(keys, first + i as u64, last, plain, sealed)
        })
}

fn no_pool() -> Error {
    Error::Io(std::io::Error::other("the chunk thread pool could not run"))
}
