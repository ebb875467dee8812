//! Golden files: `tests/data/ok_*.srm` streams that must keep decrypting to
//! their plaintext, and `tests/data/fail_*.srm` streams, each one documented
//! change away from an `ok_*` file, that must fail with one exact error and
//! release no plaintext of the failing chunk. Each failure names the keys
//! the reader holds ([`GoldenKey`]); some `ok_*` files are also checked
//! with keys that must not open them.
//!
//! The sealed `ok_*` files have random salts and DEKs, so they are
//! generated once and committed. Every other vector is derived from them
//! and the golden key material deterministically: the checks below derive
//! each one again and compare it with the committed file. To write the
//! derived files (new vectors; the sealed `ok_*` files are kept):
//!
//! ```text
//! STRONGROOM_REGENERATE_GOLDEN=derived cargo test -p strongroom-envelope --test golden
//! ```
//!
//! To regenerate everything, sealed files included (only when the format
//! changes on purpose; the RSA key and the AES KEK are kept), set the
//! variable to `1` instead.
//!
//! (`cargo test`, not `cargo nextest`: nextest runs each test in its own
//! process, and each would write different random files.) Without the
//! variable every test only reads and checks.
//!
//! Plaintext of every `ok_*` file: `plaintext(len)` of `common/mod.rs`, byte
//! `i` = `i mod 251`. The fail tests decrypt on one thread, so a batch is
//! two chunks and the plaintext released before the error is exact.

#[path = "golden/check.rs"]
mod check;
mod common;
#[path = "golden/derive.rs"]
mod derive;
#[path = "golden/index.rs"]
mod index;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Cursor, Seek, SeekFrom};

use common::GoldenKey::{self, Aes, AesOtherName, AesUnversioned, AesWrongBytes, Rsa, RsaPublic};
use common::{
    RawRecord, aes_ref, data_dir, decrypt_with, encrypt, golden_dek, golden_wrap, header_len,
    plaintext, read_all, read_data, rewrite_records, rsa_ref, seal_chunks,
};
use strongroom_envelope::{
    Error, Header, HeaderOptions, KeyRef, KeyWrapper, SeekableDecryptor, WrapAlgorithm,
};

use check::{check_fail, check_ok, check_wrong_keys};
use derive::{
    algorithm_mismatch, empty_final_chunk, empty_version, flip, join, records_skipped, set,
    several, split, wrong_length_key,
};
use index::{errors_tsv, readme, regenerate, vectors_tsv};

const REGENERATE: &str = "STRONGROOM_REGENERATE_GOLDEN";

/// Chunk size of most `ok_*` files.
const C: usize = 8192;
/// A full chunk in the body: ciphertext and tag.
const S: usize = C + 16;

// ---------------------------------------------------------------------------
// The ok files.

