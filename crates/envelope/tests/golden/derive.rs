//! How the derived golden files are made from the committed ones and the
//! golden key material: deterministic, so every check derives them again.

use super::*;

/// `ok_empty_version.srm`.
pub(super) fn empty_version() -> Vec<u8> {
    rewrite_records(&read_data("ok_one_byte.srm"), |records| {
        records[0].version.clear();
    })
}

/// `ok_records_skipped.srm`.
pub(super) fn records_skipped() -> Vec<u8> {
    let stream = read_data("ok_one_byte.srm");
    let dek = golden_dek(&stream);
    rewrite_records(&stream, |records| {
        let good = records[0].clone();
        let mut altered = good.clone();
        altered.wrapped[0] ^= 1;
        let long = RawRecord {
            wrapped: golden_wrap(&[&dek[..], &[0u8; 16]].concat()),
            ..good.clone()
        };
        let wrong = RawRecord {
            wrapped: golden_wrap(&[0u8; 32]),
            ..good.clone()
        };
        *records = vec![altered, long, wrong, good];
    })
}

pub(super) fn several() -> Vec<u8> {
    read_data("ok_several_chunks.srm")
}

pub(super) fn flip(mut bytes: Vec<u8>, at: usize, bit: u8) -> Vec<u8> {
    bytes[at] ^= 1 << bit;
    bytes
}

pub(super) fn set(mut bytes: Vec<u8>, at: usize, new: &[u8]) -> Vec<u8> {
    bytes[at..at + new.len()].copy_from_slice(new);
    bytes
}

/// Header and body chunks of a stream with 8 KiB chunks.
pub(super) fn split(stream: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let h = header_len(stream);
    (stream[..h].to_vec(), common::chunks(&stream[h..], C))
}

pub(super) fn join(header: Vec<u8>, chunks: Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = header;
    for c in chunks {
        out.extend_from_slice(&c);
    }
    out
}

/// Offset of record 1's wrap algorithm in `ok_two_keys.srm`: after the
/// stable part (78 bytes, no metadata), the record count and record 0
/// (72 bytes: `golden-vault/platform-key/v1` and a 40-byte wrapped DEK).
const TWO_KEYS_RECORD_1: usize = 78 + 1 + 72;

/// `fail_empty_final_chunk.srm`: `ok_one_chunk.srm`'s body sealed again
/// under its DEK as a whole chunk that is not final, then an empty final
/// chunk. Both tags are valid; only the rule of one encoding refuses it.
pub(super) fn empty_final_chunk() -> Vec<u8> {
    let stream = read_data("ok_one_chunk.srm");
    let h = header_len(&stream);
    let header = Header::from_bytes(&stream[..h]).expect("header");
    let dek = golden_dek(&stream);
    let whole = plaintext(C);
    assert!(
        seal_chunks(&dek, &header, &[&whole]) == stream[h..],
        "sealing by hand reproduces the writer's body"
    );
    let mut out = stream[..h].to_vec();
    out.extend_from_slice(&seal_chunks(&dek, &header, &[&whole, &[]]));
    out
}

/// `fail_record_wrong_length_key.srm`.
pub(super) fn wrong_length_key() -> Vec<u8> {
    let stream = several();
    let dek = golden_dek(&stream);
    rewrite_records(&stream, |records| {
        records[0].wrapped = golden_wrap(&[&dek[..], &[0u8; 16]].concat());
    })
}

/// `fail_record_algorithm_mismatch.srm`.
pub(super) fn algorithm_mismatch() -> Vec<u8> {
    let mut stream = read_data("ok_two_keys.srm");
    assert_eq!(stream[TWO_KEYS_RECORD_1], 2, "record 1 is RSA-OAEP-256");
    stream[TWO_KEYS_RECORD_1] = 3;
    stream
}
