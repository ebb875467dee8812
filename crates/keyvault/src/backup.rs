//! Key and secret backups (Azure Key Vault's backup and restore of keys
//! and secrets), and the owner key that binds them to their owner's vaults.
//!
//! A backup is one opaque blob holding every version of one key or secret
//! with its attributes, encrypted so that it restores only into a vault of
//! the same owner: the vaults given the same [`OwnerKey`] (or the vault
//! that made it, when it was given none).
//!
//! # The blob
//!
//! ```text
//! magic      8 bytes   "SRKVBKP1"
//! kind       1 byte    'K' (a key) or 'S' (a secret)
//! owner id  16 bytes   the first 16 bytes of HMAC-SHA256(owner key, "strongroom-keyvault owner id v1")
//! nonce     12 bytes   random
//! sealed    the rest   AES-256-GCM(K, nonce, payload, aad = magic || kind || owner id), tag last
//! K = HKDF-SHA256(salt = magic, ikm = owner key, info = "strongroom-keyvault backup v1")
//! ```
//!
//! The payload is JSON: `{"format":1,"vault","backed_up","name",...,
//! "versions":[...]}`, each version with its attributes and its material
//! in lowercase hex (a key: the PKCS#8 DER `PrivateKeyInfo` of an RSA key
//! or the 32 bytes of an AES key; a secret: its value). It exists in the
//! clear only in zeroized buffers.

use std::fmt;

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use strongroom_aes::aead::{Aead, Payload};
use strongroom_aes::{Aes256Gcm, Aes256Key};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::limits::{MAX_BACKUP_BYTES, check_state};
use crate::secrets::{
    check_secret_attributes, check_secret_value, check_secret_versions, ensure_secret_name_free,
    latest_secret_info, stored_secret_name,
};
use crate::state::{
    ImportedKey, KeyRecord, Material, OwnerRecord, SecretRecord, SecretVersionRecord, State,
    VersionRecord, hex, unhex,
};
use crate::vault::{
    MANAGEMENT, Vault, active, check_window, ensure_name_free, invalid, latest_info,
    normalize_operations, stored_name, valid_key_name, valid_version,
};
use crate::{
    KeyAttributes, KeyImport, KeyType, KeyVersionInfo, Permission, Principal, SecretAttributes,
    SecretVersionInfo, UnixTime, VaultError,
};

/// The first bytes of every backup.
const MAGIC: &[u8; 8] = b"SRKVBKP1";
/// The kind byte of a key backup.
const KIND_KEY: u8 = b'K';
/// The kind byte of a secret backup.
const KIND_SECRET: u8 = b'S';
/// Length of the owner id in a backup.
const OWNER_ID_LEN: usize = 16;
/// Length of the GCM nonce.
const NONCE_LEN: usize = 12;
/// Length of the GCM tag.
const TAG_LEN: usize = 16;
/// Length of everything before the sealed payload.
const HEADER_LEN: usize = MAGIC.len() + 1 + OWNER_ID_LEN + NONCE_LEN;
/// The version of the payload.
const PAYLOAD_FORMAT: u32 = 1;

/// The key that a vault's owner holds and that binds key and secret
/// backups to the owner's vaults: a backup made by one vault restores into
/// any vault given the same owner key, and into no other (as an Azure Key
/// Vault backup restores only within its owner's subscription).
///
/// A vault that was given no owner key makes a random one the first time
/// it backs something up: its backups then restore only into itself. Give
/// each of your vaults the same key
/// ([`KeyVault::set_owner_key`](crate::KeyVault::set_owner_key)) before
/// their first backup to restore across them. The vault keeps it sealed
/// like a secret; the owner keeps its own copy safe, as it would a root
/// key.
///
/// ```
/// use strongroom_keyvault::OwnerKey;
///
/// let owner = OwnerKey::generate()?;
/// let same = OwnerKey::from_bytes(*owner.expose_secret());
/// assert_eq!(owner.id(), same.id());
/// assert_eq!(format!("{owner:?}"), format!("OwnerKey({})", owner.id()));
/// # Ok::<(), strongroom_keyvault::VaultError>(())
/// ```
pub struct OwnerKey(Zeroizing<[u8; 32]>);

