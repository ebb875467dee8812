//! The streaming decryptor and the random-access reader.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use strongroom_aes::TAG_LEN;
use zeroize::Zeroize;

use crate::buffer::SecretBuf;
use crate::format::Header;
use crate::keys::{OpenedHeader, StreamKeys};
use crate::stream::{self, Workers};
use crate::{Error, KeyWrapper};

/// Decrypts a stream: `Read` gives plaintext.
///
/// Reads a batch of `2 x threads` chunks, opens them in parallel, and only
/// then releases their plaintext: no byte of a chunk is returned before its
/// tag has verified. A read into a buffer of at least a chunk opens whole
/// batches straight into it (reading the next batch while this one is
/// opened); a batch that fails is zeroed there, and the call returns the
/// verified bytes before it, or the error. A failure (any tag, truncation,
/// a chunk moved or spliced in from elsewhere) makes this and every later
/// read return the error; plaintext already returned came from chunks that verified.
///
/// `Read` costs one copy of every byte: the reader copies into the buffer
/// it is given. A program that holds the body in buffers of its own can
/// stream without that copy through [`BodyOpener`](crate::BodyOpener).
///
/// ```
/// use std::io::{Read, Write};
/// use strongroom_envelope::{AesKeyWrapper, Decryptor, Encryptor, HeaderOptions, KeyRef, WrapAlgorithm};
/// use strongroom_aes::Aes256Key;
///
/// let kek = AesKeyWrapper::new(
///     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
///     &Aes256Key::generate()?,
/// );
/// let mut enc = Encryptor::new(Vec::new(), &[&kek], &HeaderOptions::default())?;
/// enc.write_all(b"disk image bytes")?;
/// let stored = enc.finish()?;
///
/// let mut plain = Vec::new();
/// Decryptor::new(stored.as_slice(), &[&kek])?.read_to_end(&mut plain)?;
/// assert_eq!(plain, b"disk image bytes");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Decryptor<R: Read> {
    input: R,
    keys: Arc<StreamKeys>,
    header: Option<Header>,
    workers: Workers,
    /// Ciphertext read into batches at stride `chunk + 16`; after opening,
    /// plaintext sits at the start of each stride.
    buf: SecretBuf,
    /// Bytes of `buf` holding the current batch.
    batch_len: usize,
    /// The tags of the direct path's two batches (see `read_direct`).
    tags: Vec<[u8; TAG_LEN]>,
    spare_tags: Vec<[u8; TAG_LEN]>,
    /// Read position in the current batch's plaintext, as a byte offset
    /// into `buf` (skipping tags).
    pos: usize,
    /// A byte read past a full batch to learn whether the stream ended.
    peeked: Option<u8>,
    next_index: u64,
    done: bool,
    failed: Option<Error>,
}

impl<R: Read> Decryptor<R> {
    /// Reads the header from `input`, opens it with one of `wrappers`
    /// (see [`Header::open`]), and returns a reader for the body that
    /// follows. Uses all cores.
    ///
    /// # Errors
    /// As [`Header::read_from`] and [`Header::open`].
    pub fn new(mut input: R, wrappers: &[&dyn KeyWrapper]) -> Result<Self, Error> {
        let opened = Header::read_from(&mut input)?.open(wrappers)?;
        let mut decryptor = Self::body(input, &opened)?;
        decryptor.header = Some(opened.header().clone());
        Ok(decryptor)
    }

    /// A reader for a body whose header is stored separately.
    ///
    /// # Errors
    /// None yet; the `Result` leaves room for checks on the header.
    pub fn body(input: R, header: &OpenedHeader) -> Result<Self, Error> {
        Ok(Self {
            input,
            keys: Arc::clone(&header.keys),
            header: None,
            workers: Workers::new(None)?,
            buf: SecretBuf::default(),
            batch_len: 0,
            tags: Vec::new(),
            spare_tags: Vec::new(),
            pos: 0,
            peeked: None,
            next_index: 0,
            done: false,
            failed: None,
        })
    }

    /// Opens chunks on `threads` threads (1 = this thread only). Call
    /// before the first read.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 or more than 256 threads, or after
    /// reading began.
    pub fn threads(mut self, threads: usize) -> Result<Self, Error> {
        if self.next_index > 0 || self.done {
            return Err(Error::InvalidArgument {
                reason: "set the number of threads before reading",
            });
        }
        self.workers = Workers::new(Some(threads))?;
        Ok(self)
    }

