//! AES-256 key wrap of a 32-byte key: strongroom-aes vs aes-kw (RustCrypto) and aws-lc-rs.
//!
//! Groups (each with `Throughput::Elements(1)`, so criterion prints ops/s):
//! * `kw_wrap`, `kw_unwrap`: RFC 3394 (NIST SP 800-38F KW);
//! * `kwp_wrap`, `kwp_unwrap`: RFC 5649 (KWP, with padding).
//!
//! Bench ids:
//! * `strongroom`, `aes-kw`: key schedule done once outside the loop; only
//!   wrap/unwrap is timed. strongroom returns a fresh `Vec` (wrap) or a
//!   `Zeroizing<Vec>` (unwrap), so its numbers include one allocation/free
//!   (+ zeroize on unwrap); aes-kw writes into a caller-provided stack buffer.
//! * `*+key-setup`: the KEK is constructed inside the timed loop. aws-lc-rs can
//!   only be measured this way: its `KeyWrap`/`KeyWrapPadded` methods consume
//!   the `AesKek` (and run `AES_set_{en,de}crypt_key` on every call), so each
//!   op needs a new KEK (which also boxes a copy of the key). Compare
//!   `aws-lc-rs+key-setup` with `strongroom+key-setup` / `aes-kw+key-setup`.
//!
//! Run: `cargo bench -p strongroom-benches --bench keywrap`.

use std::hint::black_box;
use std::time::Duration;

use aes_kw::KeyInit as _;
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrap as _, KeyWrapPadded as _};
use criterion::{Criterion, Throughput, criterion_main};
use strongroom_aes::Aes256Key;
use strongroom_aes::kw::Aes256Kw;

/// KEK and key data from RFC 3394 §4.6 (256-bit KEK, 256-bit key data).
const KEK: [u8; 32] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];
const KEY_DATA: [u8; 32] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
];
/// Expected RFC 3394 §4.6 output.
const KW_EXPECTED: [u8; 40] = [
    0x28, 0xc9, 0xf4, 0x04, 0xc4, 0xb8, 0x10, 0xf4, 0xcb, 0xcc, 0xb3, 0x5c, 0xfb, 0x87, 0xf8, 0x26,
    0x3f, 0x57, 0x86, 0xe2, 0xd8, 0x0e, 0xd3, 0x26, 0xcb, 0xc7, 0xf0, 0xe7, 0x1a, 0x99, 0xf4, 0x3b,
    0xfb, 0x98, 0x8b, 0x9b, 0x7a, 0x02, 0xdd, 0x21,
];

/// Wrapped length for a 32-byte key, both KW and KWP (32 is a multiple of 8).
const WRAPPED_LEN: usize = 40;

fn strongroom_kw() -> Aes256Kw {
    Aes256Kw::new(&Aes256Key::from_bytes(KEK))
}

fn aes_kw_kw() -> aes_kw::KwAes256 {
    aes_kw::KwAes256::new(&KEK.into())
}

fn aes_kw_kwp() -> aes_kw::KwpAes256 {
    aes_kw::KwpAes256::new(&KEK.into())
}

fn aws_lc_kek() -> AesKek {
    AesKek::new(&AES_256, &KEK).expect("aws-lc-rs KEK")
}

