//! AES-256-GCM throughput: strongroom-aes (its default tier as `strongroom`,
//! and forced onto each other tier this CPU can run as `strongroom-<tier>`:
//! `strongroom-avx2`, `strongroom-aesni`, `strongroom-portable`) vs aes-gcm
//! (RustCrypto), ring and aws-lc-rs.
//!
//! Two groups, `seal` and `open`. In each group, for each message size, the
//! implementations are benchmarked side by side as `<impl>/<size in bytes>`
//! (e.g. `seal/strongroom/65536`), with `Throughput::Bytes(size)`.
//!
//! Every implementation is driven the same way:
//! * AES-256, 96-bit nonce, 128-bit tag, 13 bytes of AAD (same bytes for all);
//! * in place, with a detached tag (the tag is returned by seal / passed to open
//!   separately; no implementation appends or strips it in the timed code);
//! * key setup happens once, outside the timed loop.
//!
//! Before benchmarking, all implementations are checked to produce the
//! same ciphertext and tag for the same input, so they do the same work.
//!
//! `strongroom-oop` measures the default tier out of place (`AeadInOut` with
//! an `InOutBuf` of two disjoint buffers: input untouched, output written),
//! next to the in-place ids of the same run; `strongroom-avx2-oop` the same
//! on the AVX2 tier, when it is not the default and the CPU has it.
//!
//! Run: `cargo bench -p strongroom-benches --bench aead`, then
//! `python3 benches/ratios.py` for a GB/s + ratio table.

use std::hint::black_box;
use std::iter;
use std::time::Duration;

use aes_gcm::aead::{AeadInOut as _, KeyInit as _};
use criterion::{
    BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_main,
    measurement::WallTime,
};
use strongroom_aes::aead::inout::InOutBuf;

/// Message sizes: 1 KiB, 16 KiB, 64 KiB, 1 MiB.
const SIZES: [usize; 4] = [1 << 10, 16 << 10, 64 << 10, 1 << 20];

/// Fixed benchmark key (arbitrary bytes).
const KEY: [u8; 32] = [
    0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
    0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4,
];

/// Fixed nonce, reused for every iteration.
///
/// BENCHMARK ONLY: reusing a (key, nonce) pair is catastrophic for GCM in real
/// use (it leaks the XOR of plaintexts and the GHASH key). Here nothing secret is
/// protected and a fixed nonce keeps every implementation doing identical work.
const NONCE: [u8; 12] = [
    0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce, 0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88,
];

/// 13 bytes of associated data (the size of a TLS 1.2 record AAD), same for all impls.
const AAD: [u8; 13] = *b"strongroom-ad";

const TAG_LEN: usize = 16;
type Tag = [u8; TAG_LEN];
/// `Impls::seal_*`: encrypt in place, return the detached tag.
type SealFn = fn(&Impls, &mut [u8]) -> Tag;
/// `Impls::open_*`: decrypt in place given the detached tag; panics on failure.
type OpenFn = fn(&Impls, &mut [u8], &Tag);

/// The implementations, each with its key already expanded.
struct Impls {
    strongroom: strongroom_aes::Aes256Gcm,
    /// strongroom-aes forced onto each other tier this CPU can run, by bench
    /// id (`strongroom-<tier>`).
    tiers: Vec<(String, strongroom_aes::Aes256Gcm)>,
    aes_gcm: aes_gcm::Aes256Gcm,
    ring: ring::aead::LessSafeKey,
    aws_lc: aws_lc_rs::aead::LessSafeKey,
}

