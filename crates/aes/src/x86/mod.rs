//! The fused AES-256-GCM kernels for x86-64 with VAES and VPCLMULQDQ.
//!
//! This module is the only place in the crate where `unsafe` is allowed, and
//! only on the items that use it (each says `#[allow(unsafe_code)]`). It is
//! used for exactly two things, each block marked `// SAFETY:` (clippy's
//! `undocumented_unsafe_blocks` is denied in the workspace):
//!
//! - unaligned vector loads and stores, always through a reference to a
//!   fixed-size byte array of exactly the vector's size (so the memory is
//!   valid, in bounds and borrowed for the access);
//! - calls into `#[target_feature]` functions, only from an [`X86`] value,
//!   which exists only after runtime detection found every feature the
//!   kernel of its tier was compiled for.
//!
//! # Representation
//!
//! GHASH works in the bit-reflected domain of the Intel / Linux
//! (`aes-gcm-avx10-x86_64.S`) kernels: every block is byte-reversed on load,
//! so each 128-bit lane holds the field element with the coefficient of
//! `x^0` in bit 127, and the hash key is pre-multiplied by `x^-1` (a one-bit
//! left shift with a conditional XOR of `0xc2..01`), which makes a plain
//! carry-less product of two such values come out already aligned. Products
//! are reduced with two multiplications by `x^63 + x^62 + x^57` (the high
//! half of `0xc2..01`).
//!
//! The counter is kept byte-reversed too, so `inc32` is a 32-bit lane add
//! (which wraps modulo 2^32, exactly as GCM's `inc32` does).
//!
//! # One iteration
//!
//! Eight vectors per iteration: 32 blocks on 512-bit vectors (four blocks a
//! vector), 16 blocks on 256-bit vectors. The 14 AES rounds of the eight
//! counter vectors run together with the GHASH of eight ciphertext
//! vectors, each multiplied by its own precomputed power `H^n .. H^1`,
//! summed unreduced, and reduced once per iteration:
//!
//! - sealing hashes the ciphertext of the *previous* iteration, still in
//!   registers since it was stored (the first iteration, keystream only,
//!   and the last hash, no keystream, are peeled, so the loop has no branch
//!   other than the counter's: see `first_round` in the kernel);
//! - opening hashes the ciphertext of the *same* iteration, known before
//!   its keystream is: each vector is loaded from the input just for its
//!   product, and loaded again for the XOR with the keystream, so nothing
//!   but the GHASH state is carried from one iteration to the next (on 16
//!   registers, carrying eight vectors cost spills).
//!
//! The middle products are schoolbook on AVX-512 (`vpternlogd` sums three
//! terms at once) and Karatsuba on AVX2 (fewer instructions without it).
//! Opening hashes everything before the caller checks the tag, so neither
//! order changes anything about when plaintext may be released.
//!
//! Both directions read the input and write the output of an
//! [`InOutBuf`]: in place (one buffer) or out of place (two disjoint ones)
//! is the same single pass, each byte read before it is written.

use core::arch::x86_64::{
    __m128i, _mm_aesenc_si128, _mm_aesenclast_si128, _mm_aeskeygenassist_si128,
    _mm_clmulepi64_si128, _mm_loadu_si128, _mm_shuffle_epi32, _mm_slli_si128, _mm_storeu_si128,
    _mm_xor_si128,
};

use aead::{Error, inout::InOutBuf};
use zeroize::Zeroize;

use crate::gcm::{failed_open, length_block, verify};
use crate::{NONCE_LEN, TAG_LEN};

#[macro_use]
mod kernel;
mod aesni;
mod avx2;
mod avx512;

/// Most blocks one iteration processes (the AVX-512 tier).
const MAX_BLOCKS: usize = 32;
/// Stored powers: `H^32 .. H^1`, then zero entries so that a tail's padding
/// lanes (zero data) multiply by zero and every load stays in bounds.
const POWER_SLOTS: usize = MAX_BLOCKS + 4;

/// Which kernel an [`X86`] value runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tier {
    /// VAES + VPCLMULQDQ on 512-bit vectors.
    Avx512,
    /// VAES + VPCLMULQDQ on 256-bit vectors.
    Avx2,
    /// AES-NI + PCLMULQDQ on 128-bit vectors (AVX encodings).
    Aesni,
}

