//! AES-256-GCM as NIST SP 800-38D defines it, for 96-bit nonces and 128-bit
//! tags.
//!
//! # Implementations
//!
//! [`Aes256Gcm`] detects the CPU once, when the key is set up, and keeps one
//! of four implementations, which all produce the same bytes:
//!
//! - **AVX-512** (x86-64 with AVX-512F/BW, VAES, VPCLMULQDQ): a fused kernel
//!   (`x86` module) on 512-bit vectors, 32 blocks per iteration;
//! - **AVX2** (x86-64 with AVX2, VAES, VPCLMULQDQ: Zen 3, Intel client
//!   cores): the same kernel on 256-bit vectors, 16 blocks per iteration;
//! - **AES-NI** (x86-64 with AES-NI, PCLMULQDQ and AVX but no VAES: Zen 1
//!   and 2, Intel up to Cascade Lake): the same kernel on 128-bit vectors,
//!   8 blocks per iteration;
//! - **portable** (every other CPU and target): the composition of the
//!   RustCrypto `aes`, `ctr` (Ctr32BE) and `ghash` crates below, which is
//!   also the reference the fast tiers are tested against.
//!
//! # Where the time goes
//!
//! GCM is CTR-mode AES for confidentiality and GHASH for the tag. AES-256
//! costs 14 rounds per block and GHASH one 128×128-bit carry-less product
//! per block, plus a reduction modulo the GCM polynomial.
//!
//! The fused kernel keeps both units busy at once. One iteration runs the 14
//! AES rounds of 32 counter blocks (8 vectors of 4) and, between the rounds,
//! the GHASH products of 32 ciphertext blocks, each by its own precomputed
//! power of H (`H^32 .. H^1`; schoolbook, 4 carry-less multiplications per
//! product, where `vpternlogd` sums them cheaply, and Karatsuba, 3, on
//! AVX2), summed unreduced, and reduced once per iteration.
//! Sealing hashes the previous iteration's ciphertext, still in registers
//! (the first iteration is peeled off, so the loop has no branch); opening
//! hashes each iteration's own ciphertext, loaded from the input, while it
//! computes that iteration's keystream. Both read the input and write the
//! output in the same single pass, in place or out of place. Opening checks
//! the tag only after the whole message is hashed; on failure it puts the
//! ciphertext back before returning: in place by applying the keystream
//! again, out of place by copying the input over the output.
//!
//! The data passes through the registers once, and AES is the limit: per
//! 512 bytes, 112 512-bit `vaesenc`/`vaesenclast` (8 vectors × 14 rounds)
//! against 34 carry-less multiplications, and the byte swaps and XORs
//! compete with AES for the same vector ports, so the fused seal and open
//! come close to what the kernel's CTR alone reaches. The AVX2 tier (16
//! blocks per iteration, 256-bit vectors, 16 registers) has nearly the same
//! AES bound but needs twice the GHASH instructions per byte, so it stays
//! further below it. What was measured, on which CPU, is in the crate's
//! `CHANGELOG.md`; `benches/` measures it again.
//!
//! Small messages are limited by fixed costs, not by the loop. Per call:
//! the tag mask `E_K(J0)` is one block through 14 dependent AES rounds; the
//! AAD, the last partial iteration and the length block each end in their
//! own GHASH reduction (a dependent chain of carry-less multiplications);
//! the round keys are broadcast into registers; and a message shorter than
//! one iteration (512 bytes on AVX-512) never reaches the interleaved loop:
//! its blocks go through the one-vector tail (CTR, then GHASH) instead. At
//! a few KiB these are a large share of the time.
//!
//! The portable tier runs CTR and GHASH over the same group of blocks in
//! turn (see [`fused`]), so a large message streams through the cache once;
//! there GHASH (`ghash` 0.6: 128-bit PCLMULQDQ, four blocks aggregated) is
//! the bottleneck.

