//! The kernel, written once over a vector type `V` of `LANES` 128-bit lanes
//! and expanded per tier by `gcm_kernel!`. The expanding module provides
//! `V`, `LANES`, `BYTES` (= 16 · `LANES`), the choices `KARATSUBA` (middle
//! products) and `OPEN_HASH_FIRST` (source order of the open loop), and
//! these `#[target_feature]` helpers: `zero`, `load`, `store`, `xor`,
//! `xor3`, `aesenc`, `aesenclast`, `clmul_lo` (lo·lo), `clmul_hi` (hi·hi),
//! `clmul_lo_hi`, `clmul_hi_lo`, `clmul_poly` (`x^63+x^62+x^57` times the
//! low half), `swap_halves`, `bswap`, `broadcast`, `lane0`, `fold`,
//! `add32`, `counter_offsets` (lane i: +i), `counter_step` (every lane:
//! +`LANES`) and `counter_step_be` (the same step on big-endian blocks).
//!
//! Seal, open and CTR read from the input and write to the output of an
//! [`InOutBuf`](aead::inout::InOutBuf): one buffer in place, or two
//! disjoint ones, in the same single pass. An iteration (or a vector) takes
//! its input as `&[u8; N]` and then its output as `&mut [u8; N]`, never
//! both at once, so its bytes are read before they are written, which is
//! what lets the two be the same memory.

