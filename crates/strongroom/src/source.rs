//! Items whose disks are encrypted at the source (DESIGN.md R17).
//!
//! A protected item records how its disks are encrypted before the vault
//! sees them ([`SourceEncryption`]):
//!
//! - **none**;
//! - **server-side with a customer key** (a disk-encryption set): the
//!   bytes are backed up as the platform gives them, and every recovery
//!   point records the disk-encryption set and key reference in force;
//! - **in-guest** (BitLocker / dm-crypt): the disk's key (a BEK, a secret
//!   in a key vault, optionally wrapped by a key-encryption key, a KEK).
//!   Each backup first backs up the BEK secret and the KEK with the key
//!   vault's own `backup_secret` / `backup_key` (the vault's identity
//!   needs get, list and backup on each: [`Error::MissingPermissions`]
//!   names every one missing, before any data moves), and the point
//!   carries those backups encrypted under its own DEK, like the data
//!   (docs/FORMAT.md section 9.5). The point records the exact BEK and KEK
//!   versions it was taken with.
//!
//! [`RecoveryVault::restore_disk_keys`] puts the BEK (and KEK) back into a
//! key vault, the original or another of the same owner, when they are
//! gone there.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! use std::sync::Arc;
//! use strongroom::keyvault::{
//!     KeyVault, MemoryKeyVault, Permissions, Principal, SecretOptions, VaultProperties,
//! };
//! use strongroom::{BackupOptions, RecoveryVault, SecretReference, SourceEncryption};
//!
//! let vault = RecoveryVault::open_or_create(tmp.path().join("vault")).await?;
//! // The machine's key vault, holding its disk's BEK.
//! let machine_kv = Arc::new(MemoryKeyVault::new(VaultProperties::new("vm-42-kv"))?);
//! let admin = Principal::new("admin");
//! machine_kv.set_access_policy(&admin, Permissions::all())?;
//! let bek = machine_kv.set_secret(&admin, "disk0-bek", &[0x5a; 32], SecretOptions::default())?;
//! // The recovery vault's identity may get, list and back up keys and secrets there.
//! machine_kv.set_access_policy(&vault.system_identity(), Permissions::disk_encryption_backup())?;
//! vault.attach_key_vault(machine_kv.clone())?;
//!
//! let item = vault
//!     .protect_with(
//!         "vm-42/disk-0",
//!         SourceEncryption::InGuest {
//!             bek: SecretReference::latest("vm-42-kv", "disk0-bek"),
//!             kek: None,
//!         },
//!     )
//!     .await?;
//! let point = vault.backup(&item, &b"BitLocker sectors"[..], BackupOptions::default()).await?;
//! // The point records the BEK version it was taken with.
//! let SourceEncryption::InGuest { bek: recorded, .. } = point.source_encryption() else {
//!     unreachable!()
//! };
//! assert_eq!(recorded.version.as_deref(), Some(bek.version.as_str()));
//!
//! // The BEK is lost (deleted and purged); the restore puts it back.
//! machine_kv.delete_secret(&admin, "disk0-bek")?;
//! machine_kv.purge_secret(&admin, "disk0-bek")?;
//! machine_kv.set_access_policy(&vault.system_identity(), Permissions::all())?;
//! let keys = vault.restore_disk_keys(&point, None).await?;
//! assert!(keys.bek.restored);
//! let back = machine_kv.get_secret(&admin, "disk0-bek", Some(&bek.version))?;
//! assert_eq!(back.value.expose_secret(), [0x5a; 32]);
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};
use strongroom_keyvault::{KeyVault, Permission, Principal, VaultError};
use zeroize::Zeroizing;

use crate::Error;
use crate::layout::{self, hex, unhex};
use crate::restore::Layer;
use crate::vault::{RecoveryPoint, RecoveryVault, blocking};

/// The label of a point's key backups attachment (docs/FORMAT.md 3.3).
pub(crate) const KEY_BACKUPS_LABEL: &str = "strongroom.key-backups";
/// The largest key backups object read.
pub(crate) const MAX_KEY_BACKUPS: u64 = 64 * 1024 * 1024 + 28;
/// The version of the key backups payload.
const KEY_BACKUPS_FORMAT: u32 = 1;

