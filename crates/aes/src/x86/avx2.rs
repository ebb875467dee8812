//! The kernel on 256-bit vectors: VAES + VPCLMULQDQ with AVX2 (16 blocks
//! per iteration), for CPUs without AVX-512 (Zen 3, Intel client cores).

use core::arch::x86_64::{
    __m256i, _mm_xor_si128, _mm256_add_epi32, _mm256_aesenc_epi128, _mm256_aesenclast_epi128,
    _mm256_broadcastsi128_si256, _mm256_castsi256_si128, _mm256_clmulepi64_epi128,
    _mm256_extracti128_si256, _mm256_loadu_si256, _mm256_set_epi32, _mm256_setzero_si256,
    _mm256_shuffle_epi8, _mm256_shuffle_epi32, _mm256_storeu_si256, _mm256_xor_si256,
    _mm256_zextsi128_si256,
};

use aead::consts::{U32, U256};

type V = __m256i;
const LANES: usize = 2;
const BYTES: usize = 32;

/// Karatsuba middle products (one multiplication, a shuffle and an XOR):
/// without `vpternlogd`, fewer instructions than schoolbook.
const KARATSUBA: bool = true;
/// Opening gives the compiler all products before the rounds: it schedules
/// the AVX2 loop better that way (measured against the interleaved order).
const OPEN_HASH_FIRST: bool = true;

#[inline]
#[target_feature(enable = "avx2")]
fn zero() -> V {
    _mm256_setzero_si256()
}

#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx2")]
fn load(bytes: &[u8; BYTES]) -> V {
    // SAFETY: `bytes` is a valid, readable 32-byte array; the load is
    // unaligned.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx2")]
fn store(bytes: &mut [u8; BYTES], v: V) {
    // SAFETY: `bytes` is a valid, exclusively borrowed 32-byte array; the
    // store is unaligned.
    unsafe { _mm256_storeu_si256(bytes.as_mut_ptr().cast(), v) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn xor(a: V, b: V) -> V {
    _mm256_xor_si256(a, b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn xor3(a: V, b: V, c: V) -> V {
    _mm256_xor_si256(_mm256_xor_si256(a, b), c)
}

#[inline]
#[target_feature(enable = "avx2")]
fn add32(a: V, b: V) -> V {
    _mm256_add_epi32(a, b)
}

#[inline]
#[target_feature(enable = "avx2,vaes")]
fn aesenc(a: V, k: V) -> V {
    _mm256_aesenc_epi128(a, k)
}

#[inline]
#[target_feature(enable = "avx2,vaes")]
fn aesenclast(a: V, k: V) -> V {
    _mm256_aesenclast_epi128(a, k)
}

#[inline]
#[target_feature(enable = "avx2,vpclmulqdq")]
fn clmul_lo(a: V, b: V) -> V {
    _mm256_clmulepi64_epi128::<0x00>(a, b)
}

#[inline]
#[target_feature(enable = "avx2,vpclmulqdq")]
fn clmul_hi(a: V, b: V) -> V {
    _mm256_clmulepi64_epi128::<0x11>(a, b)
}

/// `a.lo · b.hi` in every lane.
#[inline]
#[target_feature(enable = "avx2,vpclmulqdq")]
fn clmul_lo_hi(a: V, b: V) -> V {
    _mm256_clmulepi64_epi128::<0x10>(a, b)
}

/// `a.hi · b.lo` in every lane.
#[inline]
#[target_feature(enable = "avx2,vpclmulqdq")]
fn clmul_hi_lo(a: V, b: V) -> V {
    _mm256_clmulepi64_epi128::<0x01>(a, b)
}

/// `(x^63 + x^62 + x^57) · a.lo` in every lane.
#[inline]
#[target_feature(enable = "avx2,vpclmulqdq")]
fn clmul_poly(a: V) -> V {
    _mm256_clmulepi64_epi128::<0x01>(broadcast(load128(&GFPOLY)), a)
}

#[inline]
#[target_feature(enable = "avx2")]
fn swap_halves(a: V) -> V {
    _mm256_shuffle_epi32::<0x4e>(a)
}

#[inline]
#[target_feature(enable = "avx2")]
fn bswap(a: V) -> V {
    _mm256_shuffle_epi8(a, broadcast(load128(&BSWAP)))
}

#[inline]
#[target_feature(enable = "avx2")]
fn broadcast(x: __m128i) -> V {
    _mm256_broadcastsi128_si256(x)
}

#[inline]
#[target_feature(enable = "avx2")]
fn lane0(x: __m128i) -> V {
    _mm256_zextsi128_si256(x)
}

#[inline]
#[target_feature(enable = "avx2")]
fn fold(v: V) -> __m128i {
    _mm_xor_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v))
}

#[inline]
#[target_feature(enable = "avx2")]
fn counter_offsets() -> V {
    _mm256_set_epi32(0, 0, 0, 1, 0, 0, 0, 0)
}

#[inline]
#[target_feature(enable = "avx2")]
fn counter_step() -> V {
    _mm256_set_epi32(0, 0, 0, 2, 0, 0, 0, 2)
}

/// `LANES` added to the big-endian counter word (bytes 12..16) of every
/// lane, as seen by a little-endian 32-bit add: `2 << 24` in dword 3.
#[inline]
#[target_feature(enable = "avx2")]
fn counter_step_be() -> V {
    _mm256_set_epi32(2 << 24, 0, 0, 0, 2 << 24, 0, 0, 0)
}

gcm_kernel!("avx2,vaes,vpclmulqdq,aes,pclmulqdq", 8, U32, U256);