impl OwnerKey {
    /// A new random owner key from the operating system's generator.
    ///
    /// # Errors
    /// [`VaultError::RandomnessUnavailable`].
    pub fn generate() -> Result<Self, VaultError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut_slice()).map_err(|_| VaultError::RandomnessUnavailable)?;
        Ok(Self(key))
    }

    /// The owner key of these bytes (the caller zeroizes its own copy).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key's bytes, to keep it safe.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The owner's public id: 32 lowercase hex digits derived from the key
    /// (it says whose a backup is without revealing the key).
    #[must_use]
    pub fn id(&self) -> String {
        hex(&self.id_bytes())
    }

    fn id_bytes(&self) -> [u8; OWNER_ID_LEN] {
        // safe: HMAC takes keys of any length.
        let mut mac =
            <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(self.0.as_slice()).expect("HMAC key");
        mac.update(b"strongroom-keyvault owner id v1");
        let full = mac.finalize().into_bytes();
        let mut id = [0u8; OWNER_ID_LEN];
        id.copy_from_slice(&full[..OWNER_ID_LEN]);
        id
    }

    fn cipher(&self) -> Aes256Gcm {
        let hk = Hkdf::<Sha256>::new(Some(MAGIC), self.0.as_slice());
        let mut key = Zeroizing::new([0u8; 32]);
        // safe: 32 bytes is far below HKDF-SHA256's limit.
        hk.expand(b"strongroom-keyvault backup v1", key.as_mut_slice())
            .expect("32 bytes of HKDF output");
        Aes256Gcm::with_key(&Aes256Key::from_bytes(*key))
    }
}

impl fmt::Debug for OwnerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OwnerKey({})", self.id())
    }
}

/// Bytes in a payload as lowercase hex, through a zeroized string.
struct SecretHex<'a>(&'a [u8]);

impl Serialize for SecretHex<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(hex(self.0));
        s.serialize_str(&text)
    }
}

#[derive(Serialize)]
struct KeyPayloadOut<'a> {
    format: u32,
    vault: &'a str,
    backed_up: UnixTime,
    name: &'a str,
    key_type: KeyType,
    versions: Vec<KeyVersionOut<'a>>,
}

#[derive(Serialize)]
struct KeyVersionOut<'a> {
    version: &'a str,
    attributes: &'a KeyAttributes,
    key: SecretHex<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyPayloadIn<'a> {
    format: u32,
    #[serde(rename = "vault")]
    _vault: String,
    #[serde(rename = "backed_up")]
    _backed_up: UnixTime,
    name: String,
    key_type: KeyType,
    #[serde(borrow)]
    versions: Vec<KeyVersionIn<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyVersionIn<'a> {
    version: String,
    attributes: KeyAttributes,
    key: &'a str,
}

#[derive(Serialize)]
struct SecretPayloadOut<'a> {
    format: u32,
    vault: &'a str,
    backed_up: UnixTime,
    name: &'a str,
    versions: Vec<SecretVersionOut<'a>>,
}

#[derive(Serialize)]
struct SecretVersionOut<'a> {
    version: &'a str,
    attributes: &'a SecretAttributes,
    value: SecretHex<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretPayloadIn<'a> {
    format: u32,
    #[serde(rename = "vault")]
    _vault: String,
    #[serde(rename = "backed_up")]
    _backed_up: UnixTime,
    name: String,
    #[serde(borrow)]
    versions: Vec<SecretVersionIn<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretVersionIn<'a> {
    version: String,
    attributes: SecretAttributes,
    value: &'a str,
}

