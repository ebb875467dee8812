//! Streaming encryption and decryption of 256 MiB, memory to memory, at the
//! default chunk size (1 MiB): strongroom-envelope against the bare
//! primitive and two peer streaming formats (issue 5, "Performance").
//!
//! Groups (each with `Throughput::Bytes(256 MiB)`): `stream_encrypt`,
//! `stream_decrypt`. Bench ids:
//! * `strongroom-1t`, `strongroom-2t`: [`Encryptor`] / [`Decryptor`] with
//!   `.threads(1)` / `.threads(2)`, one whole stream per iteration, header
//!   included (fresh DEK, AES key wrap, HKDF, header MAC; on decrypt:
//!   parsing, unwrapping and verifying it).
//! * `strongroom-slice-1t`, `-2t`: the whole body between two slices
//!   (`SealingHeader::encrypt_slice` / `OpenedHeader::decrypt_slice`), header included.
//! * `strongroom-parts-1t`, `-2t`: the body streamed in 16 MiB parts
//!   between the caller's own buffers (`BodySealer` / `BodyOpener`),
//!   header included: the streaming API without the copy that
//!   `std::io::Write` / `Read` impose.
//! * `primitive-chunks`: [`Aes256Gcm`] sealing (opening) the 256 MiB buffer
//!   in place in 1 MiB pieces, one thread, no format: the same chunk
//!   nonces and 32-byte AAD shape, tags kept aside. Decryption opens a fresh
//!   copy of the ciphertext each iteration (copied outside the timing).
//! * `primitive-oop-chunks`: the same, but memory to memory: each piece of
//!   the input sealed (opened) straight into a separate output buffer, one
//!   read and one write of every byte — the memory traffic of any stream
//!   encrypted from one buffer to another, so the baseline for the
//!   format's own cost (issue 5). `primitive-chunks` works in place and
//!   touches half as much memory.
//! * `age`: the `age` crate (ChaCha20-Poly1305, 64 KiB chunks) to one X25519
//!   recipient generated once; header creation / X25519 unwrap included.
//! * `tink`: `tink-streaming-aead` with `AES256_GCM_HKDF_1MB`, empty AAD.
//!
//! Output buffers are allocated and touched once, outside the timing, and
//! reused between iterations, so no implementation pays for page faults on
//! its output; decryption reads into an initialized buffer (not with
//! `read_to_end`, which would zero-fill 256 MiB of spare capacity first).
//! Each implementation's output is checked to decrypt back to the input
//! once before timing. 10 samples, 0.5 s warm-up, 2 s measurement: the
//! whole run takes about 1.5 minutes.
//!
//! With `STREAM_DIAG=1` a `stream_diag` group runs first (see [`diag`]).
//!
//! Run: `cargo bench -p strongroom-benches --bench stream`.

use std::cell::RefCell;
use std::hint::black_box;
use std::io::{Cursor, Read, Write};
use std::iter;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_main,
    measurement::WallTime,
};
use strongroom_aes::{AeadInOut, Aes256Gcm, Aes256Key, TAG_LEN, aead::inout::InOutBuf};
use strongroom_envelope::{
    AesKeyWrapper, Decryptor, Dek, Encryptor, Header, HeaderOptions, KeyRef, KeyWrapper,
    OpenedHeader, SealingHeader, WrapAlgorithm,
};

/// Plaintext size: 256 MiB.
const LEN: usize = 256 << 20;
/// Strongroom's default chunk size, and the primitive's piece size.
const CHUNK: usize = 1 << 20;

/// Deterministic, incompressible-looking input (xorshift64*).
fn input() -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut data = Vec::with_capacity(LEN);
    while data.len() < LEN {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        data.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    data
}

/// A zero-filled buffer with room for `len` bytes, its pages already
/// touched, emptied for use as an output.
fn out_buffer(len: usize) -> Vec<u8> {
    // `vec![0; len]` would map zero pages without touching them.
    let mut v = vec![1u8; len];
    v.clear();
    v
}

/// Room for any of the ciphertexts (256 chunks of overhead, generously).
const OUT_CAP: usize = LEN + (LEN / 1024) + (1 << 20);