    /// The header read by [`Decryptor::new`] (authenticated).
    #[must_use]
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    fn stride(&self) -> usize {
        self.keys.chunk_size() + TAG_LEN
    }

    /// Reads and opens the next batch. Returns `false` at the end.
    fn next_batch(&mut self) -> Result<bool, Error> {
        if self.done {
            return Ok(false);
        }
        let stride = self.stride();
        let (len, ends) = read_batch(
            &mut self.input,
            &mut self.peeked,
            &mut self.buf,
            self.workers.batch_chunks(),
            stride,
        )?;
        self.workers.process_batch(
            &self.keys,
            self.next_index,
            &mut self.buf[..len],
            ends,
            false,
        )?;
        self.next_index += len.div_ceil(stride) as u64;
        self.batch_len = len;
        self.pos = 0;
        self.done = ends;
        Ok(true)
    }

    fn read_inner(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let stride = self.stride();
        let chunk = self.keys.chunk_size();
        loop {
            if self.pos < self.batch_len {
                // `pos` is inside chunk `pos / stride`, whose plaintext ends
                // 16 bytes before the next stride (or the batch's end).
                let start = self.pos / stride * stride;
                let end = (start + chunk).min(self.batch_len - TAG_LEN);
                if self.pos < end {
                    let n = out.len().min(end - self.pos);
                    out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                    self.pos += n;
                    return Ok(n);
                }
                self.pos = start + stride;
                continue;
            }
            if out.len() >= chunk && !self.done {
                return self.read_direct(out);
            }
            if out.is_empty() || !self.next_batch()? {
                return Ok(0);
            }
        }
    }