fn bad(reason: impl Into<String>) -> VaultError {
    VaultError::BackupInvalid {
        reason: reason.into(),
    }
}

/// Serializes `payload` into a buffer of exactly its size (so no copy of
/// it is left behind by a reallocation) and seals it under `owner`.
fn seal<T: Serialize>(owner: &OwnerKey, kind: u8, payload: &T) -> Result<Vec<u8>, VaultError> {
    let len = crate::state::json_len(payload);
    let mut plain = Zeroizing::new(Vec::with_capacity(len));
    serde_json::to_writer(&mut *plain, payload)
        .map_err(|_| invalid("the backup could not be serialized"))?;
    seal_bytes(owner, kind, &plain)
}

/// Seals a payload's bytes under `owner` as a backup of `kind`.
fn seal_bytes(owner: &OwnerKey, kind: u8, plain: &[u8]) -> Result<Vec<u8>, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| VaultError::RandomnessUnavailable)?;
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.push(kind);
    out.extend_from_slice(&owner.id_bytes());
    let aad = out.clone();
    out.extend_from_slice(&nonce);
    let sealed = owner
        .cipher()
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plain,
                aad: &aad,
            },
        )
        .map_err(|_| invalid("the backup is too large to seal"))?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Checks a backup's frame and opens its payload: refuses what is not a
/// backup, a backup of the other kind, one of another owner, and one that
/// was altered or cut short.
fn open(
    owner: Option<&OwnerKey>,
    kind: u8,
    backup: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    if backup.len() > MAX_BACKUP_BYTES {
        return Err(VaultError::LimitExceeded {
            what: "bytes of backup",
            limit: MAX_BACKUP_BYTES,
            found: backup.len(),
        });
    }
    if backup.len() < HEADER_LEN + TAG_LEN || &backup[..MAGIC.len()] != MAGIC {
        return Err(bad(
            "it is not a Strongroom key vault backup (or it was cut short)",
        ));
    }
    let found = backup[MAGIC.len()];
    if found != kind {
        return Err(bad(match found {
            KIND_KEY => "it is a key backup: restore it with restore_key",
            KIND_SECRET => "it is a secret backup: restore it with restore_secret",
            _ => "it is of an unknown kind",
        }));
    }
    let id_at = MAGIC.len() + 1;
    let backup_owner = &backup[id_at..id_at + OWNER_ID_LEN];
    let Some(owner) = owner else {
        return Err(VaultError::BackupOwnerMismatch {
            backup_owner: hex(backup_owner),
            vault_owner: "none (this vault has made no backup and was given no owner key)".into(),
        });
    };
    if !bool::from(backup_owner.ct_eq(&owner.id_bytes())) {
        return Err(VaultError::BackupOwnerMismatch {
            backup_owner: hex(backup_owner),
            vault_owner: owner.id(),
        });
    }
    let aad = &backup[..id_at + OWNER_ID_LEN];
    let nonce: [u8; NONCE_LEN] = backup[id_at + OWNER_ID_LEN..HEADER_LEN]
        .try_into()
        .map_err(|_| bad("its nonce is malformed"))?;
    owner
        .cipher()
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &backup[HEADER_LEN..],
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| bad("it was altered or cut short (its authentication tag does not match)"))
}

/// Parses lowercase hex into a zeroized buffer.
fn secret_unhex(text: &str, what: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    unhex(text)
        .map(Zeroizing::new)
        .ok_or_else(|| bad(format!("its {what} is not lowercase hex")))
}

/// Checks the versions of a backup: 1 or more, each of the vault's form,
/// no two the same.
fn check_versions<'v>(versions: impl Iterator<Item = &'v String>) -> Result<(), VaultError> {
    let mut seen = std::collections::BTreeSet::new();
    for version in versions {
        if !valid_version(version) {
            return Err(bad("a version is not 32 lowercase hex digits"));
        }
        if !seen.insert(version) {
            return Err(bad(format!("version {version} appears twice")));
        }
    }
    if seen.is_empty() {
        return Err(bad("it holds no version"));
    }
    Ok(())
}