/// Expands the tier-independent kernel into the calling module.
macro_rules! gcm_kernel {
    ($features:literal, $nv:literal, $vector:ty, $chunk:ty) => {
        use super::{BSWAP, GFPOLY, Keys, MAX_BLOCKS, load128, store128};
        use aead::array::Array;
        use aead::inout::{InOut, InOutBuf};
        use core::arch::x86_64::{__m128i, _mm_shuffle_epi8};
        use zeroize::Zeroize as _;

        /// Vectors per iteration (even, at most 8).
        const NV: usize = $nv;
        /// Bytes per iteration.
        const CHUNK: usize = NV * BYTES;
        /// First power slot of a full iteration: `H^(NV·LANES)`.
        const FULL_SLOT: usize = MAX_BLOCKS - NV * LANES;

        /// What CTR carries through one call. Its round keys are cleared
        /// when it is dropped, so that this copy of them does not outlive
        /// the call on the stack (what the compiler keeps in registers, or
        /// spills, is out of reach).
        struct Ctr {
            /// The 15 round keys, each broadcast to every lane.
            rk: [V; 15],
            /// The byte-reversed counter block, one counter per lane.
            ctr: V,
            /// The 32-bit counter of lane 0.
            low: u32,
        }

        impl Ctr {
            /// CTR from `counter`, with zero round keys until
            /// [`set_keys`](Self::set_keys) sets them in place: a `Ctr`
            /// holding keys is never returned or moved.
            #[inline]
            #[target_feature(enable = $features)]
            fn at(counter: &[u8; 16]) -> Self {
                Self {
                    rk: [zero(); 15],
                    ctr: counters(counter),
                    low: u32::from_be_bytes([counter[12], counter[13], counter[14], counter[15]]),
                }
            }

            /// Broadcasts the round keys of `keys` into place.
            #[inline]
            #[target_feature(enable = $features)]
            fn set_keys(&mut self, keys: &Keys) {
                for (v, k) in self.rk.iter_mut().zip(&keys.rk) {
                    *v = broadcast(load128(k));
                }
            }
        }

        impl Drop for Ctr {
            #[inline]
            fn drop(&mut self) {
                self.rk.zeroize();
            }
        }

        /// The power vector and its Karatsuba companion starting at `slot`.
        #[inline]
        #[target_feature(enable = $features)]
        fn powers(keys: &Keys, slot: usize) -> (V, V) {
            let at = 16 * slot;
            let h: &[u8; BYTES] = keys.powers[at..at + BYTES].try_into().expect("in bounds"); // safe: slot + LANES <= POWER_SLOTS
            let k: &[u8; BYTES] = keys.karatsuba[at..at + BYTES]
                .try_into()
                .expect("in bounds"); // safe: as above
            (load(h), load(k))
        }

        /// Unreduced products, summed: `lo·lo`, `hi·hi` and the middle term
        /// (`lo·hi + hi·lo`; with Karatsuba, `(lo+hi)·(lo+hi)` until
        /// `reduce` adds `lo·lo` and `hi·hi` to it).
        #[derive(Clone, Copy)]
        struct Acc {
            lo: V,
            hi: V,
            mi: V,
        }

        impl Acc {
            #[inline]
            #[target_feature(enable = $features)]
            fn new() -> Self {
                Self {
                    lo: zero(),
                    hi: zero(),
                    mi: zero(),
                }
            }

            /// Adds `x · h` (lane by lane); `k` holds `h.lo ^ h.hi`.
            #[inline]
            #[target_feature(enable = $features)]
            fn mul(&mut self, x: V, h: V, k: V) {
                self.lo = xor(self.lo, clmul_lo(x, h));
                self.hi = xor(self.hi, clmul_hi(x, h));
                self.mi = if KARATSUBA {
                    xor(self.mi, clmul_lo(xor(x, swap_halves(x)), k))
                } else {
                    xor3(self.mi, clmul_lo_hi(x, h), clmul_hi_lo(x, h))
                };
            }

            /// Adds `x0 · h0 + x1 · h1`: two vectors, one three-way XOR per
            /// sum instead of two two-way ones.
            #[inline]
            #[target_feature(enable = $features)]
            fn mul2(&mut self, x0: V, p0: (V, V), x1: V, p1: (V, V)) {
                self.lo = xor3(self.lo, clmul_lo(x0, p0.0), clmul_lo(x1, p1.0));
                self.hi = xor3(self.hi, clmul_hi(x0, p0.0), clmul_hi(x1, p1.0));
                if KARATSUBA {
                    let m0 = clmul_lo(xor(x0, swap_halves(x0)), p0.1);
                    let m1 = clmul_lo(xor(x1, swap_halves(x1)), p1.1);
                    self.mi = xor3(self.mi, m0, m1);
                } else {
                    let mi = xor3(self.mi, clmul_lo_hi(x0, p0.0), clmul_hi_lo(x0, p0.0));
                    self.mi = xor3(mi, clmul_lo_hi(x1, p1.0), clmul_hi_lo(x1, p1.0));
                }
            }

            /// Reduces the sum and folds the lanes: the new GHASH state.
            #[inline]
            #[target_feature(enable = $features)]
            fn reduce(self) -> __m128i {
                let mi = if KARATSUBA {
                    xor3(self.mi, self.lo, self.hi)
                } else {
                    self.mi
                };
                let mi = xor3(mi, clmul_poly(self.lo), swap_halves(self.lo));
                let hi = xor3(self.hi, clmul_poly(mi), swap_halves(mi));
                fold(hi)
            }
        }

        /// The byte-reversed counter block, one counter per lane.
        #[inline]
        #[target_feature(enable = $features)]
        fn counters(counter: &[u8; 16]) -> V {
            let c = _mm_shuffle_epi8(load128(counter), load128(&BSWAP));
            add32(broadcast(c), counter_offsets())
        }

        /// The first-round states (`counter ^ rk[0]`) of the next `NV`
        /// counter vectors. `low` is the 32-bit counter of lane 0.
        ///
        /// While the low byte of the counter cannot carry within these
        /// blocks (7 iterations out of 8 on AVX-512, 15 of 16 on AVX2), the big-endian
        /// blocks are stepped directly, one byte swap per iteration instead
        /// of one per vector; otherwise each vector is swapped from the
        /// little-endian counter, whose 32-bit add is GCM's `inc32`.
        #[inline]
        #[target_feature(enable = $features)]
        fn first_round(rk0: V, ctr: &mut V, low: &mut u32) -> [V; NV] {
            let mut s = [zero(); NV];
            if (*low & 0xff) as usize <= 256 - NV * LANES {
                let mut c = bswap(*ctr);
                for v in &mut s {
                    *v = xor(c, rk0);
                    c = add32(c, counter_step_be());
                }
                for _ in 0..NV {
                    *ctr = add32(*ctr, counter_step());
                }
            } else {
                for v in &mut s {
                    *v = xor(bswap(*ctr), rk0);
                    *ctr = add32(*ctr, counter_step());
                }
            }
            *low = low.wrapping_add((NV * LANES) as u32);
            s
        }

        /// AES-256 of `NV` counter vectors (no GHASH).
        #[inline]
        #[target_feature(enable = $features)]
        fn keystream(rk: &[V; 15], ctr: &mut V, low: &mut u32) -> [V; NV] {
            let mut s = first_round(rk[0], ctr, low);
            final_rounds(&mut s, rk, 1);
            s
        }

        /// One AES round over all `NV` vectors.
        #[inline]
        #[target_feature(enable = $features)]
        fn round(s: &mut [V; NV], k: V) {
            for v in s {
                *v = aesenc(*v, k);
            }
        }

        /// Rounds `from .. 14`, then the last round (no MixColumns), over
        /// all `NV` vectors: what turns their states into keystream.
        #[inline]
        #[target_feature(enable = $features)]
        fn final_rounds(s: &mut [V; NV], rk: &[V; 15], from: usize) {
            for k in &rk[from..14] {
                round(s, *k);
            }
            for v in s {
                *v = aesenclast(*v, rk[14]);
            }
        }

        /// The rest of an iteration whose rounds `1 ..= NV` carried its
        /// GHASH products (summed in `acc`): rounds `NV + 1 .. 10`, the one
        /// reduction, then the final rounds, which overlap it. Returns the
        /// keystream and the new GHASH state.
        #[inline]
        #[target_feature(enable = $features)]
        fn rounds_after_products(rk: &[V; 15], mut s: [V; NV], acc: Acc) -> ([V; NV], __m128i) {
            for k in &rk[NV + 1..10] {
                round(&mut s, *k);
            }
            let x = acc.reduce();
            final_rounds(&mut s, rk, 10);
            (s, x)
        }

        /// One AES round, then the GHASH multiplications of vectors `j` and
        /// `j + 1` of `g`.
        #[inline]
        #[target_feature(enable = $features)]
        fn round_and_mul(keys: &Keys, s: &mut [V; NV], k: V, acc: &mut Acc, g: &[V; NV], j: usize) {
            round(s, k);
            let p0 = powers(keys, FULL_SLOT + j * LANES);
            let p1 = powers(keys, FULL_SLOT + (j + 1) * LANES);
            acc.mul2(g[j], p0, g[j + 1], p1);
        }

        /// AES-256 of `NV` counter vectors interleaved with the GHASH of
        /// `g` (already byte-reversed, the state added to `g[0]`): two
        /// vector multiplications every other round, one reduction. Returns
        /// the keystream and the new GHASH state.
        #[inline]
        #[target_feature(enable = $features)]
        fn keystream_and_ghash(
            keys: &Keys,
            rk: &[V; 15],
            ctr: &mut V,
            low: &mut u32,
            g: &[V; NV],
        ) -> ([V; NV], __m128i) {
            let mut s = first_round(rk[0], ctr, low);
            let mut acc = Acc::new();
            // Rounds 1, 3, .. NV - 1 each carry two products, the rounds
            // between them none.
            for j in (0..NV).step_by(2) {
                round_and_mul(keys, &mut s, rk[1 + j], &mut acc, g, j);
                round(&mut s, rk[2 + j]);
            }
            rounds_after_products(rk, s, acc)
        }

        /// One AES round, then the GHASH multiplication of vector `j` of
        /// `src`, loaded (and byte-reversed) only now.
        #[inline]
        #[target_feature(enable = $features)]
        fn round_and_mul_from(
            keys: &Keys,
            s: &mut [V; NV],
            k: V,
            acc: &mut Acc,
            src: &[u8; CHUNK],
            j: usize,
            x: V,
        ) {
            round(s, k);
            let (vs, _) = src.as_chunks::<BYTES>();
            let (h, hk) = powers(keys, FULL_SLOT + j * LANES);
            acc.mul(xor(bswap(load(&vs[j])), x), h, hk);
        }

        /// AES-256 of `NV` counter vectors and the GHASH of the same
        /// iteration's ciphertext `src` (opening: the ciphertext is there
        /// before its keystream is), the state `x` added to its first
        /// block, one reduction. Each vector of `src` is loaded from memory
        /// just for its product, so nothing but the GHASH state is carried
        /// from one iteration to the next. Returns the keystream and the new
        /// GHASH state.
        ///
        /// The tier picks the order the source gives the compiler (which
        /// schedules it again, differently for 16 and 32 registers):
        /// `OPEN_HASH_FIRST`, all products first, then the rounds (faster
        /// on AVX2); otherwise one product after each of the first `NV`
        /// rounds (faster on AVX-512).
        #[inline]
        #[target_feature(enable = $features)]
        fn keystream_and_ghash_from(
            keys: &Keys,
            rk: &[V; 15],
            ctr: &mut V,
            low: &mut u32,
            x_in: __m128i,
            src: &[u8; CHUNK],
        ) -> ([V; NV], __m128i) {
            if OPEN_HASH_FIRST {
                let (vs, _) = src.as_chunks::<BYTES>();
                let mut acc = Acc::new();
                for j in (0..NV).step_by(2) {
                    let p0 = powers(keys, FULL_SLOT + j * LANES);
                    let p1 = powers(keys, FULL_SLOT + (j + 1) * LANES);
                    let mut x0 = bswap(load(&vs[j]));
                    if j == 0 {
                        x0 = xor(x0, lane0(x_in));
                    }
                    acc.mul2(x0, p0, bswap(load(&vs[j + 1])), p1);
                }
                let x = acc.reduce();
                (keystream(rk, ctr, low), x)
            } else {
                let mut s = first_round(rk[0], ctr, low);
                let mut acc = Acc::new();
                round_and_mul_from(keys, &mut s, rk[1], &mut acc, src, 0, lane0(x_in));
                for j in 1..NV {
                    round_and_mul_from(keys, &mut s, rk[1 + j], &mut acc, src, j, zero());
                }
                rounds_after_products(rk, s, acc)
            }
        }

        /// The byte-reversed blocks of one iteration, `x` added to the first.
        #[inline]
        #[target_feature(enable = $features)]
        fn for_ghash(c: &[V; NV], x: __m128i) -> [V; NV] {
            let mut g = [zero(); NV];
            for (g, c) in g.iter_mut().zip(c) {
                *g = bswap(*c);
            }
            g[0] = xor(g[0], lane0(x));
            g
        }

        /// GHASH of `g` (from `for_ghash`): one iteration, one reduction.
        #[inline]
        #[target_feature(enable = $features)]
        fn ghash_vectors(keys: &Keys, g: &[V; NV]) -> __m128i {
            let mut a = Acc::new();
            for j in (0..NV).step_by(2) {
                let p0 = powers(keys, FULL_SLOT + j * LANES);
                let p1 = powers(keys, FULL_SLOT + (j + 1) * LANES);
                a.mul2(g[j], p0, g[j + 1], p1);
            }
            a.reduce()
        }

        /// Loads one iteration's input.
        #[inline]
        #[target_feature(enable = $features)]
        fn load_chunk(chunk: &[u8; CHUNK]) -> [V; NV] {
            let (vs, _) = chunk.as_chunks::<BYTES>();
            let mut d = [zero(); NV];
            for (d, v) in d.iter_mut().zip(vs) {
                *d = load(v);
            }
            d
        }

        /// Stores `a ^ b` over one iteration's bytes.
        #[inline]
        #[target_feature(enable = $features)]
        fn xor_store(chunk: &mut [u8; CHUNK], a: &[V; NV], b: &[V; NV]) {
            let (vs, _) = chunk.as_chunks_mut::<BYTES>();
            for ((v, a), b) in vs.iter_mut().zip(a).zip(b) {
                store(v, xor(*a, *b));
            }
        }

        /// Stores `input ^ ks` over one iteration's output and returns it,
        /// a vector at a time: load, XOR, store, next vector (in place the
        /// same bytes, out of place disjoint ones). Loading the whole
        /// iteration before storing any of it made sealing slower.
        #[inline]
        #[target_feature(enable = $features)]
        fn xor_into(chunk: InOut<'_, '_, Array<u8, $chunk>>, ks: &[V; NV]) -> [V; NV] {
            let (vs, _) = chunk.into_buf().into_chunks::<$vector>();
            let mut out = [zero(); NV];
            for ((o, mut v), k) in out.iter_mut().zip(vs).zip(ks) {
                *o = xor(load(&v.get_in().0), *k);
                store(&mut v.get_out().0, *o);
            }
            out
        }

        /// GHASH of fewer than one iteration's bytes (zero-padded to whole
        /// blocks): `k` blocks times `H^k .. H^1`, one reduction.
        #[inline]
        #[target_feature(enable = $features)]
        fn ghash_tail(keys: &Keys, x: __m128i, rest: &[u8]) -> __m128i {
            if rest.is_empty() {
                return x;
            }
            let blocks = rest.len().div_ceil(16);
            let mut slot = MAX_BLOCKS - blocks;
            let mut acc = Acc::new();
            let mut first = lane0(x);
            let (vs, partial) = rest.as_chunks::<BYTES>();
            for v in vs {
                let (h, k) = powers(keys, slot);
                acc.mul(xor(bswap(load(v)), first), h, k);
                first = zero();
                slot += LANES;
            }
            if !partial.is_empty() {
                // Padding lanes hold zero data and meet zero power slots.
                let mut buf = [0u8; BYTES];
                buf[..partial.len()].copy_from_slice(partial);
                let (h, k) = powers(keys, slot);
                acc.mul(xor(bswap(load(&buf)), first), h, k);
            }
            acc.reduce()
        }

        /// CTR over fewer than one iteration's bytes, a vector at a time,
        /// from the input to the output of `rest`.
        #[inline]
        #[target_feature(enable = $features)]
        fn ctr_tail(rk: &[V; 15], mut ctr: V, rest: InOutBuf<'_, '_, u8>) {
            let (vs, mut partial) = rest.into_chunks::<$vector>();
            for mut v in vs {
                let ks = encrypt1(rk, &mut ctr);
                let d = load(&v.get_in().0);
                store(&mut v.get_out().0, xor(d, ks));
            }
            if !partial.is_empty() {
                let n = partial.len();
                let mut buf = [0u8; BYTES];
                buf[..n].copy_from_slice(partial.get_in());
                let ks = encrypt1(rk, &mut ctr);
                let out = xor(load(&buf), ks);
                store(&mut buf, out);
                partial.get_out().copy_from_slice(&buf[..n]);
                buf.zeroize();
            }
        }

        /// AES-256 of one counter vector.
        #[inline]
        #[target_feature(enable = $features)]
        fn encrypt1(rk: &[V; 15], ctr: &mut V) -> V {
            let mut s = xor(bswap(*ctr), rk[0]);
            *ctr = add32(*ctr, counter_step());
            for k in &rk[1..14] {
                s = aesenc(s, *k);
            }
            aesenclast(s, rk[14])
        }

        /// GHASH over `data`, zero-padded to whole blocks, into `acc`.
        #[target_feature(enable = $features)]
        pub(super) fn ghash(keys: &Keys, acc: &mut [u8; 16], data: &[u8]) {
            let mut x = load128(acc);
            let (chunks, rest) = data.as_chunks::<CHUNK>();
            for chunk in chunks {
                x = ghash_vectors(keys, &for_ghash(&load_chunk(chunk), x));
            }
            x = ghash_tail(keys, x, rest);
            store128(acc, x);
        }

        /// CTR from `counter` over `data`, input to output, no hashing.
        #[target_feature(enable = $features)]
        pub(super) fn ctr(keys: &Keys, counter: &[u8; 16], data: InOutBuf<'_, '_, u8>) {
            let mut c = Ctr::at(counter);
            c.set_keys(keys);
            let (chunks, rest) = data.into_chunks::<$chunk>();
            for chunk in chunks {
                let ks = keystream(&c.rk, &mut c.ctr, &mut c.low);
                xor_into(chunk, &ks);
            }
            ctr_tail(&c.rk, c.ctr, rest);
        }

        /// Encrypts the input of `data` into its output from `counter` and
        /// hashes the ciphertext into `acc`, in one pass.
        #[target_feature(enable = $features)]
        pub(super) fn seal(
            keys: &Keys,
            counter: &[u8; 16],
            acc: &mut [u8; 16],
            data: InOutBuf<'_, '_, u8>,
        ) {
            let mut c = Ctr::at(counter);
            c.set_keys(keys);
            let mut x = load128(acc);
            let (chunks, mut rest) = data.into_chunks::<$chunk>();
            let mut chunks = chunks.into_iter();
            if let Some(first) = chunks.next() {
                // Peeled: the first iteration has no ciphertext to hash yet.
                let ks = keystream(&c.rk, &mut c.ctr, &mut c.low);
                let mut ct = xor_into(first, &ks);
                // Each later iteration hashes the ciphertext of the one
                // before, still in registers, while it encrypts its own.
                for chunk in chunks {
                    let g = for_ghash(&ct, x);
                    let (ks, next) = keystream_and_ghash(keys, &c.rk, &mut c.ctr, &mut c.low, &g);
                    x = next;
                    ct = xor_into(chunk, &ks);
                }
                x = ghash_vectors(keys, &for_ghash(&ct, x));
            }
            ctr_tail(&c.rk, c.ctr, rest.reborrow());
            x = ghash_tail(keys, x, rest.get_out());
            store128(acc, x);
        }

        /// Hashes the ciphertext in the input of `data` into `acc` and
        /// decrypts it into the output from `counter`, in one pass. The
        /// caller verifies the tag and, when it fails, puts the ciphertext
        /// back into the output.
        #[target_feature(enable = $features)]
        pub(super) fn open(
            keys: &Keys,
            counter: &[u8; 16],
            acc: &mut [u8; 16],
            data: InOutBuf<'_, '_, u8>,
        ) {
            let mut c = Ctr::at(counter);
            c.set_keys(keys);
            let mut x = load128(acc);
            let (chunks, rest) = data.into_chunks::<$chunk>();
            for mut chunk in chunks {
                // The ciphertext is hashed while its own keystream is
                // computed, then loaded again for the XOR (an L1 hit)
                // instead of being kept in registers: `black_box` hides
                // that both loads read the same bytes, so the compiler
                // does not keep eight vectors live across the rounds
                // (spilled, on 16 registers). Every load of the iteration
                // comes before its first store, which is what lets input
                // and output be the same bytes.
                let src = &chunk.get_in().0;
                let (ks, next) =
                    keystream_and_ghash_from(keys, &c.rk, &mut c.ctr, &mut c.low, x, src);
                x = next;
                let c = load_chunk(core::hint::black_box(src));
                xor_store(&mut chunk.get_out().0, &c, &ks);
            }
            x = ghash_tail(keys, x, rest.get_in());
            ctr_tail(&c.rk, c.ctr, rest);
            store128(acc, x);
        }
    };
}
