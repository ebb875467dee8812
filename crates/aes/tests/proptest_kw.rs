//! Property tests for AES-256 key wrap: round trips of wrap/unwrap (RFC 3394)
//! and wrap_padded/unwrap_padded (RFC 5649), equality with the `aes-kw`
//! crate on the lengths where aes-kw is correct (KW: multiples of 8, >= 16;
//! KWP: >= 1), length rules, and rejection of tampered wrapped keys.

use aes_kw::{KeyInit as _, KwAes256, KwpAes256};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use strongroom_aes::Aes256Key;
use strongroom_aes::kw::{Aes256Kw, KeyWrapError};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

fn data(len: impl Strategy<Value = usize>) -> impl Strategy<Value = Vec<u8>> {
    len.prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
}

/// KW input lengths: 2..=80 semiblocks.
fn kw_len() -> impl Strategy<Value = usize> {
    (2usize..=80).prop_map(|n| 8 * n)
}

/// KWP input lengths: mostly around the one-semiblock special case.
fn kwp_len() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 1usize..=40, 1 => 41usize..=640]
}

/// Lengths 0..=200, half the time below 33 so that the boundary lengths
/// (0, 8, 16 for wrap inputs; 8, 16 for wrapped values) come up often.
fn short_biased() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..=32, 0usize..=200]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn kw_round_trip_and_matches_aes_kw(kek in any::<[u8; 32]>(), p in data(kw_len())) {
        let ours = Aes256Kw::new(&Aes256Key::from_bytes(kek));
        let wrapped = ours.wrap(&p).expect("valid KW length");
        prop_assert_eq!(wrapped.len(), p.len() + 8);
        let mut buf = vec![0u8; p.len() + 8];
        let reference = KwAes256::new(&kek.into()).wrap_key(&p, &mut buf).expect("aes-kw wrap");
        prop_assert_eq!(wrapped.as_slice(), reference);
        prop_assert_eq!(ours.unwrap(&wrapped).map(|z| z.to_vec()), Ok(p));
    }

    #[test]
    fn kwp_round_trip_and_matches_aes_kw(kek in any::<[u8; 32]>(), p in data(kwp_len())) {
        let ours = Aes256Kw::new(&Aes256Key::from_bytes(kek));
        let wrapped = ours.wrap_padded(&p).expect("valid KWP length");
        prop_assert_eq!(wrapped.len(), p.len().div_ceil(8) * 8 + 8);
        let mut buf = vec![0u8; wrapped.len()];
        let reference = KwpAes256::new(&kek.into()).wrap_key(&p, &mut buf).expect("aes-kw wrap");
        prop_assert_eq!(wrapped.as_slice(), reference);
        prop_assert_eq!(ours.unwrap_padded(&wrapped).map(|z| z.to_vec()), Ok(p));
    }

    /// Lengths RFC 3394 does not allow are refused before any work.
    #[test]
    fn kw_refuses_invalid_lengths(
        kek in any::<[u8; 32]>(),
        p in data(short_biased().prop_filter("invalid KW input length", |n| n % 8 != 0 || *n < 16)),
        w in data(short_biased().prop_filter("invalid KW wrapped length", |n| n % 8 != 0 || *n < 24)),
    ) {
        let ours = Aes256Kw::new(&Aes256Key::from_bytes(kek));
        prop_assert_eq!(ours.wrap(&p), Err(KeyWrapError::InvalidInputLength { len: p.len() }));
        prop_assert_eq!(
            ours.unwrap(&w).map(|z| z.to_vec()),
            Err(KeyWrapError::InvalidWrappedLength { len: w.len() })
        );
    }

    #[test]
    fn kwp_refuses_invalid_wrapped_lengths(
        kek in any::<[u8; 32]>(),
        w in data(short_biased().prop_filter("invalid KWP wrapped length", |n| n % 8 != 0 || *n < 16)),
    ) {
        let ours = Aes256Kw::new(&Aes256Key::from_bytes(kek));
        prop_assert_eq!(
            ours.unwrap_padded(&w).map(|z| z.to_vec()),
            Err(KeyWrapError::InvalidWrappedLength { len: w.len() })
        );
    }

    /// Flipping any one bit of a wrapped key, or unwrapping under another
    /// KEK, fails the integrity check (both modes).
    #[test]
    fn tampered_or_wrong_kek_fails_integrity(
        kek in any::<[u8; 32]>(),
        other_kek in any::<[u8; 32]>(),
        p in data(kw_len()),
        padded_len in kwp_len(),
        which in any::<prop::sample::Index>(),
        which_padded in any::<prop::sample::Index>(),
    ) {
        prop_assume!(kek != other_kek);
        let ours = Aes256Kw::new(&Aes256Key::from_bytes(kek));
        let other = Aes256Kw::new(&Aes256Key::from_bytes(other_kek));

        let wrapped = ours.wrap(&p).expect("wrap");
        prop_assert_eq!(other.unwrap(&wrapped).map(|z| z.to_vec()), Err(KeyWrapError::IntegrityCheckFailed));
        let mut bad = wrapped.clone();
        let bit = which.index(bad.len() * 8);
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(ours.unwrap(&bad).map(|z| z.to_vec()), Err(KeyWrapError::IntegrityCheckFailed));

        let q: Vec<u8> = p.iter().copied().cycle().take(padded_len).collect();
        let wrapped = ours.wrap_padded(&q).expect("wrap_padded");
        prop_assert_eq!(other.unwrap_padded(&wrapped).map(|z| z.to_vec()), Err(KeyWrapError::IntegrityCheckFailed));
        let mut bad = wrapped.clone();
        let bit = which_padded.index(bad.len() * 8);
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(
            ours.unwrap_padded(&bad).map(|z| z.to_vec()),
            Err(KeyWrapError::IntegrityCheckFailed)
        );
    }
}

/// RFC 5649's only input-length rule we can exercise: the empty key.
#[test]
fn kwp_refuses_empty_input() {
    let ours = Aes256Kw::new(&Aes256Key::from_bytes([7; 32]));
    assert_eq!(
        ours.wrap_padded(&[]),
        Err(KeyWrapError::InvalidInputLength { len: 0 })
    );
}
