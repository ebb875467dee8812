//! Failure paths of the API: keys that do not match or refuse, invalid
//! options and limits, unfinished streams, out-of-range reads, and headers
//! that break the format at a known offset.

mod common;

use std::io::{Cursor, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use common::{
    aes_ref, aes_wrapper, aes_wrapper_with, decrypt, encrypt, header_len, options, plaintext,
    read_all, rsa_private_key, rsa_ref,
};
use strongroom_envelope::{
    AesKeyWrapper, Decryptor, Dek, Encryptor, Error, Header, HeaderOptions, KeyRef, KeyWrapper,
    RsaOaepWrapper, SeekableDecryptor, WrapAlgorithm, WrapError,
};

const CHUNK: usize = 4096;

/// What a key vault says when the caller's access was revoked.
#[derive(Debug)]
struct AccessRevoked;

impl std::fmt::Display for AccessRevoked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("access to the key was revoked")
    }
}

impl std::error::Error for AccessRevoked {}

/// A key-vault-like wrapper whose access can be revoked: then it refuses to
/// wrap or unwrap with [`WrapError::Backend`].
struct Revocable {
    inner: AesKeyWrapper,
    revoked: AtomicBool,
}

impl Revocable {
    fn new(key_ref: KeyRef, byte: u8) -> Self {
        Self {
            inner: aes_wrapper_with(key_ref, byte),
            revoked: AtomicBool::new(false),
        }
    }

    fn revoke(&self) {
        self.revoked.store(true, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), WrapError> {
        if self.revoked.load(Ordering::SeqCst) {
            return Err(WrapError::Backend(Box::new(AccessRevoked)));
        }
        Ok(())
    }
}

impl KeyWrapper for Revocable {
    fn key_ref(&self) -> &KeyRef {
        self.inner.key_ref()
    }

    fn wrap(&self, dek: &Dek) -> Result<Vec<u8>, WrapError> {
        self.check()?;
        self.inner.wrap(dek)
    }