impl Tier {
    /// Whether this CPU has every feature the tier's kernel is compiled for
    /// (`#[target_feature(enable = ...)]` of its functions, and of the key
    /// setup). The one place the crate, its tests and CI learn which tiers
    /// a CPU runs (through [`Backend::supported`](crate::Backend::supported)).
    pub(crate) fn detected(self) -> bool {
        let aesni = std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("avx");
        let vaes = aesni
            && std::arch::is_x86_feature_detected!("vaes")
            && std::arch::is_x86_feature_detected!("vpclmulqdq");
        match self {
            Self::Avx512 => {
                vaes && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
            }
            Self::Avx2 => vaes && std::arch::is_x86_feature_detected!("avx2"),
            Self::Aesni => aesni,
        }
    }
}

/// Expanded key material: AES round keys and the powers of H, all zeroized
/// on drop. It lives in a `Box` made before the key is expanded into it, so
/// it is built in place and never moved (moving an `Aes256Gcm` moves the
/// pointer).
pub(crate) struct Keys {
    /// The 15 AES-256 round keys.
    rk: [[u8; 16]; 15],
    /// `H^32, H^31, .. H^1` in the kernel's representation (little-endian
    /// lanes), then zero slots; flat, so a vector load may start at any slot.
    powers: [u8; 16 * POWER_SLOTS],
    /// For each slot, `lo ^ hi` of that power in both halves: the second
    /// operand of the Karatsuba middle product.
    karatsuba: [u8; 16 * POWER_SLOTS],
}

impl Keys {
    /// All zero, to be filled in place.
    fn zeroed() -> Self {
        Self {
            rk: [[0; 16]; 15],
            powers: [0; 16 * POWER_SLOTS],
            karatsuba: [0; 16 * POWER_SLOTS],
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.rk.zeroize();
        self.powers.zeroize();
        self.karatsuba.zeroize();
    }
}

/// Calls the function `$f` of the kernel module of `$tier` (an [`X86`]'s
/// tier), with `$args`.
macro_rules! on_tier {
    ($tier:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $tier {
            // SAFETY: an `X86` of a tier exists only after `X86::new` found
            // every feature that tier's kernel is compiled for
            // (`Tier::detected`), and its fields are private.
            Tier::Avx512 => unsafe { avx512::$f($($arg),*) },
            // SAFETY: as for Avx512.
            Tier::Avx2 => unsafe { avx2::$f($($arg),*) },
            // SAFETY: as for Avx512.
            Tier::Aesni => unsafe { aesni::$f($($arg),*) },
        }
    };
}

/// AES-256-GCM on one of the x86-64 vector tiers.
///
/// The fields are private and the only constructor runs feature detection,
/// so holding an `X86` of a tier proves the CPU can run that tier's kernel.
pub(crate) struct X86 {
    keys: Box<Keys>,
    tier: Tier,
}

impl X86 {
    /// Expands `key` for `tier`, or `None` when this CPU lacks a feature the
    /// tier needs.
    #[allow(unsafe_code)]
    pub(crate) fn new(key: &[u8; 32], tier: Tier) -> Option<Self> {
        if !tier.detected() {
            return None;
        }
        let mut keys = Box::new(Keys::zeroed());
        // SAFETY: `key_setup` needs `aes` and `pclmulqdq` (and SSE2, part of
        // the x86-64 baseline), which `tier.detected()` just confirmed.
        unsafe { key_setup(key, &mut keys) };
        Some(Self { keys, tier })
    }

    /// The tier this value runs.
    pub(crate) fn tier(&self) -> Tier {
        self.tier
    }

    /// Seals the input of `buffer` into its output (the same memory in
    /// place, or a disjoint slice: one pass either way) and returns the tag.
    /// Lengths are checked by the caller.
    #[allow(unsafe_code)]
    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        mut buffer: InOutBuf<'_, '_, u8>,
    ) -> [u8; 16] {
        let (counter, mut mask) = self.init(nonce);
        let mut acc = [0u8; 16];
        self.ghash(&mut acc, aad);
        let data = buffer.reborrow();
        on_tier!(self.tier, seal(&self.keys, &counter, &mut acc, data));
        self.finish(&mut acc, aad.len(), buffer.len(), &mut mask)
    }

