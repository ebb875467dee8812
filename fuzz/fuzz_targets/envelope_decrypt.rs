//! Decryption under a fixed AES key-encryption key (docs/FORMAT.md).
//!
//! A valid stream (two chunks of 4 KiB chunking: one full, one of 1000
//! bytes) is built once. Each input is turned into a candidate stream:
//!
//! | byte 0 mod 3 | candidate                                              |
//! |--------------|--------------------------------------------------------|
//! | 0            | the rest of the input, as is                           |
//! | 1            | the valid header, then the rest of the input as body   |
//! | 2            | the valid stream edited by the rest of the input, in   |
//! |              | 4-byte ops `[op, pos lo, pos hi, value]`: op mod 4 = 0 |
//! |              | xor a byte, 1 truncate, 2 insert a byte, 3 remove one  |
//!
//! Decrypting the candidate (streaming on one thread, whose first batch is
//! the whole valid stream; and random access over the whole range) must
//! never panic, and must never return plaintext unless the candidate is the
//! unmodified valid stream, in which case it returns exactly its plaintext.
//! Opening it in parts (`BodyOpener`: the first chunk, then `finish`) may
//! release a verified first part, which must be the true plaintext's, and
//! must finish exactly when the candidate is the valid stream.

#![no_main]

use std::io::{Cursor, Read, Write};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strongroom_aes::Aes256Key;
use strongroom_envelope::{
    AesKeyWrapper, Decryptor, Encryptor, Header, HeaderOptions, KeyRef, SeekableDecryptor,
    WrapAlgorithm,
};

struct Fixture {
    kek: AesKeyWrapper,
    plain: Vec<u8>,
    stream: Vec<u8>,
    header_len: usize,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let kek = AesKeyWrapper::new(
            KeyRef::new("fuzz-vault", "kek", "1", WrapAlgorithm::A256Kw),
            &Aes256Key::from_bytes([0x42; 32]),
        );
        let options = HeaderOptions::default()
            .chunk_size(4096)
            .expect("4 KiB")
            .metadata("item", "fuzz");
        let plain: Vec<u8> = (0..4096 + 1000).map(|i| (i % 251) as u8).collect();
        let mut enc = Encryptor::new(Vec::new(), &[&kek], &options)
            .expect("encryptor")
            .threads(1)
            .expect("threads");
        enc.write_all(&plain).expect("write");
        let header_len = enc.header().expect("header").as_bytes().len();
        let stream = enc.finish().expect("finish");
        Fixture {
            kek,
            plain,
            stream,
            header_len,
        }
    })
}

fn edit(mut s: Vec<u8>, ops: &[u8]) -> Vec<u8> {
    for op in ops.chunks_exact(4) {
        let pos = usize::from(u16::from_le_bytes([op[1], op[2]]));
        match op[0] % 4 {
            0 if !s.is_empty() => {
                let at = pos % s.len();
                s[at] ^= op[3];
            }
            1 => s.truncate(pos % (s.len() + 1)),
            2 => {
                let at = pos % (s.len() + 1);
                s.insert(at, op[3]);
            }
            3 if !s.is_empty() => {
                let at = pos % s.len();
                s.remove(at);
            }
            _ => {}
        }
    }
    s
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let candidate = match mode % 3 {
        0 => rest.to_vec(),
        1 => [&f.stream[..f.header_len], rest].concat(),
        _ => edit(f.stream.clone(), rest),
    };
    let valid = candidate == f.stream;

    // Streaming, one thread: a batch of two chunks is the whole valid body.
    let mut out = Vec::new();
    let result = Decryptor::new(candidate.as_slice(), &[&f.kek])
        .and_then(|d| d.threads(1))
        .map_err(std::io::Error::from)
        .and_then(|mut d| d.read_to_end(&mut out));
    if valid {
        result.expect("the valid stream decrypts");
        assert!(out == f.plain, "wrong plaintext");
    } else {
        assert!(result.is_err(), "an altered stream decrypted");
        assert!(out.is_empty(), "plaintext released from an altered stream");
    }

    // In parts (`BodyOpener`): the first sealed chunk as a part, then the
    // rest with `finish`. A part that verified may be released, so what
    // comes out must be a prefix of the true plaintext, a failed part must
    // release nothing, and only the valid stream may finish.
    let mut input = candidate.as_slice();
    if let Ok(opened) = Header::read_from(&mut input).and_then(|h| h.open(&[&f.kek])) {
        let mut opener = opened.body_opener(1).expect("1 thread");
        let stride = opened.chunk_size() + 16;
        let mut released = Vec::new();
        let mut body = input;
        let mut failed = false;
        if body.len() > stride {
            let mut part = vec![0u8; opener.opened_len(stride).expect("whole chunk")];
            match opener.open(&body[..stride], &mut part) {
                Ok(()) => released.extend_from_slice(&part),
                Err(_) => {
                    failed = true;
                    assert!(part.iter().all(|&b| b == 0), "a failed part released data");
                }
            }
            body = &body[stride..];
        }
        let mut complete = false;
        if let (false, Ok(n)) = (failed, opener.final_opened_len(body.len())) {
            let mut last = vec![0u8; n];
            match opener.finish(body, &mut last) {
                Ok(()) => {
                    released.extend_from_slice(&last);
                    complete = true;
                }
                Err(_) => assert!(last.iter().all(|&b| b == 0), "a failed part released data"),
            }
        }
        assert!(
            f.plain.get(..released.len()) == Some(&released[..]),
            "parts released bytes that are not the plaintext"
        );
        assert_eq!(
            complete, valid,
            "parts: finished = {complete}, valid = {valid}"
        );
    } else {
        assert!(!valid, "the valid stream's header failed to open");
    }

    // Random access over the whole plaintext.
    if let Ok(mut reader) = SeekableDecryptor::new(Cursor::new(&candidate), &[&f.kek]) {
        let len = usize::try_from(reader.plaintext_len()).expect("fits");
        if len <= 1 << 20 {
            match reader.read_range(0, len) {
                Ok(plain) if valid => assert!(plain == f.plain),
                // Zero bytes asked, zero given: nothing was released.
                Ok(plain) => assert!(plain.is_empty(), "random access released altered data"),
                Err(_) => assert!(!valid, "the valid stream failed random access"),
            }
        }
    } else {
        assert!(!valid, "the valid stream failed to open for random access");
    }
});