/// A key in a key vault: the key vault's name (as attached to the recovery
/// vault), the key's name, and a version (`None`: the latest, resolved
/// when a backup runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyReference {
    /// The key vault's name.
    pub key_vault: String,
    /// The key's name.
    pub name: String,
    /// The version; `None` for the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl KeyReference {
    /// The latest version of key `name` in key vault `key_vault`.
    pub fn latest(key_vault: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            key_vault: key_vault.into(),
            name: name.into(),
            version: None,
        }
    }

    /// Version `version` of key `name` in key vault `key_vault`.
    pub fn version(
        key_vault: impl Into<String>,
        name: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            key_vault: key_vault.into(),
            name: name.into(),
            version: Some(version.into()),
        }
    }
}

/// A secret in a key vault (a disk's BEK): as [`KeyReference`] for a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretReference {
    /// The key vault's name.
    pub key_vault: String,
    /// The secret's name.
    pub name: String,
    /// The version; `None` for the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl SecretReference {
    /// The latest version of secret `name` in key vault `key_vault`.
    pub fn latest(key_vault: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            key_vault: key_vault.into(),
            name: name.into(),
            version: None,
        }
    }

    /// Version `version` of secret `name` in key vault `key_vault`.
    pub fn version(
        key_vault: impl Into<String>,
        name: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            key_vault: key_vault.into(),
            name: name.into(),
            version: Some(version.into()),
        }
    }
}

/// How an item's disks are encrypted before the vault sees them
/// (DESIGN.md R17; see the [module](crate::source) docs).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum SourceEncryption {
    /// Not encrypted at the source.
    #[default]
    None,
    /// Server-side encryption with a customer-managed key, through a
    /// disk-encryption set: the bytes are backed up as the platform gives
    /// them; each point records the set and the key.
    ServerSide {
        /// The disk-encryption set's id (e.g. its Azure resource id).
        disk_encryption_set: String,
        /// The customer key the set uses.
        key: KeyReference,
    },
    /// In-guest encryption (BitLocker, dm-crypt): the disk key is secret
    /// `bek`, its value optionally wrapped by key `kek`.
    InGuest {
        /// The disk encryption key (BEK) secret.
        bek: SecretReference,
        /// The key-encryption key (KEK) that wraps the BEK, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kek: Option<KeyReference>,
    },
}

/// What [`RecoveryVault::restore_disk_keys`] did with one key or secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredKey {
    /// The key vault it is in now.
    pub key_vault: String,
    /// Its name.
    pub name: String,
    /// The version the point was taken with.
    pub version: String,
    /// `true`: it was gone and was restored from the point's backup;
    /// `false`: that version was there already, nothing was changed.
    pub restored: bool,
}

/// What [`RecoveryVault::restore_disk_keys`] did: the BEK and, when the
/// item had one, the KEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredDiskKeys {
    /// The disk encryption key (a secret).
    pub bek: RestoredKey,
    /// The key-encryption key, when the BEK was wrapped by one.
    pub kek: Option<RestoredKey>,
}

/// A permission the vault's identity lacks for an in-guest-encrypted
/// item's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingPermission {
    /// The key vault.
    pub key_vault: String,
    /// The identity the recovery vault acts as there.
    pub principal: Principal,
    /// The permission.
    pub permission: Permission,
    /// What it is needed on (`secret NAME` or `key NAME`).
    pub object: String,
}

impl core::fmt::Display for MissingPermission {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} on {} in key vault {} (for {})",
            self.permission, self.object, self.key_vault, self.principal
        )
    }
}

/// A key vault's refusal about a disk's key or secret (never
/// [`Error::KeyPurged`], which is about a point's own key).
fn disk_key_error(what: String, source: VaultError) -> Error {
    Error::Key { key: what, source }
}

