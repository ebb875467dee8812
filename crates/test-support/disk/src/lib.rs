//! A disk encrypted in the guest, for the tests of items with in-guest
//! disk encryption (DESIGN.md R17): sectors of 512 bytes sealed as
//! dm-crypt's `aes-xts-plain64` with a 256-bit key does it (AES-128-XTS,
//! the key split into the data and tweak halves, sector `n`'s tweak the
//! 64-bit little-endian `n` padded to 16 bytes). A test backs up the
//! encrypted bytes and checks that the BEK a restore brings back decrypts
//! the restored ones.
//!
//! ```
//! use strongroom_test_disk::{Disk, SECTOR};
//!
//! let bek = [7u8; 32];
//! let disk = Disk::sample(8);
//! let encrypted = disk.encrypt(&bek);
//! assert_eq!(encrypted.len(), 8 * SECTOR);
//! assert_ne!(encrypted, disk.plaintext());
//! assert_eq!(Disk::decrypt(&encrypted, &bek), disk.plaintext());
//! assert_ne!(Disk::decrypt(&encrypted, &[8u8; 32]), disk.plaintext());
//! ```
#![forbid(unsafe_code)]

use aes::Aes128;
use aes::cipher::KeyInit;
use xts_mode::{Xts128, get_tweak_default};

/// Bytes per sector.
pub const SECTOR: usize = 512;

/// A disk's plaintext: whole sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk(Vec<u8>);

impl Disk {
    /// A recognisable disk of `sectors` sectors: a signature in sector 0,
    /// then each sector's number and a pattern, so that a sector out of
    /// place or a wrong key shows.
    #[must_use]
    pub fn sample(sectors: usize) -> Self {
        let mut bytes = vec![0u8; sectors * SECTOR];
        for (n, sector) in bytes.chunks_mut(SECTOR).enumerate() {
            sector[..8].copy_from_slice(&(n as u64).to_le_bytes());
            for (i, b) in sector[8..].iter_mut().enumerate() {
                *b = (n as u8).wrapping_mul(31) ^ (i as u8);
            }
        }
        if let Some(first) = bytes.get_mut(..16) {
            first.copy_from_slice(b"-FVE-FS-SRMDISK-");
        }
        Self(bytes)
    }

    /// The plaintext.
    #[must_use]
    pub fn plaintext(&self) -> &[u8] {
        &self.0
    }

    /// The sectors encrypted under `bek` (32 bytes: AES-128-XTS).
    #[must_use]
    pub fn encrypt(&self, bek: &[u8; 32]) -> Vec<u8> {
        let mut bytes = self.0.clone();
        xts(bek).encrypt_area(&mut bytes, SECTOR, 0, get_tweak_default);
        bytes
    }

    /// Encrypted sectors decrypted under `bek` (whatever the key: a wrong
    /// one gives noise, as a real disk would).
    ///
    /// # Panics
    /// When `encrypted` is not whole sectors.
    #[must_use]
    pub fn decrypt(encrypted: &[u8], bek: &[u8; 32]) -> Vec<u8> {
        assert!(
            encrypted.len().is_multiple_of(SECTOR),
            "a disk is whole sectors"
        );
        let mut bytes = encrypted.to_vec();
        xts(bek).decrypt_area(&mut bytes, SECTOR, 0, get_tweak_default);
        bytes
    }
}

fn xts(bek: &[u8; 32]) -> Xts128<Aes128> {
    // safe: 16-byte halves are AES-128 keys.
    let data = Aes128::new_from_slice(&bek[..16]).expect("a 16-byte key");
    let tweak = Aes128::new_from_slice(&bek[16..]).expect("a 16-byte key");
    Xts128::new(data, tweak)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len() / 2)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// IEEE 1619-2007 Annex B, XTS-AES-128 vector 1 (both keys zero,
    /// data unit 0, 32 zero bytes), through the same construction.
    #[test]
    fn ieee_1619_vector_1() {
        let mut data = [0u8; 32];
        xts(&[0u8; 32]).encrypt_sector(&mut data, get_tweak_default(0));
        assert_eq!(
            data.to_vec(),
            unhex("917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e")
        );
    }

    #[test]
    fn sectors_are_independent_and_keyed_by_position() {
        let disk = Disk::sample(4);
        let bek = [0x42; 32];
        let encrypted = disk.encrypt(&bek);
        // The same plaintext sector at another position encrypts otherwise.
        let mut twin = disk.plaintext().to_vec();
        let first = twin[..SECTOR].to_vec();
        twin[SECTOR..2 * SECTOR].copy_from_slice(&first);
        let twin_encrypted = Disk(twin).encrypt(&bek);
        assert_ne!(twin_encrypted[..SECTOR], twin_encrypted[SECTOR..2 * SECTOR]);
        assert_eq!(twin_encrypted[..SECTOR], encrypted[..SECTOR]);
    }
}