/// Reads `r` to its end into `out` (already initialized, with room to
/// spare) and returns the length read. Unlike `read_to_end`, nothing
/// zero-fills the destination first: std's `read_to_end` memsets the spare
/// capacity for readers without `read_buf`, a full extra pass over 256 MiB.
fn read_all(r: &mut dyn Read, out: &mut [u8]) -> usize {
    let mut n = 0;
    loop {
        match r.read(&mut out[n..]).expect("read") {
            0 => break,
            k => n += k,
        }
    }
    assert!(n < out.len(), "output buffer too small to see the end");
    n
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(LEN as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

// ---------------------------------------------------------------- strongroom

fn kek() -> AesKeyWrapper {
    AesKeyWrapper::new(
        KeyRef::new("bench", "kek", "1", WrapAlgorithm::A256Kw),
        &Aes256Key::generate().expect("OS randomness"),
    )
}

fn sr_encrypt(kek: &dyn KeyWrapper, threads: usize, data: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut enc = Encryptor::new(&mut *out, &[kek], &HeaderOptions::default())
        .and_then(|e| e.threads(threads))
        .expect("encryptor");
    enc.write_all(data).expect("write");
    enc.finish().expect("finish");
}

fn sr_decrypt(kek: &dyn KeyWrapper, threads: usize, stored: &[u8], out: &mut [u8]) -> usize {
    let mut dec = Decryptor::new(stored, &[kek])
        .and_then(|d| d.threads(threads))
        .expect("decryptor");
    read_all(&mut dec, out)
}

/// The slice path: header + body straight from `data` into `out` (which is
/// pre-sized), chunks in parallel, no staging buffer.
fn sr_encrypt_slice(kek: &dyn KeyWrapper, threads: usize, data: &[u8], out: &mut Vec<u8>) {
    let (sealing, body) = header_then_body(kek, data.len(), out);
    sealing
        .encrypt_slice(data, body, threads)
        .expect("encrypt_slice");
}

fn sr_decrypt_slice(kek: &dyn KeyWrapper, threads: usize, stored: &[u8], out: &mut [u8]) -> usize {
    let (opened, body, len) = open_header(kek, stored);
    opened
        .decrypt_slice(body, &mut out[..len], threads)
        .expect("decrypt_slice");
    len
}

/// A fresh header written to `out`, which is sized for it and the body of
/// `len` plaintext bytes; returns the header and the body's room.
fn header_then_body<'o>(
    kek: &dyn KeyWrapper,
    len: usize,
    out: &'o mut Vec<u8>,
) -> (SealingHeader, &'o mut [u8]) {
    let sealing = Header::create(
        Dek::generate().expect("OS randomness"),
        &[kek],
        &HeaderOptions::default(),
    )
    .expect("header");
    let header = sealing.header().as_bytes();
    let body_len = sealing.body_len(len as u64).expect("length") as usize;
    out.resize(header.len() + body_len, 0);
    out[..header.len()].copy_from_slice(header);
    let at = header.len();
    (sealing, &mut out[at..])
}

/// Reads and opens the header of `stored`; returns it, the body, and the
/// body's plaintext length.
fn open_header<'s>(kek: &dyn KeyWrapper, stored: &'s [u8]) -> (OpenedHeader, &'s [u8], usize) {
    let mut input = stored;
    let opened = Header::read_from(&mut input)
        .and_then(|h| h.open(&[kek]))
        .expect("header");
    let len = opened.plaintext_len(input.len() as u64).expect("length") as usize;
    (opened, input, len)
}

/// Chunks per part on the parts path: 16 MiB of plaintext per call.
const PART_CHUNKS: usize = 16;

