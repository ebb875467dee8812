//! Golden files: `tests/data/ok_*.srm` streams that must keep decrypting to
//! their plaintext, and `tests/data/fail_*.srm` streams, each one documented
//! change away from an `ok_*` file, that must fail with one exact error and
//! release no plaintext of the failing chunk.
//!
//! Salts and DEKs are random, so the files are generated once and committed.
//! To regenerate (only when the format changes on purpose; the RSA key and
//! the AES KEK are kept):
//!
//! ```text
//! STRONGROOM_REGENERATE_GOLDEN=1 cargo test -p strongroom-envelope --test golden
//! ```
//!
//! (`cargo test`, not `cargo nextest`: nextest runs each test in its own
//! process, and each would write different random files.) Without the
//! variable every test only reads and checks.
//!
//! Plaintext of every `ok_*` file: `plaintext(len)` of `common/mod.rs`, byte
//! `i` = `i mod 251`. The fail tests decrypt on one thread, so a batch is
//! two chunks and the plaintext released before the error is exact.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Seek, SeekFrom};

use common::{
    aes_ref, aes_wrapper, aes_wrapper_with, data_dir, decrypt, encrypt, header_len, plaintext,
    read_all, read_data, rsa_ref, rsa_wrapper,
};
use strongroom_envelope::{
    Error, Header, HeaderOptions, KeyRef, KeyWrapper, SeekableDecryptor, WrapAlgorithm,
};

const REGENERATE: &str = "STRONGROOM_REGENERATE_GOLDEN";

/// Chunk size of most `ok_*` files.
const C: usize = 8192;
/// A full chunk in the body: ciphertext and tag.
const S: usize = C + 16;

// ---------------------------------------------------------------------------
// The ok files.

struct OkCase {
    file: &'static str,
    about: &'static str,
    /// `None`: the default (1 MiB).
    chunk: Option<usize>,
    len: usize,
    metadata: &'static [(&'static str, &'static str)],
    /// Also wrapped under the RSA key (second record).
    rsa: bool,
}

const METADATA: &[(&str, &str)] = &[
    ("created", "2026-11-29T12:00:00Z"),
    ("item", "vm-42"),
    ("recovery-point", "rp-0001"),
];

const OK: &[OkCase] = &[
    OkCase {
        file: "ok_empty.srm",
        about: "empty plaintext, default 1 MiB chunks: one empty final chunk",
        chunk: None,
        len: 0,
        metadata: &[],
        rsa: false,
    },
    OkCase {
        file: "ok_one_byte.srm",
        about: "1 byte, default 1 MiB chunks",
        chunk: None,
        len: 1,
        metadata: &[],
        rsa: false,
    },
    OkCase {
        file: "ok_one_chunk.srm",
        about: "exactly one full 8 KiB chunk",
        chunk: Some(C),
        len: C,
        metadata: &[],
        rsa: false,
    },
    OkCase {
        file: "ok_chunk_plus_one.srm",
        about: "one full 8 KiB chunk and a final chunk of 1 byte",
        chunk: Some(C),
        len: C + 1,
        metadata: &[],
        rsa: false,
    },
    OkCase {
        file: "ok_several_chunks.srm",
        about: "five full 8 KiB chunks and a final chunk of 1000 bytes",
        chunk: Some(C),
        len: 5 * C + 1000,
        metadata: &[],
        rsa: false,
    },
    OkCase {
        file: "ok_metadata.srm",
        about: "three metadata entries (created, item, recovery-point)",
        chunk: Some(C),
        len: 3000,
        metadata: METADATA,
        rsa: false,
    },
    OkCase {
        file: "ok_two_keys.srm",
        about: "two wrapped keys: A256KW (record 0) and RSA-OAEP-256 (record 1)",
        chunk: Some(C),
        len: 10_000,
        metadata: &[],
        rsa: true,
    },
    OkCase {
        file: "ok_chunk_4096.srm",
        about: "the smallest chunk size, 4 KiB: three full chunks and 5 bytes",
        chunk: Some(4096),
        len: 3 * 4096 + 5,
        metadata: &[],
        rsa: false,
    },
];

fn ok_case(file: &str) -> &'static OkCase {
    OK.iter().find(|c| c.file == file).expect("an ok case")
}