use aead::{
    AeadCore, AeadInOut, Error, Key, KeyInit, KeySizeUser, Nonce, Tag, TagPosition,
    array::Array,
    consts::{U12, U16, U32},
    inout::InOutBuf,
};
use aes::Aes256;
use aes::cipher::{
    BlockCipherEncrypt, BlockSizeUser, InnerIvInit, ParBlocks, StreamCipherBackend,
    StreamCipherClosure, StreamCipherCore,
};
use core::fmt;
use ghash::{
    GHash,
    universal_hash::{UhfBackend, UhfClosure, UniversalHash},
};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{A_MAX, Aes256Key, NONCE_LEN, P_MAX, TAG_LEN};

/// One 16-byte AES / GHASH block.
type Block = Array<u8, U16>;

/// CTR mode with the 32-bit big-endian counter GCM specifies (`inc32`).
type Ctr<'a> = ctr::CtrCore<&'a Aes256, ctr::flavors::Ctr32BE>;

/// AES-256-GCM with a 96-bit nonce and a 128-bit tag.
///
/// It implements the RustCrypto [`aead`] traits ([`KeyInit`], [`AeadCore`],
/// [`AeadInOut`] and, through it, [`aead::Aead`]), so it can stand wherever
/// `aes_gcm::Aes256Gcm` is used, and produces the same bytes.
///
/// On any authentication failure the error is the opaque [`Error`] and no
/// plaintext is left behind: in place, the caller's buffer holds exactly
/// what it held before the call; out of place, see
/// [`decrypt_inout_detached`](AeadInOut::decrypt_inout_detached).
///
/// ```
/// use strongroom_aes::{Aes256Gcm, Aes256Key};
///
/// let key = Aes256Key::from_bytes([7; 32]);
/// let gcm = Aes256Gcm::with_key(&key);
/// let nonce = [0u8; 12]; // never reuse a nonce under one key
///
/// let mut buffer = *b"recovery point 42";
/// let tag = gcm.seal_in_place_detached(&nonce, b"header", &mut buffer)?;
/// assert_ne!(&buffer, b"recovery point 42");
///
/// gcm.open_in_place_detached(&nonce, b"header", &mut buffer, &tag)?;
/// assert_eq!(&buffer, b"recovery point 42");
/// # Ok::<(), strongroom_aes::Error>(())
/// ```
pub struct Aes256Gcm {
    engine: Engine,
}

/// The implementation chosen once, when the key is set up.
///
/// Both variants keep their key material behind a `Box`, made when the key
/// is set up: returning or moving an `Aes256Gcm` moves a pointer, never a
/// copy of round keys that could be left behind on the stack.
enum Engine {
    /// The fused x86-64 kernel (VAES on AVX-512 or AVX2, or AES-NI on
    /// 128-bit vectors); exists only after runtime detection succeeded.
    #[cfg(target_arch = "x86_64")]
    X86(crate::x86::X86),
    /// The `aes` + `ctr` + `ghash` composition: the reference, and the
    /// default everywhere else.
    Portable(Box<Portable>),
}

/// An implementation tier of [`Aes256Gcm`], for tests, benchmarks and
/// diagnostics ([`Aes256Gcm::with_key_and_backend`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// VAES + VPCLMULQDQ on 512-bit vectors (x86-64 with AVX-512F/BW).
    Avx512,
    /// VAES + VPCLMULQDQ on 256-bit vectors (x86-64 with AVX2).
    Avx2,
    /// AES-NI + PCLMULQDQ on 128-bit vectors (x86-64 with AVX, no VAES).
    Aesni,
    /// The RustCrypto `aes` + `ctr` + `ghash` composition (any CPU).
    Portable,
}

impl Backend {
    /// Every tier, fastest first.
    pub const ALL: [Self; 4] = [Self::Avx512, Self::Avx2, Self::Aesni, Self::Portable];