impl Impls {
    fn new() -> Self {
        let strongroom =
            strongroom_aes::Aes256Gcm::with_key(&strongroom_aes::Aes256Key::from_bytes(KEY));
        let tiers = strongroom_aes::Backend::ALL
            .into_iter()
            .filter(|b| b.name() != strongroom.backend())
            .filter_map(|b| {
                let key = strongroom_aes::Aes256Key::from_bytes(KEY);
                let gcm = strongroom_aes::Aes256Gcm::with_key_and_backend(&key, b)?;
                Some((format!("strongroom-{}", b.name()), gcm))
            })
            .collect();
        let aes_gcm = aes_gcm::Aes256Gcm::new(&KEY.into());
        let ring = ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &KEY).expect("ring key"),
        );
        let aws_lc = aws_lc_rs::aead::LessSafeKey::new(
            aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &KEY)
                .expect("aws-lc-rs key"),
        );
        Self {
            strongroom,
            tiers,
            aes_gcm,
            ring,
            aws_lc,
        }
    }

    // ---- seal: encrypt `buf` in place, return the detached tag ----

    #[inline]
    fn seal_strongroom(&self, buf: &mut [u8]) -> Tag {
        self.strongroom
            .seal_in_place_detached(&NONCE, &AAD, buf)
            .expect("strongroom seal")
    }

    #[inline]
    fn seal_tier(gcm: &strongroom_aes::Aes256Gcm, buf: &mut [u8]) -> Tag {
        gcm.seal_in_place_detached(&NONCE, &AAD, buf)
            .expect("strongroom tier seal")
    }

    /// Out of place: seals `input` into `output`.
    #[inline]
    fn seal_oop(gcm: &strongroom_aes::Aes256Gcm, input: &[u8], output: &mut [u8]) -> Tag {
        let buf = InOutBuf::new(input, output).expect("equal lengths");
        gcm.encrypt_inout_detached(&NONCE.into(), &AAD, buf)
            .expect("strongroom out-of-place seal")
            .into()
    }

    #[inline]
    fn seal_aes_gcm(&self, buf: &mut [u8]) -> Tag {
        self.aes_gcm
            .encrypt_inout_detached(&NONCE.into(), &AAD, buf.into())
            .expect("aes-gcm seal")
            .into()
    }

    #[inline]
    fn seal_ring(&self, buf: &mut [u8]) -> Tag {
        let tag = self
            .ring
            .seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(NONCE),
                ring::aead::Aad::from(&AAD),
                buf,
            )
            .expect("ring seal");
        tag.as_ref().try_into().expect("ring tag length")
    }

    #[inline]
    fn seal_aws_lc(&self, buf: &mut [u8]) -> Tag {
        let tag = self
            .aws_lc
            .seal_in_place_separate_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(NONCE),
                aws_lc_rs::aead::Aad::from(&AAD),
                buf,
            )
            .expect("aws-lc-rs seal");
        tag.as_ref().try_into().expect("aws-lc-rs tag length")
    }

    // ---- open: decrypt `buf` in place given the detached tag; panics on failure ----

    #[inline]
    fn open_strongroom(&self, buf: &mut [u8], tag: &Tag) {
        self.strongroom
            .open_in_place_detached(&NONCE, &AAD, buf, tag)
            .expect("strongroom open failed");
    }

    #[inline]
    fn open_tier(gcm: &strongroom_aes::Aes256Gcm, buf: &mut [u8], tag: &Tag) {
        gcm.open_in_place_detached(&NONCE, &AAD, buf, tag)
            .expect("strongroom tier open failed");
    }

    /// Out of place: opens `input` into `output`.
    #[inline]
    fn open_oop(gcm: &strongroom_aes::Aes256Gcm, input: &[u8], output: &mut [u8], tag: &Tag) {
        let buf = InOutBuf::new(input, output).expect("equal lengths");
        gcm.decrypt_inout_detached(&NONCE.into(), &AAD, buf, &(*tag).into())
            .expect("strongroom out-of-place open failed");
    }

    #[inline]
    fn open_aes_gcm(&self, buf: &mut [u8], tag: &Tag) {
        self.aes_gcm
            .decrypt_inout_detached(&NONCE.into(), &AAD, buf.into(), &(*tag).into())
            .expect("aes-gcm open failed");
    }

    #[inline]
    fn open_ring(&self, buf: &mut [u8], tag: &Tag) {
        // ring's `open_in_place` wants ciphertext||tag; the `_separate_tag`
        // variant takes the tag by value and the ciphertext range (`0..`).
        self.ring
            .open_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(NONCE),
                ring::aead::Aad::from(&AAD),
                ring::aead::Tag::from(*tag),
                buf,
                0..,
            )
            .expect("ring open failed");
    }

    #[inline]
    fn open_aws_lc(&self, buf: &mut [u8], tag: &Tag) {
        self.aws_lc
            .open_in_place_separate_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(NONCE),
                aws_lc_rs::aead::Aad::from(&AAD),
                tag,
                buf,
            )
            .expect("aws-lc-rs open failed");
    }
}

