//! `vault.json`: what a vault directory is, how its root key is made, and
//! the check value that tells a wrong root key from a right one.
//!
//! The root key source (the 32 bytes of a key file, or Argon2id of a
//! passphrase) is never used directly: HKDF-SHA256, salted with the vault id,
//! splits it into a sealing key (for `SoftwareCrypto`), a MAC key (for
//! `state.json`) and a check value (stored here). So a key file used for two
//! vaults gives each its own keys, and no key is used by two primitives.

use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use strongroom_aes::Aes256Key;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::KdfParams;
use super::store::Probe;
use crate::VaultError;
use crate::state::hex_bytes;

/// The `magic` member of every `vault.json`.
pub(super) const MAGIC: &str = "strongroom-keyvault file vault";
/// The version of the directory layout and of `vault.json`.
pub(super) const FORMAT: u32 = 1;
/// Longest `vault.json` read (it is a few hundred bytes).
pub(super) const MAX_VAULT_FILE: u64 = 64 * 1024;
/// Vault id length in bytes.
pub(super) const VAULT_ID_LEN: usize = 16;
/// Argon2id salt length in bytes (RFC 9106 recommends 16).
const SALT_LEN: usize = 16;
/// The Argon2 version we write (0x13, the RFC 9106 one).
const ARGON2_VERSION: u32 = 0x13;

/// The contents of `vault.json`. Written once, at creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VaultFile {
    /// [`MAGIC`].
    pub magic: String,
    /// [`FORMAT`].
    pub format: u32,
    /// Random, [`VAULT_ID_LEN`] bytes; salts the key derivation and binds
    /// `state.json` to this vault.
    #[serde(with = "hex_bytes")]
    pub vault_id: Vec<u8>,
    /// How the root key is made.
    pub root_key: RootKeyKind,
    /// HKDF output "root key check": equal only under the right root key.
    #[serde(with = "hex_bytes")]
    pub check: Vec<u8>,
}

/// How a vault's root key is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub(super) enum RootKeyKind {
    /// The 32 bytes of a key file.
    KeyFile,
    /// Argon2id of a passphrase.
    Passphrase {
        /// Always `argon2id`.
        algorithm: String,
        /// Always 19 (0x13).
        version: u32,
        /// Memory in KiB.
        memory_kib: u32,
        /// Passes.
        iterations: u32,
        /// Lanes.
        parallelism: u32,
        /// Random salt.
        #[serde(with = "hex_bytes")]
        salt: Vec<u8>,
    },
}

impl RootKeyKind {
    /// A passphrase root with a fresh salt.
    pub(super) fn new_passphrase(kdf: KdfParams) -> Result<Self, VaultError> {
        let mut salt = vec![0; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|_| VaultError::RandomnessUnavailable)?;
        Ok(Self::Passphrase {
            algorithm: "argon2id".into(),
            version: ARGON2_VERSION,
            memory_kib: kdf.memory_kib,
            iterations: kdf.iterations,
            parallelism: kdf.parallelism,
            salt,
        })
    }
}

/// The keys a root key source gives one vault.
pub(super) struct RootKeys {
    /// Seals key material (`SoftwareCrypto`).
    pub seal: Aes256Key,
    /// Authenticates `state.json`.
    pub mac: Zeroizing<[u8; 32]>,
    /// Stored in `vault.json`; proves the root key is right.
    pub check: [u8; 32],
}

/// Splits a 32-byte root secret into the vault's keys (HKDF-SHA256, salt =
/// label || vault id).
pub(super) fn derive_keys(secret: &[u8; 32], vault_id: &[u8]) -> RootKeys {
    let mut salt = b"strongroom-keyvault file vault v1 ".to_vec();
    salt.extend_from_slice(vault_id);
    let hk = Hkdf::<Sha256>::new(Some(&salt), secret);
    let mut seal = Zeroizing::new([0u8; 32]);
    let mut mac = Zeroizing::new([0u8; 32]);
    let mut check = [0u8; 32];
    // safe: 32 bytes is far below HKDF-SHA256's 255 * 32 byte limit.
    hk.expand(b"root seal key", seal.as_mut_slice())
        .expect("32 bytes of HKDF output");
    hk.expand(b"state mac key", mac.as_mut_slice())
        .expect("32 bytes of HKDF output");
    hk.expand(b"root key check", &mut check)
        .expect("32 bytes of HKDF output");
    RootKeys {
        seal: Aes256Key::from_bytes(*seal),
        mac,
        check,
    }
}

