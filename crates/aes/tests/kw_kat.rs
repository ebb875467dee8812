//! AES key wrap known answers from tests/data/kw_kat.rsp: RFC 3394 sections
//! 4.4-4.6, and 256-bit-KEK RFC 5649 answers cross-checked with aes-kw.
//!
//! The RFC 5649 section 6 examples use a 192-bit KEK, which the AES-256-only
//! strongroom API cannot take; they are run against aes-kw's `KwpAes192` to
//! show aes-kw's KWP is right, and aes-kw's `KwpAes256` then cross-checks
//! the 256-bit KWP answers (generated with OpenSSL) in the `KWP` section.

mod common;

use aes_kw::{KeyInit as _, KwAes256, KwpAes192, KwpAes256};
use common::parse_rsp;
use strongroom_aes::Aes256Key;
use strongroom_aes::kw::{Aes256Kw, KeyWrapError};

const FILE: &str = "kw_kat.rsp";

#[test]
fn key_wrap_known_answers() {
    let sections = parse_rsp(include_str!("data/kw_kat.rsp"));
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for section in &sections {
        let mode = section.header("Mode");
        for case in &section.cases {
            let id = format!("{} [{mode}] {}", case.id(FILE), case.get("Source"));
            let (k, p, c) = (case.bytes("K"), case.bytes("P"), case.bytes("C"));
            match mode {
                "KW" => {
                    let ours = Aes256Kw::new(&Aes256Key::try_from_slice(&k).expect("32-byte KEK"));
                    assert_eq!(ours.wrap(&p), Ok(c.clone()), "{id}: wrap");
                    assert_eq!(
                        ours.unwrap(&c).map(|z| z.to_vec()),
                        Ok(p.clone()),
                        "{id}: unwrap"
                    );
                    // The same data must not unwrap as KWP (different IV).
                    assert_eq!(
                        ours.unwrap_padded(&c).map(|z| z.to_vec()),
                        Err(KeyWrapError::IntegrityCheckFailed),
                        "{id}: KW output accepted by unwrap_padded"
                    );
                    // Oracle agrees.
                    let mut buf = vec![0u8; c.len()];
                    let kw = KwAes256::new_from_slice(&k).expect("32-byte KEK");
                    assert_eq!(kw.wrap_key(&p, &mut buf), Ok(c.as_slice()), "{id}: aes-kw");
                }
                "KWP192" => {
                    let mut buf = vec![0u8; c.len()];
                    let kwp = KwpAes192::new_from_slice(&k).expect("24-byte KEK");
                    assert_eq!(
                        kwp.wrap_key(&p, &mut buf),
                        Ok(c.as_slice()),
                        "{id}: aes-kw wrap"
                    );
                    let mut buf = vec![0u8; c.len()];
                    assert_eq!(
                        kwp.unwrap_key(&c, &mut buf),
                        Ok(p.as_slice()),
                        "{id}: aes-kw unwrap"
                    );
                }
                "KWP" => {
                    let ours = Aes256Kw::new(&Aes256Key::try_from_slice(&k).expect("32-byte KEK"));
                    assert_eq!(c.len(), p.len().div_ceil(8) * 8 + 8, "{id}: data file");
                    assert_eq!(ours.wrap_padded(&p), Ok(c.clone()), "{id}: wrap_padded");
                    assert_eq!(
                        ours.unwrap_padded(&c).map(|z| z.to_vec()),
                        Ok(p.clone()),
                        "{id}: unwrap_padded"
                    );
                    // aes-kw agrees with the file for every length here (>= 1).
                    let kwp = KwpAes256::new_from_slice(&k).expect("32-byte KEK");
                    let mut buf = vec![0u8; c.len()];
                    assert_eq!(
                        kwp.wrap_key(&p, &mut buf),
                        Ok(c.as_slice()),
                        "{id}: aes-kw wrap"
                    );
                    let mut buf = vec![0u8; c.len()];
                    assert_eq!(
                        kwp.unwrap_key(&c, &mut buf),
                        Ok(p.as_slice()),
                        "{id}: aes-kw unwrap"
                    );
                    // KWP output never unwraps as KW (where the length allows trying).
                    if c.len() >= 24 {
                        assert_eq!(
                            ours.unwrap(&c).map(|z| z.to_vec()),
                            Err(KeyWrapError::IntegrityCheckFailed),
                            "{id}: KWP output accepted by unwrap"
                        );
                    }
                }
                other => panic!("{FILE}: unknown mode {other:?}"),
            }
            *counts.entry(mode.to_owned()).or_default() += 1;
        }
    }
    let expected: std::collections::BTreeMap<String, usize> =
        [("KW", 3), ("KWP192", 2), ("KWP", 14)]
            .map(|(m, n)| (m.to_owned(), n))
            .into();
    assert_eq!(counts, expected, "{FILE}: cases per mode");
}