/// The parts path ([`strongroom_envelope::BodySealer`]): header, then the
/// body sealed part by part (16 MiB each, the last part the rest) straight
/// from `data` into `out`, each part's chunks in parallel. A caller with
/// its own buffers (disk reads, upload parts) streams this way.
fn sr_encrypt_parts(kek: &dyn KeyWrapper, threads: usize, data: &[u8], out: &mut Vec<u8>) {
    let (sealing, mut body) = header_then_body(kek, data.len(), out);
    let mut sealer = sealing.body_sealer(threads).expect("sealer");
    let part = PART_CHUNKS * CHUNK;
    let mut plain = data;
    while plain.len() > part {
        let n = sealer.sealed_len(part).expect("length");
        let (this, rest) = body.split_at_mut(n);
        sealer.seal(&plain[..part], this).expect("seal part");
        (plain, body) = (&plain[part..], rest);
    }
    sealer.finish(plain, body).expect("finish");
}

fn sr_decrypt_parts(kek: &dyn KeyWrapper, threads: usize, stored: &[u8], out: &mut [u8]) -> usize {
    let (opened, mut body, len) = open_header(kek, stored);
    let mut opener = opened.body_opener(threads).expect("opener");
    let part = PART_CHUNKS * (CHUNK + TAG_LEN);
    let mut plain = &mut out[..len];
    while body.len() > part {
        let n = opener.opened_len(part).expect("length");
        let (this, rest) = plain.split_at_mut(n);
        opener.open(&body[..part], this).expect("open part");
        (body, plain) = (&body[part..], rest);
    }
    opener.finish(body, plain).expect("finish");
    len
}

// ----------------------------------------------------------------- primitive

/// The chunk nonce shape of the format: 7-byte prefix, u32 BE index, last flag.
fn nonce(index: usize, last: bool) -> [u8; 12] {
    let mut n = [0x42u8; 12];
    n[7..11].copy_from_slice(&(index as u32).to_be_bytes());
    n[11] = u8::from(last);
    n
}

fn prim_seal(gcm: &Aes256Gcm, aad: &[u8; 32], buf: &mut [u8], tags: &mut [[u8; TAG_LEN]]) {
    let count = buf.len().div_ceil(CHUNK);
    for (i, (piece, tag)) in buf.chunks_mut(CHUNK).zip(tags.iter_mut()).enumerate() {
        *tag = gcm
            .seal_in_place_detached(&nonce(i, i + 1 == count), aad, piece)
            .expect("seal");
    }
}

fn prim_open(gcm: &Aes256Gcm, aad: &[u8; 32], buf: &mut [u8], tags: &[[u8; TAG_LEN]]) {
    let count = buf.len().div_ceil(CHUNK);
    for (i, (piece, tag)) in buf.chunks_mut(CHUNK).zip(tags.iter()).enumerate() {
        gcm.open_in_place_detached(&nonce(i, i + 1 == count), aad, piece, tag)
            .expect("open");
    }
}

/// The primitive memory to memory: each 1 MiB piece of `input` sealed
/// straight into `out` (same length), one read and one write of each byte,
/// the memory traffic of a stream encrypted from one buffer to another.
fn prim_seal_oop(
    gcm: &Aes256Gcm,
    aad: &[u8; 32],
    input: &[u8],
    out: &mut [u8],
    tags: &mut [[u8; TAG_LEN]],
) {
    let count = input.len().div_ceil(CHUNK);
    let pieces = input.chunks(CHUNK).zip(out.chunks_mut(CHUNK));
    for (i, ((piece, dest), tag)) in pieces.zip(tags.iter_mut()).enumerate() {
        let buf = InOutBuf::new(piece, dest).expect("same length");
        *tag = gcm
            .encrypt_inout_detached(&nonce(i, i + 1 == count).into(), aad, buf)
            .expect("seal")
            .into();
    }
}

/// The primitive memory to memory, opening: each piece of `input` opened
/// straight into `out`.
fn prim_open_oop(
    gcm: &Aes256Gcm,
    aad: &[u8; 32],
    input: &[u8],
    out: &mut [u8],
    tags: &[[u8; TAG_LEN]],
) {
    let count = input.len().div_ceil(CHUNK);
    let pieces = input.chunks(CHUNK).zip(out.chunks_mut(CHUNK));
    for (i, ((piece, dest), tag)) in pieces.zip(tags.iter()).enumerate() {
        let buf = InOutBuf::new(piece, dest).expect("same length");
        gcm.decrypt_inout_detached(&nonce(i, i + 1 == count).into(), aad, buf, tag.into())
            .expect("open");
    }
}