    /// The tier's name, as [`Aes256Gcm::backend`] reports it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512",
            Self::Avx2 => "avx2",
            Self::Aesni => "aesni",
            Self::Portable => "portable",
        }
    }

    /// The tier called `name` (as [`name`](Self::name) spells it).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Whether this CPU (and target) can run the tier.
    ///
    /// This is the detection [`Aes256Gcm::with_key`] chooses by and
    /// [`Aes256Gcm::with_key_and_backend`] refuses by, and the one the tests
    /// and CI read (`cargo run -p strongroom-aes --example tiers`), so that
    /// there is one definition of which tiers a CPU runs.
    #[must_use]
    pub fn supported(self) -> bool {
        match self {
            Self::Portable => true,
            #[cfg(target_arch = "x86_64")]
            x86 => x86.x86_tier().is_some_and(crate::x86::Tier::detected),
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx512 | Self::Avx2 | Self::Aesni => false,
        }
    }

    /// The tiers named in the environment variable
    /// `STRONGROOM_REQUIRE_BACKENDS` (comma-separated, e.g.
    /// `avx512,avx2,aesni,portable`; none when it is unset). CI sets it to
    /// every tier the CPU runs, and the tests fail when a tier named there
    /// cannot run, instead of quietly testing fewer.
    ///
    /// # Panics
    /// When the variable names an unknown tier or is not Unicode: a typo
    /// must not turn into a tier left untested.
    #[must_use]
    pub fn required() -> Vec<Self> {
        let Some(list) = std::env::var_os("STRONGROOM_REQUIRE_BACKENDS") else {
            return Vec::new();
        };
        let list = list
            .into_string()
            .unwrap_or_else(|v| panic!("STRONGROOM_REQUIRE_BACKENDS is not Unicode: {v:?}"));
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| {
                Self::from_name(name)
                    .unwrap_or_else(|| panic!("STRONGROOM_REQUIRE_BACKENDS: unknown tier {name:?}"))
            })
            .collect()
    }

    /// The x86-64 kernel tier this backend runs, if it is one.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn x86_tier(self) -> Option<crate::x86::Tier> {
        match self {
            Self::Avx512 => Some(crate::x86::Tier::Avx512),
            Self::Avx2 => Some(crate::x86::Tier::Avx2),
            Self::Aesni => Some(crate::x86::Tier::Aesni),
            Self::Portable => None,
        }
    }
}

impl Aes256Gcm {
    /// Expands `key` into a cipher instance (AES round keys and the GHASH key
    /// `H = AES_K(0^128)` with its powers, all zeroized on drop), choosing
    /// the fastest implementation this CPU supports, once.
    #[must_use]
    pub fn with_key(key: &Aes256Key) -> Self {
        Self::from_key_bytes(key.expose_secret())
    }

    /// Like [`with_key`](Self::with_key), but forces the implementation
    /// tier; `None` when this CPU (or target) cannot run it. For tests and
    /// benchmarks: every tier produces the same bytes.
    #[doc(hidden)]
    #[must_use]
    pub fn with_key_and_backend(key: &Aes256Key, backend: Backend) -> Option<Self> {
        let key = key.expose_secret();
        let engine = match backend {
            Backend::Portable => Engine::Portable(Portable::new(key)),
            #[cfg(target_arch = "x86_64")]
            x86 => Engine::X86(crate::x86::X86::new(key, x86.x86_tier()?)?),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::Avx512 | Backend::Avx2 | Backend::Aesni => return None,
        };
        Some(Self { engine })
    }