fn plaintext(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i.wrapping_mul(31).wrapping_add(7)) as u8)
        .collect()
}

/// Seal `pt` with every implementation, check they all agree and that every
/// implementation opens the result; return the common (ciphertext, tag).
fn reference_ciphertext(impls: &Impls, pt: &[u8]) -> (Vec<u8>, Tag) {
    let seal_fns: [(&str, SealFn); 4] = [
        ("strongroom", Impls::seal_strongroom),
        ("aes-gcm", Impls::seal_aes_gcm),
        ("ring", Impls::seal_ring),
        ("aws-lc-rs", Impls::seal_aws_lc),
    ];
    let open_fns: [(&str, OpenFn); 4] = [
        ("strongroom", Impls::open_strongroom),
        ("aes-gcm", Impls::open_aes_gcm),
        ("ring", Impls::open_ring),
        ("aws-lc-rs", Impls::open_aws_lc),
    ];

    let mut reference: Option<(Vec<u8>, Tag)> = None;
    let tier_seals = impls.tiers.iter().map(|(name, gcm)| {
        let mut buf = pt.to_vec();
        let tag = Impls::seal_tier(gcm, &mut buf);
        (name.as_str(), buf, tag)
    });
    let sealed = seal_fns
        .into_iter()
        .map(|(name, seal)| {
            let mut buf = pt.to_vec();
            let tag = seal(impls, &mut buf);
            (name, buf, tag)
        })
        .chain(tier_seals);
    for (name, buf, tag) in sealed {
        match &reference {
            None => reference = Some((buf, tag)),
            Some((ct, t)) => {
                assert!(
                    ct == &buf && t == &tag,
                    "{name}: ciphertext/tag differs from strongroom for {} bytes",
                    pt.len()
                );
            }
        }
    }
    let (ct, tag) = reference.expect("at least one implementation");
    for (name, open) in open_fns {
        let mut buf = ct.clone();
        open(impls, &mut buf, &tag);
        assert!(buf == pt, "{name}: open did not round-trip");
    }
    for (name, gcm) in &impls.tiers {
        let mut buf = ct.clone();
        Impls::open_tier(gcm, &mut buf, &tag);
        assert!(buf == pt, "{name}: open did not round-trip");
    }
    let all = iter::once(&impls.strongroom).chain(impls.tiers.iter().map(|(_, g)| g));
    for gcm in all {
        let mut out = vec![0; pt.len()];
        assert_eq!(Impls::seal_oop(gcm, pt, &mut out), tag, "out-of-place tag");
        assert!(out == ct, "out-of-place ciphertext");
        Impls::open_oop(gcm, &ct, &mut out, &tag);
        assert!(out == pt, "out-of-place open did not round-trip");
    }
    (ct, tag)
}

fn bench_seal_one(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    size: usize,
    pt: &[u8],
    seal: impl Fn(&mut [u8]) -> Tag,
) {
    // One buffer, re-encrypted in place on every iteration (same cost every time).
    let mut buf = pt.to_vec();
    group.bench_function(BenchmarkId::new(name, size), |b| {
        b.iter(|| seal(black_box(buf.as_mut_slice())));
    });
}

fn bench_seal_oop(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    gcm: &strongroom_aes::Aes256Gcm,
    pt: &[u8],
) {
    // The input is never written, so one input and one output buffer serve
    // every iteration.
    let mut out = vec![0; pt.len()];
    group.bench_function(BenchmarkId::new(name, pt.len()), |b| {
        b.iter(|| Impls::seal_oop(gcm, black_box(pt), black_box(out.as_mut_slice())));
    });
}

