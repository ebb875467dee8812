//! One message sealed or opened in parts, each part as it comes.
//!
//! A stream that seals a large message and hands it on piece by piece (to a
//! `Write`, say) would otherwise seal the whole message into a buffer and
//! then copy it out: two passes over memory. Sealing a part, handing it on
//! while it is still in cache, and sealing the next one is a single pass.
//! Opening the same way in place fills a part of the caller's buffer with
//! ciphertext, opens it while it is in cache, and goes on; the buffer stays
//! borrowed until the tag has verified, and holds the ciphertext again if
//! it does not, so no unverified plaintext ever leaves.
//!
//! Both produce exactly the bytes (and check exactly the tag) of the
//! one-shot calls over the whole message, on every tier.

use aead::{Error, inout::InOutBuf};
use ghash::{GHash, universal_hash::UniversalHash};
use zeroize::Zeroize;

use super::{
    Aes256Gcm, Block, Ctr, Direction, Engine, Portable, apply_tail, check_lengths, finish, fused,
    verify,
};
use crate::{NONCE_LEN, TAG_LEN};

/// The running state of one message.
enum State<'k> {
    #[cfg(target_arch = "x86_64")]
    X86 {
        x: &'k crate::x86::X86,
        /// The counter block of the next part.
        counter: [u8; 16],
        /// The GHASH state (kernel representation).
        acc: [u8; 16],
        /// `E_K(J0)`.
        mask: [u8; 16],
    },
    Portable {
        p: &'k Portable,
        ctr: Ctr<'k>,
        ghash: GHash,
        mask: Block,
    },
}

/// What seal and open in parts share: the state, the lengths so far, and
/// whether a part that was not whole blocks (which must be the last) came.
struct Parts<'k> {
    state: State<'k>,
    aad_len: usize,
    len: u64,
    ended: bool,
}

impl<'k> Parts<'k> {
    fn new(gcm: &'k Aes256Gcm, nonce: &[u8; NONCE_LEN], aad: &[u8]) -> Result<Self, Error> {
        check_lengths(0, aad.len())?;
        let state = match &gcm.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::X86(x) => {
                let (counter, acc, mask) = x.begin(nonce, aad);
                State::X86 {
                    x,
                    counter,
                    acc,
                    mask,
                }
            }
            Engine::Portable(p) => {
                let (ctr, mask) = p.init(nonce);
                State::Portable {
                    p,
                    ctr,
                    ghash: p.ghash_with_aad(aad),
                    mask,
                }
            }
        };
        Ok(Self {
            state,
            aad_len: aad.len(),
            len: 0,
            ended: false,
        })
    }

    /// Seals or opens the next part. Every part but the last must be whole
    /// 16-byte blocks, and the message stays within GCM's limit.
    fn step(&mut self, data: InOutBuf<'_, '_, u8>, direction: Direction) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        let len = self.len + data.len() as u64;
        if self.ended || len > crate::P_MAX {
            return Err(Error);
        }
        self.len = len;
        self.ended = data.len() % 16 != 0;
        match &mut self.state {
            #[cfg(target_arch = "x86_64")]
            State::X86 {
                x, counter, acc, ..
            } => match direction {
                Direction::Seal => x.seal_part(counter, acc, data),
                Direction::Open => x.open_part(counter, acc, data),
            },
            State::Portable { ctr, ghash, .. } => Portable::part(ctr, ghash, data, direction),
        }
        Ok(())
    }

    /// The tag over everything so far.
    fn tag(self) -> [u8; TAG_LEN] {
        match &self.state {
            #[cfg(target_arch = "x86_64")]
            State::X86 { x, acc, mask, .. } => x.end(*acc, self.aad_len, self.len, *mask),
            // The clone is dropped (and cleared) in `finish`, the original
            // with `self`.
            State::Portable { ghash, mask, .. } => {
                finish(ghash.clone(), self.aad_len, self.len, *mask).0
            }
        }
    }
}

impl Drop for State<'_> {
    fn drop(&mut self) {
        match self {
            #[cfg(target_arch = "x86_64")]
            State::X86 { acc, mask, .. } => {
                acc.zeroize();
                mask.zeroize();
            }
            // `GHash` clears itself on drop.
            State::Portable { mask, .. } => mask.zeroize(),
        }
    }
}

