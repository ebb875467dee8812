//! The implementation tiers of `strongroom_aes::Aes256Gcm` (AVX-512, AVX2,
//! AES-NI, portable; every one this CPU has, each forced) against each
//! other.
//!
//! For every input:
//! 1. seal on every tier, in place and out of place: ciphertext and tag are
//!    identical across tiers (and between the two ways);
//! 2. open on every tier, in place and out of place: each gives back the
//!    plaintext;
//! 3. flip one bit (selected by the input) of the ciphertext, tag, nonce or
//!    AAD: every tier rejects it, in place (the buffer byte-for-byte as it
//!    was) and out of place (the input untouched; the output holds the
//!    ciphertext on every tier);
//! 4. open an arbitrary (input-chosen) tag over the ciphertext: all tiers
//!    agree on accept/reject (accepting means the tag was the real one).
//!
//! Input layout (missing bytes read as zero, so every input is usable):
//!
//! | bytes    | meaning                                                 |
//! |----------|---------------------------------------------------------|
//! | 0        | what to flip: ciphertext, tag, nonce, AAD (mod 4)       |
//! | 1..3     | bit to flip (u16 LE, reduced modulo the field's bits)   |
//! | 3..5     | AAD length (u16 LE, clamped to what is left)            |
//! | 5..37    | key                                                     |
//! | 37..49   | nonce                                                   |
//! | 49..65   | a candidate tag for step 4                              |
//! | 65..     | AAD, then plaintext                                     |

#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_aes::aead::inout::InOutBuf;
use strongroom_aes::{AeadInOut, Aes256Gcm, Aes256Key, Backend};

const HEADER_LEN: usize = 65;

fn field<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    core::array::from_fn(|i| data.get(at + i).copied().unwrap_or(0))
}

fn flip(bytes: &mut [u8], bit: usize) {
    if !bytes.is_empty() {
        let bit = bit % (bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
    }
}

fuzz_target!(|data: &[u8]| {
    let selector = field::<1>(data, 0)[0];
    let bit = usize::from(u16::from_le_bytes(field(data, 1)));
    let aad_len = usize::from(u16::from_le_bytes(field(data, 3)));
    let key: [u8; 32] = field(data, 5);
    let nonce: [u8; 12] = field(data, 37);
    let candidate: [u8; 16] = field(data, 49);
    let rest = data.get(HEADER_LEN..).unwrap_or(&[]);
    let (aad, pt) = rest.split_at(aad_len.min(rest.len()));

    let tiers: Vec<(Backend, Aes256Gcm)> = Backend::ALL
        .into_iter()
        .filter_map(|b| {
            Aes256Gcm::with_key_and_backend(&Aes256Key::from_bytes(key), b).map(|g| (b, g))
        })
        .collect();
    assert!(tiers.iter().any(|(b, _)| *b == Backend::Portable));

    // 1. Seal: identical bytes on every tier, in place and out of place.
    let mut sealed: Option<(Vec<u8>, [u8; 16])> = None;
    for (b, gcm) in &tiers {
        let mut ct = pt.to_vec();
        let tag = gcm
            .seal_in_place_detached(&nonce, aad, &mut ct)
            .expect("seal");
        let mut out = vec![0u8; pt.len()];
        let tag2 = gcm
            .encrypt_inout_detached(
                &nonce.into(),
                aad,
                InOutBuf::new(pt, &mut out).expect("lengths"),
            )
            .expect("seal out of place");
        assert!(
            out == ct && tag2.0 == tag,
            "{b:?}: out-of-place seal differs"
        );
        match &sealed {
            None => sealed = Some((ct, tag)),
            Some((c, t)) => assert!(
                c == &ct && t == &tag,
                "{b:?}: seal differs from {:?}",
                tiers[0].0
            ),
        }
    }
    let (ct, tag) = sealed.expect("at least the portable tier");

    // 2. Open on every tier.
    for (b, gcm) in &tiers {
        let mut buf = ct.clone();
        gcm.open_in_place_detached(&nonce, aad, &mut buf, &tag)
            .unwrap_or_else(|_| panic!("{b:?}: genuine open failed"));
        assert!(buf == pt, "{b:?}: open in place");
        let mut out = vec![0u8; ct.len()];
        gcm.decrypt_inout_detached(
            &nonce.into(),
            aad,
            InOutBuf::new(&ct, &mut out).expect("lengths"),
            &tag.into(),
        )
        .unwrap_or_else(|_| panic!("{b:?}: genuine out-of-place open failed"));
        assert!(out == pt, "{b:?}: open out of place");
    }

    // 3. One flipped bit: rejected everywhere, buffers unchanged.
    let (mut f_nonce, mut f_aad, mut f_ct, mut f_tag) = (nonce, aad.to_vec(), ct.clone(), tag);
    match selector % 4 {
        0 => flip(&mut f_ct, bit),
        1 => flip(&mut f_tag, bit),
        2 => flip(&mut f_nonce, bit),
        _ => flip(&mut f_aad, bit),
    }
    let changed = (f_nonce, &f_aad, &f_ct, f_tag) != (nonce, &aad.to_vec(), &ct, tag);
    if changed {
        for (b, gcm) in &tiers {
            let mut buf = f_ct.clone();
            assert!(
                gcm.open_in_place_detached(&f_nonce, &f_aad, &mut buf, &f_tag)
                    .is_err(),
                "{b:?}: forgery accepted"
            );
            assert!(buf == f_ct, "{b:?}: failed open changed the buffer");
            let before: Vec<u8> = f_ct.iter().map(|x| !x).collect();
            let mut out = before.clone();
            let r = gcm.decrypt_inout_detached(
                &f_nonce.into(),
                &f_aad,
                InOutBuf::new(&f_ct, &mut out).expect("lengths"),
                &f_tag.into(),
            );
            assert!(r.is_err(), "{b:?}: forgery accepted out of place");
            assert!(
                out == f_ct,
                "{b:?}: failed open left the wrong bytes in the output"
            );
        }
    }

    // 4. An arbitrary tag: every tier gives the same verdict.
    let verdicts: Vec<bool> = tiers
        .iter()
        .map(|(_, gcm)| {
            let mut buf = ct.clone();
            let ok = gcm
                .open_in_place_detached(&nonce, aad, &mut buf, &candidate)
                .is_ok();
            assert!(buf == if ok { pt.to_vec() } else { ct.clone() });
            ok
        })
        .collect();
    assert!(
        verdicts.iter().all(|&v| v == (candidate == tag)),
        "tiers disagree: {verdicts:?}"
    );
});