/// Check all implementations agree (and match RFC 3394 for KW) before timing.
fn cross_check() -> ([u8; WRAPPED_LEN], [u8; WRAPPED_LEN]) {
    // KW
    let ours = strongroom_kw().wrap(&KEY_DATA).expect("strongroom wrap");
    let mut theirs = [0u8; WRAPPED_LEN];
    let theirs = aes_kw_kw()
        .wrap_key(&KEY_DATA, &mut theirs)
        .expect("aes-kw wrap");
    let mut aws = [0u8; WRAPPED_LEN];
    let aws = aws_lc_kek()
        .wrap(&KEY_DATA, &mut aws)
        .expect("aws-lc-rs wrap");
    assert_eq!(
        ours.as_slice(),
        &KW_EXPECTED[..],
        "strongroom KW != RFC 3394"
    );
    assert_eq!(theirs, &KW_EXPECTED[..], "aes-kw KW != RFC 3394");
    assert_eq!(&*aws, &KW_EXPECTED[..], "aws-lc-rs KW != RFC 3394");

    // KWP
    let ours_p = strongroom_kw()
        .wrap_padded(&KEY_DATA)
        .expect("strongroom wrap_padded");
    let mut theirs_p = [0u8; WRAPPED_LEN];
    let theirs_p = aes_kw_kwp()
        .wrap_key(&KEY_DATA, &mut theirs_p)
        .expect("aes-kw KWP wrap");
    let mut aws_p = [0u8; WRAPPED_LEN];
    let aws_p = aws_lc_kek()
        .wrap_with_padding(&KEY_DATA, &mut aws_p)
        .expect("aws-lc-rs KWP wrap");
    assert_eq!(ours_p.as_slice(), theirs_p, "strongroom KWP != aes-kw");
    assert_eq!(ours_p.as_slice(), &*aws_p, "strongroom KWP != aws-lc-rs");
    assert_ne!(
        ours_p.as_slice(),
        ours.as_slice(),
        "KWP must differ from KW"
    );

    let kw: [u8; WRAPPED_LEN] = KW_EXPECTED;
    let kwp: [u8; WRAPPED_LEN] = ours_p.as_slice().try_into().expect("KWP length");

    // Every implementation unwraps both.
    assert_eq!(
        strongroom_kw()
            .unwrap(&kw)
            .expect("strongroom unwrap")
            .as_slice(),
        KEY_DATA
    );
    assert_eq!(
        strongroom_kw()
            .unwrap_padded(&kwp)
            .expect("strongroom unwrap_padded")
            .as_slice(),
        KEY_DATA
    );
    let mut out = [0u8; 32];
    assert_eq!(
        aes_kw_kw()
            .unwrap_key(&kw, &mut out)
            .expect("aes-kw unwrap"),
        KEY_DATA
    );
    assert_eq!(
        aes_kw_kwp()
            .unwrap_key(&kwp, &mut out)
            .expect("aes-kw KWP unwrap"),
        KEY_DATA
    );
    assert_eq!(
        &*aws_lc_kek()
            .unwrap(&kw, &mut out)
            .expect("aws-lc-rs unwrap"),
        KEY_DATA
    );
    assert_eq!(
        &*aws_lc_kek()
            .unwrap_with_padding(&kwp, &mut out)
            .expect("aws-lc-rs KWP unwrap"),
        KEY_DATA
    );
    (kw, kwp)
}

fn kw(c: &mut Criterion) {
    let (wrapped, _) = cross_check();
    let ours = strongroom_kw();
    let theirs = aes_kw_kw();

    let mut g = c.benchmark_group("kw_wrap");
    g.throughput(Throughput::Elements(1));
    g.bench_function("strongroom", |b| {
        b.iter(|| ours.wrap(black_box(&KEY_DATA)).expect("strongroom wrap"));
    });
    g.bench_function("aes-kw", |b| {
        b.iter(|| {
            let mut out = [0u8; WRAPPED_LEN];
            let _ = theirs
                .wrap_key(black_box(&KEY_DATA), &mut out)
                .expect("aes-kw wrap");
            out
        });
    });
    g.bench_function("strongroom+key-setup", |b| {
        b.iter(|| {
            Aes256Kw::new(&Aes256Key::from_bytes(black_box(KEK)))
                .wrap(black_box(&KEY_DATA))
                .expect("strongroom wrap")
        });
    });
    g.bench_function("aes-kw+key-setup", |b| {
        b.iter(|| {
            let mut out = [0u8; WRAPPED_LEN];
            let _ = aes_kw::KwAes256::new(&black_box(KEK).into())
                .wrap_key(black_box(&KEY_DATA), &mut out)
                .expect("aes-kw wrap");
            out
        });
    });
    g.bench_function("aws-lc-rs+key-setup", |b| {
        b.iter(|| {
            let mut out = [0u8; WRAPPED_LEN];
            let _ = AesKek::new(&AES_256, black_box(&KEK))
                .expect("aws-lc-rs KEK")
                .wrap(black_box(&KEY_DATA), &mut out)
                .expect("aws-lc-rs wrap");
            out
        });
    });
    g.finish();

    let mut g = c.benchmark_group("kw_unwrap");
    g.throughput(Throughput::Elements(1));
    g.bench_function("strongroom", |b| {
        b.iter(|| ours.unwrap(black_box(&wrapped)).expect("strongroom unwrap"));
    });
    g.bench_function("aes-kw", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            let _ = theirs
                .unwrap_key(black_box(&wrapped), &mut out)
                .expect("aes-kw unwrap");
            out
        });
    });
    g.bench_function("strongroom+key-setup", |b| {
        b.iter(|| {
            Aes256Kw::new(&Aes256Key::from_bytes(black_box(KEK)))
                .unwrap(black_box(&wrapped))
                .expect("strongroom unwrap")
        });
    });
    g.bench_function("aes-kw+key-setup", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            let _ = aes_kw::KwAes256::new(&black_box(KEK).into())
                .unwrap_key(black_box(&wrapped), &mut out)
                .expect("aes-kw unwrap");
            out
        });
    });
    g.bench_function("aws-lc-rs+key-setup", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            let _ = AesKek::new(&AES_256, black_box(&KEK))
                .expect("aws-lc-rs KEK")
                .unwrap(black_box(&wrapped), &mut out)
                .expect("aws-lc-rs unwrap");
            out
        });
    });
    g.finish();
}

