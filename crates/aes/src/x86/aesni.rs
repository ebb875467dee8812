//! The kernel on 128-bit vectors: AES-NI + PCLMULQDQ with AVX encodings
//! (8 blocks per iteration), for x86-64 CPUs without VAES: Zen 1 and 2,
//! Intel from Sandy Bridge to Skylake (servers up to Cascade Lake).
//!
//! The same kernel as the wide tiers, one block a vector: eight counter
//! blocks per iteration run their 14 rounds together with the GHASH of
//! eight ciphertext blocks, reduced once, the shape of the AES-NI GCM
//! kernels of OpenSSL and BoringSSL (`aesni-gcm-x86_64`).

// `__m128i` and `_mm_shuffle_epi8` come in with the kernel (`gcm_kernel!`).
use core::arch::x86_64::{
    _mm_add_epi32, _mm_aesenc_si128, _mm_aesenclast_si128, _mm_clmulepi64_si128, _mm_loadu_si128,
    _mm_set_epi32, _mm_setzero_si128, _mm_shuffle_epi32, _mm_storeu_si128, _mm_xor_si128,
};

use aead::consts::{U16, U128};

type V = __m128i;
const LANES: usize = 1;
const BYTES: usize = 16;

/// Karatsuba middle products: three multiplications a block instead of
/// four, and PCLMULQDQ is the scarcer unit on these cores (sealing measured
/// faster than schoolbook on Zen 1: see `CHANGELOG.md`).
const KARATSUBA: bool = true;
/// Opening gives the compiler all products before the rounds, as on AVX2
/// (16 registers either way); the interleaved order measured the same on
/// Zen 1. Six blocks an iteration (as OpenSSL's `aesni-gcm` does, to spill
/// less) measured slower there than eight (`CHANGELOG.md`).
const OPEN_HASH_FIRST: bool = true;

#[inline]
#[target_feature(enable = "avx")]
fn zero() -> V {
    _mm_setzero_si128()
}

#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx")]
fn load(bytes: &[u8; BYTES]) -> V {
    // SAFETY: `bytes` is a valid, readable 16-byte array; the load is
    // unaligned.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx")]
fn store(bytes: &mut [u8; BYTES], v: V) {
    // SAFETY: `bytes` is a valid, exclusively borrowed 16-byte array; the
    // store is unaligned.
    unsafe { _mm_storeu_si128(bytes.as_mut_ptr().cast(), v) }
}

#[inline]
#[target_feature(enable = "avx")]
fn xor(a: V, b: V) -> V {
    _mm_xor_si128(a, b)
}

#[inline]
#[target_feature(enable = "avx")]
fn xor3(a: V, b: V, c: V) -> V {
    _mm_xor_si128(_mm_xor_si128(a, b), c)
}

#[inline]
#[target_feature(enable = "avx")]
fn add32(a: V, b: V) -> V {
    _mm_add_epi32(a, b)
}

#[inline]
#[target_feature(enable = "avx,aes")]
fn aesenc(a: V, k: V) -> V {
    _mm_aesenc_si128(a, k)
}

#[inline]
#[target_feature(enable = "avx,aes")]
fn aesenclast(a: V, k: V) -> V {
    _mm_aesenclast_si128(a, k)
}

#[inline]
#[target_feature(enable = "avx,pclmulqdq")]
fn clmul_lo(a: V, b: V) -> V {
    _mm_clmulepi64_si128::<0x00>(a, b)
}

#[inline]
#[target_feature(enable = "avx,pclmulqdq")]
fn clmul_hi(a: V, b: V) -> V {
    _mm_clmulepi64_si128::<0x11>(a, b)
}

/// `a.lo · b.hi`.
#[inline]
#[target_feature(enable = "avx,pclmulqdq")]
fn clmul_lo_hi(a: V, b: V) -> V {
    _mm_clmulepi64_si128::<0x10>(a, b)
}

/// `a.hi · b.lo`.
#[inline]
#[target_feature(enable = "avx,pclmulqdq")]
fn clmul_hi_lo(a: V, b: V) -> V {
    _mm_clmulepi64_si128::<0x01>(a, b)
}

/// `(x^63 + x^62 + x^57) · a.lo`.
#[inline]
#[target_feature(enable = "avx,pclmulqdq")]
fn clmul_poly(a: V) -> V {
    _mm_clmulepi64_si128::<0x01>(load128(&GFPOLY), a)
}

#[inline]
#[target_feature(enable = "avx")]
fn swap_halves(a: V) -> V {
    _mm_shuffle_epi32::<0x4e>(a)
}

#[inline]
#[target_feature(enable = "avx")]
fn bswap(a: V) -> V {
    _mm_shuffle_epi8(a, load128(&BSWAP))
}

/// One lane: the value itself.
#[inline]
#[target_feature(enable = "avx")]
fn broadcast(x: __m128i) -> V {
    x
}

/// One lane: the value itself.
#[inline]
#[target_feature(enable = "avx")]
fn lane0(x: __m128i) -> V {
    x
}

/// One lane: nothing to fold.
#[inline]
#[target_feature(enable = "avx")]
fn fold(v: V) -> __m128i {
    v
}

#[inline]
#[target_feature(enable = "avx")]
fn counter_offsets() -> V {
    _mm_setzero_si128()
}

#[inline]
#[target_feature(enable = "avx")]
fn counter_step() -> V {
    _mm_set_epi32(0, 0, 0, 1)
}

/// One added to the big-endian counter word (bytes 12..16), as seen by a
/// little-endian 32-bit add: `1 << 24` in dword 3.
#[inline]
#[target_feature(enable = "avx")]
fn counter_step_be() -> V {
    _mm_set_epi32(1 << 24, 0, 0, 0)
}

gcm_kernel!("avx,aes,pclmulqdq", 8, U16, U128);
