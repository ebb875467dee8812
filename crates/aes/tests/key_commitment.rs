//! key_commitment: known answers (tests/data/key_commitment.rsp, computed
//! independently with python3 hashlib), determinism, length, and that
//! different keys give different commitments.

mod common;

use std::collections::HashSet;

use common::{parse_rsp, pattern};
use strongroom_aes::{Aes256Key, COMMITMENT_LEN, key_commitment, verify_key_commitment};

#[test]
fn key_commitment_known_answers() {
    let mut n = 0;
    for section in parse_rsp(include_str!("data/key_commitment.rsp")) {
        assert_eq!(section.header("Construction"), "SHA-256 v1");
        for case in &section.cases {
            let id = case.id("key_commitment.rsp");
            let key = Aes256Key::from_bytes(case.array("K"));
            let expected: [u8; 32] = case.array("C");
            assert_eq!(key_commitment(&key), expected, "{id}");
            assert!(verify_key_commitment(&key, &expected), "{id}: verify");
            n += 1;
        }
    }
    assert_eq!(n, 3);
}

#[test]
fn key_commitment_is_32_bytes_and_deterministic() {
    assert_eq!(COMMITMENT_LEN, 32);
    let bytes: [u8; 32] = pattern(7, 32).try_into().expect("32 bytes");
    let c: [u8; 32] = key_commitment(&Aes256Key::from_bytes(bytes));
    // Same key, same object and a fresh copy: same value.
    let key = Aes256Key::from_bytes(bytes);
    assert_eq!(key_commitment(&key), c);
    assert_eq!(key_commitment(&key), key_commitment(&key));
    assert_eq!(
        key_commitment(&Aes256Key::try_from_slice(&bytes).expect("32 bytes")),
        c
    );
    // It is not the key itself.
    assert_ne!(c, bytes);
}

#[test]
fn key_commitment_differs_for_different_keys() {
    let base: [u8; 32] = pattern(8, 32).try_into().expect("32 bytes");
    let base_c = key_commitment(&Aes256Key::from_bytes(base));
    let mut seen = HashSet::from([base_c]);
    // Every single-bit change of the key changes the commitment, and all 256
    // neighbours have distinct commitments.
    for bit in 0..256 {
        let mut k = base;
        k[bit / 8] ^= 1 << (bit % 8);
        let c = key_commitment(&Aes256Key::from_bytes(k));
        assert!(seen.insert(c), "bit {bit}: commitment collides");
        assert!(
            !verify_key_commitment(&Aes256Key::from_bytes(k), &base_c),
            "bit {bit}"
        );
    }
    // And some unrelated keys.
    for seed in 100..164 {
        let k: [u8; 32] = pattern(seed, 32).try_into().expect("32 bytes");
        assert!(
            seen.insert(key_commitment(&Aes256Key::from_bytes(k))),
            "seed {seed}"
        );
    }
    assert_eq!(seen.len(), 1 + 256 + 64);
}

#[test]
fn verify_key_commitment_rejects_any_changed_commitment_byte() {
    let key = Aes256Key::from_bytes([0x42; 32]);
    let c = key_commitment(&key);
    assert!(verify_key_commitment(&key, &c));
    for i in 0..32 {
        let mut bad = c;
        bad[i] ^= 0x01;
        assert!(!verify_key_commitment(&key, &bad), "byte {i}");
    }
}
