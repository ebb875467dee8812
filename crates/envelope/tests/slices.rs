//! The slice path (`OpenedHeader::encrypt_slice` / `decrypt_slice`) writes
//! exactly the bytes of the streaming path and releases nothing on failure.

mod common;

use std::io::Write;

use common::plaintext;
use strongroom_aes::Aes256Key;
use strongroom_envelope::{
    AesKeyWrapper, Dek, Encryptor, Error, Header, HeaderOptions, KeyRef, OpenedHeader,
    WrapAlgorithm,
};

fn kek() -> AesKeyWrapper {
    AesKeyWrapper::new(
        KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
        &Aes256Key::from_bytes([9; 32]),
    )
}

fn opened(kek: &AesKeyWrapper) -> OpenedHeader {
    let options = HeaderOptions::default().chunk_size(4096).unwrap();
    Header::create(Dek::generate().unwrap(), &[kek], &options).unwrap()
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
fn encrypt_slice_equals_the_streaming_encryptor() {
    let kek = kek();
    for len in LENGTHS {
        let header = opened(&kek);
        let data = plaintext(len);
        let mut streamed = Encryptor::body(Vec::new(), &header)
            .unwrap()
            .threads(1)
            .unwrap();
        streamed.write_all(&data).unwrap();
        let streamed = streamed.finish().unwrap();
        for threads in [1, 2, 3] {
            // The same header encrypts the same plaintext twice only to
            // compare the two paths: in use, one header encrypts one body.
            let mut body = vec![0u8; header.body_len(len as u64).unwrap() as usize];
            header.encrypt_slice(&data, &mut body, threads).unwrap();
            assert_eq!(body, streamed, "len {len} threads {threads}");

            let mut plain = vec![0u8; header.plaintext_len(body.len() as u64).unwrap() as usize];
            header.decrypt_slice(&body, &mut plain, threads).unwrap();
            assert_eq!(plain, data, "len {len} threads {threads}");
        }
    }
}

#[test]
fn a_failed_decrypt_slice_releases_nothing() {
    let kek = kek();
    let header = opened(&kek);
    let data = plaintext(10 * 4096 + 7);
    let mut body = vec![0u8; header.body_len(data.len() as u64).unwrap() as usize];
    header.encrypt_slice(&data, &mut body, 2).unwrap();
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
    let header = opened(&kek);
    let data = plaintext(5000);
    let mut short = vec![0u8; 5000];
    let err = header.encrypt_slice(&data, &mut short, 1).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    let mut body = vec![0u8; header.body_len(5000).unwrap() as usize];
    let err = header.encrypt_slice(&data, &mut body, 0).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    header.encrypt_slice(&data, &mut body, 1).unwrap();
    let mut wrong = vec![0u8; 4999];
    let err = header.decrypt_slice(&body, &mut wrong, 1).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(matches!(header.plaintext_len(15), Err(Error::Truncated)));
    assert!(matches!(
        header.plaintext_len(4096 + 16 + 5),
        Err(Error::Truncated)
    ));
    assert_eq!(header.plaintext_len(16).unwrap(), 0);
    assert_eq!(header.body_len(0).unwrap(), 16);
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
    let opened = opened(&kek);
    let plain = plaintext(3 * 4096 + 5);
    let mut body = vec![0u8; opened.body_len(plain.len() as u64).unwrap() as usize];
    opened.encrypt_slice(&plain, &mut body, 1).unwrap();
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