    /// The implementation tier in use: `"avx512"`, `"avx2"`, `"aesni"` or
    /// `"portable"` (diagnostics only; all produce the same bytes).
    #[must_use]
    pub fn backend(&self) -> &'static str {
        self.backend_kind().name()
    }

    fn backend_kind(&self) -> Backend {
        match &self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::X86(x) => match x.tier() {
                crate::x86::Tier::Avx512 => Backend::Avx512,
                crate::x86::Tier::Avx2 => Backend::Avx2,
                crate::x86::Tier::Aesni => Backend::Aesni,
            },
            Engine::Portable(_) => Backend::Portable,
        }
    }

    fn from_key_bytes(key: &[u8; 32]) -> Self {
        #[cfg(target_arch = "x86_64")]
        for tier in Backend::ALL.into_iter().filter_map(Backend::x86_tier) {
            if let Some(x) = crate::x86::X86::new(key, tier) {
                return Self {
                    engine: Engine::X86(x),
                };
            }
        }
        Self {
            engine: Engine::Portable(Portable::new(key)),
        }
    }

    /// Encrypts `buffer` in place and returns the 16-byte tag.
    ///
    /// # Errors
    /// [`Error`] when `buffer` is longer than [`P_MAX`] or `aad` longer than
    /// [`A_MAX`] (the limits of SP 800-38D section 5.2.1.1).
    pub fn seal_in_place_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Error> {
        self.seal(nonce, aad, buffer.into()).map(Into::into)
    }

    /// Checks `tag` and, only if it verifies, decrypts `buffer` in place.
    ///
    /// # Errors
    /// [`Error`] when the tag does not verify (wrong key, nonce, AAD, or any
    /// changed byte) or a length limit is exceeded. `buffer` is then exactly
    /// as it was.
    pub fn open_in_place_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Error> {
        self.open(nonce, aad, buffer.into(), tag)
    }

    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: InOutBuf<'_, '_, u8>,
    ) -> Result<Block, Error> {
        // The limits are checked once, here, for every backend.
        check_lengths(buffer.len(), aad.len())?;
        match &self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::X86(x) => Ok(x.seal(nonce, aad, buffer).into()),
            Engine::Portable(p) => Ok(p.seal(nonce, aad, buffer)),
        }
    }

    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: InOutBuf<'_, '_, u8>,
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Error> {
        check_lengths(buffer.len(), aad.len())?;
        match &self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::X86(x) => x.open(nonce, aad, buffer, tag),
            Engine::Portable(p) => p.open(nonce, aad, buffer, tag),
        }
    }
}

/// The portable composition of `aes`, `ctr` and `ghash`.
struct Portable {
    cipher: Aes256,
    ghash: GHash,
}

impl Portable {
    /// Expands `key` into a `Box`, from which the key schedules are not
    /// moved again. The `aes` and `ghash` crates build them by value, so
    /// building them may leave a copy on the stack that this crate cannot
    /// reach (their `Drop` clears the boxed ones).
    fn new(key: &[u8; 32]) -> Box<Self> {
        let cipher = Aes256::new(key.into());
        let mut h = ghash::Key::default();
        cipher.encrypt_block(&mut h);
        let this = Box::new(Self {
            ghash: GHash::new(&h),
            cipher,
        });
        h.zeroize();
        this
    }

    /// Starts CTR at `J0 = nonce || 0^31 || 1` and returns the counter, now
    /// at `inc32(J0)`, and the tag mask `E_K(J0)` (SP 800-38D section 7.1),
    /// which `finish` clears.
    fn init(&self, nonce: &[u8; NONCE_LEN]) -> (Ctr<'_>, Block) {
        let mut j0 = Block::default();
        j0[..NONCE_LEN].copy_from_slice(nonce);
        j0[15] = 1;
        let mut ctr = Ctr::inner_iv_init(&self.cipher, &j0);
        let mut mask = Block::default();
        ctr.write_keystream_block(&mut mask);
        (ctr, mask)
    }

    /// A GHASH instance that has absorbed the padded AAD.
    fn ghash_with_aad(&self, aad: &[u8]) -> GHash {
        let mut ghash = self.ghash.clone();
        ghash.update_padded(aad);
        ghash
    }