// ----------------------------------------------------------------------- age

fn age_encrypt(recipient: &age::x25519::Recipient, data: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let enc = age::Encryptor::with_recipients(iter::once(recipient as &dyn age::Recipient))
        .expect("age recipients");
    let mut w = enc.wrap_output(&mut *out).expect("age header");
    w.write_all(data).expect("age write");
    w.finish().expect("age finish");
}

fn age_decrypt(identity: &age::x25519::Identity, stored: &[u8], out: &mut [u8]) -> usize {
    let dec = age::Decryptor::new_buffered(stored).expect("age header");
    let mut r = dec
        .decrypt(iter::once(identity as &dyn age::Identity))
        .expect("age unwrap");
    read_all(&mut r, out)
}

// ---------------------------------------------------------------------- tink

/// tink wants a `'static` boxed writer: share the output buffer with it.
#[derive(Clone)]
struct SharedVec(Rc<RefCell<Vec<u8>>>);

impl Write for SharedVec {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn tink_encrypt(aead: &dyn tink_core::StreamingAead, data: &[u8], out: &SharedVec) {
    out.0.borrow_mut().clear();
    let mut w = aead
        .new_encrypting_writer(Box::new(out.clone()), b"")
        .expect("tink writer");
    w.write_all(data).expect("tink write");
    w.close().expect("tink close");
}

fn tink_decrypt(aead: &dyn tink_core::StreamingAead, stored: &Arc<[u8]>, out: &mut [u8]) -> usize {
    let mut r = aead
        .new_decrypting_reader(Box::new(Cursor::new(Arc::clone(stored))), b"")
        .expect("tink reader");
    read_all(&mut *r, out)
}

/// Diagnostics (only with `STREAM_DIAG=1`): where strongroom's time goes.
/// * `memcpy-1x`: the input appended to the output in one copy;
/// * `memcpy-2x-*k`: the encryptor's two copies without sealing (into a
///   batch buffer of that many KiB, then appended to the output);
/// * `seal-hot`: sealing 256 MiB through one cache-resident 2 MiB buffer;
///   `seal-hot-2t`: the same on two threads, 128 MiB each;
/// * `primitive-copy-chunks`: each 1 MiB piece appended to the output, then
///   sealed in place there (the primitive memory to memory);
/// * `strongroom-1t-sink`: the encryptor writing to `io::sink()`.
fn diag(c: &mut Criterion, data: &[u8], out: &mut Vec<u8>, kek: &dyn KeyWrapper, gcm: &Aes256Gcm) {
    let mut g = group(c, "stream_diag");
    g.bench_function("memcpy-1x", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(data));
        });
    });
    // (batch bytes, piece bytes): the 1-thread batch of 2 chunks, one chunk,
    // and 256 KiB pieces.
    for (batch_len, piece_len) in [(2 * CHUNK, CHUNK), (CHUNK, CHUNK), (256 << 10, 256 << 10)] {
        let mut tile = vec![1u8; batch_len + 2 * TAG_LEN];
        let stride = piece_len + TAG_LEN;
        g.bench_function(format!("memcpy-2x-{}k", batch_len >> 10), |b| {
            b.iter(|| {
                out.clear();
                for piece in black_box(data).chunks(batch_len) {
                    for (i, c) in piece.chunks(piece_len).enumerate() {
                        tile[i * stride..i * stride + c.len()].copy_from_slice(c);
                    }
                    out.extend_from_slice(&tile[..batch_len]);
                }
            });
        });
    }
    let mut batch = vec![1u8; 2 * CHUNK];
    let aad = [0x5au8; 32];
    let mut tags = [[0u8; TAG_LEN]; 2];
    g.bench_function("seal-hot", |b| {
        b.iter(|| {
            for _ in 0..LEN / (2 * CHUNK) {
                prim_seal(gcm, &aad, black_box(&mut batch[..2 * CHUNK]), &mut tags);
            }
        });
    });
    g.bench_function("seal-hot-2t", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        let mut mine = vec![1u8; 2 * CHUNK];
                        let mut tags = [[0u8; TAG_LEN]; 2];
                        for _ in 0..LEN / (4 * CHUNK) {
                            prim_seal(gcm, &aad, black_box(&mut mine), &mut tags);
                        }
                    });
                }
            });
        });
    });
    // The primitive memory to memory: each 1 MiB piece appended to the
    // output, then sealed in place there while it is still in cache.
    let mut all_tags = vec![[0u8; TAG_LEN]; LEN.div_ceil(CHUNK)];
    g.bench_function("primitive-copy-chunks", |b| {
        b.iter(|| {
            out.clear();
            for (i, (piece, tag)) in black_box(data)
                .chunks(CHUNK)
                .zip(all_tags.iter_mut())
                .enumerate()
            {
                let at = out.len();
                out.extend_from_slice(piece);
                *tag = gcm
                    .seal_in_place_detached(&nonce(i, false), &aad, &mut out[at..])
                    .expect("seal");
            }
        });
    });
    g.bench_function("strongroom-1t-sink", |b| {
        b.iter(|| {
            let mut enc = Encryptor::new(std::io::sink(), &[kek], &HeaderOptions::default())
                .and_then(|e| e.threads(1))
                .expect("encryptor");
            enc.write_all(black_box(data)).expect("write");
            enc.finish().expect("finish");
        });
    });
    g.finish();
}