    /// Decrypts whole batches in `out` itself (room for at least one
    /// chunk): each chunk's ciphertext is read from the input straight
    /// into its place in `out`, its tag aside, and opened there in place;
    /// reading the next batch overlaps with opening this one. No staging
    /// copy. Returns the plaintext bytes. If a batch fails after earlier
    /// ones succeeded, their bytes are returned and the error is kept for
    /// the next call; the failed batch's part of `out` is zeroed.
    fn read_direct(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        if self.workers.threads() == 1 {
            return self.read_direct_serial(out);
        }
        let chunk = self.keys.chunk_size();
        let per = self.workers.batch_chunks();
        let keys = &*self.keys;
        let input = &mut self.input;
        let peeked = &mut self.peeked;
        let mut tags = [
            core::mem::take(&mut self.tags),
            core::mem::take(&mut self.spare_tags),
        ];
        let mut written = 0;
        let mut failure = None;
        let n = per.min(out.len() / chunk);
        let mut batch = read_chunks(input, peeked, out, &mut tags[0], n, chunk);
        for k in 0.. {
            let b = match batch {
                Ok(b) => b,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            let (this, rest) = out[written..].split_at_mut(b.plain);
            let room = rest.len() / chunk;
            let [t0, t1] = &mut tags;
            let (cur, next) = if k % 2 == 0 { (&*t0, t1) } else { (&*t1, t0) };
            let index = self.next_index;
            let (opened, read) = self.workers.overlap(
                |w| w.open_with_tags(keys, index, this, &cur[..b.count], b.ends),
                || {
                    (!b.ends && room > 0)
                        .then(|| read_chunks(input, peeked, rest, next, per.min(room), chunk))
                },
            );
            if let Err(e) = opened {
                this.zeroize();
                failure = Some(e);
                break;
            }
            written += b.plain;
            self.next_index += b.count as u64;
            if b.ends {
                self.done = true;
                break;
            }
            match read {
                Some(r) => batch = r,
                None => break,
            }
        }
        let [t0, t1] = tags;
        self.tags = t0;
        self.spare_tags = t1;
        self.settle(written, failure.map_or(Ok(()), Err))
    }
}

impl<R: Read> Decryptor<R> {
    /// [`read_direct`](Self::read_direct) on one thread: each chunk is
    /// opened right after it is read, while it is still in cache, and a
    /// batch is released only when all its chunks verified.
    fn read_direct_serial(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let chunk = self.keys.chunk_size();
        let per = self.workers.batch_chunks();
        let mut written = 0;
        let mut result = Ok(());
        while !self.done && out.len() - written >= chunk {
            let batch = per.min((out.len() - written) / chunk);
            let mut plain = 0;
            let mut count = 0;
            let mut ends = false;
            let mut failure = None;
            for _ in 0..batch {
                let at = written + plain;
                let step = read_chunks(
                    &mut self.input,
                    &mut self.peeked,
                    &mut out[at..],
                    &mut self.tags,
                    1,
                    chunk,
                )
                .and_then(|r| {
                    self.workers
                        .open_with_tags(
                            &self.keys,
                            self.next_index + count as u64,
                            &mut out[at..at + r.plain],
                            &self.tags,
                            r.ends,
                        )
                        .map(|()| r)
                });
                match step {
                    Ok(r) => {
                        plain += r.plain;
                        count += 1;
                        ends = r.ends;
                        if ends {
                            break;
                        }
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failure {
                // Nothing of a failed batch is released: neither its
                // verified chunks nor what was read of the failed one.
                let end = (written + plain + chunk).min(out.len());
                out[written..end].zeroize();
                result = Err(e);
                break;
            }
            written += plain;
            self.next_index += count as u64;
            self.done = ends;
        }
        self.settle(written, result)
    }

    /// What a direct read returns: the verified bytes written before a
    /// failure, keeping the error for the next call, or the error itself
    /// when nothing was written.
    fn settle(&mut self, written: usize, result: Result<(), Error>) -> Result<usize, Error> {
        match result {
            Err(e) if written == 0 => Err(e),
            Err(e) => {
                self.failed = Some(e);
                Ok(written)
            }
            Ok(()) => Ok(written),
        }
    }
}

/// What [`read_chunks`] read.
struct ChunksRead {
    /// Ciphertext bytes (= plaintext bytes) placed in the output.
    plain: usize,
    /// Chunks read, each with its tag.
    count: usize,
    /// Whether the stream ends with the last of them.
    ends: bool,
}

/// Reads up to `chunks` sealed chunks, each chunk's ciphertext straight
/// into `out` at `chunk` bytes apart and its tag into `tags`, and peeks one
/// byte past a full batch to learn whether the stream ends there. The same
/// checks as [`read_batch`]: a body holds at least its final chunk's tag,
/// and a partial final chunk at least a tag.
fn read_chunks<R: Read>(
    input: &mut R,
    peeked: &mut Option<u8>,
    out: &mut [u8],
    tags: &mut Vec<[u8; TAG_LEN]>,
    chunks: usize,
    chunk: usize,
) -> Result<ChunksRead, Error> {
    tags.clear();
    let mut plain = 0;
    for body in out.chunks_exact_mut(chunk).take(chunks) {
        let mut got = 0;
        if let Some(b) = peeked.take() {
            body[0] = b;
            got = 1;
        }
        got += read_full(input, &mut body[got..])?;
        if got < chunk {
            // The stream ends inside this chunk (or just before it).
            if got == 0 && !tags.is_empty() {
                return Ok(ChunksRead {
                    plain,
                    count: tags.len(),
                    ends: true,
                });
            }
            if got < TAG_LEN {
                return Err(Error::Truncated);
            }
            let mut tag = [0u8; TAG_LEN];
            tag.copy_from_slice(&body[got - TAG_LEN..got]);
            tags.push(tag);
            return Ok(ChunksRead {
                plain: plain + got - TAG_LEN,
                count: tags.len(),
                ends: true,
            });
        }
        let mut tag = [0u8; TAG_LEN];
        let t = read_full(input, &mut tag)?;
        if t < TAG_LEN {
            // A final chunk shorter than a full one: its tag began inside
            // what was read as its body.
            let keep = chunk - (TAG_LEN - t);
            let mut whole = [0u8; TAG_LEN];
            whole[..TAG_LEN - t].copy_from_slice(&body[keep..]);
            whole[TAG_LEN - t..].copy_from_slice(&tag[..t]);
            tags.push(whole);
            return Ok(ChunksRead {
                plain: plain + keep,
                count: tags.len(),
                ends: true,
            });
        }
        tags.push(tag);
        plain += chunk;
    }
    let mut one = [0u8; 1];
    let ends = match read_full(input, &mut one)? {
        0 => true,
        _ => {
            *peeked = Some(one[0]);
            false
        }
    };
    Ok(ChunksRead {
        plain,
        count: tags.len(),
        ends,
    })
}

/// Reads the next batch of up to `chunks` sealed chunks into `buf` (grown
/// a chunk at a time, so a small stream never allocates a whole batch),
/// and peeks one byte past a full batch to learn whether the stream ends
/// there. Returns the bytes read and whether the stream ends.
fn read_batch<R: Read>(
    input: &mut R,
    peeked: &mut Option<u8>,
    buf: &mut SecretBuf,
    chunks: usize,
    stride: usize,
) -> Result<(usize, bool), Error> {
    let want = chunks * stride;
    let mut len = 0;
    if let Some(b) = peeked.take() {
        buf.resize(buf.len().max(stride));
        buf[0] = b;
        len = 1;
    }
    while len < want {
        let end = (len / stride + 1) * stride;
        if buf.len() < end {
            buf.resize(end);
        }
        let got = read_full(input, &mut buf[len..end])?;
        len += got;
        if len < end {
            break;
        }
    }
    let ends = if len < want {
        true
    } else {
        let mut one = [0u8; 1];
        match read_full(input, &mut one)? {
            0 => true,
            _ => {
                *peeked = Some(one[0]);
                false
            }
        }
    };
    // A body holds at least its final chunk's tag, and a partial final
    // chunk at least a tag. (An empty read after a full batch cannot
    // happen: the peeked byte would have marked that batch the end.)
    if len == 0 || len % stride != 0 && len % stride < TAG_LEN {
        return Err(Error::Truncated);
    }
    Ok((len, ends))
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read + ?Sized>(input: &mut R, buf: &mut [u8]) -> Result<usize, Error> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Ok(filled)
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(e.repeat().into());
        }
        self.read_inner(out).map_err(|e| {
            let err = e.repeat();
            self.failed = Some(e);
            // Verified plaintext of the failed batch is not released either.
            self.buf.clear();
            self.batch_len = 0;
            self.pos = 0;
            err.into()
        })
    }
}

impl<R: Read> core::fmt::Debug for Decryptor<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decryptor")
            .field("chunk_size", &self.keys.chunk_size())
            .field("chunks_read", &self.next_index)
            .finish_non_exhaustive()
    }
}