    /// Seals `buffer` and returns the tag; the caller checked the lengths.
    fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buffer: InOutBuf<'_, '_, u8>) -> Block {
        let len = buffer.len();
        let (mut ctr, mask) = self.init(nonce);
        let mut ghash = self.ghash_with_aad(aad);
        // Out of place, copy the plaintext over first: one memcpy, and then
        // a single fused pass serves both cases.
        let buffer = buffer.into_out_with_copied_in();
        let (blocks, tail) = Block::slice_as_chunks_mut(buffer);
        fused(&mut ctr, &mut ghash, blocks, Direction::Seal);
        let tail = apply_tail(&mut ctr, tail.into());
        ghash.update_padded(tail);
        finish(ghash, aad.len(), len, mask)
    }

    /// Opens `buffer` if `tag` verifies; the caller checked the lengths.
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        mut buffer: InOutBuf<'_, '_, u8>,
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Error> {
        let len = buffer.len();
        let (mut ctr, mask) = self.init(nonce);
        let mut ghash = self.ghash_with_aad(aad);
        let in_place = is_in_place(&mut buffer);
        if in_place {
            // In place: hash each group of blocks, then decrypt it while it
            // is still in L1. Nobody else can see the buffer while we hold
            // it, and if the tag fails `failed_open` applies the same
            // keystream again, which restores the ciphertext exactly.
            let (blocks, tail) = Block::slice_as_chunks_mut(buffer.reborrow().into_out());
            fused(&mut ctr, &mut ghash, blocks, Direction::Open);
            ghash.update_padded(tail);
            apply_tail(&mut ctr, tail.into());
        } else {
            // Out of place the output buffer is the caller's, and its old
            // contents cannot be restored: authenticate first, then decrypt.
            ghash.update_padded(buffer.get_in());
        }
        if !verify(finish(ghash, aad.len(), len, mask).0, tag) {
            // Out of place this copies the ciphertext over the output: the
            // same contract as the fused tiers, which decrypt while they
            // hash.
            return Err(failed_open(buffer, |b| {
                let (mut ctr, mut mask) = self.init(nonce);
                mask.zeroize();
                apply_keystream(&mut ctr, b);
            }));
        }
        if !in_place {
            apply_keystream(&mut ctr, buffer);
        }
        Ok(())
    }
}

/// Which of CTR and GHASH goes first over each group of blocks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Encrypt, then hash the ciphertext.
    Seal,
    /// Hash the ciphertext, then decrypt it.
    Open,
}

/// CTR and GHASH over whole blocks in one pass.
///
/// Both crates hand out their CPU-specific backend through a closure; nesting
/// the two closures gives us both backends at once, so each group of
/// `ParBlocksSize` keystream blocks (64 with VAES-512, 30 with VAES-256, 8
/// with AES-NI) is XORed in and hashed while it is in registers and L1, and
/// the out-of-order core can overlap the AES of one group with the GHASH of
/// the one before.
fn fused(ctr: &mut Ctr<'_>, ghash: &mut GHash, blocks: &mut [Block], direction: Direction) {
    if blocks.is_empty() {
        return;
    }
    ctr.process_with_backend(WithCtr {
        ghash,
        blocks,
        direction,
    });
}

/// The outer closure: receives the CTR backend, asks GHASH for its own.
struct WithCtr<'g, 'b> {
    ghash: &'g mut GHash,
    blocks: &'b mut [Block],
    direction: Direction,
}

impl BlockSizeUser for WithCtr<'_, '_> {
    type BlockSize = U16;
}

impl StreamCipherClosure for WithCtr<'_, '_> {
    fn call<C: StreamCipherBackend<BlockSize = U16>>(self, ctr: &mut C) {
        self.ghash.update_with_backend(WithBoth {
            ctr,
            blocks: self.blocks,
            direction: self.direction,
        });
    }
}

/// The inner closure: holds both backends and does the work.
struct WithBoth<'c, 'b, C> {
    ctr: &'c mut C,
    blocks: &'b mut [Block],
    direction: Direction,
}

impl<C> BlockSizeUser for WithBoth<'_, '_, C> {
    type BlockSize = U16;
}

impl<C: StreamCipherBackend<BlockSize = U16>> UhfClosure for WithBoth<'_, '_, C> {
    fn call<G: UhfBackend<BlockSize = U16>>(self, gh: &mut G) {
        let Self {
            ctr,
            blocks,
            direction,
        } = self;
        let mut keystream = ParBlocks::<C>::default();
        let (groups, rest) = ParBlocks::<C>::slice_as_chunks_mut(blocks);
        for group in groups {
            ctr.gen_par_ks_blocks(&mut keystream);
            step(gh, group, &keystream, direction);
        }
        if !rest.is_empty() {
            let keystream = &mut keystream[..rest.len()];
            ctr.gen_tail_blocks(keystream);
            step(gh, rest, keystream, direction);
        }
        // The keystream left here is plaintext to anyone who also holds the
        // ciphertext, so it is cleared. `zeroize` would write it byte by
        // byte with volatile stores (up to 1 KiB, as long as sealing a 1 KiB
        // message); a plain fill kept alive by `black_box` is one vector
        // memset, and no compiler today removes it.
        keystream.fill(Block::default());
        core::hint::black_box(&mut keystream);
    }
}