fn ok_options(case: &OkCase) -> HeaderOptions {
    let mut options = HeaderOptions::default();
    if let Some(chunk) = case.chunk {
        options = options.chunk_size(chunk).expect("chunk size");
    }
    for (k, v) in case.metadata {
        options = options.metadata(*k, *v);
    }
    options
}

fn check_ok(case: &OkCase) {
    let stream = read_data(case.file);
    let want = plaintext(case.len);
    let aes = aes_wrapper();
    let rsa = rsa_wrapper();
    let mut keys: Vec<(&str, &dyn KeyWrapper)> = vec![("A256KW", &aes)];
    if case.rsa {
        keys.push(("RSA-OAEP-256", &rsa));
    }

    // The header says what the case says.
    let header = Header::from_bytes(&stream[..header_len(&stream)]).expect("header");
    assert_eq!(
        header.chunk_size(),
        case.chunk.unwrap_or(1 << 20),
        "{}",
        case.file
    );
    let metadata: BTreeMap<String, String> = case
        .metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(header.metadata(), &metadata, "{}", case.file);
    let mut refs = vec![aes_ref()];
    if case.rsa {
        refs.push(rsa_ref());
    }
    assert_eq!(
        header.key_refs().cloned().collect::<Vec<_>>(),
        refs,
        "{}",
        case.file
    );

    for (name, key) in keys {
        // Every record opens the stream on its own, on any thread count.
        for threads in [1, 2, 3] {
            let (out, result) = decrypt(&stream, &[key], threads);
            result.unwrap_or_else(|e| panic!("{} with {name} on {threads}: {e}", case.file));
            assert!(
                out == want,
                "{} with {name} on {threads} threads",
                case.file
            );
        }
        let mut seekable =
            SeekableDecryptor::new(std::io::Cursor::new(&stream), &[key]).expect("seekable");
        assert_eq!(seekable.plaintext_len(), case.len as u64, "{}", case.file);
        assert!(
            seekable.read_range(0, case.len).expect("range") == want,
            "{}",
            case.file
        );
        assert_eq!(seekable.header().expect("header").metadata(), &metadata);
    }
}

macro_rules! ok_tests {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                regenerate_if_asked();
                check_ok(ok_case($file));
            }
        )*

        /// Every ok case has its test.
        const OK_TESTED: &[&str] = &[$($file),*];
    };
}

ok_tests! {
    ok_empty => "ok_empty.srm",
    ok_one_byte => "ok_one_byte.srm",
    ok_one_chunk => "ok_one_chunk.srm",
    ok_chunk_plus_one => "ok_chunk_plus_one.srm",
    ok_several_chunks => "ok_several_chunks.srm",
    ok_metadata => "ok_metadata.srm",
    ok_two_keys => "ok_two_keys.srm",
    ok_chunk_4096 => "ok_chunk_4096.srm",
}

// ---------------------------------------------------------------------------
// The fail files.

struct FailCase {
    /// The test's name; the file is `<name>.srm`.
    name: &'static str,
    /// The ok file whose plaintext it started as.
    from: &'static str,
    change: &'static str,
    mutate: fn() -> Vec<u8>,
    error: &'static str,
    expect: fn(&Error) -> bool,
    /// Plaintext bytes released before the error when decrypting on one
    /// thread (two chunks per batch): only whole batches that verified.
    released: usize,
}

fn several() -> Vec<u8> {
    read_data("ok_several_chunks.srm")
}

fn flip(mut bytes: Vec<u8>, at: usize, bit: u8) -> Vec<u8> {
    bytes[at] ^= 1 << bit;
    bytes
}

/// Header and body chunks of a stream with 8 KiB chunks.
fn split(stream: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let h = header_len(stream);
    (stream[..h].to_vec(), common::chunks(&stream[h..], C))
}

fn join(header: Vec<u8>, chunks: Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = header;
    for c in chunks {
        out.extend_from_slice(&c);
    }
    out
}

