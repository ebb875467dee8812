//! The slice path (`SealingHeader::encrypt_slice` /
//! `OpenedHeader::decrypt_slice`) writes exactly the bytes the format
//! defines (the same as every other path) and releases nothing on failure.

mod common;

use common::{known_header, open_header, plaintext, reference_body};
use strongroom_aes::Aes256Key;
use strongroom_envelope::{
    AesKeyWrapper, Error, HeaderOptions, KeyRef, OpenedHeader, SealingHeader, WrapAlgorithm,
};

fn kek() -> AesKeyWrapper {
    AesKeyWrapper::new(
        KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
        &Aes256Key::from_bytes([9; 32]),
    )
}

fn sealing(kek: &AesKeyWrapper) -> SealingHeader {
    let options = HeaderOptions::default().chunk_size(4096).unwrap();
    known_header(&[kek], &options)
}

/// `data` sealed by the slice path on `threads` threads, and the header
/// opened for reading it.
fn sealed(kek: &AesKeyWrapper, data: &[u8], threads: usize) -> (Vec<u8>, OpenedHeader) {
    let sealing = sealing(kek);
    let mut body = vec![0u8; sealing.body_len(data.len() as u64).unwrap() as usize];
    let opened = sealing.encrypt_slice(data, &mut body, threads).unwrap();
    (body, opened)
}

/// Lengths around chunk boundaries, including the empty stream.
const LENGTHS: [usize; 9] = [
    0,
    1,
    4095,
    4096,
    4097,
    8192,
    3 * 4096 + 5,
    10 * 4096,
    40_000,
];

#[test]
fn encrypt_slice_writes_the_formats_body() {
    let kek = kek();
    for len in LENGTHS {
        let data = plaintext(len);
        for threads in [1, 2, 3] {
            let (body, header) = sealed(&kek, &data, threads);
            assert!(
                body == reference_body(header.header(), &data),
                "len {len} threads {threads}"
            );
            // The header returned, and the stored header opened again.
            let reopened = open_header(header.header(), &[&kek]);
            for opened in [&header, &reopened] {
                let mut plain =
                    vec![0u8; opened.plaintext_len(body.len() as u64).unwrap() as usize];
                opened.decrypt_slice(&body, &mut plain, threads).unwrap();
                assert_eq!(plain, data, "len {len} threads {threads}");
            }
        }
    }
}

#[test]
fn a_failed_decrypt_slice_releases_nothing() {
    let kek = kek();
    let data = plaintext(10 * 4096 + 7);
    let (body, header) = sealed(&kek, &data, 2);
    for position in [0, 4096 + 16 + 3, body.len() - 1] {
        let mut forged = body.clone();
        forged[position] ^= 0x40;
        let mut plain = vec![0u8; data.len()];
        let err = header.decrypt_slice(&forged, &mut plain, 2).unwrap_err();
        assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
        assert!(
            plain.iter().all(|&b| b == 0),
            "plaintext released at {position}"
        );
    }
    // Cut at a chunk boundary: the new last chunk was not sealed as last.
    let cut = &body[..2 * (4096 + 16)];
    let mut plain = vec![0u8; header.plaintext_len(cut.len() as u64).unwrap() as usize];
    let err = header.decrypt_slice(cut, &mut plain, 1).unwrap_err();
    assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
    assert!(plain.iter().all(|&b| b == 0));
}

#[test]
fn slice_lengths_are_checked() {
    let kek = kek();
    let data = plaintext(5000);
    let mut short = vec![0u8; 5000];
    let err = sealing(&kek)
        .encrypt_slice(&data, &mut short, 1)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(short.iter().all(|&b| b == 0), "a refused seal wrote");
    let sealing = sealing(&kek);
    assert_eq!(sealing.body_len(0).unwrap(), 16);
    let mut body = vec![0u8; sealing.body_len(5000).unwrap() as usize];
    let err = sealing.encrypt_slice(&data, &mut body, 0).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    let (body, header) = sealed(&kek, &data, 1);
    let mut wrong = vec![0u8; 4999];
    let err = header.decrypt_slice(&body, &mut wrong, 1).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(matches!(header.plaintext_len(15), Err(Error::Truncated)));
    assert!(matches!(
        header.plaintext_len(4096 + 16 + 5),
        Err(Error::Truncated)
    ));
    assert_eq!(header.plaintext_len(16).unwrap(), 0);
}

/// A body cut after a whole chunk that was not the last, with 16 bytes
/// appended where an empty final chunk's tag would be: the "final chunk"
/// must be opened (and fail), not skipped because it holds no plaintext.
/// The slice path, the streaming decryptor with small and large reads, and
/// random access all refuse it.
#[test]
fn a_forged_empty_final_chunk_is_refused() {
    use std::io::{Cursor, Read};
    use strongroom_envelope::{Decryptor, SeekableDecryptor};
    let kek = kek();
    let plain = plaintext(3 * 4096 + 5);
    let (body, opened) = sealed(&kek, &plain, 1);
    for tail in [[0u8; 16], [0xa5; 16]] {
        let mut forged = body[..2 * (4096 + 16)].to_vec();
        forged.extend_from_slice(&tail);
        for threads in [1, 2] {
            let mut out = vec![0u8; opened.plaintext_len(forged.len() as u64).unwrap() as usize];
            let err = opened
                .decrypt_slice(&forged, &mut out, threads)
                .unwrap_err();
            assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
            assert!(out.iter().all(|&b| b == 0), "plaintext released");

            for read_size in [100, 4096, 3 * 4096, 1 << 20] {
                let mut dec = Decryptor::body(forged.as_slice(), &opened)
                    .unwrap()
                    .threads(threads)
                    .unwrap();
                let mut buf = vec![0u8; read_size];
                let mut got = Vec::new();
                let err = loop {
                    match dec.read(&mut buf) {
                        Ok(0) => panic!("a forged stream read to its end ({read_size})"),
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e) => break e,
                    }
                };
                assert!(
                    matches!(Error::from_io(err), Error::DecryptionFailed),
                    "{read_size}"
                );
                assert!(got == plain[..got.len()], "released bytes differ");
            }
        }
        let mut stored = opened.header().as_bytes().to_vec();
        stored.extend_from_slice(&forged);
        assert!(SeekableDecryptor::new(Cursor::new(&stored), &[&kek]).is_err());
    }
}