/// XORs `keystream` into `blocks` and hashes the ciphertext, in the order
/// `direction` says.
fn step<G: UhfBackend<BlockSize = U16>>(
    gh: &mut G,
    blocks: &mut [Block],
    keystream: &[Block],
    direction: Direction,
) {
    if direction == Direction::Open {
        hash(gh, blocks);
    }
    for (block, ks) in blocks.iter_mut().zip(keystream) {
        // One 128-bit XOR per block; a byte loop here cost more than GHASH.
        let x = u128::from_ne_bytes(block.0) ^ u128::from_ne_bytes(ks.0);
        *block = Block::from(x.to_ne_bytes());
    }
    if direction == Direction::Seal {
        hash(gh, blocks);
    }
}

/// GHASH over whole blocks, as many at a time as the backend takes.
fn hash<G: UhfBackend<BlockSize = U16>>(gh: &mut G, blocks: &[Block]) {
    let (groups, rest) = ParBlocks::<G>::slice_as_chunks(blocks);
    for group in groups {
        gh.proc_par_blocks(group);
    }
    for block in rest {
        gh.proc_block(block);
    }
}

/// Enforces the SP 800-38D limits: plaintext at most 2^39 - 256 bits, AAD at
/// most 2^64 - 1 bits (rounded down to whole bytes).
fn check_lengths(len: usize, aad_len: usize) -> Result<(), Error> {
    if len as u64 > P_MAX || aad_len as u64 > A_MAX {
        return Err(Error);
    }
    Ok(())
}

/// XORs the keystream into a final partial block and returns its output.
fn apply_tail<'o>(ctr: &mut Ctr<'_>, mut tail: InOutBuf<'_, 'o, u8>) -> &'o mut [u8] {
    if !tail.is_empty() {
        let mut keystream = Block::default();
        ctr.write_keystream_block(&mut keystream);
        tail.xor_in2out(&keystream[..tail.len()]);
        keystream.zeroize();
    }
    tail.into_out()
}

/// CTR over the whole buffer, no hashing.
fn apply_keystream(ctr: &mut Ctr<'_>, buffer: InOutBuf<'_, '_, u8>) {
    let (blocks, tail) = buffer.into_chunks::<U16>();
    ctr.apply_keystream_blocks_inout(blocks);
    apply_tail(ctr, tail);
}

/// Absorbs the length block and masks the GHASH output with `E_K(J0)`,
/// then clears the mask.
fn finish(mut ghash: GHash, aad_len: usize, len: usize, mut mask: Block) -> Block {
    ghash.update(&[length_block(aad_len, len).into()]);
    let mut tag = ghash.finalize();
    for (t, m) in tag.iter_mut().zip(mask.iter()) {
        *t ^= m;
    }
    mask.zeroize();
    tag
}

/// The last block GHASH absorbs, `[len(A)]_64 || [len(C)]_64`, in bits
/// (SP 800-38D section 7.1, step 5). Every tier hashes it.
pub(crate) fn length_block(aad_len: usize, len: usize) -> [u8; 16] {
    let mut lengths = [0u8; 16];
    lengths[..8].copy_from_slice(&(aad_len as u64 * 8).to_be_bytes());
    lengths[8..].copy_from_slice(&(len as u64 * 8).to_be_bytes());
    lengths
}

/// Compares the computed tag with the received one in constant time, then
/// clears the computed one: for a forged message it is the tag that would
/// have been accepted.
pub(crate) fn verify(mut expected: [u8; TAG_LEN], tag: &[u8; TAG_LEN]) -> bool {
    let ok: bool = expected.ct_eq(tag).into();
    expected.zeroize();
    ok
}

/// Whether the input and the output of `buffer` are the same memory.
pub(crate) fn is_in_place(buffer: &mut InOutBuf<'_, '_, u8>) -> bool {
    let (input, output) = buffer.reborrow().into_raw();
    core::ptr::eq(input, output)
}