    fn unwrap(&self, key_ref: &KeyRef, wrapped: &[u8]) -> Result<Dek, WrapError> {
        self.check()?;
        self.inner.unwrap(key_ref, wrapped)
    }
}

fn vault_ref(name: &str) -> KeyRef {
    KeyRef::new("kv-1", name, "3", WrapAlgorithm::A256Kw)
}

fn new_header(wrappers: &[&dyn KeyWrapper]) -> Result<Header, Error> {
    Header::create(Dek::generate().expect("DEK"), wrappers, &options(CHUNK))
        .map(|opened| opened.header().clone())
}

fn is_invalid_argument(result: Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(result, Err(Error::InvalidArgument { .. }))
}

#[test]
fn no_matching_key_lists_the_recorded_refs() {
    let aes = aes_wrapper();
    let rsa_public =
        RsaOaepWrapper::from_public_key(rsa_ref(), rsa_private_key().to_public_key()).expect("RSA");
    let stream = encrypt(&plaintext(100), &[&aes, &rsa_public], &options(CHUNK), 1);
    let stranger = aes_wrapper_with(vault_ref("stranger"), 1);

    let (out, result) = decrypt(&stream, &[&stranger], 1);
    let err = result.expect_err("a stranger's key");
    let Error::NoMatchingKey { recorded } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(recorded, &[aes_ref(), rsa_ref()]);
    assert!(out.is_empty());
    let message = err.to_string();
    assert!(
        message.contains("golden-vault/platform-key/v1 (A256KW)"),
        "{message}"
    );
    assert!(
        message.contains("customer-vault/cmk-rsa/7 (RSA-OAEP-256)"),
        "{message}"
    );

    // No wrappers at all: the same answer.
    let err = Header::from_bytes(&stream[..header_len(&stream)])
        .expect("header")
        .open(&[])
        .expect_err("no keys");
    assert!(matches!(err, Error::NoMatchingKey { recorded } if recorded.len() == 2));
}

#[test]
fn a_refusing_key_vault_is_key_unavailable() {
    let vault = Revocable::new(vault_ref("cmk"), 9);
    let stream = encrypt(&plaintext(10), &[&vault], &options(CHUNK), 1);
    vault.revoke();

    let (out, result) = decrypt(&stream, &[&vault], 1);
    assert!(out.is_empty());
    let err = result.expect_err("revoked");
    let Error::KeyUnavailable { key, source } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(**key, vault_ref("cmk"));
    let WrapError::Backend(inner) = source.as_ref() else {
        panic!("{source:?}");
    };
    assert!(inner.downcast_ref::<AccessRevoked>().is_some(), "{inner:?}");
    assert!(
        err.to_string().contains("access to the key was revoked"),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn a_refused_record_falls_through_to_the_next() {
    let vault = Revocable::new(vault_ref("cmk"), 9);
    let backup = aes_wrapper_with(vault_ref("backup"), 10);
    let plain = plaintext(3 * CHUNK);
    let stream = encrypt(&plain, &[&vault, &backup], &options(CHUNK), 1);
    vault.revoke();
    for wrappers in [
        [&vault as &dyn KeyWrapper, &backup],
        [&backup as &dyn KeyWrapper, &vault],
    ] {
        let (out, result) = decrypt(&stream, &wrappers, 1);
        result.expect("the backup record opens it");
        assert!(out == plain);
    }
}

#[test]
fn a_refusal_while_creating_is_key_unavailable() {
    let vault = Revocable::new(vault_ref("cmk"), 9);
    vault.revoke();
    let err = new_header(&[&vault]).expect_err("revoked");
    assert!(
        matches!(&err, Error::KeyUnavailable { key, source }
            if **key == vault_ref("cmk") && matches!(**source, WrapError::Backend(_))),
        "{err:?}"
    );
    let err = Encryptor::new(Vec::new(), &[&vault], &options(CHUNK)).expect_err("revoked");
    assert!(matches!(err, Error::KeyUnavailable { .. }), "{err:?}");
}

#[test]
fn a_wrap_only_rsa_key_is_key_unavailable() {
    let public =
        RsaOaepWrapper::from_public_key(rsa_ref(), rsa_private_key().to_public_key()).expect("RSA");
    let stream = encrypt(&plaintext(10), &[&public], &options(CHUNK), 1);

    let (out, result) = decrypt(&stream, &[&public], 1);
    assert!(out.is_empty());
    let err = result.expect_err("public key only");
    assert!(
        matches!(&err, Error::KeyUnavailable { key, source }
            if **key == rsa_ref()
                && matches!(source.as_ref(), WrapError::UnwrapUnsupported { key } if **key == rsa_ref())),
        "{err:?}"
    );

    // The private key opens it.
    let private = RsaOaepWrapper::from_private_key(rsa_ref(), rsa_private_key()).expect("RSA");
    let (out, result) = decrypt(&stream, &[&public, &private], 1);
    result.expect("the private key");
    assert!(out == plaintext(10));
}

#[test]
fn invalid_chunk_sizes_are_invalid_arguments() {
    for bytes in [0, 1, 1000, 2048, 4095, 4097, 3 * 4096, 1 << 25, usize::MAX] {
        assert!(
            is_invalid_argument(HeaderOptions::default().chunk_size(bytes)),
            "chunk size {bytes}"
        );
    }
    for log2 in 12..=24 {
        let opened = Header::create(
            Dek::generate().expect("DEK"),
            &[&aes_wrapper()],
            &HeaderOptions::default()
                .chunk_size(1 << log2)
                .expect("valid"),
        )
        .expect("header");
        assert_eq!(opened.header().chunk_size(), 1 << log2);
        assert_eq!(opened.header().as_bytes()[10], log2);
    }
}

#[test]
fn metadata_over_the_limits_is_an_invalid_argument() {
    let aes = aes_wrapper();
    let create = |options: HeaderOptions| {
        Header::create(Dek::generate().expect("DEK"), &[&aes], &options).map(|_| ())
    };
    let many = |n: usize| {
        (0..n).fold(HeaderOptions::default(), |o, i| {
            o.metadata(format!("key-{i:03}"), "v")
        })
    };
    create(many(64)).expect("64 entries");
    assert!(is_invalid_argument(create(many(65))), "65 entries");

    let o = HeaderOptions::default();
    create(o.clone().metadata("k".repeat(255), "v")).expect("255-byte key");
    assert!(is_invalid_argument(create(
        o.clone().metadata("k".repeat(256), "v")
    )));
    assert!(is_invalid_argument(create(o.clone().metadata("", "v"))));
    create(o.clone().metadata("k", "v".repeat(4096))).expect("4096-byte value");
    assert!(is_invalid_argument(create(
        o.clone().metadata("k", "v".repeat(4097))
    )));
    assert!(is_invalid_argument(
        Encryptor::new(Vec::new(), &[&aes], &o.metadata("k", "v".repeat(4097))).map(|_| ())
    ));
}

#[test]
fn zero_or_seventeen_wrappers_are_invalid_arguments() {
    assert!(is_invalid_argument(new_header(&[])));
    assert!(is_invalid_argument(
        Encryptor::new(Vec::new(), &[], &options(CHUNK)).map(|_| ())
    ));

    let keks: Vec<AesKeyWrapper> = (0..17)
        .map(|i| aes_wrapper_with(vault_ref(&format!("k{i}")), i))
        .collect();
    let all: Vec<&dyn KeyWrapper> = keks.iter().map(|k| k as &dyn KeyWrapper).collect();
    assert!(is_invalid_argument(new_header(&all)));

    // Sixteen is the limit, and the last of them opens the stream.
    let header = new_header(&all[..16]).expect("16 wrappers");
    assert_eq!(header.wrapped_keys().len(), 16);
    Header::from_bytes(header.as_bytes())
        .expect("parse")
        .open(&[all[15]])
        .expect("record 15");
}

#[test]
fn key_refs_over_the_limits_are_invalid_arguments() {
    for key_ref in [
        KeyRef::new("", "name", "1", WrapAlgorithm::A256Kw),
        KeyRef::new("vault", "", "1", WrapAlgorithm::A256Kw),
        KeyRef::new("v".repeat(256), "name", "1", WrapAlgorithm::A256Kw),
        KeyRef::new("vault", "n".repeat(256), "1", WrapAlgorithm::A256Kw),
        KeyRef::new("vault", "name", "1".repeat(256), WrapAlgorithm::A256Kw),
    ] {
        let wrapper = aes_wrapper_with(key_ref.clone(), 1);
        assert!(is_invalid_argument(new_header(&[&wrapper])), "{key_ref:?}");
    }
    // An empty version is allowed.
    let wrapper = aes_wrapper_with(KeyRef::new("vault", "name", "", WrapAlgorithm::A256Kw), 1);
    new_header(&[&wrapper]).expect("empty version");
}

#[test]
fn zero_threads_or_threads_after_writing_are_invalid_arguments() {
    let aes = aes_wrapper();
    let enc = Encryptor::new(Vec::new(), &[&aes], &options(CHUNK)).expect("encryptor");
    assert!(is_invalid_argument(enc.threads(0).map(|_| ())));
    let mut enc = Encryptor::new(Vec::new(), &[&aes], &options(CHUNK)).expect("encryptor");
    enc.write_all(b"data").expect("write");
    assert!(is_invalid_argument(enc.threads(2).map(|_| ())));

    let stream = encrypt(&plaintext(10), &[&aes], &options(CHUNK), 1);
    let dec = Decryptor::new(stream.as_slice(), &[&aes]).expect("decryptor");
    assert!(is_invalid_argument(dec.threads(0).map(|_| ())));
}

/// Whatever an unfinished stream holds, decrypting it fails: it never
/// reads as a complete (shorter) stream.
#[test]
fn an_unfinished_encryptor_never_decrypts() {
    let aes = aes_wrapper();
    // (bytes written before the drop, what the stream then holds)
    let cases = [
        (0, "header only"),
        (1, "header only"),
        (
            2 * CHUNK,
            "header only: the batch is full but not sealed yet",
        ),
        (2 * CHUNK + 1, "header and two chunks, neither final"),
        // Written in one call, every whole chunk followed by more data is
        // sealed and written straight away.
        (5 * CHUNK + 7, "header and five chunks, none final"),
    ];
    for (len, what) in cases {
        let mut stored = Vec::new();
        {
            let mut enc = Encryptor::new(&mut stored, &[&aes], &options(CHUNK))
                .expect("encryptor")
                .threads(1)
                .expect("threads");
            enc.write_all(&plaintext(len)).expect("write");
            // Dropped without finish.
        }
        let (out, result) = decrypt(&stored, &[&aes], 1);
        let err = result.expect_err(what);
        let body = stored.len() - header_len(&stored);
        if body == 0 {
            assert!(matches!(err, Error::Truncated), "{what}: {err:?}");
        } else {
            assert!(matches!(err, Error::DecryptionFailed), "{what}: {err:?}");
        }
        // Only whole verified batches (two chunks on one thread), and
        // never the last chunk written, which cannot verify as final.
        let flushed_chunks = body / (CHUNK + 16);
        assert!(
            out.len() <= flushed_chunks.saturating_sub(1) * CHUNK,
            "{what}"
        );
        assert_eq!(out.len() % (2 * CHUNK), 0, "{what}");
        assert!(out == plaintext(out.len()), "{what}");

        // Random access verifies the final chunk up front, so an unfinished
        // stream does not even open.
        let e = SeekableDecryptor::new(Cursor::new(&stored), &[&aes]).expect_err(what);
        assert!(
            matches!(e, Error::Truncated | Error::DecryptionFailed),
            "{what}: {e:?}"
        );
    }
}

#[test]
fn reading_a_range_past_the_end_is_an_invalid_argument() {
    let aes = aes_wrapper();
    let stream = encrypt(&plaintext(100), &[&aes], &options(CHUNK), 1);
    let mut reader = SeekableDecryptor::new(Cursor::new(&stream), &[&aes]).expect("reader");
    for (offset, len) in [
        (0, 101),
        (100, 1),
        (101, 0),
        (50, usize::MAX),
        (u64::MAX, 1),
    ] {
        assert!(
            is_invalid_argument(reader.read_range(offset, len)),
            "read_range({offset}, {len})"
        );
    }
    assert_eq!(reader.read_range(100, 0).expect("empty at the end"), b"");
    assert_eq!(reader.read_range(0, 100).expect("all"), plaintext(100));

    // Read past the end through Seek: end of file, not an error.
    use std::io::{Read, Seek, SeekFrom};
    reader.seek(SeekFrom::Start(1000)).expect("seek");
    let mut out = Vec::new();
    reader.read_to_end(&mut out).expect("read");
    assert!(out.is_empty());
    assert!(reader.seek(SeekFrom::Current(-2000)).is_err());
}

#[test]
fn header_from_bytes_with_trailing_bytes_is_malformed() {
    let aes = aes_wrapper();
    let stream = encrypt(&plaintext(100), &[&aes], &options(CHUNK), 1);
    let h = header_len(&stream);
    for end in [h + 1, stream.len()] {
        let err = Header::from_bytes(&stream[..end]).expect_err("trailing bytes");
        assert!(
            matches!(err, Error::Malformed { offset, .. } if offset == h as u64),
            "{err:?}"
        );
    }
    for end in [0, 1, 8, 76, h - 33, h - 1] {
        let err = Header::from_bytes(&stream[..end]).expect_err("cut short");
        assert!(matches!(err, Error::Truncated), "{end}: {err:?}");
    }
    Header::from_bytes(&stream[..h]).expect("exactly the header");
}

/// Hostile counts and lengths are refused at their offset, before anything
/// is allocated for them.
#[test]
fn header_fields_out_of_range_are_malformed_at_their_offset() {
    let aes = aes_wrapper();
    let stream = encrypt(b"", &[&aes], &options(CHUNK), 1);
    let header = stream[..header_len(&stream)].to_vec();
    let h = header.len();
    let wrapped_len_at = h - 32 - 40 - 2;
    let set = |at: usize, bytes: &[u8]| {
        let mut bad = header.clone();
        bad[at..at + bytes.len()].copy_from_slice(bytes);
        bad
    };
    let cases: [(Vec<u8>, u64); 8] = [
        (set(76, &[0x00, 0x41]), 76), // 65 metadata entries
        (set(76, &[0xff, 0xff]), 76), // 65535 metadata entries
        (set(78, &[0]), 78),          // no records
        (set(78, &[17]), 78),         // 17 records
        (set(79, &[4]), 79),          // unknown wrap algorithm
        (set(80, &[0]), 80),          // empty vault name
        (set(wrapped_len_at, &[0, 0]), wrapped_len_at as u64), // empty wrapped key
        (set(wrapped_len_at, &[0x04, 0x01]), wrapped_len_at as u64), // 1025 bytes
    ];
    for (bad, offset) in cases {
        let err = Header::from_bytes(&bad).expect_err("malformed");
        assert!(
            matches!(err, Error::Malformed { offset: o, .. } if o == offset),
            "want offset {offset}: {err:?}"
        );
    }

    // Metadata keys must strictly increase: make the second key equal the
    // first. Entries start at 78: [1, 'a', 0, 1, '1'] [1, 'b', 0, 1, '2'].
    let options = options(CHUNK).metadata("a", "1").metadata("b", "2");
    let stream = encrypt(b"", &[&aes], &options, 1);
    let mut bad = stream[..header_len(&stream)].to_vec();
    assert_eq!(&bad[78..88], b"\x01a\x00\x011\x01b\x00\x012");
    bad[84] = b'a';
    let err = Header::from_bytes(&bad).expect_err("unordered");
    assert!(
        matches!(err, Error::Malformed { offset: 83, .. }),
        "{err:?}"
    );
    // Rules are checked in byte order (docs/FORMAT.md section 2.4): the
    // key's order before its value's length, which is over the limit too.
    bad[85..87].copy_from_slice(&[0x10, 0x01]);
    let err = Header::from_bytes(&bad).expect_err("unordered");
    assert!(
        matches!(err, Error::Malformed { offset: 83, .. }),
        "{err:?}"
    );
    // A length over its limit is refused before the bytes it counts: the
    // input may end right after it.
    let err = Header::from_bytes(&bad[..87]).expect_err("value length");
    assert!(
        matches!(err, Error::Malformed { offset: 83, .. }),
        "{err:?}"
    );
    bad[84] = b'b';
    let err = Header::from_bytes(&bad[..87]).expect_err("value length");
    assert!(
        matches!(err, Error::Malformed { offset: 85, .. }),
        "{err:?}"
    );
}

#[test]
fn io_errors_carry_the_envelope_error() {
    let aes = aes_wrapper();
    let mut stream = encrypt(&plaintext(100), &[&aes], &options(CHUNK), 1);
    let last = stream.len() - 1;
    stream[last] ^= 1;
    let decryptor = Decryptor::new(stream.as_slice(), &[&aes]).expect("header");
    let mut out = Vec::new();
    let err = read_all(decryptor, &mut out).expect_err("tampered");
    assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
    assert!(out.is_empty());

    // A failed decryptor keeps failing.
    let mut decryptor = Decryptor::new(stream.as_slice(), &[&aes]).expect("header");
    let mut buf = [0u8; 16];
    for _ in 0..3 {
        let e = std::io::Read::read(&mut decryptor, &mut buf).expect_err("still failing");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(matches!(Error::from_io(e), Error::DecryptionFailed));
    }
}

/// A `Read + Seek` holding a real header followed by a body of `body_len`
/// zero bytes, without storing them.
struct HugeBody {
    header: Vec<u8>,
    len: u64,
    pos: u64,
}

impl std::io::Read for HugeBody {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        for (i, b) in out[..n].iter_mut().enumerate() {
            let at = self.pos + i as u64;
            *b = usize::try_from(at)
                .ok()
                .and_then(|at| self.header.get(at))
                .copied()
                .unwrap_or(0);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for HugeBody {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.pos = match to {
            std::io::SeekFrom::Start(n) => n,
            std::io::SeekFrom::End(d) => self.len.checked_add_signed(d).expect("in range"),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d).expect("in range"),
        };
        Ok(self.pos)
    }
}

/// At most 2^32 chunks: random access refuses a longer body up front, and
/// accepts exactly 2^32 (whose last chunk index is u32::MAX).
#[test]
fn random_access_refuses_more_than_two_to_the_32_chunks() {
    let aes = aes_wrapper();
    let stream = encrypt(b"", &[&aes], &options(CHUNK), 1);
    let header = stream[..header_len(&stream)].to_vec();
    let stride = (CHUNK + 16) as u64;
    let huge = |chunks: u64| HugeBody {
        len: header.len() as u64 + chunks * stride,
        header: header.clone(),
        pos: 0,
    };

    let err = SeekableDecryptor::new(huge((1 << 32) + 1), &[&aes]).expect_err("too many");
    assert!(matches!(err, Error::TooLarge), "{err:?}");

    // Exactly 2^32 chunks passes the count check and gets as far as
    // verifying the final chunk (index u32::MAX), which the zero bytes fail.
    let err = SeekableDecryptor::new(huge(1 << 32), &[&aes]).expect_err("zeros");
    assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
}

/// Found by the `envelope_decrypt` fuzz target: a body cut after a full
/// chunk, with 16 bytes appended, claims an empty final chunk that no range
/// read touches. Random access must refuse it when it opens, not serve the
/// shortened plaintext as if it were whole.
#[test]
fn random_access_authenticates_the_length() {
    let aes = aes_wrapper();
    let data = plaintext(CHUNK + 1000);
    let stream = encrypt(&data, &[&aes], &options(CHUNK), 1);
    let cut = header_len(&stream) + CHUNK + 16;
    for tail in [[0u8; 16], [0xa5; 16]] {
        let mut forged = stream[..cut].to_vec();
        forged.extend_from_slice(&tail);
        let err = SeekableDecryptor::new(Cursor::new(&forged), &[&aes]).expect_err("forged end");
        assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
        // Streaming refuses it too, having released at most the verified
        // first batch's plaintext, never more than the real prefix.
        let (out, result) = decrypt(&forged, &[&aes], 1);
        assert!(result.is_err());
        assert!(out == data[..out.len()]);
    }
}