impl Portable {
    /// One part through the fused CTR + GHASH pass, input to output (out
    /// of place, the input is copied over first, as in the one-shot seal).
    fn part(ctr: &mut Ctr<'_>, ghash: &mut GHash, data: InOutBuf<'_, '_, u8>, dir: Direction) {
        let buffer = data.into_out_with_copied_in();
        let (blocks, tail) = Block::slice_as_chunks_mut(buffer);
        fused(ctr, ghash, blocks, dir);
        match dir {
            Direction::Seal => {
                let tail = apply_tail(ctr, tail.into());
                ghash.update_padded(tail);
            }
            Direction::Open => {
                ghash.update_padded(tail);
                apply_tail(ctr, tail.into());
            }
        }
    }
}

/// Seals one message in parts: the ciphertext of each part comes out as
/// soon as it is sealed, the tag at the end ([`Aes256Gcm::sealer`]).
///
/// The parts together give exactly the ciphertext and tag of
/// [`Aes256Gcm::seal_in_place_detached`] over the whole message. Every
/// part but the last must be a whole number of 16-byte blocks.
///
/// ```
/// use strongroom_aes::{Aes256Gcm, Aes256Key};
///
/// let gcm = Aes256Gcm::with_key(&Aes256Key::from_bytes([7; 32]));
/// let nonce = [1u8; 12]; // never reuse a nonce under one key
/// let message = [0x42u8; 100];
///
/// let mut sealer = gcm.sealer(&nonce, b"header")?;
/// let mut out = Vec::new();
/// for part in message.chunks(32) {
///     let mut piece = [0u8; 32];
///     let piece = &mut piece[..part.len()];
///     sealer.seal_part(part, piece)?;
///     out.extend_from_slice(piece); // hand it on while it is in cache
/// }
/// let tag = sealer.finish();
///
/// let mut whole = message;
/// assert_eq!(gcm.seal_in_place_detached(&nonce, b"header", &mut whole)?, tag);
/// assert_eq!(out, whole);
/// # Ok::<(), strongroom_aes::Error>(())
/// ```
pub struct GcmSealer<'k> {
    parts: Parts<'k>,
}

impl GcmSealer<'_> {
    /// Seals the next part of the message from `input` into `output` (the
    /// same length).
    ///
    /// # Errors
    /// [`Error`] when the lengths differ, when a part that was not whole
    /// blocks came before, or when the message would pass GCM's limit
    /// ([`P_MAX`](crate::P_MAX) bytes). Nothing is sealed then, and the
    /// sealer stays as it was.
    pub fn seal_part(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), Error> {
        let data = InOutBuf::new(input, output).map_err(|_| Error)?;
        self.parts.step(data, Direction::Seal)
    }

    /// Seals the next part of the message in place.
    ///
    /// # Errors
    /// As [`seal_part`](Self::seal_part).
    pub fn seal_part_in_place(&mut self, buffer: &mut [u8]) -> Result<(), Error> {
        self.parts.step(buffer.into(), Direction::Seal)
    }

    /// The message's tag.
    #[must_use]
    pub fn finish(self) -> [u8; TAG_LEN] {
        self.parts.tag()
    }
}

impl core::fmt::Debug for GcmSealer<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GcmSealer")
            .field("len", &self.parts.len)
            .finish_non_exhaustive()
    }
}

/// Opens one message in place, in parts, as its ciphertext arrives
/// ([`Aes256Gcm::opener`]).
///
/// The opener borrows the whole buffer. The caller writes ciphertext into
/// [`unopened`](Self::unopened) (the bytes after those opened so far) and
/// opens the next `n` of them with [`open_next`](Self::open_next), while
/// they are still in cache. The message is every byte passed to
/// `open_next`; [`finish`](Self::finish) checks its tag. Until then the
/// buffer cannot be read, and if the tag fails, or the opener is dropped
/// without `finish`, every opened byte is turned back into the ciphertext
/// it was: no unverified plaintext is ever left in it.
///
/// ```
/// use strongroom_aes::{Aes256Gcm, Aes256Key};
///
/// let gcm = Aes256Gcm::with_key(&Aes256Key::from_bytes([7; 32]));
/// let nonce = [1u8; 12];
/// let mut sealed = [0x42u8; 100];
/// let tag = gcm.seal_in_place_detached(&nonce, b"header", &mut sealed)?;
///
/// let mut buffer = [0u8; 100];
/// let mut opener = gcm.opener(&nonce, b"header", &mut buffer)?;
/// for part in sealed.chunks(32) {
///     opener.unopened()[..part.len()].copy_from_slice(part); // e.g. a read
///     opener.open_next(part.len())?;
/// }
/// opener.finish(&tag)?;
/// assert_eq!(buffer, [0x42; 100]);
/// # Ok::<(), strongroom_aes::Error>(())
/// ```
pub struct GcmOpener<'k, 'b> {
    parts: Option<Parts<'k>>,
    buffer: &'b mut [u8],
    /// Bytes of `buffer` opened so far.
    opened: usize,
    /// The counter block of the message's first part, to undo the opening.
    start: Start<'k>,
}

