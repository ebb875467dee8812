//! Property tests of the stream format: round trips, tamper detection
//! (bit flips, truncation, reordering, splicing, foreign headers), parallel
//! output equal to serial output, random access, and rewrapping.
//!
//! 4 KiB chunks keep many-chunk cases cheap. Decryption runs on one thread
//! where the test reasons about what plaintext came out: a batch is then
//! two chunks, and nothing of a batch holding a bad chunk is released.

mod common;

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::sync::OnceLock;

use common::{
    aes_ref, aes_wrapper_with, decrypt, encrypt, header_len, known_header, open_header, options,
    plaintext, reference_body, stable_len,
};
use proptest::prelude::*;
use strongroom_envelope::{
    AesKeyWrapper, Decryptor, Encryptor, Error, Header, HeaderOptions, KeyRef, KeyWrapper,
    SeekableDecryptor, WrapAlgorithm,
};

const CHUNK: usize = 4096;
const STRIDE: usize = CHUNK + 16;

fn kek() -> AesKeyWrapper {
    aes_wrapper_with(aes_ref(), 7)
}

fn seal(plain: &[u8]) -> Vec<u8> {
    encrypt(plain, &[&kek()], &options(CHUNK), 1)
}

/// Decrypts on one thread with the test KEK.
fn open(stream: &[u8]) -> (Vec<u8>, Result<(), Error>) {
    decrypt(stream, &[&kek()], 1)
}

/// Asserts `stream` fails to decrypt, and that what came out is a prefix of
/// `plain` ending at or before the start of chunk `bad` (the first chunk
/// that was altered).
fn assert_rejected(stream: &[u8], plain: &[u8], bad: usize) -> Error {
    let (out, result) = open(stream);
    let Err(err) = result else {
        panic!("an altered stream decrypted ({} bytes out)", out.len());
    };
    assert!(
        out.len() <= bad * CHUNK,
        "{} bytes released, chunk {bad} was bad",
        out.len()
    );
    assert!(
        out == plain[..out.len()],
        "released bytes are not the plaintext"
    );
    err
}

/// The header, and the body's chunks.
fn split(stream: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let h = header_len(stream);
    (stream[..h].to_vec(), common::chunks(&stream[h..], CHUNK))
}

fn join(header: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = header.to_vec();
    for c in chunks {
        out.extend_from_slice(c);
    }
    out
}

/// The stream the format defines for `plain` under the header at the start
/// of `stream` (made over the tests' known DEK): the reference for every
/// write pattern and thread count.
fn reference_stream(stream: &[u8], plain: &[u8]) -> Vec<u8> {
    let header = Header::read_from(&mut &stream[..]).expect("header");
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(&reference_body(&header, plain));
    out
}

/// An encryptor on `threads` threads writing a header over the tests' known
/// DEK and then its body, as `Encryptor::new` would.
fn known_encryptor(threads: usize) -> Encryptor<Vec<u8>> {
    let sealing = known_header(&[&kek()], &options(CHUNK));
    let out = sealing.header().as_bytes().to_vec();
    Encryptor::body(out, sealing)
        .expect("encryptor")
        .threads(threads)
        .expect("threads")
}

/// A reader that hands out at most a few bytes per call and is interrupted
/// now and then, as pipes and sockets are.
struct Trickle<'a> {
    data: &'a [u8],
    pieces: Vec<usize>,
    calls: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        let piece = self.pieces[self.calls % self.pieces.len()];
        if piece == 0 {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = piece.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn round_trip_at_chunk_edges() {
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 4 * CHUNK + 1] {
        let plain = plaintext(len);
        for threads in [1, 2, 3] {
            let stream = encrypt(&plain, &[&kek()], &options(CHUNK), threads);
            let chunks = len.div_ceil(CHUNK).max(1);
            assert_eq!(stream.len(), header_len(&stream) + len + 16 * chunks);
            for dthreads in [1, 3] {
                let (out, result) = decrypt(&stream, &[&kek()], dthreads);
                result.unwrap_or_else(|e| panic!("len {len}: {e}"));
                assert!(out == plain, "len {len}, {threads}/{dthreads} threads");
            }
        }
    }
}

