//! Sealing and opening one message in parts (`GcmSealer`, `GcmOpener`), on
//! every tier this CPU has: any split gives exactly the one-shot ciphertext
//! and tag; a failed or abandoned opening leaves the ciphertext, never
//! plaintext; and the rules on parts are enforced without changing state.

mod common;

use common::{backends, pattern};
use proptest::prelude::*;
use strongroom_aes::{Aes256Gcm, TAG_LEN};

/// Cuts `len` into parts at `cuts` (each rounded down to whole blocks),
/// the last part taking the rest: the shapes a stream produces.
fn split(len: usize, cuts: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut points: Vec<usize> = cuts.iter().map(|&c| (c % (len + 1)) / 16 * 16).collect();
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| w[0]..w[1]).collect()
}

fn one_shot(gcm: &Aes256Gcm, nonce: &[u8; 12], aad: &[u8], pt: &[u8]) -> (Vec<u8>, [u8; 16]) {
    let mut ct = pt.to_vec();
    let tag = gcm
        .seal_in_place_detached(nonce, aad, &mut ct)
        .expect("seal");
    (ct, tag)
}

fn sealed_in_parts(
    gcm: &Aes256Gcm,
    nonce: &[u8; 12],
    aad: &[u8],
    pt: &[u8],
    parts: &[std::ops::Range<usize>],
    in_place: bool,
) -> (Vec<u8>, [u8; 16]) {
    let mut sealer = gcm.sealer(nonce, aad).expect("sealer");
    let mut out = vec![0u8; pt.len()];
    for r in parts {
        if in_place {
            out[r.clone()].copy_from_slice(&pt[r.clone()]);
            sealer
                .seal_part_in_place(&mut out[r.clone()])
                .expect("part");
        } else {
            sealer
                .seal_part(&pt[r.clone()], &mut out[r.clone()])
                .expect("part");
        }
    }
    (out, sealer.finish())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_split_seals_and_opens_as_one_shot(
        key in any::<[u8; 32]>(),
        nonce in any::<[u8; 12]>(),
        aad in proptest::collection::vec(any::<u8>(), 0..40),
        len in 0usize..5000,
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
        seed in any::<u64>(),
    ) {
        let pt = pattern(seed, len);
        let parts = split(len, &cuts);
        for (b, gcm) in backends(key) {
            let (ct, tag) = one_shot(&gcm, &nonce, &aad, &pt);
            for in_place in [false, true] {
                let got = sealed_in_parts(&gcm, &nonce, &aad, &pt, &parts, in_place);
                prop_assert_eq!(&got.0, &ct, "{:?} in place {}", b, in_place);
                prop_assert_eq!(got.1, tag, "{:?} in place {}", b, in_place);
            }
            let mut buffer = vec![0u8; len + 7];
            let mut opener = gcm.opener(&nonce, &aad, &mut buffer).expect("opener");
            for r in &parts {
                opener.unopened()[..r.len()].copy_from_slice(&ct[r.clone()]);
                opener.open_next(r.len()).expect("part");
            }
            prop_assert_eq!(opener.opened(), len);
            opener.finish(&tag).expect("the tag verifies");
            prop_assert_eq!(&buffer[..len], &pt[..], "{:?}", b);
        }
    }
}

/// A message longer than a chunk of a stream, cut so that parts start and
/// end in the middle of kernel iterations (512 bytes on AVX-512, 256 on
/// AVX2, 128 on AES-NI). (Parts across the 32-bit counter's wrap are
/// tested in the x86 module, where the counter can be set.)
#[test]
fn long_messages_split_inside_kernel_iterations() {
    let key = [0x3c; 32];
    let nonce = [0xff; 12];
    let pt = pattern(9, (1 << 20) + 33);
    let parts = split(pt.len(), &[16 * 37, 16 * 1000, 16 * 1001, 16 * 40_000]);
    for (b, gcm) in backends(key) {
        let (ct, tag) = one_shot(&gcm, &nonce, b"aad", &pt);
        let got = sealed_in_parts(&gcm, &nonce, b"aad", &pt, &parts, false);
        assert!(got.0 == ct, "{b:?}");
        assert_eq!(got.1, tag, "{b:?}");
    }
}

