//! The kernel on 512-bit vectors: VAES + VPCLMULQDQ with AVX-512F/BW
//! (32 blocks per iteration).

use core::arch::x86_64::{
    __m512i, _MM_PERM_BADC, _mm_xor_si128, _mm256_castsi256_si128, _mm256_extracti128_si256,
    _mm256_xor_si256, _mm512_add_epi32, _mm512_aesenc_epi128, _mm512_aesenclast_epi128,
    _mm512_broadcast_i32x4, _mm512_castsi512_si256, _mm512_clmulepi64_epi128,
    _mm512_extracti64x4_epi64, _mm512_loadu_si512, _mm512_set_epi32, _mm512_setzero_si512,
    _mm512_shuffle_epi8, _mm512_shuffle_epi32, _mm512_storeu_si512, _mm512_ternarylogic_epi32,
    _mm512_xor_si512, _mm512_zextsi128_si512,
};

use aead::consts::{U64, U512};

type V = __m512i;
const LANES: usize = 4;
const BYTES: usize = 64;

/// Schoolbook middle products (two multiplications, no shuffle): with
/// `vpternlogd` summing three terms in one instruction, fewer instructions
/// than Karatsuba compete with `vaesenc` for the two 512-bit ports.
const KARATSUBA: bool = false;
/// Opening interleaves one product with each of the first rounds.
const OPEN_HASH_FIRST: bool = false;

#[inline]
#[target_feature(enable = "avx512f")]
fn zero() -> V {
    _mm512_setzero_si512()
}

#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f")]
fn load(bytes: &[u8; BYTES]) -> V {
    // SAFETY: `bytes` is a valid, readable 64-byte array; the load is
    // unaligned.
    unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
}

#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f")]
fn store(bytes: &mut [u8; BYTES], v: V) {
    // SAFETY: `bytes` is a valid, exclusively borrowed 64-byte array; the
    // store is unaligned.
    unsafe { _mm512_storeu_si512(bytes.as_mut_ptr().cast(), v) }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn xor(a: V, b: V) -> V {
    _mm512_xor_si512(a, b)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn xor3(a: V, b: V, c: V) -> V {
    _mm512_ternarylogic_epi32::<0x96>(a, b, c)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn add32(a: V, b: V) -> V {
    _mm512_add_epi32(a, b)
}

#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn aesenc(a: V, k: V) -> V {
    _mm512_aesenc_epi128(a, k)
}

#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn aesenclast(a: V, k: V) -> V {
    _mm512_aesenclast_epi128(a, k)
}

#[inline]
#[target_feature(enable = "avx512f,vpclmulqdq")]
fn clmul_lo(a: V, b: V) -> V {
    _mm512_clmulepi64_epi128::<0x00>(a, b)
}

#[inline]
#[target_feature(enable = "avx512f,vpclmulqdq")]
fn clmul_hi(a: V, b: V) -> V {
    _mm512_clmulepi64_epi128::<0x11>(a, b)
}

/// `a.lo · b.hi` in every lane.
#[inline]
#[target_feature(enable = "avx512f,vpclmulqdq")]
fn clmul_lo_hi(a: V, b: V) -> V {
    _mm512_clmulepi64_epi128::<0x10>(a, b)
}

/// `a.hi · b.lo` in every lane.
#[inline]
#[target_feature(enable = "avx512f,vpclmulqdq")]
fn clmul_hi_lo(a: V, b: V) -> V {
    _mm512_clmulepi64_epi128::<0x01>(a, b)
}

/// `(x^63 + x^62 + x^57) · a.lo` in every lane.
#[inline]
#[target_feature(enable = "avx512f,vpclmulqdq")]
fn clmul_poly(a: V) -> V {
    _mm512_clmulepi64_epi128::<0x01>(broadcast(load128(&GFPOLY)), a)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn swap_halves(a: V) -> V {
    _mm512_shuffle_epi32::<_MM_PERM_BADC>(a)
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn bswap(a: V) -> V {
    _mm512_shuffle_epi8(a, broadcast(load128(&BSWAP)))
}

#[inline]
#[target_feature(enable = "avx512f")]
fn broadcast(x: __m128i) -> V {
    _mm512_broadcast_i32x4(x)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn lane0(x: __m128i) -> V {
    _mm512_zextsi128_si512(x)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn fold(v: V) -> __m128i {
    let y = _mm256_xor_si256(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v));
    _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256::<1>(y))
}

#[inline]
#[target_feature(enable = "avx512f")]
fn counter_offsets() -> V {
    _mm512_set_epi32(0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn counter_step() -> V {
    _mm512_set_epi32(0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4)
}

/// `LANES` added to the big-endian counter word (bytes 12..16) of every
/// lane, as seen by a little-endian 32-bit add: `4 << 24` in dword 3.
#[inline]
#[target_feature(enable = "avx512f")]
fn counter_step_be() -> V {
    _mm512_set_epi32(
        4 << 24,
        0,
        0,
        0,
        4 << 24,
        0,
        0,
        0,
        4 << 24,
        0,
        0,
        0,
        4 << 24,
        0,
        0,
        0,
    )
}

gcm_kernel!(
    "avx512f,avx512bw,vaes,vpclmulqdq,aes,pclmulqdq",
    8,
    U64,
    U512
);