/// A six-chunk stream (five full, one of 100 bytes) for the bit flips.
fn flip_target() -> &'static (Vec<u8>, Vec<u8>) {
    static TARGET: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    TARGET.get_or_init(|| {
        let plain = plaintext(5 * CHUNK + 100);
        let stream = seal(&plain);
        (plain, stream)
    })
}

/// Which chunk a stream position falls in; header positions count as 0.
fn chunk_of(stream: &[u8], pos: usize) -> usize {
    pos.saturating_sub(header_len(stream)) / STRIDE
}

#[test]
fn every_single_bit_flip_in_the_header_is_detected() {
    let (plain, stream) = flip_target();
    for pos in 0..header_len(stream) {
        for bit in 0..8 {
            let mut bad = stream.clone();
            bad[pos] ^= 1 << bit;
            assert_rejected(&bad, plain, 0);
        }
    }
}

#[test]
fn parallel_output_is_the_formats_stream() {
    // Each thread count seals its own stream (one header seals one body);
    // every one must be the stream the format defines, so they are the same
    // whatever the number of threads.
    let plain = plaintext(13 * CHUNK + 77);
    for threads in 1..=4 {
        let mut enc = known_encryptor(threads);
        for piece in plain.chunks(1000 + 777 * threads) {
            enc.write_all(piece).expect("write");
        }
        let stream = enc.finish().expect("finish");
        assert!(
            stream == reference_stream(&stream, &plain),
            "{threads} threads"
        );
        let h = header_len(&stream);
        let opened = open_header(
            &Header::from_bytes(&stream[..h]).expect("header"),
            &[&kek()],
        );
        let mut out = Vec::new();
        Decryptor::body(&stream[h..], &opened)
            .expect("decryptor")
            .threads(5 - threads)
            .expect("threads")
            .read_to_end(&mut out)
            .expect("read");
        assert!(out == plain, "decrypting on {} threads", 5 - threads);
    }
}