/// Random access into an encrypted body: `Read + Seek` over the plaintext,
/// reading and opening only the chunks a read covers.
///
/// ```
/// use std::io::{Cursor, Read, Seek, SeekFrom, Write};
/// use strongroom_envelope::{AesKeyWrapper, Encryptor, HeaderOptions, KeyRef, SeekableDecryptor, WrapAlgorithm};
/// use strongroom_aes::Aes256Key;
///
/// let kek = AesKeyWrapper::new(
///     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
///     &Aes256Key::generate()?,
/// );
/// let options = HeaderOptions::default().chunk_size(4096)?;
/// let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
/// let mut enc = Encryptor::new(Vec::new(), &[&kek], &options)?;
/// enc.write_all(&data)?;
/// let stored = enc.finish()?;
///
/// let mut reader = SeekableDecryptor::new(Cursor::new(stored), &[&kek])?;
/// assert_eq!(reader.plaintext_len(), 100_000);
/// assert_eq!(reader.read_range(50_000, 10)?, &data[50_000..50_010]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SeekableDecryptor<R: Read + Seek> {
    input: R,
    keys: Arc<StreamKeys>,
    header: Option<Header>,
    /// Where the body starts in `input`.
    body_start: u64,
    chunks: u64,
    plaintext_len: u64,
    pos: u64,
    /// The last chunk opened, and how many plaintext bytes of `buf` it
    /// holds.
    cached: Option<(u64, usize)>,
    /// The chunk being read and opened, then its plaintext.
    buf: SecretBuf,
}

impl<R: Read + Seek> SeekableDecryptor<R> {
    /// Reads and opens the header at the start of `input` (see
    /// [`Header::open`]); the body follows it.
    ///
    /// # Errors
    /// As [`Header::read_from`] and [`Header::open`]; [`Error::Truncated`]
    /// when the body is too short to hold its final chunk;
    /// [`Error::DecryptionFailed`] when the final chunk does not verify
    /// (the body was cut, extended or altered at its end).
    pub fn new(mut input: R, wrappers: &[&dyn KeyWrapper]) -> Result<Self, Error> {
        input.seek(SeekFrom::Start(0))?;
        let opened = Header::read_from(&mut input)?.open(wrappers)?;
        let body_start = opened.header().as_bytes().len() as u64;
        let mut reader = Self::at(input, &opened, body_start)?;
        reader.header = Some(opened.header().clone());
        Ok(reader)
    }

    /// Random access into a body stored separately from its header: the
    /// whole of `input` is the body.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the body is too short to hold its final
    /// chunk; [`Error::DecryptionFailed`] when the final chunk does not
    /// verify; [`Error::Io`].
    pub fn body(input: R, header: &OpenedHeader) -> Result<Self, Error> {
        Self::at(input, header, 0)
    }

