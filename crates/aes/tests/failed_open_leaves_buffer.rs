//! Regression test for GHSA-423w-p2w9-r7vq (CVE-2023-42811): aes-gcm
//! 0.10.0-0.10.2 decrypted the buffer before checking the tag and left the
//! unauthenticated plaintext there when the check failed. Here every failed
//! open must leave no plaintext behind: in place, the caller's buffer is
//! byte-for-byte as it was; out of place, the input is untouched and the
//! output holds the ciphertext on every tier (the x86-64 tiers decrypt while
//! they hash; the portable tier checks the tag first and copies it over).

mod common;

use common::{backends, pattern};
use strongroom_aes::aead::Payload;
use strongroom_aes::aead::inout::InOutBuf;
use strongroom_aes::{Aead, AeadInOut, Aes256Gcm, Backend};

const LENGTHS: [usize; 9] = [0, 1, 15, 16, 17, 4095, 4096, 4097, 65537];

/// What is tampered with before opening.
#[derive(Clone, Copy, Debug)]
enum Forgery {
    Tag,
    Ciphertext,
    Nonce,
    Aad,
}

const FORGERIES: [Forgery; 4] = [
    Forgery::Tag,
    Forgery::Ciphertext,
    Forgery::Nonce,
    Forgery::Aad,
];

struct Sealed {
    gcm: Aes256Gcm,
    nonce: [u8; 12],
    aad: Vec<u8>,
    pt: Vec<u8>,
    ct: Vec<u8>,
    tag: [u8; 16],
}

/// Seals a `len`-byte message on one forced tier (every tier this CPU has
/// is checked: see `common::backends`).
fn seal(len: usize, backend: Backend) -> Sealed {
    let key: [u8; 32] = pattern(1, 32).try_into().expect("32 bytes");
    let nonce: [u8; 12] = pattern(2, 12).try_into().expect("12 bytes");
    let aad = pattern(3, 21);
    let pt = pattern(4 + len as u64, len);
    let gcm = backends(key)
        .into_iter()
        .find_map(|(b, gcm)| (b == backend).then_some(gcm))
        .expect("a tier from all_tiers()");
    let mut ct = pt.clone();
    let tag = gcm
        .seal_in_place_detached(&nonce, &aad, &mut ct)
        .expect("seal");
    Sealed {
        gcm,
        nonce,
        aad,
        pt,
        ct,
        tag,
    }
}

/// Every tier this CPU has (asserted against CPU detection).
fn all_tiers() -> Vec<Backend> {
    backends([0; 32]).into_iter().map(|(b, _)| b).collect()
}

/// (nonce, aad, ciphertext, tag) of a forgery.
type Forged = ([u8; 12], Vec<u8>, Vec<u8>, [u8; 16]);

/// Returns the sealed inputs with one bit flipped per `forgery`, or None
/// when there is no ciphertext byte to flip.
fn forge(s: &Sealed, forgery: Forgery) -> Option<Forged> {
    let (mut nonce, mut aad, mut ct, mut tag) = (s.nonce, s.aad.clone(), s.ct.clone(), s.tag);
    match forgery {
        Forgery::Tag => tag[15] ^= 0x80,
        Forgery::Ciphertext => *ct.last_mut()? ^= 0x01,
        Forgery::Nonce => nonce[0] ^= 0x01,
        Forgery::Aad => aad[10] ^= 0x10,
    }
    Some((nonce, aad, ct, tag))
}

#[test]
fn failed_open_in_place_leaves_buffer_unchanged() {
    let tiers = all_tiers();
    let mut checked = 0;
    for (backend, len) in tiers.iter().flat_map(|&b| LENGTHS.map(|len| (b, len))) {
        let s = seal(len, backend);
        for forgery in FORGERIES {
            let Some((nonce, aad, ct, tag)) = forge(&s, forgery) else {
                assert_eq!(len, 0);
                continue;
            };
            let id = format!("{backend:?}: len {len}, forged {forgery:?}");

            // Inherent API.
            let mut buf = ct.clone();
            assert!(
                s.gcm
                    .open_in_place_detached(&nonce, &aad, &mut buf, &tag)
                    .is_err(),
                "{id}"
            );
            assert!(buf == ct, "{id}: open_in_place_detached changed the buffer");

            // AeadInOut::decrypt_inout_detached on one buffer (in place).
            let mut buf = ct.clone();
            let r = s.gcm.decrypt_inout_detached(
                &nonce.into(),
                &aad,
                buf.as_mut_slice().into(),
                &tag.into(),
            );
            assert!(r.is_err(), "{id}");
            assert!(
                buf == ct,
                "{id}: decrypt_inout_detached (in place) changed the buffer"
            );

            // AeadInOut::decrypt_in_place on ciphertext || tag in a Vec: the
            // Vec keeps its contents and its length.
            let mut buf = [ct.as_slice(), &tag].concat();
            let before = buf.clone();
            assert!(
                s.gcm
                    .decrypt_in_place(&nonce.into(), &aad, &mut buf)
                    .is_err(),
                "{id}"
            );
            assert!(buf == before, "{id}: decrypt_in_place changed the Vec");

            // Aead::decrypt returns nothing but the error.
            assert!(
                s.gcm
                    .decrypt(
                        &nonce.into(),
                        Payload {
                            msg: &before,
                            aad: &aad
                        }
                    )
                    .is_err()
            );

            checked += 1;
        }
        // Control: the unforged inputs do open, in place.
        let mut buf = s.ct.clone();
        s.gcm
            .open_in_place_detached(&s.nonce, &s.aad, &mut buf, &s.tag)
            .expect("genuine open");
        assert!(buf == s.pt, "len {len}: genuine open");
    }
    // Per tier: 9 lengths x 4 forgeries, minus "flip a ciphertext bit" at
    // length 0.
    assert_eq!(checked, 35 * tiers.len());
}

#[test]
fn failed_open_out_of_place_leaves_input_unchanged_and_no_plaintext() {
    let tiers = all_tiers();
    let mut checked = 0;
    for (backend, len) in tiers.iter().flat_map(|&b| LENGTHS.map(|len| (b, len))) {
        let s = seal(len, backend);
        for forgery in FORGERIES {
            let Some((nonce, aad, ct, tag)) = forge(&s, forgery) else {
                assert_eq!(len, 0);
                continue;
            };
            let id = format!("{backend:?}: len {len}, forged {forgery:?}");
            let input = ct.clone();
            // The output buffer holds something that is neither the
            // ciphertext nor the plaintext, so whatever is left there shows.
            let mut out = pattern(0xDEAD_BEEF, len);
            let buf = InOutBuf::new(&input, &mut out).expect("equal lengths");
            let r = s
                .gcm
                .decrypt_inout_detached(&nonce.into(), &aad, buf, &tag.into());
            assert!(r.is_err(), "{id}");
            assert!(input == ct, "{id}: input buffer changed");
            assert!(
                out == ct,
                "{id}: a failed open left something other than the ciphertext in the output"
            );
            checked += 1;
        }
        // Control: genuine out-of-place open fills `out` and leaves `input` alone.
        let input = s.ct.clone();
        let mut out = pattern(0xDEAD_BEEF, len);
        let buf = InOutBuf::new(&input, &mut out).expect("equal lengths");
        s.gcm
            .decrypt_inout_detached(&s.nonce.into(), &s.aad, buf, &s.tag.into())
            .expect("genuine open");
        assert!(out == s.pt, "len {len}: out-of-place plaintext");
        assert!(
            input == s.ct,
            "len {len}: out-of-place open changed its input"
        );
    }
    assert_eq!(checked, 35 * tiers.len());
}