#[test]
fn rewrap_to_rsa_keeps_the_body_and_the_old_header_valid() {
    let rsa = common::rsa_wrapper();
    let old_kek = kek();
    let plain = plaintext(3 * CHUNK + 9);
    let sealing = known_header(&[&old_kek], &options(CHUNK));
    let old = sealing.header().clone();
    let mut enc = Encryptor::body(Vec::new(), sealing).expect("encryptor");
    enc.write_all(&plain).expect("write");
    let body = enc.finish().expect("finish");

    let opened = open_header(&old, &[&old_kek]);
    let new = opened.rewrap(&[&rsa, &old_kek]).expect("rewrap");
    let stable = stable_len(&old);
    assert_eq!(new.as_bytes()[..stable], old.as_bytes()[..stable]);
    for (header, key) in [(&old, &old_kek as &dyn KeyWrapper), (&new, &rsa)] {
        let opened = Header::from_bytes(header.as_bytes())
            .expect("parse")
            .open(&[key])
            .expect("open");
        let mut out = Vec::new();
        Decryptor::body(body.as_slice(), &opened)
            .expect("decryptor")
            .read_to_end(&mut out)
            .expect("read");
        assert!(out == plain);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_random_lengths(
        len in 0..40 * CHUNK,
        threads in 1usize..=4,
        dthreads in 1usize..=4,
        piece in 1usize..20_000,
    ) {
        let plain = plaintext(len);
        let mut enc = Encryptor::new(Vec::new(), &[&kek()], &options(CHUNK))
            .expect("encryptor")
            .threads(threads)
            .expect("threads");
        for p in plain.chunks(piece) {
            enc.write_all(p).expect("write");
        }
        let stream = enc.finish().expect("finish");
        let (out, result) = decrypt(&stream, &[&kek()], dthreads);
        prop_assert!(result.is_ok(), "{:?}", result);
        prop_assert!(out == plain);
    }

    #[test]
    fn short_reads_and_small_buffers_change_nothing(
        len in 0..10 * CHUNK,
        pieces in prop::collection::vec(0usize..5000, 1..8),
        out_size in 1usize..3000,
        threads in 1usize..=3,
    ) {
        prop_assume!(pieces.iter().any(|&p| p > 0));
        let plain = plaintext(len);
        let stream = seal(&plain);
        let input = Trickle { data: &stream, pieces, calls: 0 };
        let mut decryptor = Decryptor::new(input, &[&kek()])
            .expect("header")
            .threads(threads)
            .expect("threads");
        let mut out = Vec::new();
        let mut buf = vec![0u8; out_size];
        loop {
            match decryptor.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("{e}"),
            }
        }
        prop_assert!(out == plain);
    }

    /// Writes and reads of mixed sizes, some smaller than a chunk (staged
    /// path) and some of several chunks (direct path, sealed from the
    /// caller's data and opened into the caller's buffer), on 1 to 3
    /// threads, over a reader that trickles: the same bytes either way.
    #[test]
    fn mixed_write_and_read_sizes_change_nothing(
        len in 0..24 * CHUNK,
        writes in prop::collection::vec(1usize..5 * CHUNK, 1..6),
        reads in prop::collection::vec(1usize..5 * CHUNK, 1..6),
        pieces in prop::collection::vec(1usize..3 * CHUNK, 1..4),
        threads in 1usize..=3,
    ) {
        let plain = plaintext(len);
        let mut enc = known_encryptor(threads);
        let mut rest = &plain[..];
        for w in writes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*w).min(rest.len());
            enc.write_all(&rest[..n]).expect("write");
            rest = &rest[n..];
        }
        let stream = enc.finish().expect("finish");
        prop_assert!(stream == reference_stream(&stream, &plain));

        let input = Trickle { data: &stream, pieces, calls: 0 };
        let mut decryptor = Decryptor::new(input, &[&kek()])
            .expect("header")
            .threads(threads)
            .expect("threads");
        let mut out = Vec::new();
        for r in reads.iter().cycle() {
            let mut buf = vec![0u8; *r];
            match decryptor.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => panic!("{e}"),
            }
        }
        prop_assert!(out == plain);
    }

    #[test]
    fn truncation_at_every_chunk_boundary_fails(full in 1usize..10, last in 0..CHUNK) {
        let plain = plaintext(full * CHUNK + last);
        let (header, chunks) = split(&seal(&plain));
        for keep in 0..chunks.len() {
            let err = assert_rejected(&join(&header, &chunks[..keep]), &plain, keep.saturating_sub(1));
            if keep == 0 {
                prop_assert!(matches!(err, Error::Truncated), "{:?}", err);
            } else {
                prop_assert!(matches!(err, Error::DecryptionFailed), "{:?}", err);
            }
        }
    }

    #[test]
    fn truncation_anywhere_in_the_body_fails(len in 1..12 * CHUNK, cut in any::<prop::sample::Index>()) {
        let plain = plaintext(len);
        let stream = seal(&plain);
        let h = header_len(&stream);
        let at = h + cut.index(stream.len() - h);
        // Cut inside chunk k: chunk k is bad. Cut at the boundary before
        // chunk k: chunk k - 1 is now last but was not sealed as last.
        let k = (at - h) / STRIDE;
        let bad = if (at - h).is_multiple_of(STRIDE) { k.saturating_sub(1) } else { k };
        assert_rejected(&stream[..at], &plain, bad);
    }

    #[test]
    fn reordered_chunks_fail(
        len in 2 * CHUNK..12 * CHUNK,
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let plain = plaintext(len);
        let (header, mut chunks) = split(&seal(&plain));
        let (i, j) = (a.index(chunks.len()), b.index(chunks.len()));
        prop_assume!(i != j);
        chunks.swap(i, j);
        assert_rejected(&join(&header, &chunks), &plain, i.min(j));
    }

    #[test]
    fn duplicated_chunks_fail(
        len in CHUNK..12 * CHUNK,
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let plain = plaintext(len);
        let (header, mut chunks) = split(&seal(&plain));
        let i = a.index(chunks.len());
        let j = b.index(chunks.len() + 1);
        let n = chunks.len();
        let copy = chunks[i].clone();
        chunks.insert(j, copy);
        // The first position holding the wrong chunk: j, or i + 1 when the
        // copy went in front of its original; and the final chunk, once
        // followed by anything, is wrong where it stands.
        let bad = if i == n - 1 { i.min(j) } else if j == i { i + 1 } else { j };
        assert_rejected(&join(&header, &chunks), &plain, bad);
    }

    #[test]
    fn a_chunk_from_another_stream_fails(len in 1..12 * CHUNK, a in any::<prop::sample::Index>()) {
        // Same plaintext, same KEK, same chunk size: only salt and DEK differ.
        let plain = plaintext(len);
        let (header, mut chunks) = split(&seal(&plain));
        let (_, other) = split(&seal(&plain));
        let i = a.index(chunks.len());
        chunks[i] = other[i].clone();
        let err = assert_rejected(&join(&header, &chunks), &plain, i);
        prop_assert!(matches!(err, Error::DecryptionFailed), "{:?}", err);
    }

    #[test]
    fn a_header_from_another_stream_fails(len in 0..12 * CHUNK) {
        let plain = plaintext(len);
        let (_, chunks) = split(&seal(&plain));
        let (other_header, _) = split(&seal(&plain));
        // The foreign header opens (same KEK), the body does not.
        let err = assert_rejected(&join(&other_header, &chunks), &plain, 0);
        prop_assert!(matches!(err, Error::DecryptionFailed), "{:?}", err);
    }

    #[test]
    fn parallel_output_is_the_formats_stream_for_any_length(len in 0..24 * CHUNK, piece in 1usize..10_000) {
        let plain = plaintext(len);
        for threads in 1..=4 {
            let mut enc = known_encryptor(threads);
            for p in plain.chunks(piece) {
                enc.write_all(p).expect("write");
            }
            let stream = enc.finish().expect("finish");
            prop_assert!(stream == reference_stream(&stream, &plain), "{} threads", threads);
        }
    }

    #[test]
    fn random_range_reads_equal_the_plaintext(
        len in 1..20 * CHUNK,
        ranges in prop::collection::vec((any::<prop::sample::Index>(), 0usize..3 * CHUNK), 1..12),
    ) {
        let plain = plaintext(len);
        let stream = seal(&plain);
        let mut reader = SeekableDecryptor::new(Cursor::new(&stream), &[&kek()]).expect("open");
        prop_assert_eq!(reader.plaintext_len(), len as u64);
        // The body alone, with its header opened separately.
        let h = header_len(&stream);
        let opened = Header::from_bytes(&stream[..h]).expect("header").open(&[&kek()]).expect("open");
        let mut body_reader = SeekableDecryptor::body(Cursor::new(&stream[h..]), &opened).expect("body");
        for (start, n) in ranges {
            let offset = start.index(len);
            let n = n.min(len - offset);
            let want = &plain[offset..offset + n];
            prop_assert!(reader.read_range(offset as u64, n).expect("range") == want);
            prop_assert!(body_reader.read_range(offset as u64, n).expect("range") == want);

            // Read + Seek, from each kind of seek.
            let mut got = vec![0u8; n];
            reader.seek(SeekFrom::Start(offset as u64)).expect("seek");
            reader.read_exact(&mut got).expect("read");
            prop_assert!(got == want);
            let back = -i64::try_from(len - offset).expect("small");
            prop_assert_eq!(reader.seek(SeekFrom::End(back)).expect("seek"), offset as u64);
            reader.read_exact(&mut got).expect("read");
            prop_assert!(got == want);
            reader.seek(SeekFrom::Start(0)).expect("seek");
            reader.seek(SeekFrom::Current(offset as i64)).expect("seek");
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).expect("read");
            prop_assert!(rest == plain[offset..]);
        }
    }

    #[test]
    fn rewrap_changes_only_the_records_and_the_mac(
        len in 0..6 * CHUNK,
        item in "[a-z0-9-]{0,40}",
        new_keys in 1usize..4,
    ) {
        let old_kek = kek();
        let plain = plaintext(len);
        let options = HeaderOptions::default().chunk_size(CHUNK).expect("chunk").metadata("item", item);
        let sealing = known_header(&[&old_kek], &options);
        let old = sealing.header().clone();
        let mut enc = Encryptor::body(Vec::new(), sealing).expect("encryptor");
        enc.write_all(&plain).expect("write");
        let body = enc.finish().expect("finish");
        let opened = open_header(&old, &[&old_kek]);

        let new_keks: Vec<AesKeyWrapper> = (0..new_keys)
            .map(|i| {
                let key_ref = KeyRef::new("vault-2", "rotated", format!("v{i}"), WrapAlgorithm::A256Kw);
                aes_wrapper_with(key_ref, 100 + i as u8)
            })
            .collect();
        let wrappers: Vec<&dyn KeyWrapper> =
            new_keks.iter().map(|k| k as &dyn KeyWrapper).collect();
        let new = opened.rewrap(&wrappers).expect("rewrap");

        // The stable part (fixed fields, metadata) is byte for byte the same;
        // the records and the MAC are new.
        let stable = stable_len(&old);
        prop_assert_eq!(&new.as_bytes()[..stable], &old.as_bytes()[..stable]);
        prop_assert_eq!(new.metadata(), old.metadata());
        prop_assert_ne!(&new.as_bytes()[stable..], &old.as_bytes()[stable..]);
        prop_assert_eq!(new.wrapped_keys().len(), new_keys);
        let new_mac = &new.as_bytes()[new.as_bytes().len() - 32..];
        let old_mac = &old.as_bytes()[old.as_bytes().len() - 32..];
        prop_assert_ne!(new_mac, old_mac);

        // R8: the same body opens under the new header with each new key,
        // and still under the old header with the old key.
        let mut openings = vec![(old.clone(), &old_kek)];
        openings.extend(new_keks.iter().map(|k| (new.clone(), k)));
        for (header, key) in openings {
            let opened = Header::from_bytes(header.as_bytes()).expect("parse").open(&[key]).expect("open");
            let mut out = Vec::new();
            Decryptor::body(body.as_slice(), &opened)
                .expect("decryptor")
                .threads(1)
                .expect("threads")
                .read_to_end(&mut out)
                .expect("read");
            prop_assert!(out == plain);
        }
        // And neither header opens with the other's keys only.
        let err = Header::from_bytes(new.as_bytes()).expect("parse").open(&[&old_kek]).expect_err("old key");
        prop_assert!(matches!(err, Error::NoMatchingKey { .. }), "{:?}", err);
        let err = Header::from_bytes(old.as_bytes()).expect("parse").open(&[&new_keks[0]]).expect_err("new key");
        prop_assert!(matches!(err, Error::NoMatchingKey { .. }), "{:?}", err);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn every_single_bit_flip_is_detected(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (plain, stream) = flip_target();
        let pos = pos.index(stream.len());
        let mut bad = stream.clone();
        bad[pos] ^= 1 << bit;
        assert_rejected(&bad, plain, chunk_of(stream, pos));
    }
}