    fn at(mut input: R, header: &OpenedHeader, body_start: u64) -> Result<Self, Error> {
        let keys = Arc::clone(&header.keys);
        let end = input.seek(SeekFrom::End(0))?;
        let body_len = end.checked_sub(body_start).ok_or(Error::Truncated)?;
        let stride = (keys.chunk_size() + TAG_LEN) as u64;
        let chunks = body_len.div_ceil(stride);
        let last_len = body_len - chunks.saturating_sub(1) * stride;
        if chunks == 0 || last_len < TAG_LEN as u64 {
            return Err(Error::Truncated);
        }
        if chunks - 1 > stream::MAX_CHUNK_INDEX {
            return Err(Error::TooLarge);
        }
        let plaintext_len = (chunks - 1) * keys.chunk_size() as u64 + (last_len - TAG_LEN as u64);
        let mut reader = Self {
            input,
            keys,
            header: None,
            body_start,
            chunks,
            plaintext_len,
            pos: 0,
            cached: None,
            buf: SecretBuf::default(),
        };
        // The length above comes from the body's size, which an attacker
        // controls: cut the body and append 16 bytes, and it would claim an
        // empty final chunk that no read ever touches. Verifying the final
        // chunk now (it must carry the last-chunk flag at its index)
        // authenticates the length before any range is served.
        reader.load(chunks - 1)?;
        Ok(reader)
    }

    /// The header read by [`SeekableDecryptor::new`] (authenticated).
    #[must_use]
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// The plaintext's length: authenticated, because the final chunk was
    /// verified (as the last chunk, at its index) when the reader was made.
    #[must_use]
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Decrypts `len` bytes from plaintext offset `offset`, reading only the
    /// chunks they span.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the range runs past the end;
    /// [`Error::DecryptionFailed`] when a chunk does not verify;
    /// [`Error::Io`].
    pub fn read_range(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
        let end = offset
            .checked_add(len as u64)
            .filter(|&end| end <= self.plaintext_len)
            .ok_or(Error::InvalidArgument {
                reason: "the range runs past the end of the plaintext",
            })?;
        let mut out = vec![0u8; len];
        let mut at = offset;
        while at < end {
            let n = self.copy_at(at, &mut out[(at - offset) as usize..])?;
            at += n as u64;
        }
        Ok(out)
    }

    /// Copies plaintext from offset `at` into `out`, up to the end of the
    /// chunk holding `at`.
    fn copy_at(&mut self, at: u64, out: &mut [u8]) -> Result<usize, Error> {
        let chunk = self.keys.chunk_size() as u64;
        let index = at / chunk;
        if self.cached.is_none_or(|(i, _)| i != index) {
            self.load(index)?;
        }
        let Some((_, plain_len)) = self.cached else {
            return Err(Error::DecryptionFailed);
        };
        let within = (at - index * chunk) as usize;
        let n = out.len().min(plain_len - within);
        out[..n].copy_from_slice(&self.buf[within..within + n]);
        Ok(n)
    }

    fn load(&mut self, index: u64) -> Result<(), Error> {
        let stride = (self.keys.chunk_size() + TAG_LEN) as u64;
        let last = index + 1 == self.chunks;
        let len = if last {
            (self.plaintext_len - index * self.keys.chunk_size() as u64) as usize + TAG_LEN
        } else {
            stride as usize
        };
        self.cached = None;
        self.buf.resize(len);
        let loaded = self
            .input
            .seek(SeekFrom::Start(self.body_start + index * stride))
            .and_then(|_| self.input.read_exact(&mut self.buf))
            .map_err(Error::from)
            .and_then(|()| stream::open_chunk(&self.keys, index, last, &mut self.buf));
        if let Err(e) = loaded {
            // Neither the previous chunk's plaintext nor what was read of
            // this one stays behind.
            self.buf.clear();
            return Err(e);
        }
        self.cached = Some((index, len - TAG_LEN));
        Ok(())
    }
}

impl<R: Read + Seek> Read for SeekableDecryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.plaintext_len || out.is_empty() {
            return Ok(0);
        }
        let room = (self.plaintext_len - self.pos).min(out.len() as u64) as usize;
        let n = self.copy_at(self.pos, &mut out[..room])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SeekableDecryptor<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.plaintext_len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = target;
        Ok(target)
    }
}

impl<R: Read + Seek> core::fmt::Debug for SeekableDecryptor<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SeekableDecryptor")
            .field("chunk_size", &self.keys.chunk_size())
            .field("chunks", &self.chunks)
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}