impl Vault {
    /// The owner key, when the vault has one.
    fn owner_key(&self, state: &State) -> Result<Option<OwnerKey>, VaultError> {
        let Some(record) = &state.owner else {
            return Ok(None);
        };
        let raw = self.crypto.open_secret(&record.material).map_err(|e| {
            VaultError::KeyMaterialCorrupt {
                name: "(owner key)".into(),
                version: record.id.clone(),
                reason: e.to_string(),
            }
        })?;
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::material_corrupt("the sealed owner key is not 32 bytes"))?;
        let key = OwnerKey::from_bytes(bytes);
        if key.id() != record.id {
            return Err(VaultError::KeyMaterialCorrupt {
                name: "(owner key)".into(),
                version: record.id.clone(),
                reason: "the sealed owner key does not match its recorded id".into(),
            });
        }
        Ok(Some(key))
    }

    /// Records `key` as the vault's owner key (sealed) in `state`.
    fn record_owner(&self, state: &mut State, key: &OwnerKey) -> Result<(), VaultError> {
        let material = self.crypto.seal_secret(key.expose_secret())?;
        state.owner = Some(OwnerRecord {
            id: key.id(),
            material,
        });
        Ok(())
    }

    /// The owner key, made (random) and recorded when there is none yet.
    /// Called last in a backup, once nothing else can refuse it.
    fn owner_key_or_new(&self, state: &mut State) -> Result<OwnerKey, VaultError> {
        if let Some(key) = self.owner_key(state)? {
            return Ok(key);
        }
        let key = OwnerKey::generate()?;
        self.record_owner(state, &key)?;
        Ok(key)
    }

    pub(crate) fn set_owner_key(&self, key: &OwnerKey) -> Result<(), VaultError> {
        let id = key.id();
        self.execute(MANAGEMENT, &format!("setOwnerKey {id}"), None, None, |tx| {
            match &tx.state.owner {
                Some(record) if record.id == id => Ok(()),
                Some(record) => Err(invalid(format!(
                    "this vault already belongs to owner {}: an owner key never changes (the vault's backups would no longer restore)",
                    record.id
                ))),
                None => self.record_owner(tx.state, key),
            }
        })
    }

    pub(crate) fn owner_id(&self) -> Result<Option<String>, VaultError> {
        self.read(|state| state.owner.as_ref().map(|o| o.id.clone()))
    }

    pub(crate) fn backup_key(&self, caller: &Principal, name: &str) -> Result<Vec<u8>, VaultError> {
        self.execute(
            caller.id(),
            "backupKey",
            Some(Permission::Backup),
            Some(name),
            |tx| {
                let stored = stored_name(tx.state, name);
                let record = active(tx.state, &stored)?.clone();
                let mut exported = Vec::with_capacity(record.versions.len());
                for v in &record.versions {
                    let key =
                        self.crypto
                            .export(&v.material, record.key_type)
                            .map_err(|e| match e {
                                VaultError::NotExportable { backend, .. } => {
                                    VaultError::NotExportable {
                                        name: record.name.clone(),
                                        backend,
                                    }
                                }
                                other => other.for_version(&record.name, &v.version),
                            })?;
                    exported.push(key);
                }
                let owner = self.owner_key_or_new(tx.state)?;
                let payload = KeyPayloadOut {
                    format: PAYLOAD_FORMAT,
                    vault: &tx.state.properties.name,
                    backed_up: tx.now,
                    name: &record.name,
                    key_type: record.key_type,
                    versions: record
                        .versions
                        .iter()
                        .zip(&exported)
                        .map(|(v, key)| KeyVersionOut {
                            version: &v.version,
                            attributes: &v.attributes,
                            key: SecretHex(key),
                        })
                        .collect(),
                };
                seal(&owner, KIND_KEY, &payload)
            },
        )
    }

    pub(crate) fn restore_key(
        &self,
        caller: &Principal,
        backup: &[u8],
    ) -> Result<KeyVersionInfo, VaultError> {
        let mut made: Vec<Material> = Vec::new();
        let mut committing = false;
        let result = self.execute(
            caller.id(),
            "restoreKey",
            Some(Permission::Restore),
            None,
            |tx| {
                committing = false;
                let owner = self.owner_key(tx.state)?;
                let plain = open(owner.as_ref(), KIND_KEY, backup)?;
                let payload: KeyPayloadIn<'_> = serde_json::from_slice(&plain)
                    .map_err(|_| bad("its contents are not a key backup's"))?;
                if payload.format != PAYLOAD_FORMAT {
                    return Err(bad(format!(
                        "payload version {}; this build reads version {PAYLOAD_FORMAT}",
                        payload.format
                    )));
                }
                if !valid_key_name(&payload.name) {
                    return Err(bad("its key name is not a valid key name"));
                }
                tx.subject = Some(payload.name.clone());
                check_versions(payload.versions.iter().map(|v| &v.version))?;
                crate::limits::check(
                    "versions of a key",
                    payload.versions.len(),
                    crate::limits::MAX_VERSIONS_PER_KEY,
                )?;
                let stored = stored_name(tx.state, &payload.name);
                ensure_name_free(tx.state, &stored)?;
                let mut versions = Vec::with_capacity(payload.versions.len());
                for v in &payload.versions {
                    check_window(v.attributes.not_before, v.attributes.expires)?;
                    crate::limits::check_tags(&v.attributes.tags)?;
                    let raw = secret_unhex(v.key, "key material")?;
                    let imported = match payload.key_type {
                        KeyType::Aes256 => Aes256Key::try_from_slice(&raw)
                            .map(ImportedKey::Aes256)
                            .map_err(|_| bad("an AES key version is not 32 bytes"))?,
                        _ => crate::import::parse(KeyImport::Pkcs8Der(&raw))
                            .map_err(|_| bad("an RSA key version is not a valid PKCS#8 key"))?,
                    };
                    if imported.key_type() != payload.key_type {
                        return Err(bad(format!(
                            "a version is {}, the key is {}",
                            imported.key_type(),
                            payload.key_type
                        )));
                    }
                    let material = self.crypto.import(imported)?;
                    made.push(material.clone());
                    self.crypto.adopt(&material)?;
                    let mut attributes = v.attributes.clone();
                    attributes.operations = normalize_operations(attributes.operations);
                    versions.push(VersionRecord {
                        version: v.version.clone(),
                        attributes,
                        material,
                    });
                }
                tx.version = versions.last().map(|v| v.version.clone());
                let record = KeyRecord {
                    name: payload.name.clone(),
                    key_type: payload.key_type,
                    versions,
                };
                let shown = latest_info(&tx.state.properties.name, &record)?;
                tx.state.purged.remove(&stored);
                tx.state.keys.insert(payload.name.clone(), record);
                check_state(tx.state)?;
                committing = true;
                Ok(shown)
            },
        );
        if result.is_err() && !committing {
            for material in &made {
                let _ = self.crypto.destroy(material);
            }
        }
        result
    }

    pub(crate) fn backup_secret(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Vec<u8>, VaultError> {
        self.execute(
            caller.id(),
            "backupSecret",
            Some(Permission::BackupSecret),
            Some(name),
            |tx| {
                let stored = stored_secret_name(tx.state, name);
                let record = tx
                    .state
                    .secrets
                    .get(&stored)
                    .cloned()
                    .ok_or_else(|| crate::secrets::missing_secret(tx.state, &stored))?;
                let mut values = Vec::with_capacity(record.versions.len());
                for v in &record.versions {
                    let value = self
                        .crypto
                        .open_secret(&v.material)
                        .map_err(|e| e.for_secret_version(&record.name, &v.version))?;
                    values.push(value);
                }
                let owner = self.owner_key_or_new(tx.state)?;
                let payload = SecretPayloadOut {
                    format: PAYLOAD_FORMAT,
                    vault: &tx.state.properties.name,
                    backed_up: tx.now,
                    name: &record.name,
                    versions: record
                        .versions
                        .iter()
                        .zip(&values)
                        .map(|(v, value)| SecretVersionOut {
                            version: &v.version,
                            attributes: &v.attributes,
                            value: SecretHex(value),
                        })
                        .collect(),
                };
                seal(&owner, KIND_SECRET, &payload)
            },
        )
    }

    pub(crate) fn restore_secret(
        &self,
        caller: &Principal,
        backup: &[u8],
    ) -> Result<SecretVersionInfo, VaultError> {
        let mut made: Vec<Material> = Vec::new();
        let mut committed: Vec<Vec<u8>> = Vec::new();
        let result = self.execute(
            caller.id(),
            "restoreSecret",
            Some(Permission::RestoreSecret),
            None,
            |tx| {
                committed.clear();
                let owner = self.owner_key(tx.state)?;
                let plain = open(owner.as_ref(), KIND_SECRET, backup)?;
                let payload: SecretPayloadIn<'_> = serde_json::from_slice(&plain)
                    .map_err(|_| bad("its contents are not a secret backup's"))?;
                if payload.format != PAYLOAD_FORMAT {
                    return Err(bad(format!(
                        "payload version {}; this build reads version {PAYLOAD_FORMAT}",
                        payload.format
                    )));
                }
                if !valid_key_name(&payload.name) {
                    return Err(bad("its secret name is not a valid secret name"));
                }
                tx.subject = Some(payload.name.clone());
                check_versions(payload.versions.iter().map(|v| &v.version))?;
                check_secret_versions(payload.versions.len())?;
                let stored = stored_secret_name(tx.state, &payload.name);
                ensure_secret_name_free(tx.state, &stored)?;
                let mut values = Vec::with_capacity(payload.versions.len());
                for v in &payload.versions {
                    check_secret_attributes(&v.attributes)?;
                    let value = secret_unhex(v.value, "secret value")?;
                    check_secret_value(&value)?;
                    values.push(value);
                }
                let mut versions = Vec::with_capacity(values.len());
                for (v, value) in payload.versions.iter().zip(&values) {
                    let material = self.seal_for(value, &mut made)?;
                    versions.push(SecretVersionRecord {
                        version: v.version.clone(),
                        attributes: v.attributes.clone(),
                        material,
                    });
                }
                tx.version = versions.last().map(|v| v.version.clone());
                let record = SecretRecord {
                    name: payload.name.clone(),
                    versions,
                };
                let shown = latest_secret_info(&tx.state.properties.name, &record)?;
                tx.state.purged_secrets.remove(&stored);
                tx.state.secrets.insert(payload.name.clone(), record);
                check_state(tx.state)?;
                committed = made.iter().map(|m| m.id.clone()).collect();
                Ok(shown)
            },
        );
        self.settle_secrets(result, &committed, made)
    }
}

/// Test hook (feature `testing`): seals `payload` as a backup of `kind`
/// (`'K'` or `'S'`) under `owner`, so that a fuzzer reaches the payload
/// parser of [`restore_key`](crate::KeyVault::restore_key) and
/// [`restore_secret`](crate::KeyVault::restore_secret).
///
/// # Errors
/// [`VaultError::RandomnessUnavailable`].
#[cfg(feature = "testing")]
pub fn seal_backup_for_tests(
    owner: &OwnerKey,
    kind: u8,
    payload: &[u8],
) -> Result<Vec<u8>, VaultError> {
    seal_bytes(owner, kind, payload)
}