// --------------------------------------------------------------------- bench

fn stream(c: &mut Criterion) {
    let data = input();
    let kek = kek();

    let key = Aes256Key::generate().expect("OS randomness");
    let gcm = Aes256Gcm::with_key(&key);
    eprintln!("strongroom-aes backend: {}", gcm.backend());
    let aad = [0x5au8; 32];

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();

    tink_streaming_aead::init();
    let handle =
        tink_core::keyset::Handle::new(&tink_streaming_aead::aes256_gcm_hkdf_1mb_key_template())
            .expect("tink key");
    let tink = tink_streaming_aead::new(&handle).expect("tink primitive");

    // Ciphertexts for the decrypt group, each checked to round-trip once.
    let mut check = vec![1u8; LEN + CHUNK];
    let mut sr_ct = out_buffer(OUT_CAP);
    sr_encrypt(&kek, 2, &data, &mut sr_ct);
    for threads in [1, 2] {
        let mut one = out_buffer(OUT_CAP);
        sr_encrypt(&kek, threads, &data, &mut one);
        let n = sr_decrypt(&kek, threads, &one, &mut check);
        assert!(check[..n] == data[..], "strongroom {threads}t round trip");
        sr_encrypt_slice(&kek, threads, &data, &mut one);
        let n = sr_decrypt_slice(&kek, threads, &one, &mut check);
        assert!(
            check[..n] == data[..],
            "strongroom slice {threads}t round trip"
        );
        sr_encrypt_parts(&kek, threads, &data, &mut one);
        let n = sr_decrypt_parts(&kek, threads, &one, &mut check);
        assert!(
            check[..n] == data[..],
            "strongroom parts {threads}t round trip"
        );
    }

    let mut prim_ct = data.clone();
    let mut tags = vec![[0u8; TAG_LEN]; LEN.div_ceil(CHUNK)];
    prim_seal(&gcm, &aad, &mut prim_ct, &mut tags);
    let mut opened = prim_ct.clone();
    prim_open(&gcm, &aad, &mut opened, &tags);
    assert!(opened == data, "primitive round trip");
    drop(opened);
    let mut oop_tags = vec![[0u8; TAG_LEN]; LEN.div_ceil(CHUNK)];
    let mut oop_ct = vec![1u8; LEN];
    prim_seal_oop(&gcm, &aad, &data, &mut oop_ct, &mut oop_tags);
    assert!(
        oop_ct == prim_ct && oop_tags == tags,
        "primitive out of place"
    );
    prim_open_oop(&gcm, &aad, &oop_ct, &mut check[..LEN], &oop_tags);
    assert!(
        check[..LEN] == data[..],
        "primitive out-of-place round trip"
    );

    let mut age_ct = out_buffer(OUT_CAP);
    age_encrypt(&recipient, &data, &mut age_ct);
    let n = age_decrypt(&identity, &age_ct, &mut check);
    assert!(check[..n] == data[..], "age round trip");

    let tink_out = SharedVec(Rc::new(RefCell::new(out_buffer(OUT_CAP))));
    tink_encrypt(&*tink, &data, &tink_out);
    let tink_ct: Arc<[u8]> = tink_out.0.borrow().as_slice().into();
    let n = tink_decrypt(&*tink, &tink_ct, &mut check);
    assert!(check[..n] == data[..], "tink round trip");

    let mut out = out_buffer(OUT_CAP);
    if std::env::var_os("STREAM_DIAG").is_some() {
        diag(c, &data, &mut out, &kek, &gcm);
    }
    {
        let mut g = group(c, "stream_encrypt");
        for threads in [1, 2] {
            g.bench_function(format!("strongroom-{threads}t"), |b| {
                b.iter(|| sr_encrypt(&kek, threads, black_box(&data), &mut out));
            });
        }
        for threads in [1, 2] {
            g.bench_function(format!("strongroom-slice-{threads}t"), |b| {
                b.iter(|| sr_encrypt_slice(&kek, threads, black_box(&data), &mut out));
            });
        }
        for threads in [1, 2] {
            g.bench_function(format!("strongroom-parts-{threads}t"), |b| {
                b.iter(|| sr_encrypt_parts(&kek, threads, black_box(&data), &mut out));
            });
        }
        let mut buf = data.clone();
        g.bench_function("primitive-chunks", |b| {
            b.iter(|| prim_seal(&gcm, &aad, black_box(&mut buf), &mut tags));
        });
        drop(buf);
        g.bench_function("primitive-oop-chunks", |b| {
            b.iter(|| prim_seal_oop(&gcm, &aad, black_box(&data), &mut oop_ct, &mut oop_tags));
        });
        g.bench_function("age", |b| {
            b.iter(|| age_encrypt(&recipient, black_box(&data), &mut out));
        });
        g.bench_function("tink", |b| {
            b.iter(|| tink_encrypt(&*tink, black_box(&data), &tink_out));
        });
        g.finish();
    }
    drop(tink_out);

    {
        let mut g = group(c, "stream_decrypt");
        for threads in [1, 2] {
            g.bench_function(format!("strongroom-{threads}t"), |b| {
                b.iter(|| sr_decrypt(&kek, threads, black_box(&sr_ct), &mut check));
            });
        }
        for threads in [1, 2] {
            g.bench_function(format!("strongroom-slice-{threads}t"), |b| {
                b.iter(|| sr_decrypt_slice(&kek, threads, black_box(&sr_ct), &mut check));
            });
        }
        for threads in [1, 2] {
            g.bench_function(format!("strongroom-parts-{threads}t"), |b| {
                b.iter(|| sr_decrypt_parts(&kek, threads, black_box(&sr_ct), &mut check));
            });
        }
        // Opening in place destroys the ciphertext: each iteration opens a
        // fresh copy, made (and its pages touched) outside the timing.
        g.bench_function("primitive-chunks", |b| {
            b.iter_batched_ref(
                || prim_ct.clone(),
                |buf| prim_open(&gcm, &aad, black_box(buf), &tags),
                BatchSize::PerIteration,
            );
        });
        g.bench_function("primitive-oop-chunks", |b| {
            b.iter(|| prim_open_oop(&gcm, &aad, black_box(&oop_ct), &mut check[..LEN], &oop_tags));
        });
        g.bench_function("age", |b| {
            b.iter(|| age_decrypt(&identity, black_box(&age_ct), &mut check));
        });
        g.bench_function("tink", |b| {
            b.iter(|| tink_decrypt(&*tink, black_box(&tink_ct), &mut check));
        });
        g.finish();
    }
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    stream(&mut c);
}

criterion_main!(benches);
