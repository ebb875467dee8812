//! A body in parts (`BodySealer`, `BodyOpener`): any split into parts, on
//! any number of threads, writes exactly the bytes the format defines (the
//! tests' reference sealer) and opens back to the plaintext; a bad part
//! releases nothing and stops the opener; parts out of order, a body cut at
//! a part boundary, or a final chunk in the wrong call all fail.

mod common;

use common::{known_header, open_header, plaintext, reference_body, reference_chunks};
use proptest::prelude::*;
use strongroom_aes::Aes256Key;
use strongroom_envelope::{
    AesKeyWrapper, BodyOpener, Error, HeaderOptions, KeyRef, OpenedHeader, SealingHeader,
    WrapAlgorithm,
};

const CHUNK: usize = 4096;
const STRIDE: usize = CHUNK + 16;

fn kek() -> AesKeyWrapper {
    AesKeyWrapper::new(
        KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
        &Aes256Key::from_bytes([9; 32]),
    )
}

/// A new header (over the tests' known DEK), and the same header as a
/// reader opens it from storage.
fn new_stream() -> (SealingHeader, OpenedHeader) {
    let options = HeaderOptions::default().chunk_size(CHUNK).unwrap();
    let sealing = known_header(&[&kek()], &options);
    let opened = open_header(sealing.header(), &[&kek()]);
    (sealing, opened)
}

/// Seals `data` in parts of `sizes` chunks each (cycling), the rest in the
/// final part, and checks the body against the reference; returns the
/// body parts and the header opened for reading.
fn seal_parts(data: &[u8], sizes: &[usize], threads: usize) -> (Vec<Vec<u8>>, OpenedHeader) {
    let (sealing, opened) = new_stream();
    let mut sealer = sealing.body_sealer(threads).unwrap();
    let mut parts = Vec::new();
    let mut at = 0;
    for &n in sizes.iter().cycle().take(64) {
        let len = n * CHUNK;
        // A part before the last leaves at least one byte for the last.
        if at + len >= data.len() {
            break;
        }
        let mut part = vec![0u8; sealer.sealed_len(len).unwrap()];
        sealer.seal(&data[at..at + len], &mut part).unwrap();
        parts.push(part);
        at += len;
    }
    let tail = &data[at..];
    let mut last = vec![0u8; sealer.final_len(tail.len()).unwrap()];
    sealer.finish(tail, &mut last).unwrap();
    parts.push(last);
    assert!(
        parts.concat() == reference_body(opened.header(), data),
        "the parts differ from the format's body ({} bytes, parts {sizes:?})",
        data.len()
    );
    (parts, opened)
}

/// Opens body parts (the last with `finish`), returning the plaintext, or
/// the error and the plaintext released before it.
fn open_parts(
    header: &OpenedHeader,
    parts: &[Vec<u8>],
    threads: usize,
) -> Result<Vec<u8>, (Error, Vec<u8>)> {
    let mut opener = header.body_opener(threads).unwrap();
    let mut plain = Vec::new();
    let (last, rest) = parts.split_last().unwrap();
    for part in rest {
        let mut out = vec![0u8; opener.opened_len(part.len()).unwrap()];
        if let Err(e) = opener.open(part, &mut out) {
            assert!(
                out.iter().all(|&b| b == 0),
                "a failed part released plaintext"
            );
            return Err((e, plain));
        }
        plain.extend_from_slice(&out);
    }
    let mut out = vec![
        0u8;
        opener
            .final_opened_len(last.len())
            .map_err(|e| (e, plain.clone()))?
    ];
    if let Err(e) = opener.finish(last, &mut out) {
        assert!(
            out.iter().all(|&b| b == 0),
            "a failed part released plaintext"
        );
        return Err((e, plain));
    }
    plain.extend_from_slice(&out);
    Ok(plain)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_split_is_the_formats_body(
        len in 0usize..(12 * CHUNK),
        sizes in proptest::collection::vec(0usize..5, 1..5),
        threads in 1usize..4,
    ) {
        let data = plaintext(len);
        let (parts, header) = seal_parts(&data, &sizes, threads);
        prop_assert_eq!(open_parts(&header, &parts, threads).unwrap(), data);
    }
}