macro_rules! fail_tests {
    ($(
        $name:ident {
            from: $from:literal,
            change: $change:literal,
            mutate: $mutate:expr,
            error: $pat:pat $(if $guard:expr)?,
            released: $released:expr,
        }
    )*) => {
        fn fail_cases() -> Vec<FailCase> {
            vec![$(
                FailCase {
                    name: stringify!($name),
                    from: $from,
                    change: $change,
                    mutate: $mutate,
                    error: stringify!($pat $(if $guard)?),
                    expect: |e| matches!(e, $pat $(if $guard)?),
                    released: $released,
                },
            )*]
        }

        $(
            #[test]
            fn $name() {
                regenerate_if_asked();
                check_fail(stringify!($name));
            }
        )*
    };
}

fail_tests! {
    fail_magic {
        from: "ok_several_chunks.srm",
        change: "bit 0 of byte 0 (magic) flipped: 89 -> 88",
        mutate: || flip(several(), 0, 0),
        error: Error::Malformed { offset: 0, .. },
        released: 0,
    }
    fail_version {
        from: "ok_several_chunks.srm",
        change: "bit 1 of byte 8 (version) flipped: 01 -> 03",
        mutate: || flip(several(), 8, 1),
        error: Error::UnsupportedVersion(3),
        released: 0,
    }
    fail_suite {
        from: "ok_several_chunks.srm",
        change: "bit 1 of byte 9 (suite) flipped: 01 -> 03",
        mutate: || flip(several(), 9, 1),
        error: Error::UnsupportedSuite(3),
        released: 0,
    }
    fail_chunk_size {
        from: "ok_several_chunks.srm",
        change: "bit 4 of byte 10 (chunk size) flipped: 0d -> 1d (2^29, out of range)",
        mutate: || flip(several(), 10, 4),
        error: Error::Malformed { offset: 10, .. },
        released: 0,
    }
    fail_flags {
        from: "ok_several_chunks.srm",
        change: "bit 0 of byte 11 (flags) flipped: 00 -> 01",
        mutate: || flip(several(), 11, 0),
        error: Error::Malformed { offset: 11, .. },
        released: 0,
    }
    fail_salt {
        from: "ok_several_chunks.srm",
        change: "bit 0 of byte 12 (first salt byte) flipped: header MAC fails",
        mutate: || flip(several(), 12, 0),
        error: Error::DecryptionFailed,
        released: 0,
    }
    fail_commitment {
        from: "ok_several_chunks.srm",
        change: "bit 0 of byte 44 (first commitment byte) flipped",
        mutate: || flip(several(), 44, 0),
        error: Error::DecryptionFailed,
        released: 0,
    }
    fail_metadata {
        from: "ok_metadata.srm",
        change: "bit 0 of byte 88 (first byte of the value of `created`) flipped: '2' -> '3'",
        mutate: || flip(read_data("ok_metadata.srm"), 88, 0),
        error: Error::DecryptionFailed,
        released: 0,
    }
    fail_metadata_utf8 {
        from: "ok_metadata.srm",
        change: "bit 7 of byte 88 (first byte of the value of `created`) flipped: not UTF-8",
        mutate: || flip(read_data("ok_metadata.srm"), 88, 7),
        error: Error::Malformed { offset: 88, .. },
        released: 0,
    }
    fail_record_wrapped {
        from: "ok_several_chunks.srm",
        change: "bit 0 of the first byte of the wrapped DEK (header length - 72) flipped",
        mutate: || {
            let s = several();
            let at = header_len(&s) - 32 - 40;
            flip(s, at, 0)
        },
        error: Error::DecryptionFailed,
        released: 0,
    }
    fail_record_key_version {
        from: "ok_several_chunks.srm",
        change: "bit 0 of the first byte of the record's key version flipped: v1 -> w1",
        mutate: || {
            let s = several();
            let at = header_len(&s) - 32 - 40 - 2 - 2;
            flip(s, at, 0)
        },
        error: Error::NoMatchingKey { recorded }
            if recorded.len() == 1 && recorded[0].version == "w1" && recorded[0].name == "platform-key",
        released: 0,
    }
    fail_mac {
        from: "ok_several_chunks.srm",
        change: "bit 0 of the last header byte (header MAC) flipped",
        mutate: || {
            let s = several();
            let at = header_len(&s) - 1;
            flip(s, at, 0)
        },
        error: Error::DecryptionFailed,
        released: 0,
    }
    fail_body_chunk {
        from: "ok_several_chunks.srm",
        change: "bit 0 of the first ciphertext byte of chunk 3 flipped",
        mutate: || {
            let s = several();
            let at = header_len(&s) + 3 * S;
            flip(s, at, 0)
        },
        error: Error::DecryptionFailed,
        released: 2 * C,
    }
    fail_body_tag {
        from: "ok_several_chunks.srm",
        change: "bit 7 of the last byte (the final chunk's tag) flipped",
        mutate: || {
            let s = several();
            let at = s.len() - 1;
            flip(s, at, 7)
        },
        error: Error::DecryptionFailed,
        released: 4 * C,
    }
    fail_truncated_header {
        from: "ok_several_chunks.srm",
        change: "cut to its first 100 bytes (inside the wrapped-key record)",
        mutate: || several()[..100].to_vec(),
        error: Error::Truncated,
        released: 0,
    }
    fail_header_only {
        from: "ok_several_chunks.srm",
        change: "cut at the end of the header: no body",
        mutate: || {
            let s = several();
            s[..header_len(&s)].to_vec()
        },
        error: Error::Truncated,
        released: 0,
    }
    fail_truncated_at_boundary {
        from: "ok_several_chunks.srm",
        change: "the final chunk (5) removed: cut at a chunk boundary",
        mutate: || {
            let (h, mut c) = split(&several());
            c.pop();
            join(h, c)
        },
        error: Error::DecryptionFailed,
        released: 4 * C,
    }
    fail_truncated_mid_chunk {
        from: "ok_several_chunks.srm",
        change: "cut 100 bytes into chunk 3",
        mutate: || {
            let s = several();
            s[..header_len(&s) + 3 * S + 100].to_vec()
        },
        error: Error::DecryptionFailed,
        released: 2 * C,
    }
    fail_truncated_in_tag {
        from: "ok_several_chunks.srm",
        change: "cut 10 bytes into chunk 4: fewer than 16 bytes left for a final chunk",
        mutate: || {
            let s = several();
            s[..header_len(&s) + 4 * S + 10].to_vec()
        },
        error: Error::Truncated,
        released: 4 * C,
    }
    fail_body_too_short {
        from: "ok_one_byte.srm",
        change: "the 17-byte body cut to 15 bytes (less than a tag)",
        mutate: || {
            let s = read_data("ok_one_byte.srm");
            s[..header_len(&s) + 15].to_vec()
        },
        error: Error::Truncated,
        released: 0,
    }
    fail_swapped_chunks {
        from: "ok_several_chunks.srm",
        change: "chunks 0 and 1 swapped",
        mutate: || {
            let (h, mut c) = split(&several());
            c.swap(0, 1);
            join(h, c)
        },
        error: Error::DecryptionFailed,
        released: 0,
    }
    fail_duplicated_chunk {
        from: "ok_several_chunks.srm",
        change: "chunk 1 duplicated (0 1 1 2 3 4 5)",
        mutate: || {
            let (h, mut c) = split(&several());
            let dup = c[1].clone();
            c.insert(2, dup);
            join(h, c)
        },
        error: Error::DecryptionFailed,
        released: 2 * C,
    }
    fail_spliced_chunk {
        from: "ok_several_chunks.srm",
        change: "chunk 0 replaced by chunk 0 of ok_chunk_plus_one.srm (same index, size and KEK)",
        mutate: || {
            let (h, mut c) = split(&several());
            let (_, other) = split(&read_data("ok_chunk_plus_one.srm"));
            c[0] = other[0].clone();
            join(h, c)
        },
        error: Error::DecryptionFailed,
        released: 0,
    }
    fail_other_header {
        from: "ok_several_chunks.srm",
        change: "header replaced by the header of ok_chunk_plus_one.srm (same KEK, opens)",
        mutate: || {
            let (_, c) = split(&several());
            let (h, _) = split(&read_data("ok_chunk_plus_one.srm"));
            join(h, c)
        },
        error: Error::DecryptionFailed,
        released: 0,
    }
    fail_appended_byte {
        from: "ok_several_chunks.srm",
        change: "one zero byte appended",
        mutate: || {
            let mut s = several();
            s.push(0);
            s
        },
        error: Error::DecryptionFailed,
        released: 4 * C,
    }
}