    /// Hashes the ciphertext (the input of `buffer`) and decrypts it into
    /// the output in one pass, then checks `tag`.
    ///
    /// On failure the output holds the ciphertext again and the input is
    /// untouched: in place the same keystream is applied a second time,
    /// which restores the buffer exactly; out of place the input is copied
    /// over the output. Nobody else can see the output while we hold it, so
    /// the unverified plaintext never leaves this call.
    #[allow(unsafe_code)]
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        mut buffer: InOutBuf<'_, '_, u8>,
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Error> {
        let (counter, mut mask) = self.init(nonce);
        let mut acc = [0u8; 16];
        self.ghash(&mut acc, aad);
        let data = buffer.reborrow();
        on_tier!(self.tier, open(&self.keys, &counter, &mut acc, data));
        if verify(
            self.finish(&mut acc, aad.len(), buffer.len(), &mut mask),
            tag,
        ) {
            return Ok(());
        }
        Err(failed_open(buffer, |b| self.ctr(&counter, b)))
    }

    /// The first counter block `inc32(J0)` and the tag mask `E_K(J0)`
    /// (which `finish` clears).
    #[allow(unsafe_code)]
    fn init(&self, nonce: &[u8; NONCE_LEN]) -> ([u8; 16], [u8; 16]) {
        let mut j0 = [0u8; 16];
        j0[..NONCE_LEN].copy_from_slice(nonce);
        j0[15] = 1;
        let mut mask = [0u8; 16];
        // SAFETY: `aes` was detected in `X86::new` (every tier needs it).
        unsafe { encrypt_block(&self.keys.rk, &j0, &mut mask) };
        j0[15] = 2;
        (j0, mask)
    }

    /// GHASH over `data`, zero-padded to whole blocks.
    #[allow(unsafe_code)]
    fn ghash(&self, acc: &mut [u8; 16], data: &[u8]) {
        on_tier!(self.tier, ghash(&self.keys, acc, data));
    }

    /// CTR from `counter` over `data`, input to output, no hashing.
    #[allow(unsafe_code)]
    fn ctr(&self, counter: &[u8; 16], data: InOutBuf<'_, '_, u8>) {
        on_tier!(self.tier, ctr(&self.keys, counter, data));
    }

    /// Hashes the length block and masks the result with `E_K(J0)`; clears
    /// the GHASH state and the mask.
    fn finish(
        &self,
        acc: &mut [u8; 16],
        aad_len: usize,
        len: usize,
        mask: &mut [u8; 16],
    ) -> [u8; 16] {
        self.ghash(acc, &length_block(aad_len, len));
        // The accumulator lane is the byte-reversed GHASH value.
        let tag = (u128::from_le_bytes(*acc) ^ u128::from_be_bytes(*mask)).to_be_bytes();
        acc.zeroize();
        mask.zeroize();
        tag
    }

    /// GHASH of `data` under a chosen `h` (test only: the kernels' GHASH
    /// against the `ghash` crate for edge-case keys).
    #[cfg(test)]
    #[allow(unsafe_code)]
    pub(crate) fn ghash_with_h(tier: Tier, h: &[u8; 16], data: &[u8]) -> Option<[u8; 16]> {
        let mut this = Self::new(&[0; 32], tier)?;
        // SAFETY: `this` exists, so the features were detected.
        unsafe { set_h(&mut this.keys, h) };
        let mut acc = [0u8; 16];
        this.ghash(&mut acc, data);
        Some(u128::from_le_bytes(acc).to_be_bytes())
    }
}

