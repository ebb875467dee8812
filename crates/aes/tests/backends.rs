//! Every implementation tier (AVX-512, AVX2, AES-NI, portable), forced one
//! at a time, against the `aes-gcm` reference and against each other: every
//! length 0..=600 with random AAD, lengths around every
//! block/vector/iteration edge up to 1 MiB, in place and out of place
//! (aligned and at misaligned offsets, with guard bytes around the output),
//! and tamper rejection: in place the buffer is left unchanged, out of place
//! the input is left unchanged and the output holds no plaintext.

mod common;

use aes_gcm::Aes256Gcm as RefGcm;
use common::{backends, pattern};
use strongroom_aes::aead::{Nonce, inout::InOutBuf};
use strongroom_aes::{AeadInOut, Aes256Gcm, Aes256Key, Backend, KeyInit};

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        core::array::from_fn(|_| self.next() as u8)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes kept on either side of an out-of-place window, to catch stray
/// writes.
const GUARD: usize = 80;

/// Input and output windows of an out-of-place call: `input` at byte
/// `in_off` of one buffer, an output window of the same length at `out_off`
/// of another, initially `out_init`. Runs `f` on them and checks that the
/// input buffer is untouched and nothing outside the output window was
/// written; returns `f`'s result and the output window.
fn out_of_place<R>(
    id: &str,
    input: &[u8],
    out_init: &[u8],
    (in_off, out_off): (usize, usize),
    f: impl FnOnce(InOutBuf<'_, '_, u8>) -> R,
) -> (R, Vec<u8>) {
    let len = input.len();
    let mut src = vec![0x11; in_off + len + GUARD];
    src[in_off..in_off + len].copy_from_slice(input);
    let src_before = src.clone();
    let mut dst = vec![0x77; out_off + len + GUARD];
    dst[out_off..out_off + len].copy_from_slice(out_init);
    let r = f(InOutBuf::new(&src[in_off..in_off + len], &mut dst[out_off..out_off + len]).unwrap());
    assert!(src == src_before, "{id}: out of place changed its input");
    assert!(
        dst[..out_off]
            .iter()
            .chain(&dst[out_off + len..])
            .all(|&b| b == 0x77),
        "{id}: out of place wrote outside its output"
    );
    (r, dst[out_off..out_off + len].to_vec())
}

/// Seals with `gcm` in place and out of place (aligned, and at the
/// misaligned offsets `offsets`), checks every result against the
/// reference, opens every way, then checks that a flipped tag bit and (when
/// there is one) a flipped ciphertext bit are rejected: in place with the
/// buffer unchanged, out of place with the input unchanged and the
/// ciphertext in the output (every tier).
fn check(
    b: Backend,
    gcm: &Aes256Gcm,
    reference: (&[u8], &[u8; 16]),
    nonce: &[u8; 12],
    aad: &[u8],
    pt: &[u8],
    offsets: (usize, usize),
) {
    let len = pt.len();
    let id = format!("{b:?} len {len} aad {}", aad.len());
    let (ref_ct, ref_tag) = reference;
    let nonce_ga: &Nonce<Aes256Gcm> = &(*nonce).into();

    let mut buf = pt.to_vec();
    let tag = gcm
        .seal_in_place_detached(nonce, aad, &mut buf)
        .expect("seal");
    assert!(buf == ref_ct, "{id}: ciphertext differs from aes-gcm");
    assert_eq!(&tag, ref_tag, "{id}: tag differs from aes-gcm");

    let mut via_trait = pt.to_vec();
    let t = gcm
        .encrypt_inout_detached(nonce_ga, aad, via_trait.as_mut_slice().into())
        .expect("seal in place (trait)");
    assert!(
        via_trait == ref_ct && t.0 == tag,
        "{id}: in-place trait seal"
    );

    for at in [(0, 0), offsets] {
        let id = format!("{id} offsets {at:?}");
        let (t, out) = out_of_place(&id, pt, &vec![0xa5; len], at, |io| {
            gcm.encrypt_inout_detached(nonce_ga, aad, io)
                .expect("seal out of place")
        });
        assert!(out == ref_ct, "{id}: out-of-place ciphertext");
        assert!(t.0 == tag, "{id}: out-of-place tag");

        let (r, out) = out_of_place(&id, ref_ct, &vec![0x5a; len], at, |io| {
            gcm.decrypt_inout_detached(nonce_ga, aad, io, &tag.into())
        });
        assert!(r.is_ok(), "{id}: open out of place");
        assert!(out == pt, "{id}: out-of-place plaintext");
    }

    gcm.open_in_place_detached(nonce, aad, &mut buf, &tag)
        .unwrap_or_else(|_| panic!("{id}: open in place"));
    assert!(buf == pt, "{id}: open in place");

    let mut bad_tag = tag;
    bad_tag[len % 16] ^= 1 << (len % 8);
    let mut forgeries = vec![(ref_ct.to_vec(), bad_tag)];
    if len > 0 {
        let mut ct = ref_ct.to_vec();
        ct[(len * 7) % len] ^= 0x80;
        forgeries.push((ct, tag));
    }
    for (ct, tag) in forgeries {
        let mut buf = ct.clone();
        assert!(
            gcm.open_in_place_detached(nonce, aad, &mut buf, &tag)
                .is_err(),
            "{id}: forgery accepted"
        );
        assert!(buf == ct, "{id}: failed open changed the buffer");
        for at in [(0, 0), offsets] {
            let id = format!("{id} offsets {at:?}");
            let before = vec![0x3c; len];
            let (r, out) = out_of_place(&id, &ct, &before, at, |io| {
                gcm.decrypt_inout_detached(nonce_ga, aad, io, &tag.into())
            });
            assert!(r.is_err(), "{id}: forgery accepted out of place");
            assert!(
                out == ct,
                "{id}: failed out-of-place open left something other than the ciphertext"
            );
        }
    }
}