#[test]
fn a_failed_or_abandoned_opening_leaves_the_ciphertext() {
    let key = [0x11; 32];
    let nonce = [0x22; 12];
    for len in [1usize, 16, 100, 4096, 70_001] {
        let pt = pattern(len as u64, len);
        for (b, gcm) in backends(key) {
            let (ct, tag) = one_shot(&gcm, &nonce, b"", &pt);
            let mut bad = tag;
            bad[0] ^= 1;
            // Wrong tag: every opened byte is ciphertext again.
            let mut buffer = ct.clone();
            let mut opener = gcm.opener(&nonce, b"", &mut buffer).expect("opener");
            let first = len / 2 / 16 * 16;
            opener.open_next(first).expect("part");
            opener.open_next(len - first).expect("part");
            assert!(opener.finish(&bad).is_err(), "{b:?}");
            assert!(
                buffer == ct,
                "{b:?} len {len}: plaintext left after a failure"
            );
            // Abandoned half way (an I/O error, say): the same.
            let mut buffer = ct.clone();
            let mut opener = gcm.opener(&nonce, b"", &mut buffer).expect("opener");
            opener.open_next(first).expect("part");
            drop(opener);
            assert!(buffer == ct, "{b:?} len {len}: plaintext left after a drop");
            // A message cut short does not verify under the whole one's tag.
            if first > 0 {
                let mut buffer = ct.clone();
                let mut opener = gcm.opener(&nonce, b"", &mut buffer).expect("opener");
                opener.open_next(first).expect("part");
                assert!(opener.finish(&tag).is_err(), "{b:?}");
                assert!(buffer == ct, "{b:?}");
            }
        }
    }
}

#[test]
fn part_rules_are_enforced_without_changing_state() {
    let key = [0x5a; 32];
    let nonce = [0x01; 12];
    let pt = pattern(3, 64);
    for (b, gcm) in backends(key) {
        let (ct, tag) = one_shot(&gcm, &nonce, b"x", &pt);
        // After a part that is not whole blocks, no more parts.
        let mut sealer = gcm.sealer(&nonce, b"x").expect("sealer");
        let mut out = vec![0u8; 64];
        sealer.seal_part(&pt[..20], &mut out[..20]).expect("part");
        let before = out.clone();
        assert!(
            sealer.seal_part(&pt[20..], &mut out[20..]).is_err(),
            "{b:?}"
        );
        assert_eq!(out, before, "{b:?}: a refused part wrote output");
        // Mismatched lengths are refused.
        let mut sealer = gcm.sealer(&nonce, b"x").expect("sealer");
        assert!(sealer.seal_part(&pt[..32], &mut out[..16]).is_err());
        // ... and the sealer goes on as if nothing happened.
        sealer.seal_part(&pt, &mut out).expect("part");
        assert_eq!(sealer.finish(), tag, "{b:?}");
        assert_eq!(out, ct);
        // Empty parts change nothing.
        let mut sealer = gcm.sealer(&nonce, b"x").expect("sealer");
        sealer.seal_part(&[], &mut []).expect("empty part");
        sealer.seal_part(&pt, &mut out).expect("part");
        sealer
            .seal_part(&[], &mut [])
            .expect("empty part after the last");
        assert_eq!(sealer.finish(), tag, "{b:?}");

        // The opener refuses to pass the buffer's end, or a part after a
        // partial one, and opens nothing then.
        let mut buffer = ct.clone();
        let mut opener = gcm.opener(&nonce, b"x", &mut buffer).expect("opener");
        assert!(opener.open_next(65).is_err());
        assert_eq!(opener.opened(), 0);
        opener.open_next(20).expect("part");
        assert!(opener.open_next(16).is_err());
        assert_eq!(opener.opened(), 20);
        assert!(opener.finish(&[0u8; TAG_LEN]).is_err());
        assert_eq!(buffer, ct, "{b:?}");
    }
}

#[test]
fn an_empty_message_in_parts() {
    let key = [9; 32];
    let nonce = [8; 12];
    for (b, gcm) in backends(key) {
        let (_, tag) = one_shot(&gcm, &nonce, b"only aad", &[]);
        let sealer = gcm.sealer(&nonce, b"only aad").expect("sealer");
        assert_eq!(sealer.finish(), tag, "{b:?}");
        let mut buffer = [0u8; 4];
        let opener = gcm
            .opener(&nonce, b"only aad", &mut buffer)
            .expect("opener");
        opener.finish(&tag).expect("empty message verifies");
    }
}