/// How an ok file is made.
enum Make {
    /// Sealed afresh, one record per key: random, so only written by a full
    /// regeneration.
    Seal(&'static [GoldenKey]),
    /// Derived from committed files and the golden key material.
    Derive(fn() -> Vec<u8>),
}

struct OkCase {
    file: &'static str,
    about: &'static str,
    /// `None`: the default (1 MiB).
    chunk: Option<usize>,
    len: usize,
    metadata: &'static [(&'static str, &'static str)],
    make: Make,
    /// Sets of keys each of which opens it on its own.
    opens_with: &'static [&'static [GoldenKey]],
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
        make: Make::Seal(&[Aes]),
        opens_with: &[&[Aes]],
    },
    OkCase {
        file: "ok_one_byte.srm",
        about: "1 byte, default 1 MiB chunks",
        chunk: None,
        len: 1,
        metadata: &[],
        make: Make::Seal(&[Aes]),
        opens_with: &[&[Aes]],
    },
    OkCase {
        file: "ok_one_chunk.srm",
        about: "exactly one full 8 KiB chunk",
        chunk: Some(C),
        len: C,
        metadata: &[],
        make: Make::Seal(&[Aes]),
        opens_with: &[&[Aes]],
    },
    OkCase {
        file: "ok_chunk_plus_one.srm",
        about: "one full 8 KiB chunk and a final chunk of 1 byte",
        chunk: Some(C),
        len: C + 1,
        metadata: &[],
        make: Make::Seal(&[Aes]),
        opens_with: &[&[Aes]],
    },
    OkCase {
        file: "ok_several_chunks.srm",
        about: "five full 8 KiB chunks and a final chunk of 1000 bytes",
        chunk: Some(C),
        len: 5 * C + 1000,
        metadata: &[],
        make: Make::Seal(&[Aes]),
        opens_with: &[&[Aes]],
    },
    OkCase {
        file: "ok_metadata.srm",
        about: "three metadata entries (created, item, recovery-point)",
        chunk: Some(C),
        len: 3000,
        metadata: METADATA,
        make: Make::Seal(&[Aes]),
        opens_with: &[&[Aes]],
    },
    OkCase {
        file: "ok_two_keys.srm",
        about: "two wrapped keys: A256KW (record 0) and RSA-OAEP-256 (record 1)",
        chunk: Some(C),
        len: 10_000,
        metadata: &[],
        make: Make::Seal(&[Aes, Rsa]),
        opens_with: &[&[Aes], &[Rsa]],
    },
    OkCase {
        file: "ok_chunk_4096.srm",
        about: "the smallest chunk size, 4 KiB: three full chunks and 5 bytes",
        chunk: Some(4096),
        len: 3 * 4096 + 5,
        metadata: &[],
        make: Make::Seal(&[Aes]),
        opens_with: &[&[Aes]],
    },
    OkCase {
        file: "ok_empty_version.srm",
        about: "`ok_one_byte.srm` with its record's key version `v1` removed (its length 02 -> \
                00) and the header MAC recomputed: only a key held with the empty version \
                opens it",
        chunk: None,
        len: 1,
        metadata: &[],
        make: Make::Derive(empty_version),
        opens_with: &[&[AesUnversioned]],
    },
    OkCase {
        file: "ok_records_skipped.srm",
        about: "`ok_one_byte.srm` with three records under `aes` before its own, header MAC \
                recomputed: its wrapped DEK with bit 0 flipped (integrity check fails), the \
                wrap of DEK || 16 zero bytes (48 bytes), the wrap of the all-zero key \
                (commitment fails). A reader skips each and opens record 3",
        chunk: None,
        len: 1,
        metadata: &[],
        make: Make::Derive(records_skipped),
        opens_with: &[&[Aes]],
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
    ok_empty_version => "ok_empty_version.srm",
    ok_records_skipped => "ok_records_skipped.srm",
}

// ---------------------------------------------------------------------------
// The fail files.

/// What a reader holding `keys` must report.
struct Outcome {
    keys: &'static [GoldenKey],
    /// The pattern the error matches, as written.
    error: &'static str,
    expect: fn(&Error) -> bool,
    /// Plaintext bytes released before the error when decrypting on one
    /// thread (two chunks per batch): only whole batches that verified.
    released: usize,
}

struct FailCase {
    /// The test's name; the file is `<name>.srm`.
    name: &'static str,
    /// The ok file whose plaintext it started as.
    from: &'static str,
    change: &'static str,
    mutate: fn() -> Vec<u8>,
    outcomes: Vec<Outcome>,
}

/// `keys:` is the golden AES key alone unless given.
macro_rules! keys_or_aes {
    () => {
        &[Aes]
    };
    ($keys:expr) => {
        $keys
    };
}