/// Loads 16 bytes.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "sse2")]
fn load128(bytes: &[u8; 16]) -> __m128i {
    // SAFETY: `bytes` is a valid, readable 16-byte array; the load is
    // unaligned.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

/// Stores 16 bytes.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "sse2")]
fn store128(bytes: &mut [u8; 16], value: __m128i) {
    // SAFETY: `bytes` is a valid, exclusively borrowed 16-byte array; the
    // store is unaligned.
    unsafe { _mm_storeu_si128(bytes.as_mut_ptr().cast(), value) }
}

/// Expands the key into `keys`, computes `H = E_K(0)` and its powers.
#[target_feature(enable = "aes,pclmulqdq")]
fn key_setup(key: &[u8; 32], keys: &mut Keys) {
    expand_key(key, &mut keys.rk);
    let mut h = [0u8; 16];
    encrypt_block(&keys.rk, &[0; 16], &mut h);
    set_h(keys, &h);
    h.zeroize();
}

/// Fills the power tables from the GHASH key `h` (as SP 800-38D bytes).
#[target_feature(enable = "pclmulqdq")]
fn set_h(keys: &mut Keys, h: &[u8; 16]) {
    // Byte-reflect, then multiply by x^-1: shift left one bit and fold the
    // carried-out bit back with the reduction constant. The named copies
    // of H are cleared below; what stays in registers is out of reach.
    let mut raw = u128::from_be_bytes(*h);
    let carry = raw >> 127;
    raw = (raw << 1) ^ (carry.wrapping_neg() & 0xc200_0000_0000_0000_0000_0000_0000_0001);
    let mut bytes = raw.to_le_bytes();
    raw.zeroize();
    let h1 = load128(&bytes);
    bytes.zeroize();
    let mut power = h1;
    for n in 1..=MAX_BLOCKS {
        // H^n lives in slot MAX_BLOCKS - n; its Karatsuba companion is
        // `lo ^ hi` in both halves, `power ^ swap_halves(power)`.
        let slot = MAX_BLOCKS - n;
        store128(slot_mut(&mut keys.powers, slot), power);
        let folded = _mm_xor_si128(power, _mm_shuffle_epi32::<0x4e>(power));
        store128(slot_mut(&mut keys.karatsuba, slot), folded);
        power = gf_mul(power, h1);
    }
}

/// The 16 bytes of power slot `slot` of a table.
fn slot_mut(table: &mut [u8; 16 * POWER_SLOTS], slot: usize) -> &mut [u8; 16] {
    let (slots, _) = table.as_chunks_mut::<16>();
    &mut slots[slot]
}

/// One multiplication in the kernel's representation (schoolbook, reduced),
/// for the key setup.
#[inline]
#[target_feature(enable = "pclmulqdq")]
fn gf_mul(a: __m128i, b: __m128i) -> __m128i {
    let poly = load128(&GFPOLY);
    let lo = _mm_clmulepi64_si128::<0x00>(a, b);
    let hi = _mm_clmulepi64_si128::<0x11>(a, b);
    let mi = _mm_xor_si128(
        _mm_clmulepi64_si128::<0x01>(a, b),
        _mm_clmulepi64_si128::<0x10>(a, b),
    );
    let mi = _mm_xor_si128(
        mi,
        _mm_xor_si128(
            _mm_clmulepi64_si128::<0x01>(poly, lo),
            _mm_shuffle_epi32::<0x4e>(lo),
        ),
    );
    _mm_xor_si128(
        hi,
        _mm_xor_si128(
            _mm_clmulepi64_si128::<0x01>(poly, mi),
            _mm_shuffle_epi32::<0x4e>(mi),
        ),
    )
}

/// The reduction constant `0xc2000000_00000000_00000000_00000001`, as
/// little-endian lane bytes: its high half is `x^63 + x^62 + x^57`.
const GFPOLY: [u8; 16] = 0xc200_0000_0000_0000_0000_0000_0000_0001u128.to_le_bytes();

/// Byte-reversal shuffle for one 128-bit lane.
const BSWAP: [u8; 16] = [15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0];

/// AES-256 key expansion with AES-NI (FIPS 197 section 5.2), into `out`.
#[target_feature(enable = "aes")]
fn expand_key(key: &[u8; 32], out: &mut [[u8; 16]; 15]) {
    let (halves, _) = key.as_chunks::<16>();
    let mut a = load128(&halves[0]);
    let mut b = load128(&halves[1]);
    store128(&mut out[0], a);
    store128(&mut out[1], b);
    macro_rules! pair {
        ($rcon:literal, $i:literal) => {
            a = expand_a(a, _mm_aeskeygenassist_si128::<$rcon>(b));
            store128(&mut out[$i], a);
            b = expand_b(b, _mm_aeskeygenassist_si128::<0>(a));
            store128(&mut out[$i + 1], b);
        };
    }
    pair!(0x01, 2);
    pair!(0x02, 4);
    pair!(0x04, 6);
    pair!(0x08, 8);
    pair!(0x10, 10);
    pair!(0x20, 12);
    a = expand_a(a, _mm_aeskeygenassist_si128::<0x40>(b));
    store128(&mut out[14], a);
}

/// `w[i] = w[i-8] ^ SubWord(RotWord(w[i-1])) ^ rcon`, four words at once.
#[inline]
#[target_feature(enable = "aes")]
fn expand_a(a: __m128i, assist: __m128i) -> __m128i {
    let a = prefix_xor(a);
    _mm_xor_si128(a, _mm_shuffle_epi32::<0xff>(assist))
}

/// `w[i] = w[i-8] ^ SubWord(w[i-1])`, four words at once.
#[inline]
#[target_feature(enable = "aes")]
fn expand_b(b: __m128i, assist: __m128i) -> __m128i {
    let b = prefix_xor(b);
    _mm_xor_si128(b, _mm_shuffle_epi32::<0xaa>(assist))
}

/// Each 32-bit word XORed with all the words below it.
#[inline]
#[target_feature(enable = "sse2")]
fn prefix_xor(mut x: __m128i) -> __m128i {
    let mut t = _mm_slli_si128::<4>(x);
    x = _mm_xor_si128(x, t);
    t = _mm_slli_si128::<4>(t);
    x = _mm_xor_si128(x, t);
    t = _mm_slli_si128::<4>(t);
    _mm_xor_si128(x, t)
}

/// One AES-256 block encryption with AES-NI, into `out`.
#[target_feature(enable = "aes")]
fn encrypt_block(rk: &[[u8; 16]; 15], block: &[u8; 16], out: &mut [u8; 16]) {
    let mut s = _mm_xor_si128(load128(block), load128(&rk[0]));
    for k in &rk[1..14] {
        s = _mm_aesenc_si128(s, load128(k));
    }
    s = _mm_aesenclast_si128(s, load128(&rk[14]));
    store128(out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backend;
    use aes::cipher::{BlockCipherEncrypt, KeyInit};
    use ghash::universal_hash::UniversalHash;

    /// The x86-64 tiers this CPU runs, as the integration tests see them:
    /// panics (the test fails, it does not skip) when a tier
    /// `STRONGROOM_REQUIRE_BACKENDS` requires cannot run here, or when none
    /// can, since a test over no tier would check nothing.
    fn tiers() -> Vec<Tier> {
        let required = Backend::required();
        let mut tiers = Vec::new();
        for backend in Backend::ALL {
            let Some(tier) = backend.x86_tier() else {
                continue;
            };
            if tier.detected() {
                tiers.push(tier);
            } else {
                assert!(
                    !required.contains(&backend),
                    "{backend:?} is required (STRONGROOM_REQUIRE_BACKENDS) but this CPU cannot run it"
                );
                assert!(
                    X86::new(&[0; 32], tier).is_none(),
                    "{tier:?} was built on a CPU that lacks it"
                );
            }
        }
        assert!(
            !tiers.is_empty(),
            "this CPU runs no x86-64 tier (it lacks AES-NI, PCLMULQDQ or AVX), so the kernel tests would check nothing"
        );
        tiers
    }

    #[test]
    #[allow(unsafe_code)]
    fn key_expansion_matches_aes_crate() {
        for tier in tiers() {
            for seed in 0..8u8 {
                let key: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ seed);
                let block: [u8; 16] = core::array::from_fn(|i| (i as u8) ^ seed.wrapping_mul(11));
                let x = X86::new(&key, tier).expect("detected");
                let mut ours = [0u8; 16];
                // SAFETY: `x` exists, so `aes` was detected (every tier
                // needs it).
                unsafe { encrypt_block(&x.keys.rk, &block, &mut ours) };
                let mut theirs = block.into();
                aes::Aes256::new(&key.into()).encrypt_block(&mut theirs);
                assert_eq!(ours, theirs.0, "{tier:?} seed {seed}");
            }
        }
    }

    /// The kernels' GHASH against the `ghash` crate for hash keys a random
    /// key would almost never give: 0, 1, all ones, 2^127, top/bottom bits.
    #[test]
    fn ghash_matches_ghash_crate_for_chosen_h() {
        let mut hs: Vec<[u8; 16]> = vec![
            [0; 16],
            [0xff; 16],
            1u128.to_be_bytes(),
            (1u128 << 127).to_be_bytes(),
            ((1u128 << 127) | 1).to_be_bytes(),
            (u128::MAX >> 1).to_be_bytes(),
            (u128::MAX << 1).to_be_bytes(),
            (1u128 << 64).to_be_bytes(),
            (1u128 << 63).to_be_bytes(),
        ];
        hs.push(core::array::from_fn(|i| {
            (i as u8).wrapping_mul(0x9d) ^ 0x5a
        }));
        let lengths = [
            0, 1, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512,
            513, 1023, 1024, 1025, 1500,
        ];
        let data: Vec<u8> = (0..1500u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let tiers = tiers();
        for h in &hs {
            for &len in &lengths {
                let mut reference = ghash::GHash::new(&(*h).into());
                reference.update_padded(&data[..len]);
                let expected = reference.finalize();
                for &tier in &tiers {
                    let ours = X86::ghash_with_h(tier, h, &data[..len]).expect("detected");
                    assert_eq!(ours, expected.0, "{tier:?} h={h:02x?} len={len}");
                }
            }
        }
    }
}