/// Argon2id of `passphrase` under `kind`'s parameters: the root secret.
pub(super) fn passphrase_secret(
    passphrase: &[u8],
    kind: &RootKeyKind,
    vault_file: &Path,
) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let RootKeyKind::Passphrase {
        memory_kib,
        iterations,
        parallelism,
        salt,
        ..
    } = kind
    else {
        return Err(VaultError::WrongRootKey);
    };
    let corrupt = |reason: String| VaultError::Corrupt {
        path: vault_file.to_path_buf(),
        reason,
    };
    let params = Params::new(*memory_kib, *iterations, *parallelism, Some(32))
        .map_err(|e| corrupt(format!("argon2id parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, out.as_mut_slice())
        .map_err(|e| corrupt(format!("argon2id: {e}")))?;
    Ok(out)
}

impl VaultFile {
    /// Parses and checks `vault.json`: a foreign or damaged file is
    /// [`VaultError::Corrupt`] with the reason.
    pub(super) fn parse(bytes: &[u8], path: &Path) -> Result<Self, VaultError> {
        let corrupt = |reason: String| VaultError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        // First as loose JSON, so that a foreign file or another format
        // version gets its own message rather than "missing field".
        let probe: Probe = serde_json::from_slice(bytes)
            .map_err(|e| corrupt(format!("not a strongroom file key vault ({e})")))?;
        if probe.magic.as_ref().and_then(|m| m.as_str()) != Some(MAGIC) {
            return Err(corrupt(format!(
                "not a strongroom file key vault (no \"magic\": \"{MAGIC}\")"
            )));
        }
        match probe.format.as_ref().and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(FORMAT) => {}
            Some(v) => {
                return Err(corrupt(format!(
                    "vault format version {v}; this build reads version {FORMAT}"
                )));
            }
            None => return Err(corrupt("no format version".into())),
        }
        let file: Self =
            serde_json::from_slice(bytes).map_err(|e| corrupt(format!("malformed: {e}")))?;
        if file.vault_id.len() != VAULT_ID_LEN {
            return Err(corrupt(format!(
                "vault id of {} bytes, not {VAULT_ID_LEN}",
                file.vault_id.len()
            )));
        }
        if file.check.len() != 32 {
            return Err(corrupt("root key check value is not 32 bytes".into()));
        }
        if let RootKeyKind::Passphrase {
            algorithm,
            version,
            memory_kib,
            iterations,
            parallelism,
            salt,
        } = &file.root_key
        {
            if algorithm != "argon2id" || *version != ARGON2_VERSION {
                return Err(corrupt(format!(
                    "passphrase KDF {algorithm} version {version}; this build reads argon2id version {ARGON2_VERSION}"
                )));
            }
            // Bound the work and memory a vault file can make us spend
            // before Argon2 allocates anything.
            KdfParams::new(*memory_kib, *iterations, *parallelism)
                .map_err(|e| corrupt(format!("argon2id parameters out of range: {e}")))?;
            if !(8..=64).contains(&salt.len()) {
                return Err(corrupt(format!(
                    "argon2id salt of {} bytes (8 to 64 expected)",
                    salt.len()
                )));
            }
        }
        Ok(file)
    }

    /// Whether `keys` is this vault's root key (constant time).
    pub(super) fn check_matches(&self, keys: &RootKeys) -> bool {
        bool::from(self.check.as_slice().ct_eq(&keys.check))
    }
}