#[test]
fn the_edges_of_chunk_lengths() {
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 1] {
        let data = plaintext(len);
        for sizes in [&[1usize][..], &[2], &[1, 3]] {
            let (parts, header) = seal_parts(&data, sizes, 2);
            assert_eq!(open_parts(&header, &parts, 2).unwrap(), data, "len {len}");
        }
    }
}

#[test]
fn a_changed_byte_fails_its_part_and_stops_the_opener() {
    let data = plaintext(7 * CHUNK + 100);
    let (parts, header) = seal_parts(&data, &[2], 2);
    assert_eq!(parts.len(), 4);
    for (p, at) in [
        (0, 0),
        (0, STRIDE + 5),
        (1, 2 * STRIDE - 1),
        (3, 0),
        (3, 115),
    ] {
        let mut bad = parts.clone();
        bad[p][at] ^= 0x20;
        let (err, released) = open_parts(&header, &bad, 2).unwrap_err();
        assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
        // Only the parts before the bad one came out, and they are right.
        assert_eq!(released, data[..p * 2 * CHUNK], "part {p}");
    }
    // After a failure the opener refuses everything, even good parts.
    let mut opener = header.body_opener(1).unwrap();
    let mut bad = parts[0].clone();
    bad[9] ^= 1;
    let mut out = vec![0u8; opener.opened_len(bad.len()).unwrap()];
    assert!(opener.open(&bad, &mut out).is_err());
    let mut out = vec![0u8; opener.opened_len(parts[0].len()).unwrap()];
    let err = opener.open(&parts[0], &mut out).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(out.iter().all(|&b| b == 0));
}

#[test]
fn parts_out_of_order_cut_short_or_in_the_wrong_call_fail() {
    let data = plaintext(6 * CHUNK + 9);
    let (parts, header) = seal_parts(&data, &[2], 1);
    assert_eq!(parts.len(), 4);
    // Two parts swapped.
    let swapped = vec![
        parts[1].clone(),
        parts[0].clone(),
        parts[2].clone(),
        parts[3].clone(),
    ];
    let (err, released) = open_parts(&header, &swapped, 1).unwrap_err();
    assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
    assert!(released.is_empty());
    // Cut after a whole part: its last chunk is not a final chunk.
    let (err, released) = open_parts(&header, &parts[..3], 1).unwrap_err();
    assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
    assert_eq!(released, data[..4 * CHUNK]);
    // Cut after a whole part, with a forged empty final chunk appended.
    let mut forged = parts[..3].to_vec();
    forged.push(vec![0xa5; 16]);
    let (err, _) = open_parts(&header, &forged, 2).unwrap_err();
    assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
    // The final chunk in `open` (whole-chunk body, so only the flag is
    // wrong): a body of exactly 2 chunks, opened without `finish`.
    let whole = plaintext(2 * CHUNK);
    let (parts, header) = seal_parts(&whole, &[1], 1);
    assert_eq!(parts.len(), 2);
    let mut opener: BodyOpener = header.body_opener(1).unwrap();
    let mut out = vec![0u8; CHUNK];
    opener.open(&parts[0], &mut out).unwrap();
    let err = opener.open(&parts[1], &mut out).unwrap_err();
    assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
    assert!(out.iter().all(|&b| b == 0));
}