fn fail_case(name: &str) -> FailCase {
    fail_cases()
        .into_iter()
        .find(|c| c.name == name)
        .expect("a fail case")
}

fn check_fail(name: &str) {
    let case = fail_case(name);
    let file = format!("{name}.srm");
    let stream = read_data(&file);
    assert!(
        stream == (case.mutate)(),
        "{file} is not `{}` applied to {}; regenerate (see golden.rs)",
        case.change,
        case.from
    );
    let want = plaintext(ok_case(case.from).len);
    let aes = aes_wrapper();

    // One thread: batches of two chunks, so what comes out is exact.
    let (out, result) = decrypt(&stream, &[&aes], 1);
    let err = result.expect_err(&file);
    assert!(
        (case.expect)(&err),
        "{file}: got {err:?}, want {}",
        case.error
    );
    assert_eq!(out.len(), case.released, "{file}: plaintext released");
    assert!(
        out == want[..case.released],
        "{file}: released bytes differ"
    );

    // More threads, bigger batches: the same error, and never more.
    for threads in [2, 3] {
        let (out, result) = decrypt(&stream, &[&aes], threads);
        let err = result.expect_err(&file);
        assert!((case.expect)(&err), "{file} on {threads}: {err:?}");
        assert!(out.len() <= case.released, "{file} on {threads}: released");
        assert!(out == want[..out.len()], "{file} on {threads}");
    }

    // Random access fails too, through either API.
    if let Ok(mut seekable) = SeekableDecryptor::new(std::io::Cursor::new(&stream), &[&aes]) {
        let len = usize::try_from(seekable.plaintext_len()).expect("small");
        assert!(seekable.read_range(0, len).is_err(), "{file}: read_range");
        seekable.seek(SeekFrom::Start(0)).expect("seek");
        let mut out = Vec::new();
        assert!(read_all(&mut seekable, &mut out).is_err(), "{file}: Read");
        assert!(out == want[..out.len()], "{file}: Read released");
    }
}