/// Whether `name` is a key or secret name a key vault accepts.
fn valid_object_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether `version` is a key vault version (32 lowercase hex digits).
fn valid_version(version: &str) -> bool {
    version.len() == 32
        && version
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_reference(
    what: &str,
    key_vault: &str,
    name: &str,
    version: Option<&str>,
) -> Result<(), Error> {
    let invalid = |reason: String| Error::InvalidArgument { reason };
    if key_vault.is_empty() || key_vault.len() > 255 {
        return Err(invalid(format!(
            "the {what}'s key vault name must be 1 to 255 bytes"
        )));
    }
    if !valid_object_name(name) {
        return Err(invalid(format!(
            "the {what}'s name must be 1 to 127 characters of A-Z, a-z, 0-9 and '-'"
        )));
    }
    if version.is_some_and(|v| !valid_version(v)) {
        return Err(invalid(format!(
            "the {what}'s version must be 32 lowercase hex digits, as the key vault gives it"
        )));
    }
    Ok(())
}

impl SourceEncryption {
    /// Checks the references: key vault names of 1 to 255 bytes, key and
    /// secret names as a key vault accepts them, versions of 32 lowercase
    /// hex digits, a disk-encryption set id of 1 to 1024 bytes of UTF-8
    /// without control characters.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] saying which field is wrong.
    pub fn check(&self) -> Result<(), Error> {
        match self {
            Self::None => Ok(()),
            Self::ServerSide {
                disk_encryption_set,
                key,
            } => {
                if disk_encryption_set.is_empty()
                    || disk_encryption_set.len() > 1024
                    || disk_encryption_set.chars().any(char::is_control)
                {
                    return Err(Error::InvalidArgument {
                        reason: "a disk-encryption set id is 1 to 1024 bytes of UTF-8 without control characters".into(),
                    });
                }
                check_reference(
                    "disk-encryption set's key",
                    &key.key_vault,
                    &key.name,
                    key.version.as_deref(),
                )
            }
            Self::InGuest { bek, kek } => {
                check_reference("BEK", &bek.key_vault, &bek.name, bek.version.as_deref())?;
                if let Some(kek) = kek {
                    check_reference("KEK", &kek.key_vault, &kek.name, kek.version.as_deref())?;
                }
                Ok(())
            }
        }
    }

    /// Whether this is [`SourceEncryption::None`].
    #[must_use]
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// The compact JSON a header's metadata and an item record carry.
    pub(crate) fn to_json(&self) -> String {
        // safe: plain strings and options serialize.
        serde_json::to_string(self).expect("a source encryption serializes")
    }

    /// Parses [`to_json`](Self::to_json)'s output, checked.
    pub(crate) fn from_json(text: &str) -> Option<Self> {
        let parsed: Self = serde_json::from_str(text).ok()?;
        parsed.check().ok()?;
        Some(parsed)
    }
}

/// One key or secret backup carried by a point.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Carried<R> {
    reference: R,
    /// The key vault's backup blob, hex.
    backup: String,
}

/// The plaintext of a point's key backups attachment.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBackups {
    format: u32,
    bek: Carried<SecretReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kek: Option<Carried<KeyReference>>,
}

/// An in-guest-encrypted item's key backups, made before a backup moves
/// any data: the source encryption with the versions resolved, and the
/// attachment's plaintext.
pub(crate) struct DiskKeys {
    pub(crate) recorded: SourceEncryption,
    pub(crate) payload: Option<Zeroizing<Vec<u8>>>,
}

impl RecoveryVault {
    /// The key vault `name` and the principal the vault reaches it as.
    async fn key_vault_and_principal(
        &self,
        name: &str,
    ) -> Result<(std::sync::Arc<dyn KeyVault>, Principal), Error> {
        let key_vault = self.key_vault(name)?;
        let principal = self.principal_for_key_vault(name).await?;
        Ok((key_vault, principal))
    }