fn kwp(c: &mut Criterion) {
    let (_, wrapped) = cross_check();
    let ours = strongroom_kw();
    let theirs = aes_kw_kwp();

    let mut g = c.benchmark_group("kwp_wrap");
    g.throughput(Throughput::Elements(1));
    g.bench_function("strongroom", |b| {
        b.iter(|| {
            ours.wrap_padded(black_box(&KEY_DATA))
                .expect("strongroom wrap_padded")
        });
    });
    g.bench_function("aes-kw", |b| {
        b.iter(|| {
            let mut out = [0u8; WRAPPED_LEN];
            let _ = theirs
                .wrap_key(black_box(&KEY_DATA), &mut out)
                .expect("aes-kw KWP wrap");
            out
        });
    });
    g.bench_function("strongroom+key-setup", |b| {
        b.iter(|| {
            Aes256Kw::new(&Aes256Key::from_bytes(black_box(KEK)))
                .wrap_padded(black_box(&KEY_DATA))
                .expect("strongroom wrap_padded")
        });
    });
    g.bench_function("aes-kw+key-setup", |b| {
        b.iter(|| {
            let mut out = [0u8; WRAPPED_LEN];
            let _ = aes_kw::KwpAes256::new(&black_box(KEK).into())
                .wrap_key(black_box(&KEY_DATA), &mut out)
                .expect("aes-kw KWP wrap");
            out
        });
    });
    g.bench_function("aws-lc-rs+key-setup", |b| {
        b.iter(|| {
            let mut out = [0u8; WRAPPED_LEN];
            let _ = AesKek::new(&AES_256, black_box(&KEK))
                .expect("aws-lc-rs KEK")
                .wrap_with_padding(black_box(&KEY_DATA), &mut out)
                .expect("aws-lc-rs KWP wrap");
            out
        });
    });
    g.finish();

    let mut g = c.benchmark_group("kwp_unwrap");
    g.throughput(Throughput::Elements(1));
    g.bench_function("strongroom", |b| {
        b.iter(|| {
            ours.unwrap_padded(black_box(&wrapped))
                .expect("strongroom unwrap_padded")
        });
    });
    g.bench_function("aes-kw", |b| {
        b.iter(|| {
            let mut out = [0u8; WRAPPED_LEN - 8];
            let _ = theirs
                .unwrap_key(black_box(&wrapped), &mut out)
                .expect("aes-kw KWP unwrap");
            out
        });
    });
    g.bench_function("strongroom+key-setup", |b| {
        b.iter(|| {
            Aes256Kw::new(&Aes256Key::from_bytes(black_box(KEK)))
                .unwrap_padded(black_box(&wrapped))
                .expect("strongroom unwrap_padded")
        });
    });
    g.bench_function("aes-kw+key-setup", |b| {
        b.iter(|| {
            let mut out = [0u8; WRAPPED_LEN - 8];
            let _ = aes_kw::KwpAes256::new(&black_box(KEK).into())
                .unwrap_key(black_box(&wrapped), &mut out)
                .expect("aes-kw KWP unwrap");
            out
        });
    });
    g.bench_function("aws-lc-rs+key-setup", |b| {
        b.iter(|| {
            let mut out = [0u8; WRAPPED_LEN - 8];
            let _ = AesKek::new(&AES_256, black_box(&KEK))
                .expect("aws-lc-rs KEK")
                .unwrap_with_padding(black_box(&wrapped), &mut out)
                .expect("aws-lc-rs KWP unwrap");
            out
        });
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

// The macro-generated `pub fn benches()` carries no doc comment.
#[allow(missing_docs)]
mod entry {
    criterion::criterion_group! {
        name = benches;
        config = super::config();
        targets = super::kw, super::kwp
    }
}
criterion_main!(entry::benches);