#[test]
fn lengths_are_checked_and_a_refused_call_changes_nothing() {
    let data = plaintext(3 * CHUNK + 1);
    let (sealing, header) = new_stream();
    let mut sealer = sealing.body_sealer(2).unwrap();
    assert!(matches!(
        sealer.sealed_len(CHUNK + 1),
        Err(Error::InvalidArgument { .. })
    ));
    let mut part = vec![0u8; STRIDE];
    // A ragged part, and a body part of the wrong size.
    assert!(sealer.seal(&data[..CHUNK + 1], &mut part).is_err());
    assert!(
        sealer
            .seal(&data[..CHUNK], &mut part[..STRIDE - 1])
            .is_err()
    );
    // The sealer goes on as if nothing happened.
    let mut body = Vec::new();
    sealer.seal(&data[..CHUNK], &mut part).unwrap();
    body.extend_from_slice(&part);
    sealer.seal(&[], &mut []).unwrap();
    let mut last = vec![0u8; sealer.final_len(2 * CHUNK + 1).unwrap()];
    assert!(sealer.seal(&data[CHUNK..], &mut last).is_err());
    sealer.finish(&data[CHUNK..], &mut last).unwrap();
    body.extend_from_slice(&last);
    assert!(body == reference_body(header.header(), &data));

    let mut opener = header.body_opener(2).unwrap();
    assert!(opener.opened_len(STRIDE + 1).is_err());
    assert!(matches!(
        opener.final_opened_len(STRIDE + 15),
        Err(Error::Truncated)
    ));
    assert!(matches!(opener.final_opened_len(0), Err(Error::Truncated)));
    let mut out = vec![0u8; CHUNK - 1];
    assert!(opener.open(&body[..STRIDE], &mut out).is_err());
    let mut out = vec![0u8; CHUNK];
    opener.open(&body[..STRIDE], &mut out).unwrap();
    assert_eq!(out, data[..CHUNK]);
    let mut rest = vec![0u8; opener.final_opened_len(body.len() - STRIDE).unwrap()];
    opener.finish(&body[STRIDE..], &mut rest).unwrap();
    assert_eq!(rest, data[CHUNK..]);

    // A finish with the wrong lengths changes nothing; after a finish,
    // every call is refused.
    let data = plaintext(CHUNK + 5);
    let (sealing, header) = new_stream();
    let mut sealer = sealing.body_sealer(1).unwrap();
    let mut last = vec![0u8; sealer.final_len(data.len()).unwrap()];
    assert!(sealer.finish(&data, &mut last[1..]).is_err());
    sealer.finish(&data, &mut last).unwrap();
    assert!(last == reference_body(header.header(), &data));
    assert!(matches!(
        sealer.finish(&data, &mut last),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(sealer.seal(&[], &mut []).is_err());
    let mut opener = header.body_opener(1).unwrap();
    let mut plain = vec![0u8; data.len()];
    assert!(opener.finish(&last, &mut plain[1..]).is_err());
    opener.finish(&last, &mut plain).unwrap();
    assert_eq!(plain, data);
    assert!(matches!(
        opener.finish(&last, &mut plain),
        Err(Error::InvalidArgument { .. })
    ));

    assert!(matches!(
        new_stream().0.body_sealer(0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        header.body_opener(257),
        Err(Error::InvalidArgument { .. })
    ));
}

/// The format has one encoding per plaintext: the final chunk is empty only
/// in an empty body. The sealer refuses to end a body with an empty chunk
/// (and goes on as before), and the opener refuses such a body even when a
/// key holder sealed it correctly.
#[test]
fn an_empty_final_chunk_after_others_is_refused_both_ways() {
    let data = plaintext(CHUNK + 5);
    let (sealing, header) = new_stream();
    let mut sealer = sealing.body_sealer(1).unwrap();
    let mut part = vec![0u8; STRIDE];
    sealer.seal(&data[..CHUNK], &mut part).unwrap();
    assert!(matches!(
        sealer.final_len(0),
        Err(Error::InvalidArgument { .. })
    ));
    let mut tag_only = [0u8; 16];
    assert!(matches!(
        sealer.finish(&[], &mut tag_only),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(tag_only, [0u8; 16], "a refused finish sealed something");
    let mut last = vec![0u8; sealer.final_len(5).unwrap()];
    sealer.finish(&data[CHUNK..], &mut last).unwrap();
    assert!([part, last].concat() == reference_body(header.header(), &data));

    // A whole chunk, then an empty final chunk, both with valid tags.
    let (sealing, header) = new_stream();
    drop(sealing);
    let whole = plaintext(CHUNK);
    let forged = reference_chunks(header.header(), &[&whole[..], &[][..]]);
    let parts = vec![forged[..STRIDE].to_vec(), forged[STRIDE..].to_vec()];
    let (err, released) = open_parts(&header, &parts, 1).unwrap_err();
    assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
    assert_eq!(released, whole, "the verified first part came out");
    let (err, released) = open_parts(&header, std::slice::from_ref(&forged), 2).unwrap_err();
    assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
    assert!(released.is_empty());
    // The only chunk of an empty body is empty, and opens.
    let empty = reference_chunks(header.header(), &[&[]]);
    assert_eq!(open_parts(&header, &[empty], 1).unwrap(), b"");
}