/// Runs `check` for every tier on one input; the misaligned offsets are
/// derived from the input's length.
fn check_all(key: [u8; 32], nonce: [u8; 12], aad: &[u8], pt: &[u8]) {
    let reference = RefGcm::new(&key.into());
    let mut ct = pt.to_vec();
    let tag = reference
        .encrypt_inout_detached(&nonce.into(), aad, ct.as_mut_slice().into())
        .expect("aes-gcm seal");
    let tag: [u8; 16] = tag.into();
    let len = pt.len();
    let offsets = (1 + len * 7 % 63, 1 + len * 13 % 61);
    for (b, gcm) in backends(key) {
        check(b, &gcm, (&ct, &tag), &nonce, aad, pt, offsets);
    }
}

#[test]
fn default_is_the_fastest_tier_the_cpu_has() {
    let expected = Backend::ALL
        .into_iter()
        .find(|&b| b.supported())
        .expect("portable is always there");
    let key = [7u8; 32];
    assert_eq!(
        Aes256Gcm::with_key(&Aes256Key::from_bytes(key)).backend(),
        expected.name()
    );
    assert_eq!(
        <Aes256Gcm as KeyInit>::new(&key.into()).backend(),
        expected.name()
    );
    // And every tier this CPU has can be forced (backends() asserts it).
    assert!(!backends(key).is_empty());
}

#[test]
fn every_length_0_to_600_with_random_aad() {
    let mut rng = Rng(0x5eed_0001);
    for len in 0..=600 {
        let key = rng.bytes::<32>();
        let nonce = rng.bytes::<12>();
        let aad = pattern(rng.next(), rng.below(301));
        let pt = pattern(rng.next(), len);
        check_all(key, nonce, &aad, &pt);
    }
}

#[test]
fn lengths_around_every_edge_up_to_1_mib() {
    let mut rng = Rng(0x5eed_0002);
    let mut lengths = Vec::new();
    // Block, vector (2 and 4 blocks), iteration (16 and 32 blocks) and
    // multiples, and the bench sizes.
    for base in [
        16,
        32,
        64,
        256,
        512,
        768,
        1024,
        2048,
        4096,
        16 << 10,
        64 << 10,
        1 << 20,
    ] {
        for delta in [-17i64, -16, -1, 0, 1, 15, 16, 17] {
            let len = base as i64 + delta;
            if (0..=1 << 20).contains(&len) {
                lengths.push(len as usize);
            }
        }
    }
    lengths.sort_unstable();
    lengths.dedup();
    for len in lengths {
        let key = rng.bytes::<32>();
        let nonce = rng.bytes::<12>();
        let aad = pattern(rng.next(), rng.below(301));
        let pt = pattern(rng.next(), len);
        check_all(key, nonce, &aad, &pt);
    }
}

#[test]
fn long_aad_and_empty_message() {
    let mut rng = Rng(0x5eed_0003);
    for aad_len in [0, 1, 16, 255, 511, 512, 513, 4096, 70_000] {
        let aad = pattern(rng.next(), aad_len);
        for len in [0, 1, 512] {
            check_all(rng.bytes(), rng.bytes(), &aad, &pattern(rng.next(), len));
        }
    }
}

/// The counter is a 32-bit big-endian word after the nonce: all tiers must
/// agree for messages that start anywhere (the nonce bytes are arbitrary,
/// including all ones).
#[test]
fn extreme_nonces_and_keys() {
    let mut rng = Rng(0x5eed_0004);
    for key in [[0u8; 32], [0xff; 32], rng.bytes()] {
        for nonce in [[0u8; 12], [0xff; 12], rng.bytes()] {
            for len in [0, 15, 16, 511, 512, 513, 1600] {
                check_all(key, nonce, b"", &pattern(rng.next(), len));
            }
        }
    }
}