/// Where the message's keystream starts, to undo an opening.
enum Start<'k> {
    #[cfg(target_arch = "x86_64")]
    X86(&'k crate::x86::X86, [u8; 16]),
    Portable(&'k Portable, [u8; NONCE_LEN]),
}

impl GcmOpener<'_, '_> {
    /// The bytes of the buffer after those opened so far: where the next
    /// ciphertext goes before [`open_next`](Self::open_next).
    pub fn unopened(&mut self) -> &mut [u8] {
        &mut self.buffer[self.opened..]
    }

    /// Bytes opened so far (the message's length if it ends here).
    #[must_use]
    pub fn opened(&self) -> usize {
        self.opened
    }

    /// Opens the next `n` bytes of the buffer in place: hashes their
    /// ciphertext and decrypts them. They stay out of reach until
    /// [`finish`](Self::finish) verified the tag.
    ///
    /// # Errors
    /// [`Error`] when `n` passes the buffer's end, when a part that was not
    /// whole blocks came before, or past GCM's limit; nothing is opened
    /// then.
    pub fn open_next(&mut self, n: usize) -> Result<(), Error> {
        let end = self.opened.checked_add(n).ok_or(Error)?;
        let part = self.buffer.get_mut(self.opened..end).ok_or(Error)?;
        let parts = self.parts.as_mut().ok_or(Error)?;
        parts.step(part.into(), Direction::Open)?;
        self.opened = end;
        Ok(())
    }

    /// Checks `tag` over the message opened so far. On success the
    /// plaintext is the first [`opened`](Self::opened) bytes of the
    /// buffer.
    ///
    /// # Errors
    /// [`Error`] when the tag does not verify; the opened bytes then hold
    /// their ciphertext again.
    pub fn finish(mut self, tag: &[u8; TAG_LEN]) -> Result<(), Error> {
        let parts = self.parts.take().ok_or(Error)?;
        if verify(parts.tag().into(), tag) {
            self.opened = 0;
            return Ok(());
        }
        // Drop undoes the opening.
        Err(Error)
    }
}

impl Drop for GcmOpener<'_, '_> {
    /// Turns every opened byte back into its ciphertext, unless the tag
    /// verified: the same keystream applied again.
    fn drop(&mut self) {
        let opened = &mut self.buffer[..self.opened];
        if opened.is_empty() {
            return;
        }
        match &mut self.start {
            #[cfg(target_arch = "x86_64")]
            Start::X86(x, counter) => x.apply_ctr(counter, opened),
            Start::Portable(p, nonce) => {
                let (mut ctr, _) = p.init(nonce);
                super::apply_keystream(&mut ctr, opened.into());
            }
        }
    }
}

impl core::fmt::Debug for GcmOpener<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GcmOpener")
            .field("opened", &self.opened)
            .field("len", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl Aes256Gcm {
    /// Starts sealing one message in parts (see [`GcmSealer`]).
    ///
    /// # Errors
    /// [`Error`] when `aad` is longer than [`A_MAX`](crate::A_MAX).
    pub fn sealer(&self, nonce: &[u8; NONCE_LEN], aad: &[u8]) -> Result<GcmSealer<'_>, Error> {
        Ok(GcmSealer {
            parts: Parts::new(self, nonce, aad)?,
        })
    }

    /// Starts opening one message in place, in parts, in `buffer` (see
    /// [`GcmOpener`]).
    ///
    /// # Errors
    /// [`Error`] when `aad` is longer than [`A_MAX`](crate::A_MAX).
    pub fn opener<'k, 'b>(
        &'k self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &'b mut [u8],
    ) -> Result<GcmOpener<'k, 'b>, Error> {
        let parts = Parts::new(self, nonce, aad)?;
        let start = match &parts.state {
            #[cfg(target_arch = "x86_64")]
            State::X86 { x, counter, .. } => Start::X86(x, *counter),
            State::Portable { p, .. } => Start::Portable(p, *nonce),
        };
        Ok(GcmOpener {
            parts: Some(parts),
            buffer,
            opened: 0,
            start,
        })
    }
}
