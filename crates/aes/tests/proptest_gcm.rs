//! Property tests: strongroom's Aes256Gcm against `aes_gcm::Aes256Gcm`
//! (identical ciphertext and tag, round trips) through the inherent API,
//! `aead::Aead` and out-of-place `AeadInOut`; and single-bit forgeries.
//!
//! Tests run unoptimized, so message contents come from a seed (expanded by
//! `common::pattern`) rather than from a byte-by-byte strategy, and the
//! 64 KiB..=1 MiB sizes run in a separate property with few cases.

mod common;

use aes_gcm::Aes256Gcm as RefGcm;
use common::pattern;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use strongroom_aes::aead::Payload;
use strongroom_aes::aead::inout::InOutBuf;
use strongroom_aes::{Aead, AeadInOut, Aes256Gcm, Aes256Key, KeyInit};

const MIB: usize = 1 << 20;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Mostly short messages (every length up to a few blocks, so all the
/// partial-final-block cases), sometimes a few KiB, rarely up to 64 KiB,
/// and the lengths around the group sizes the fused pass works in (8, 30
/// and 64 blocks for the AES-NI, VAES-256 and VAES-512 backends).
fn small_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..=80,
        3 => 81usize..=4096,
        1 => 4097usize..=65536,
        2 => prop::sample::select(vec![127, 128, 129, 479, 480, 481, 1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097]),
    ]
}

/// 64 KiB to 1 MiB, with 1 MiB itself and 1 MiB - 1 often.
fn big_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(MIB),
        1 => Just(MIB - 1),
        4 => 65536usize..=MIB,
    ]
}

#[derive(Debug, Clone)]
struct Input {
    key: [u8; 32],
    nonce: [u8; 12],
    aad: Vec<u8>,
    pt: Vec<u8>,
}

fn input(len: impl Strategy<Value = usize>) -> impl Strategy<Value = Input> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 12]>(),
        proptest::collection::vec(any::<u8>(), 0..300),
        len,
        any::<u64>(),
    )
        .prop_map(|(key, nonce, aad, len, seed)| Input {
            key,
            nonce,
            aad,
            pt: pattern(seed, len),
        })
}