    /// What a backup of an item with `source` carries: for in-guest
    /// encryption, after checking every permission the vault's identity
    /// needs (all missing ones named at once), the BEK's and KEK's
    /// backups and their resolved versions. Runs before any data moves.
    pub(crate) async fn disk_keys(&self, source: &SourceEncryption) -> Result<DiskKeys, Error> {
        source.check()?;
        let SourceEncryption::InGuest { bek, kek } = source else {
            return Ok(DiskKeys {
                recorded: source.clone(),
                payload: None,
            });
        };
        let (bek_vault, bek_principal) = self.key_vault_and_principal(&bek.key_vault).await?;
        let kek_vault = match kek {
            Some(kek) => Some(self.key_vault_and_principal(&kek.key_vault).await?),
            None => None,
        };
        // Every permission first, so that the error names all of them.
        let mut missing = Vec::new();
        let mut need = |key_vault: &str,
                        vault: &dyn KeyVault,
                        principal: &Principal,
                        object: String,
                        permissions: [Permission; 3]|
         -> Result<(), Error> {
            let granted = vault
                .access_policy(principal)
                .map_err(|e| disk_key_error(format!("key vault {key_vault}"), e))?;
            for permission in permissions {
                if !granted.contains(permission) {
                    missing.push(MissingPermission {
                        key_vault: key_vault.to_owned(),
                        principal: principal.clone(),
                        permission,
                        object: object.clone(),
                    });
                }
            }
            Ok(())
        };
        need(
            &bek.key_vault,
            bek_vault.as_ref(),
            &bek_principal,
            format!("secret {}", bek.name),
            [
                Permission::GetSecret,
                Permission::ListSecrets,
                Permission::BackupSecret,
            ],
        )?;
        if let (Some(kek), Some((vault, principal))) = (kek, &kek_vault) {
            need(
                &kek.key_vault,
                vault.as_ref(),
                principal,
                format!("key {}", kek.name),
                [Permission::Get, Permission::List, Permission::Backup],
            )?;
        }
        if !missing.is_empty() {
            return Err(Error::MissingPermissions { missing });
        }
        let bek = bek.clone();
        let kek = kek.clone();
        blocking(move || {
            let (bek, bek_backup) = back_up_secret(bek_vault.as_ref(), &bek_principal, &bek)?;
            let kek = match (kek, kek_vault) {
                (Some(kek), Some((vault, principal))) => {
                    Some(back_up_key(vault.as_ref(), &principal, &kek)?)
                }
                _ => None,
            };
            let recorded = SourceEncryption::InGuest {
                bek: bek.clone(),
                kek: kek.as_ref().map(|(k, _)| k.clone()),
            };
            let backups = KeyBackups {
                format: KEY_BACKUPS_FORMAT,
                bek: Carried {
                    reference: bek,
                    backup: hex(&bek_backup),
                },
                kek: kek.map(|(reference, backup)| Carried {
                    reference,
                    backup: hex(&backup),
                }),
            };
            let payload = serde_json::to_vec(&backups).map_err(|e| Error::InvalidArgument {
                reason: format!("the key backups could not be serialized: {e}"),
            })?;
            Ok(DiskKeys {
                recorded,
                payload: Some(Zeroizing::new(payload)),
            })
        })
        .await?
    }