/// Puts the ciphertext back into the output of `buffer` after its tag
/// failed, and returns the error, so that no unverified plaintext leaves a
/// call on any tier: in place by `ctr`, which applies the same keystream
/// again and so restores the buffer exactly; out of place by copying the
/// input, which is the ciphertext exactly and cheaper than the keystream,
/// over the output.
pub(crate) fn failed_open(
    mut buffer: InOutBuf<'_, '_, u8>,
    ctr: impl FnOnce(InOutBuf<'_, '_, u8>),
) -> Error {
    if is_in_place(&mut buffer) {
        ctr(buffer);
    } else {
        let _ciphertext = buffer.into_out_with_copied_in();
    }
    Error
}

impl KeySizeUser for Aes256Gcm {
    type KeySize = U32;
}

impl KeyInit for Aes256Gcm {
    fn new(key: &Key<Self>) -> Self {
        Self::from_key_bytes(&key.0)
    }
}

impl AeadCore for Aes256Gcm {
    type NonceSize = U12;
    type TagSize = U16;
    const TAG_POSITION: TagPosition = TagPosition::Postfix;
}

impl AeadInOut for Aes256Gcm {
    fn encrypt_inout_detached(
        &self,
        nonce: &Nonce<Self>,
        associated_data: &[u8],
        buffer: InOutBuf<'_, '_, u8>,
    ) -> Result<Tag<Self>, Error> {
        self.seal(&nonce.0, associated_data, buffer)
    }

    /// Checks `tag` over the input of `buffer` and decrypts it into the
    /// output: one buffer (in place) or two (out of place, in one pass).
    ///
    /// # Errors
    /// [`Error`] when the tag does not verify or a length limit is
    /// exceeded. No plaintext is left behind: in place, the buffer is
    /// exactly as it was. Out of place, the input is untouched and the
    /// output holds the ciphertext (a copy of the input), never plaintext
    /// and never its old contents: the x86-64 tiers decrypt while they hash
    /// and overwrite what they wrote; the portable tier, which checks the
    /// tag first, copies the input over too, so every tier behaves alike.
    fn decrypt_inout_detached(
        &self,
        nonce: &Nonce<Self>,
        associated_data: &[u8],
        buffer: InOutBuf<'_, '_, u8>,
        tag: &Tag<Self>,
    ) -> Result<(), Error> {
        self.open(&nonce.0, associated_data, buffer, &tag.0)
    }
}

impl fmt::Debug for Aes256Gcm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Aes256Gcm { .. }")
    }
}

// `Aes256` (feature `zeroize`) and `GHash` (through `Polyval`) clear their
// key material in their own `Drop`.
impl ZeroizeOnDrop for Aes256Gcm {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lengths around the block boundary and around every backend's group
    /// size (8, 30 and 64 blocks), in place and out of place, against the
    /// `aes-gcm` reference.
    #[test]
    fn slices_match_reference() {
        let key = [0x42u8; 32];
        let ours = Aes256Gcm::new(&key.into());
        let reference = aes_gcm::Aes256Gcm::new(&key.into());
        let nonce = Nonce::<Aes256Gcm>::from([9u8; 12]);
        let mut lengths = vec![0, 1, 15, 16, 17];
        for blocks in [8, 30, 64, 128] {
            lengths.extend([
                blocks * 16 - 1,
                blocks * 16,
                blocks * 16 + 1,
                blocks * 16 + 16,
            ]);
        }
        for len in lengths {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut expected = plain.clone();
            let expected_tag = reference
                .encrypt_inout_detached(&nonce, b"aad", expected.as_mut_slice().into())
                .unwrap();

            let mut in_place = plain.clone();
            let tag = ours
                .encrypt_inout_detached(&nonce, b"aad", in_place.as_mut_slice().into())
                .unwrap();
            assert_eq!((&in_place, &tag), (&expected, &expected_tag), "len {len}");

            let mut out = vec![0u8; len];
            let buf = InOutBuf::new(&plain, &mut out).unwrap();
            let tag = ours.encrypt_inout_detached(&nonce, b"aad", buf).unwrap();
            assert_eq!((&out, &tag), (&expected, &expected_tag), "len {len}");

            ours.decrypt_inout_detached(&nonce, b"aad", in_place.as_mut_slice().into(), &tag)
                .unwrap();
            assert_eq!(in_place, plain);
        }
    }
}