/// Everything that must agree with aes-gcm, for one input.
fn check_against_aes_gcm(i: &Input) -> Result<(), TestCaseError> {
    let n = i.pt.len();
    let reference = RefGcm::new(&i.key.into());
    let ours = Aes256Gcm::with_key(&Aes256Key::from_bytes(i.key));

    // Reference ciphertext and tag.
    let mut ref_ct = i.pt.clone();
    let ref_tag = reference
        .encrypt_inout_detached(&i.nonce.into(), &i.aad, ref_ct.as_mut_slice().into())
        .expect("aes-gcm seal");

    // Inherent API, in place.
    let mut buf = i.pt.clone();
    let tag = ours
        .seal_in_place_detached(&i.nonce, &i.aad, &mut buf)
        .expect("seal");
    prop_assert!(buf == ref_ct, "ciphertext differs from aes-gcm (len {})", n);
    prop_assert_eq!(tag.as_slice(), ref_tag.as_slice());
    ours.open_in_place_detached(&i.nonce, &i.aad, &mut buf, &tag)
        .expect("open");
    prop_assert!(buf == i.pt, "round trip (len {})", n);

    // Constructed through aead::KeyInit instead of with_key: same cipher.
    let via_key_init = <Aes256Gcm as KeyInit>::new(&i.key.into());
    let mut buf = i.pt.clone();
    let tag2 = via_key_init
        .seal_in_place_detached(&i.nonce, &i.aad, &mut buf)
        .expect("seal");
    prop_assert!(
        buf == ref_ct && tag2 == tag,
        "KeyInit::new differs from with_key"
    );

    // aead::Aead: Vec in, ciphertext || tag out, and back.
    let sealed = ours
        .encrypt(
            &i.nonce.into(),
            Payload {
                msg: &i.pt,
                aad: &i.aad,
            },
        )
        .expect("Aead::encrypt");
    let ref_sealed = reference
        .encrypt(
            &i.nonce.into(),
            Payload {
                msg: &i.pt,
                aad: &i.aad,
            },
        )
        .expect("aes-gcm Aead::encrypt");
    prop_assert_eq!(sealed.len(), n + 16);
    prop_assert!(
        sealed == ref_sealed,
        "Aead::encrypt differs from aes-gcm (len {})",
        n
    );
    let opened = ours
        .decrypt(
            &i.nonce.into(),
            Payload {
                msg: &ref_sealed,
                aad: &i.aad,
            },
        )
        .expect("Aead::decrypt of aes-gcm output");
    prop_assert!(opened == i.pt, "Aead::decrypt (len {})", n);
    // And aes-gcm opens ours.
    let ref_opened = reference
        .decrypt(
            &i.nonce.into(),
            Payload {
                msg: &sealed,
                aad: &i.aad,
            },
        )
        .expect("aes-gcm opens our output");
    prop_assert!(
        ref_opened == i.pt,
        "aes-gcm round trip of our output (len {})",
        n
    );

    // AeadInOut out of place: input untouched, output filled.
    let mut out = vec![0x5Au8; n];
    let pt_copy = i.pt.clone();
    let tag3 = ours
        .encrypt_inout_detached(
            &i.nonce.into(),
            &i.aad,
            InOutBuf::new(&pt_copy, &mut out).expect("same len"),
        )
        .expect("encrypt_inout_detached");
    prop_assert!(out == ref_ct, "out-of-place ciphertext (len {})", n);
    prop_assert_eq!(tag3.as_slice(), ref_tag.as_slice());
    prop_assert!(pt_copy == i.pt, "out-of-place seal changed its input");
    let mut back = vec![0xA5u8; n];
    ours.decrypt_inout_detached(
        &i.nonce.into(),
        &i.aad,
        InOutBuf::new(&ref_ct, &mut back).expect("same len"),
        &ref_tag,
    )
    .expect("decrypt_inout_detached");
    prop_assert!(back == i.pt, "out-of-place open (len {})", n);
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn matches_aes_gcm_small(i in input(small_len())) {
        check_against_aes_gcm(&i)?;
    }
}

proptest! {
    #![proptest_config(config(8))]

    #[test]
    fn matches_aes_gcm_large(i in input(big_len())) {
        check_against_aes_gcm(&i)?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Any single bit flip in ciphertext, tag, nonce or AAD makes open fail
    /// and leaves the buffer exactly as it was.
    #[test]
    fn any_bit_flip_is_rejected(
        i in input(prop_oneof![8 => 0usize..=64, 1 => 65usize..=4096]),
        which in any::<prop::sample::Index>(),
    ) {
        let gcm = Aes256Gcm::with_key(&Aes256Key::from_bytes(i.key));
        let mut ct = i.pt.clone();
        let mut tag = gcm.seal_in_place_detached(&i.nonce, &i.aad, &mut ct).expect("seal");
        let (mut nonce, mut aad) = (i.nonce, i.aad.clone());

        // One index over all the bits of ct || tag || nonce || aad.
        let regions = [ct.len(), 16, 12, aad.len()];
        let bit = which.index(regions.iter().sum::<usize>() * 8);
        let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
        let mut region = 0;
        let mut at = byte;
        while at >= regions[region] {
            at -= regions[region];
            region += 1;
        }
        match region {
            0 => ct[at] ^= mask,
            1 => tag[at] ^= mask,
            2 => nonce[at] ^= mask,
            _ => aad[at] ^= mask,
        }

        let mut buf = ct.clone();
        prop_assert!(
            gcm.open_in_place_detached(&nonce, &aad, &mut buf, &tag).is_err(),
            "flip in region {} (0 ct, 1 tag, 2 nonce, 3 aad) byte {} mask {:#04x} accepted", region, at, mask
        );
        prop_assert!(buf == ct, "failed open changed the buffer");
        // Same through the Aead trait.
        let sealed = [ct.as_slice(), &tag].concat();
        let via_trait = gcm.decrypt(&nonce.into(), Payload { msg: &sealed, aad: &aad });
        prop_assert!(via_trait.is_err(), "Aead::decrypt accepted a flip in region {}", region);
    }
}