    /// Puts the BEK (and KEK) that `point` was taken with back into a key
    /// vault, when they are gone there: into `into` (the name of an
    /// attached key vault), or, with `None`, into the key vault each came
    /// from. A key or secret whose recorded version is there already is
    /// left as it is; one that is gone (never there, or purged) is restored
    /// from the backup the point carries, with all the versions it had at
    /// the backup (so the point's version among them). Another key vault
    /// must belong to the same owner as the original
    /// ([`OwnerKey`](strongroom_keyvault::OwnerKey)).
    ///
    /// The vault's identity needs list and restore there (`listSecrets` and
    /// `restoreSecret` for the BEK, `list` and `restore` for the KEK). The
    /// point's header is opened (as a restore does) and its key backups
    /// authenticated before anything is put back.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a point of an item that is not
    /// in-guest encrypted; [`Error::Integrity`] when the key backups are
    /// missing or were altered; [`Error::DiskKeyConflict`] when the key or secret
    /// is soft-deleted there (recover or purge it first) or exists without
    /// the point's version (it was made again since); [`Error::Key`] when
    /// the key vault refuses (a permission, another owner:
    /// `BackupOwnerMismatch`); as [`restore`](Self::restore) for opening
    /// the point.
    pub async fn restore_disk_keys(
        &self,
        point: &RecoveryPoint,
        into: Option<&str>,
    ) -> Result<RestoredDiskKeys, Error> {
        if !matches!(point.source_encryption, SourceEncryption::InGuest { .. }) {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "recovery point {} carries no disk keys: its item is not encrypted in the guest",
                    point.id
                ),
            });
        }
        let opened = self.open_header(point, Layer::Data).await?;
        let integrity = |reason: &str| Error::Integrity {
            point: point.id.clone(),
            reason: reason.into(),
        };
        // The listing read the source encryption from the header without
        // authenticating it; the opened header's metadata is authentic.
        let recorded = opened
            .header()
            .metadata()
            .get(layout::METADATA_SOURCE_ENCRYPTION)
            .and_then(|text| SourceEncryption::from_json(text))
            .ok_or_else(|| integrity("its header records no in-guest encryption"))?;
        if recorded != point.source_encryption {
            return Err(integrity(
                "its source encryption differs from what its authenticated header records",
            ));
        }
        let path = self.inner.layout.key_backups(&point.item, &point.id);
        let sealed = crate::store::get_small(self.inner.store.as_ref(), &path, MAX_KEY_BACKUPS)
            .await?
            .ok_or_else(|| integrity("its key backups are missing"))?;
        let plain = opened
            .open_attachment(KEY_BACKUPS_LABEL, &sealed)
            .map_err(|_| integrity("its key backups were altered (they do not authenticate)"))?;
        let backups: KeyBackups = serde_json::from_slice(&plain)
            .map_err(|_| integrity("its key backups do not parse"))?;
        let SourceEncryption::InGuest { bek, kek } = &recorded else {
            return Err(integrity("its header records no in-guest encryption"));
        };
        if backups.format != KEY_BACKUPS_FORMAT
            || backups.bek.reference != *bek
            || backups.kek.as_ref().map(|k| &k.reference) != kek.as_ref()
        {
            return Err(integrity(
                "its key backups are not those its header records",
            ));
        }
        let unhexed =
            |text: &str| unhex(text).ok_or_else(|| integrity("its key backups do not parse"));
        let bek_backup = unhexed(&backups.bek.backup)?;
        let kek_backup = match &backups.kek {
            Some(carried) => Some(unhexed(&carried.backup)?),
            None => None,
        };
        // The KEK first: a BEK wrapped by it is of no use without it.
        let kek = match (kek, kek_backup) {
            (Some(reference), Some(backup)) => {
                let target = into.unwrap_or(&reference.key_vault).to_owned();
                let (vault, principal) = self.key_vault_and_principal(&target).await?;
                let reference = reference.clone();
                Some(
                    blocking(move || {
                        put_back_key(vault.as_ref(), &principal, &target, &reference, &backup)
                    })
                    .await??,
                )
            }
            _ => None,
        };
        let target = into.unwrap_or(&bek.key_vault).to_owned();
        let (vault, principal) = self.key_vault_and_principal(&target).await?;
        let reference = bek.clone();
        let bek = blocking(move || {
            put_back_secret(vault.as_ref(), &principal, &target, &reference, &bek_backup)
        })
        .await??;
        Ok(RestoredDiskKeys { bek, kek })
    }
}

/// The BEK's version to record (the given one, checked to exist, or the
/// latest) and the secret's backup.
fn back_up_secret(
    vault: &dyn KeyVault,
    principal: &Principal,
    bek: &SecretReference,
) -> Result<(SecretReference, Vec<u8>), Error> {
    let what = || format!("{}/{} (BEK)", bek.key_vault, bek.name);
    let versions = vault
        .list_secret_versions(principal, &bek.name)
        .map_err(|e| disk_key_error(what(), e))?;
    let version = match &bek.version {
        Some(v) if versions.iter().any(|s| s.version == *v) => v.clone(),
        Some(v) => {
            return Err(Error::NotFound {
                what: format!(
                    "version {v} of secret {} in key vault {}",
                    bek.name, bek.key_vault
                ),
            });
        }
        None => versions
            .last()
            .map(|s| s.version.clone())
            .ok_or_else(|| Error::NotFound {
                what: format!(
                    "a version of secret {} in key vault {}",
                    bek.name, bek.key_vault
                ),
            })?,
    };
    let backup = vault
        .backup_secret(principal, &bek.name)
        .map_err(|e| disk_key_error(what(), e))?;
    Ok((
        SecretReference::version(&bek.key_vault, &bek.name, version),
        backup,
    ))
}