fn bench_open_oop(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    gcm: &strongroom_aes::Aes256Gcm,
    ct: &[u8],
    tag: &Tag,
) {
    // Out of place the ciphertext stays valid, so no per-iteration copy.
    let mut out = vec![0; ct.len()];
    group.bench_function(BenchmarkId::new(name, ct.len()), |b| {
        b.iter(|| {
            Impls::open_oop(
                gcm,
                black_box(ct),
                black_box(out.as_mut_slice()),
                black_box(tag),
            );
        });
    });
}

fn bench_open_one(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    size: usize,
    ct: &[u8],
    tag: &Tag,
    open: impl Fn(&mut [u8], &Tag),
) {
    // A fresh copy of the valid ciphertext is made by the (untimed) setup
    // closure; only `open` is inside the timed region. LargeInput keeps at most
    // ~1000 inputs per batch in memory. Identical for all implementations.
    group.bench_function(BenchmarkId::new(name, size), |b| {
        b.iter_batched_ref(
            || ct.to_vec(),
            |buf| open(black_box(buf.as_mut_slice()), black_box(tag)),
            BatchSize::LargeInput,
        );
    });
}

fn seal(c: &mut Criterion) {
    let impls = Impls::new();
    let mut group = c.benchmark_group("seal");
    for size in SIZES {
        let pt = plaintext(size);
        let _ = reference_ciphertext(&impls, &pt);
        group.throughput(Throughput::Bytes(size as u64));
        bench_seal_one(&mut group, "strongroom", size, &pt, |b| {
            impls.seal_strongroom(b)
        });
        bench_seal_oop(&mut group, "strongroom-oop", &impls.strongroom, &pt);
        for (name, gcm) in &impls.tiers {
            bench_seal_one(&mut group, name, size, &pt, |b| Impls::seal_tier(gcm, b));
            if name == "strongroom-avx2" {
                bench_seal_oop(&mut group, "strongroom-avx2-oop", gcm, &pt);
            }
        }
        bench_seal_one(&mut group, "aes-gcm", size, &pt, |b| impls.seal_aes_gcm(b));
        bench_seal_one(&mut group, "ring", size, &pt, |b| impls.seal_ring(b));
        bench_seal_one(&mut group, "aws-lc-rs", size, &pt, |b| impls.seal_aws_lc(b));
    }
    group.finish();
}

fn open(c: &mut Criterion) {
    let impls = Impls::new();
    let mut group = c.benchmark_group("open");
    for size in SIZES {
        let pt = plaintext(size);
        let (ct, tag) = reference_ciphertext(&impls, &pt);
        group.throughput(Throughput::Bytes(size as u64));
        bench_open_one(&mut group, "strongroom", size, &ct, &tag, |b, t| {
            impls.open_strongroom(b, t)
        });
        bench_open_oop(&mut group, "strongroom-oop", &impls.strongroom, &ct, &tag);
        for (name, gcm) in &impls.tiers {
            bench_open_one(&mut group, name, size, &ct, &tag, |b, t| {
                Impls::open_tier(gcm, b, t);
            });
            if name == "strongroom-avx2" {
                bench_open_oop(&mut group, "strongroom-avx2-oop", gcm, &ct, &tag);
            }
        }
        bench_open_one(&mut group, "aes-gcm", size, &ct, &tag, |b, t| {
            impls.open_aes_gcm(b, t)
        });
        bench_open_one(&mut group, "ring", size, &ct, &tag, |b, t| {
            impls.open_ring(b, t)
        });
        bench_open_one(&mut group, "aws-lc-rs", size, &ct, &tag, |b, t| {
            impls.open_aws_lc(b, t)
        });
    }
    group.finish();
}

fn config() -> Criterion {
    // 2 groups x 4 sizes x 7 ids = 56 benchmarks at ~3 s each, plus untimed
    // setup for `open` and criterion's analysis (fewer bootstrap resamples than
    // the 100k default to keep that short): about 4 minutes in total.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .nresamples(20_000)
}

// The macro-generated `pub fn benches()` carries no doc comment.
#[allow(missing_docs)]
mod entry {
    criterion::criterion_group! {
        name = benches;
        config = super::config();
        targets = super::seal, super::open
    }
}
criterion_main!(entry::benches);