// ---------------------------------------------------------------------------
// Wrong keys (no file needed: the ok file with another key).

#[test]
fn fail_wrong_key_ref_is_no_matching_key() {
    regenerate_if_asked();
    let other_ref = KeyRef::new("golden-vault", "other-key", "v1", WrapAlgorithm::A256Kw);
    // The right key bytes under another name: records are matched by name.
    let wrapper = aes_wrapper_with(other_ref, 0);
    for file in ["ok_several_chunks.srm", "ok_two_keys.srm"] {
        let (out, result) = decrypt(&read_data(file), &[&wrapper], 1);
        let err = result.expect_err(file);
        let Error::NoMatchingKey { recorded } = &err else {
            panic!("{file}: {err:?}");
        };
        let mut want = vec![aes_ref()];
        if file == "ok_two_keys.srm" {
            want.push(rsa_ref());
        }
        assert_eq!(recorded, &want);
        assert!(out.is_empty());
    }
}

#[test]
fn fail_wrong_key_bytes_is_decryption_failed() {
    regenerate_if_asked();
    let wrapper = aes_wrapper_with(aes_ref(), 0x5a);
    let (out, result) = decrypt(&several(), &[&wrapper], 1);
    assert!(matches!(result, Err(Error::DecryptionFailed)), "{result:?}");
    assert!(out.is_empty());
}

// ---------------------------------------------------------------------------
// Generation and the index of the files.

#[test]
fn golden_files_are_current() {
    regenerate_if_asked();
    assert_eq!(OK_TESTED.len(), OK.len(), "an ok case without its test");
    for case in OK {
        let stream = read_data(case.file);
        Header::from_bytes(&stream[..header_len(&stream)]).expect(case.file);
    }
    for case in fail_cases() {
        let file = format!("{}.srm", case.name);
        assert!(
            read_data(&file) == (case.mutate)(),
            "{file} is stale; regenerate (see golden.rs)"
        );
    }
    // No stray vectors: every file in tests/data is known.
    let mut known: Vec<String> = OK.iter().map(|c| c.file.to_owned()).collect();
    known.extend(fail_cases().iter().map(|c| format!("{}.srm", c.name)));
    known.extend(
        [
            "README.md",
            "ok_vectors.tsv",
            "kek_a256kw.hex",
            "rsa2048_pkcs8.pem",
        ]
        .map(String::from),
    );
    for entry in std::fs::read_dir(data_dir()).expect("tests/data") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("UTF-8");
        assert!(known.contains(&name), "unknown file tests/data/{name}");
    }
    assert_eq!(
        String::from_utf8(read_data("README.md")).expect("UTF-8"),
        readme(),
        "tests/data/README.md is stale; regenerate (see golden.rs)"
    );
    assert_eq!(
        String::from_utf8(read_data("ok_vectors.tsv")).expect("UTF-8"),
        vectors_tsv(),
        "tests/data/ok_vectors.tsv is stale; regenerate (see golden.rs)"
    );
}