/// As [`back_up_secret`], for the KEK.
fn back_up_key(
    vault: &dyn KeyVault,
    principal: &Principal,
    kek: &KeyReference,
) -> Result<(KeyReference, Vec<u8>), Error> {
    let what = || format!("{}/{} (KEK)", kek.key_vault, kek.name);
    let versions = vault
        .list_versions(principal, &kek.name)
        .map_err(|e| disk_key_error(what(), e))?;
    let version = match &kek.version {
        Some(v) if versions.iter().any(|k| k.version == *v) => v.clone(),
        Some(v) => {
            return Err(Error::NotFound {
                what: format!(
                    "version {v} of key {} in key vault {}",
                    kek.name, kek.key_vault
                ),
            });
        }
        None => versions
            .last()
            .map(|k| k.version.clone())
            .ok_or_else(|| Error::NotFound {
                what: format!(
                    "a version of key {} in key vault {}",
                    kek.name, kek.key_vault
                ),
            })?,
    };
    let backup = vault
        .backup_key(principal, &kek.name)
        .map_err(|e| disk_key_error(what(), e))?;
    Ok((
        KeyReference::version(&kek.key_vault, &kek.name, version),
        backup,
    ))
}

/// Whether a lookup's error says the name is free for a restore (never
/// there, or purged).
enum Presence {
    Present(Vec<String>),
    Gone,
}

fn put_back_secret(
    vault: &dyn KeyVault,
    principal: &Principal,
    target: &str,
    reference: &SecretReference,
    backup: &[u8],
) -> Result<RestoredKey, Error> {
    let what = || format!("{target}/{} (BEK)", reference.name);
    let version = reference.version.clone().unwrap_or_default();
    let presence = match vault.list_secret_versions(principal, &reference.name) {
        Ok(versions) => Presence::Present(versions.into_iter().map(|v| v.version).collect()),
        Err(VaultError::SecretNotFound { version: None, .. } | VaultError::SecretPurged { .. }) => {
            Presence::Gone
        }
        Err(VaultError::SecretDeleted { .. }) => {
            return Err(Error::DiskKeyConflict {
                what: format!(
                    "secret {} is soft-deleted in key vault {target}: recover it (its versions come back) or purge it, then restore the keys again",
                    reference.name
                ),
            });
        }
        Err(e) => return Err(disk_key_error(what(), e)),
    };
    let restored = match presence {
        Presence::Present(versions) if versions.contains(&version) => false,
        Presence::Present(_) => {
            return Err(Error::DiskKeyConflict {
                what: format!(
                    "secret {} exists in key vault {target} without version {version} (it was made again since the backup): restore the keys into another key vault",
                    reference.name
                ),
            });
        }
        Presence::Gone => {
            vault
                .restore_secret(principal, backup)
                .map_err(|e| disk_key_error(what(), e))?;
            true
        }
    };
    Ok(RestoredKey {
        key_vault: target.to_owned(),
        name: reference.name.clone(),
        version,
        restored,
    })
}

fn put_back_key(
    vault: &dyn KeyVault,
    principal: &Principal,
    target: &str,
    reference: &KeyReference,
    backup: &[u8],
) -> Result<RestoredKey, Error> {
    let what = || format!("{target}/{} (KEK)", reference.name);
    let version = reference.version.clone().unwrap_or_default();
    let presence = match vault.list_versions(principal, &reference.name) {
        Ok(versions) => Presence::Present(versions.into_iter().map(|v| v.version).collect()),
        Err(VaultError::KeyNotFound { version: None, .. } | VaultError::KeyPurged { .. }) => {
            Presence::Gone
        }
        Err(VaultError::KeyDeleted { .. }) => {
            return Err(Error::DiskKeyConflict {
                what: format!(
                    "key {} is soft-deleted in key vault {target}: recover it (its versions come back) or purge it, then restore the keys again",
                    reference.name
                ),
            });
        }
        Err(e) => return Err(disk_key_error(what(), e)),
    };
    let restored = match presence {
        Presence::Present(versions) if versions.contains(&version) => false,
        Presence::Present(_) => {
            return Err(Error::DiskKeyConflict {
                what: format!(
                    "key {} exists in key vault {target} without version {version} (it was made again since the backup): restore the keys into another key vault",
                    reference.name
                ),
            });
        }
        Presence::Gone => {
            vault
                .restore_key(principal, backup)
                .map_err(|e| disk_key_error(what(), e))?;
            true
        }
    };
    Ok(RestoredKey {
        key_vault: target.to_owned(),
        name: reference.name.clone(),
        version,
        restored,
    })
}
