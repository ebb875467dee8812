//! NIST CAVP AES-256-GCM known answers (gcmEncryptExtIV256.rsp and
//! gcmDecrypt256.rsp, filtered to 96-bit IVs and 128-bit tags; see the
//! comment at the top of each file under tests/data/).

mod common;

use common::{Case, Section, backends, parse_rsp};
use strongroom_aes::Aead;
use strongroom_aes::aead::Payload;

const ENCRYPT_FILE: &str = "gcmEncryptExtIV256.rsp";
const DECRYPT_FILE: &str = "gcmDecrypt256.rsp";

/// 5 PTlen x 5 AADlen sections of 15 cases each.
const EXPECTED_SECTIONS: usize = 25;
const EXPECTED_ENCRYPT_CASES: usize = 375;
const EXPECTED_DECRYPT_CASES: usize = 375;
/// Decrypt cases marked `FAIL` (tag must be rejected).
const EXPECTED_DECRYPT_FAIL: usize = 191;

/// The fields every case shares, checked against its section headers so a
/// parser slip (wrong field, truncated hex) cannot go unnoticed.
#[derive(Clone)]
struct GcmCase {
    id: String,
    key: [u8; 32],
    iv: [u8; 12],
    aad: Vec<u8>,
    ct: Vec<u8>,
    tag: [u8; 16],
}

fn gcm_case(file: &str, section: &Section, case: &Case) -> GcmCase {
    let id = case.id(file);
    assert_eq!(section.header_usize("Keylen"), 256, "{id}");
    assert_eq!(section.header_usize("IVlen"), 96, "{id}");
    assert_eq!(section.header_usize("Taglen"), 128, "{id}");
    let aad = case.bytes("AAD");
    let ct = case.bytes("CT");
    assert_eq!(aad.len() * 8, section.header_usize("AADlen"), "{id}");
    assert_eq!(ct.len() * 8, section.header_usize("PTlen"), "{id}");
    GcmCase {
        key: case.array("Key"),
        iv: case.array("IV"),
        tag: case.array("Tag"),
        aad,
        ct,
        id,
    }
}

/// Runs `check` on every case of `file` and returns (sections, cases).
fn for_each_case(file: &str, text: &str, mut check: impl FnMut(&Section, &Case)) -> (usize, usize) {
    let sections = parse_rsp(text);
    let mut cases = 0;
    for section in &sections {
        for case in &section.cases {
            check(section, case);
            cases += 1;
        }
    }
    assert!(cases > 0, "{file}: no cases parsed");
    (sections.len(), cases)
}

#[test]
fn cavp_gcm_encrypt_256() {
    let (sections, cases) = for_each_case(
        ENCRYPT_FILE,
        include_str!("data/gcmEncryptExtIV256.rsp"),
        |section, case| {
            let c = gcm_case(ENCRYPT_FILE, section, case);
            let pt = case.bytes("PT");
            assert!(case.flags.is_empty(), "{}: encrypt case with flags", c.id);
            // Every implementation tier this CPU has, each forced.
            for (backend, gcm) in backends(c.key) {
                let c = GcmCase {
                    id: format!("{} [{backend:?}]", c.id),
                    ..c.clone()
                };

                let mut buf = pt.clone();
                let tag = gcm
                    .seal_in_place_detached(&c.iv, &c.aad, &mut buf)
                    .unwrap_or_else(|e| panic!("{}: seal failed: {e}", c.id));
                assert_eq!(buf, c.ct, "{}: ciphertext", c.id);
                assert_eq!(tag, c.tag, "{}: tag", c.id);

                // The same through the aead::Aead trait (ciphertext || tag).
                let sealed = gcm
                    .encrypt(
                        &c.iv.into(),
                        Payload {
                            msg: &pt,
                            aad: &c.aad,
                        },
                    )
                    .unwrap_or_else(|e| panic!("{}: Aead::encrypt failed: {e}", c.id));
                assert_eq!(
                    sealed,
                    [c.ct.as_slice(), &c.tag].concat(),
                    "{}: Aead::encrypt",
                    c.id
                );

                // And it opens again.
                gcm.open_in_place_detached(&c.iv, &c.aad, &mut buf, &tag)
                    .unwrap_or_else(|e| panic!("{}: open of own output failed: {e}", c.id));
                assert_eq!(buf, pt, "{}: round trip", c.id);
            }
        },
    );
    assert_eq!(sections, EXPECTED_SECTIONS, "{ENCRYPT_FILE}: sections");
    assert_eq!(cases, EXPECTED_ENCRYPT_CASES, "{ENCRYPT_FILE}: cases");
}

#[test]
fn cavp_gcm_decrypt_256() {
    let mut fails = 0;
    let (sections, cases) = for_each_case(
        DECRYPT_FILE,
        include_str!("data/gcmDecrypt256.rsp"),
        |section, case| {
            let c = gcm_case(DECRYPT_FILE, section, case);
            if case.has_flag("FAIL") {
                fails += 1;
            }
            // Every implementation tier this CPU has, each forced.
            for (backend, gcm) in backends(c.key) {
                let c = GcmCase {
                    id: format!("{} [{backend:?}]", c.id),
                    ..c.clone()
                };
                let mut buf = c.ct.clone();
                let opened = gcm.open_in_place_detached(&c.iv, &c.aad, &mut buf, &c.tag);
                let via_trait = gcm.decrypt(
                    &c.iv.into(),
                    Payload {
                        msg: &[c.ct.as_slice(), &c.tag].concat(),
                        aad: &c.aad,
                    },
                );
                if case.has_flag("FAIL") {
                    assert!(
                        !case.fields.contains_key("PT"),
                        "{}: FAIL case with PT",
                        c.id
                    );
                    assert!(opened.is_err(), "{}: forged tag accepted", c.id);
                    assert_eq!(buf, c.ct, "{}: buffer changed by a failed open", c.id);
                    assert!(
                        via_trait.is_err(),
                        "{}: Aead::decrypt accepted a forged tag",
                        c.id
                    );
                } else {
                    assert_eq!(case.flags, Vec::<String>::new(), "{}: unknown flags", c.id);
                    let pt = case.bytes("PT");
                    assert_eq!(pt.len(), c.ct.len(), "{}", c.id);
                    opened.unwrap_or_else(|e| panic!("{}: valid case rejected: {e}", c.id));
                    assert_eq!(buf, pt, "{}: plaintext", c.id);
                    assert_eq!(
                        via_trait
                            .unwrap_or_else(|e| panic!("{}: Aead::decrypt rejected: {e}", c.id)),
                        pt,
                        "{}: Aead::decrypt plaintext",
                        c.id
                    );
                }
            }
        },
    );
    assert_eq!(sections, EXPECTED_SECTIONS, "{DECRYPT_FILE}: sections");
    assert_eq!(cases, EXPECTED_DECRYPT_CASES, "{DECRYPT_FILE}: cases");
    assert_eq!(fails, EXPECTED_DECRYPT_FAIL, "{DECRYPT_FILE}: FAIL cases");
}