/// With `STRONGROOM_REGENERATE_GOLDEN=1`, rewrites every generated file once
/// per process, before any test reads them.
fn regenerate_if_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os(REGENERATE).is_none_or(|v| v != "1") {
        return;
    }
    ONCE.call_once(|| {
        assert!(
            std::env::var_os("NEXTEST_RUN_ID").is_none(),
            "regenerate with `cargo test`, not nextest (one process per test would write \
             different random files)"
        );
        regenerate();
    });
}

fn regenerate() {
    let dir = data_dir();
    let aes = aes_wrapper();
    let rsa = rsa_wrapper();
    for case in OK {
        let mut wrappers: Vec<&dyn KeyWrapper> = vec![&aes];
        if case.rsa {
            wrappers.push(&rsa);
        }
        let stream = encrypt(&plaintext(case.len), &wrappers, &ok_options(case), 1);
        std::fs::write(dir.join(case.file), stream).expect("write ok file");
    }
    // After the ok files: the mutations read them.
    for case in fail_cases() {
        std::fs::write(dir.join(format!("{}.srm", case.name)), (case.mutate)())
            .expect("write fail file");
    }
    std::fs::write(dir.join("README.md"), readme()).expect("write README");
    std::fs::write(dir.join("ok_vectors.tsv"), vectors_tsv()).expect("write tsv");
}

/// For `third_party_decrypt.py`: file, plaintext length, chunk size.
fn vectors_tsv() -> String {
    let mut out = String::from("# file\tplaintext_len\tchunk_size\n");
    for case in OK {
        let chunk = case.chunk.unwrap_or(1 << 20);
        writeln!(out, "{}\t{}\t{chunk}", case.file, case.len).expect("fmt");
    }
    out
}

fn readme() -> String {
    let mut out = String::from(
        "# Envelope test vectors (generated; do not edit)\n\
         \n\
         Written by `STRONGROOM_REGENERATE_GOLDEN=1 cargo test -p strongroom-envelope \
         --test golden`\n\
         and checked by `tests/golden.rs`; the format is docs/FORMAT.md.\n\
         \n\
         Key material:\n\
         \n\
         - `kek_a256kw.hex`: the AES-256 KEK (hex), key reference \
         `golden-vault/platform-key/v1`, A256KW.\n\
         - `rsa2048_pkcs8.pem`: the RSA-2048 private key (PKCS#8), key reference\n  \
         `customer-vault/cmk-rsa/7`, RSA-OAEP-256 (generated once with `openssl genpkey`).\n\
         \n\
         Plaintext of every `ok_*` file: byte `i` is `i mod 251`; lengths in `ok_vectors.tsv`.\n\
         \n\
         | file | chunk size | plaintext bytes | what |\n\
         |---|---|---|---|\n",
    );
    for case in OK {
        let chunk = case.chunk.unwrap_or(1 << 20);
        writeln!(
            out,
            "| `{}` | {chunk} | {} | {} |",
            case.file, case.len, case.about
        )
        .expect("fmt");
    }
    out.push_str(
        "\nEach `fail_*` file is one change away from an `ok_*` file. Decrypting it must \
         fail with\nthe error shown; on one thread (two chunks per batch) exactly the \
         plaintext bytes shown\ncome out first, all from chunks that verified.\n\
         \n\
         | file | from | change | error | plaintext released |\n\
         |---|---|---|---|---|\n",
    );
    for case in fail_cases() {
        writeln!(
            out,
            "| `{}.srm` | `{}` | {} | `{}` | {} |",
            case.name,
            case.from,
            case.change,
            case.error
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace('|', "\\|"),
            case.released
        )
        .expect("fmt");
    }
    out
}
