//! AES-256-GCM round trip, tamper detection and differential check.
//!
//! For every input:
//! 1. seal with `strongroom_aes::Aes256Gcm`, and check ciphertext and tag
//!    equal those of the RustCrypto `aes-gcm` crate (also through the
//!    `aead::Aead` postfix-tag path, built with `KeyInit`);
//! 2. open, and check the plaintext comes back;
//! 3. make exactly one change (selected by the input) to the ciphertext, tag,
//!    nonce, AAD or key, and check that opening fails and leaves the buffer
//!    byte-for-byte as it was (no unverified plaintext is ever released).
//!
//! Input layout (missing bytes read as zero, so every input is usable):
//!
//! | bytes    | meaning                                              |
//! |----------|------------------------------------------------------|
//! | 0        | mutation selector (see [`Mutation`])                 |
//! | 1..3     | mutation position (u16 LE; bit index or length)      |
//! | 3        | AAD length (clamped to what is left)                 |
//! | 4..36    | key                                                  |
//! | 36..48   | nonce                                                |
//! | 48..     | AAD, then plaintext                                  |

#![no_main]

use libfuzzer_sys::fuzz_target;
// `aes-gcm` implements the same `aead` 0.6 traits, so one import serves both.
use strongroom_aes::aead::Payload;
use strongroom_aes::{Aead, AeadInOut, Aes256Gcm, Aes256Key, KeyInit, NONCE_LEN, TAG_LEN};

const HEADER_LEN: usize = 48;

/// The one change made to a valid sealed message.
#[derive(Debug, Clone, Copy)]
enum Mutation {
    FlipCiphertextBit,
    FlipTagBit,
    FlipNonceBit,
    FlipAadBit,
    TruncateCiphertext,
    ExtendCiphertext,
    FlipKeyBit,
}

impl Mutation {
    const ALL: [Self; 7] = [
        Self::FlipCiphertextBit,
        Self::FlipTagBit,
        Self::FlipNonceBit,
        Self::FlipAadBit,
        Self::TruncateCiphertext,
        Self::ExtendCiphertext,
        Self::FlipKeyBit,
    ];

    fn from_selector(selector: u8) -> Self {
        Self::ALL[usize::from(selector) % Self::ALL.len()]
    }
}

fn flip_bit(bytes: &mut [u8], pos: usize) {
    let bit = pos % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
}

fuzz_target!(|data: &[u8]| {
    let mut header = [0u8; HEADER_LEN];
    let n = data.len().min(HEADER_LEN);
    header[..n].copy_from_slice(&data[..n]);
    let rest = &data[n..];

    let mutation = Mutation::from_selector(header[0]);
    let pos = usize::from(u16::from_le_bytes([header[1], header[2]]));
    let aad_len = usize::from(header[3]).min(rest.len());
    let key_bytes: [u8; 32] = header[4..36].try_into().unwrap();
    let nonce: [u8; NONCE_LEN] = header[36..48].try_into().unwrap();
    let (aad, plaintext) = rest.split_at(aad_len);

    let key = Aes256Key::from_bytes(key_bytes);
    let gcm = Aes256Gcm::with_key(&key);

    // 1. Seal, and compare with the reference implementation.
    let mut ciphertext = plaintext.to_vec();
    let tag = gcm
        .seal_in_place_detached(&nonce, aad, &mut ciphertext)
        .expect("seal within the SP 800-38D limits must succeed");

    let reference = aes_gcm::Aes256Gcm::new(&key_bytes.into());
    let mut ref_ciphertext = plaintext.to_vec();
    let ref_tag = reference
        .encrypt_inout_detached(&nonce.into(), aad, ref_ciphertext.as_mut_slice().into())
        .expect("aes-gcm seal");
    assert_eq!(
        ciphertext, ref_ciphertext,
        "ciphertext differs from aes-gcm"
    );
    assert_eq!(
        tag.as_slice(),
        ref_tag.as_slice(),
        "tag differs from aes-gcm"
    );

    // The `aead::Aead` path (postfix tag), built through `KeyInit`.
    let via_trait = <Aes256Gcm as KeyInit>::new(&key_bytes.into());
    let sealed = via_trait
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("Aead::encrypt");
    assert_eq!(sealed.len(), plaintext.len() + TAG_LEN);
    assert_eq!(&sealed[..plaintext.len()], ciphertext.as_slice());
    assert_eq!(&sealed[plaintext.len()..], tag.as_slice());
    let ref_sealed = reference
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("aes-gcm encrypt");
    assert_eq!(sealed, ref_sealed);

    // 2. Round trip.
    let mut opened = ciphertext.clone();
    gcm.open_in_place_detached(&nonce, aad, &mut opened, &tag)
        .expect("open of an untouched message must succeed");
    assert_eq!(opened, plaintext, "round trip changed the plaintext");

    // 3. One change, which must be detected without touching the buffer.
    let mut buffer = ciphertext.clone();
    let mut tag = tag;
    let mut nonce = nonce;
    let mut aad = aad.to_vec();
    let mut open_key = key_bytes;
    match mutation {
        Mutation::FlipCiphertextBit if !buffer.is_empty() => flip_bit(&mut buffer, pos),
        // Nothing to flip in an empty ciphertext: the tag carries the change.
        Mutation::FlipCiphertextBit | Mutation::FlipTagBit => flip_bit(&mut tag, pos),
        Mutation::FlipNonceBit => flip_bit(&mut nonce, pos),
        Mutation::FlipAadBit if !aad.is_empty() => flip_bit(&mut aad, pos),
        // Empty AAD: adding a byte is the change.
        Mutation::FlipAadBit => aad.push(header[2]),
        Mutation::TruncateCiphertext if !buffer.is_empty() => {
            // Drop 1..=len trailing bytes.
            let cut = 1 + pos % buffer.len();
            buffer.truncate(buffer.len() - cut);
        }
        // Empty ciphertext cannot be truncated; extend it instead.
        Mutation::TruncateCiphertext | Mutation::ExtendCiphertext => {
            let extra = 1 + pos % 32;
            buffer.extend(std::iter::repeat_n(header[2], extra));
        }
        Mutation::FlipKeyBit => flip_bit(&mut open_key, pos),
    }

    let opener = Aes256Gcm::with_key(&Aes256Key::from_bytes(open_key));
    let before = buffer.clone();
    let result = opener.open_in_place_detached(&nonce, &aad, &mut buffer, &tag);
    assert!(result.is_err(), "{mutation:?} was not detected");
    assert_eq!(
        buffer, before,
        "failed open ({mutation:?}) changed the buffer"
    );

    // The reference agrees that the changed message is forged.
    let reference = aes_gcm::Aes256Gcm::new(&open_key.into());
    let mut ref_buffer = before.clone();
    assert!(
        reference
            .decrypt_inout_detached(
                &nonce.into(),
                &aad,
                ref_buffer.as_mut_slice().into(),
                &tag.into(),
            )
            .is_err(),
        "aes-gcm accepted {mutation:?}"
    );

    // And the `aead::Aead` path rejects it too, returning nothing.
    let mut forged = buffer;
    forged.extend_from_slice(&tag);
    let opener_trait = <Aes256Gcm as KeyInit>::new(&open_key.into());
    assert!(
        opener_trait
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &forged,
                    aad: &aad
                }
            )
            .is_err()
    );
});