macro_rules! fail_tests {
    ($(
        $name:ident {
            from: $from:literal,
            change: $change:literal,
            mutate: $mutate:expr,
            $(
                $(keys: $keys:expr,)?
                error: $pat:pat $(if $guard:expr)?,
                released: $released:expr,
            )+
        }
    )*) => {
        fn fail_cases() -> Vec<FailCase> {
            vec![$(
                FailCase {
                    name: stringify!($name),
                    from: $from,
                    change: $change,
                    mutate: $mutate,
                    outcomes: vec![$(
                        Outcome {
                            keys: keys_or_aes!($($keys)?),
                            error: stringify!($pat $(if $guard)?),
                            expect: |e| matches!(e, $pat $(if $guard)?),
                            released: $released,
                        },
                    )+],
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
    fail_empty_final_chunk {
        from: "ok_one_chunk.srm",
        change: "body sealed again under its DEK as chunk 0 (8192 bytes, not final) and an \
                 empty final chunk 1, both tags valid",
        mutate: empty_final_chunk,
        error: Error::DecryptionFailed,
        released: 0,
    }
    fail_unknown_wrap_algorithm {
        from: "ok_two_keys.srm",
        change: "byte 151 (record 1's wrap algorithm) 02 -> 04, header MAC recomputed: \
                 record 0 would open it",
        mutate: || rewrite_records(&read_data("ok_two_keys.srm"), |r| r[1].algorithm = 4),
        error: Error::Malformed { offset: 151, .. },
        released: 0,
    }
    fail_record_wrong_length_key {
        from: "ok_several_chunks.srm",
        change: "wrapped DEK replaced by the wrap (RFC 3394, golden KEK) of DEK || 16 zero \
                 bytes, wrapped length 40 -> 56, header MAC recomputed: taking its first 32 \
                 bytes would open it",
        mutate: wrong_length_key,
        error: Error::DecryptionFailed,
        released: 0,
    }
    fail_record_algorithm_mismatch {
        from: "ok_two_keys.srm",
        change: "byte 151 (record 1's wrap algorithm) 02 (RSA-OAEP-256) -> 03 (RSA-OAEP, \
                 SHA-1); MAC not recomputed. The RSA key, held as RSA-OAEP-256, matches no \
                 record; with the AES key record 0 opens and the MAC fails",
        mutate: algorithm_mismatch,
        keys: &[Rsa],
        error: Error::NoMatchingKey { recorded }
            if *recorded == [aes_ref(), KeyRef { algorithm: WrapAlgorithm::RsaOaep, ..rsa_ref() }],
        released: 0,
        keys: &[Aes, Rsa],
        error: Error::DecryptionFailed,
        released: 0,
    }
    fail_metadata_order {
        from: "ok_metadata.srm",
        change: "bit 3 of byte 109 (first byte of the second key, `item`) flipped: `atem` sorts \
                 before `created`",
        mutate: || flip(read_data("ok_metadata.srm"), 109, 3),
        error: Error::Malformed { offset: 108, .. },
        released: 0,
    }
    fail_record_version_utf8 {
        from: "ok_two_keys.srm",
        change: "bit 7 of byte 176 (record 1's key version `7`) flipped: not UTF-8, though \
                 record 0 would open the stream",
        mutate: || flip(read_data("ok_two_keys.srm"), 176, 7),
        error: Error::Malformed { offset: 176, .. },
        released: 0,
    }
    fail_record_empty_name {
        from: "ok_several_chunks.srm",
        change: "byte 93 (the record's key name length) 0c -> 00",
        mutate: || set(several(), 93, &[0]),
        error: Error::Malformed { offset: 93, .. },
        released: 0,
    }
    fail_record_wrapped_length {
        from: "ok_several_chunks.srm",
        change: "bytes 109-110 (the wrapped DEK's length) 00 28 -> 04 01 (1025, over the limit)",
        mutate: || set(several(), 109, &[0x04, 0x01]),
        error: Error::Malformed { offset: 109, .. },
        released: 0,
    }
    fail_record_other_vault {
        from: "ok_several_chunks.srm",
        change: "the record's vault `golden-vault` -> `golden-vaulu` (bit 0 of its last byte), \
                 header MAC recomputed: the same key name in another vault",
        mutate: || rewrite_records(&several(), |r| r[0].vault = b"golden-vaulu".to_vec()),
        error: Error::NoMatchingKey { recorded }
            if recorded.len() == 1 && recorded[0].vault == "golden-vaulu",
        released: 0,
    }
}

// ---------------------------------------------------------------------------
// Wrong keys: ok files that the keys held must not open (no file needed).

struct WrongKeys {
    name: &'static str,
    file: &'static str,
    why: &'static str,
    outcome: Outcome,
}

macro_rules! wrong_key_tests {
    ($(
        $name:ident {
            file: $file:literal,
            why: $why:literal,
            keys: $keys:expr,
            error: $pat:pat $(if $guard:expr)?,
        }
    )*) => {
        fn wrong_key_cases() -> Vec<WrongKeys> {
            vec![$(
                WrongKeys {
                    name: stringify!($name),
                    file: $file,
                    why: $why,
                    outcome: Outcome {
                        keys: $keys,
                        error: stringify!($pat $(if $guard)?),
                        expect: |e| matches!(e, $pat $(if $guard)?),
                        released: 0,
                    },
                },
            )*]
        }

        $(
            #[test]
            fn $name() {
                regenerate_if_asked();
                check_wrong_keys(stringify!($name));
            }
        )*
    };
}

wrong_key_tests! {
    wrong_key_name_is_no_matching_key {
        file: "ok_several_chunks.srm",
        why: "the golden KEK's bytes under another key name: records are matched by their \
              key reference, not by trying keys",
        keys: &[AesOtherName],
        error: Error::NoMatchingKey { recorded } if *recorded == [aes_ref()],
    }
    no_matching_key_lists_every_record {
        file: "ok_two_keys.srm",
        why: "no record matches: every recorded key reference is listed, in header order",
        keys: &[AesOtherName],
        error: Error::NoMatchingKey { recorded } if *recorded == [aes_ref(), rsa_ref()],
    }
    wrong_key_bytes_is_decryption_failed {
        file: "ok_several_chunks.srm",
        why: "the record matches, but the key is another: unwrapping fails",
        keys: &[AesWrongBytes],
        error: Error::DecryptionFailed,
    }
    unversioned_key_does_not_match_a_version {
        file: "ok_several_chunks.srm",
        why: "a key held with the empty version matches only records with the empty version",
        keys: &[AesUnversioned],
        error: Error::NoMatchingKey { recorded } if *recorded == [aes_ref()],
    }
    versioned_key_does_not_match_an_empty_version {
        file: "ok_empty_version.srm",
        why: "a record with the empty version matches only a key held with the empty version",
        keys: &[Aes],
        error: Error::NoMatchingKey { recorded }
            if *recorded == [KeyRef { version: String::new(), ..aes_ref() }],
    }
    wrap_only_key_is_key_unavailable {
        file: "ok_two_keys.srm",
        why: "the RSA record matches, but only the public key is held",
        keys: &[RsaPublic],
        error: Error::KeyUnavailable { key, .. } if **key == rsa_ref(),
    }
    a_refusal_outranks_a_failed_unwrap {
        file: "ok_two_keys.srm",
        why: "record 0 fails to unwrap (wrong key) and record 1's key refuses: key unavailable",
        keys: &[AesWrongBytes, RsaPublic],
        error: Error::KeyUnavailable { key, .. } if **key == rsa_ref(),
    }
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
        if let Make::Derive(derive) = case.make {
            assert!(
                stream == derive(),
                "{} is stale; regenerate (see golden.rs)",
                case.file
            );
        }
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
            "errors.tsv",
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
    assert_eq!(
        String::from_utf8(read_data("errors.tsv")).expect("UTF-8"),
        errors_tsv(),
        "tests/data/errors.tsv is stale; regenerate (see golden.rs)"
    );
}

/// With `STRONGROOM_REGENERATE_GOLDEN` set, rewrites the generated files
/// once per process, before any test reads them: `derived` every file
/// derived from the committed ones, `1` the sealed `ok_*` files first.
fn regenerate_if_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let sealed = match std::env::var(REGENERATE).as_deref() {
        Ok("1") => true,
        Ok("derived") => false,
        _ => return,
    };
    ONCE.call_once(|| {
        assert!(
            std::env::var_os("NEXTEST_RUN_ID").is_none(),
            "regenerate with `cargo test`, not nextest (one process per test would write \
             different random files)"
        );
        regenerate(sealed);
    });
}
