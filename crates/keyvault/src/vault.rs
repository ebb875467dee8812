//! The `KeyVault` trait and the one implementation of its rules, shared by
//! every backend.

use std::sync::Arc;

use strongroom_envelope::WrapAlgorithm;
use zeroize::Zeroizing;

use crate::audit::{AuditEntry, AuditOutcome, AuditRecord, verify_chain};
use crate::clock::Clock;
use crate::state::{
    DeletedRecord, KeyCrypto, KeyRecord, Material, State, StateStore, VersionRecord, hex,
};
use crate::{
    AttributeUpdate, DeletedKeyInfo, DeletedSecretInfo, KeyAttributes, KeyOperation, KeyOptions,
    KeyType, KeyVersionInfo, Permission, Permissions, Principal, Secret, SecretOptions,
    SecretUpdate, SecretVersionInfo, UnixTime, VaultError, VaultProperties,
};

/// Key material brought into the vault (bring your own key). The caller
/// keeps and zeroizes its own copy.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum KeyImport<'a> {
    /// A PKCS#8 `PrivateKeyInfo`, DER (an RSA private key).
    Pkcs8Der(&'a [u8]),
    /// A PKCS#8 private key, PEM (`-----BEGIN PRIVATE KEY-----`).
    Pkcs8Pem(&'a str),
    /// A JSON Web Key: `kty` `RSA` with the private members, or `oct` with
    /// a 32-byte `k`.
    Jwk(&'a str),
}

impl KeyImport<'_> {
    /// The length of the encoded key, in bytes.
    fn len(&self) -> usize {
        match self {
            Self::Pkcs8Der(der) => der.len(),
            Self::Pkcs8Pem(text) | Self::Jwk(text) => text.len(),
        }
    }
}

impl core::fmt::Debug for KeyImport<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the key bytes.
        f.write_str(match self {
            Self::Pkcs8Der(_) => "KeyImport::Pkcs8Der(..)",
            Self::Pkcs8Pem(_) => "KeyImport::Pkcs8Pem(..)",
            Self::Jwk(_) => "KeyImport::Jwk(..)",
        })
    }
}

/// A DEK wrapped by the vault, with the key version that wrapped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapped {
    /// The version used (the latest enabled one for a versionless call).
    pub version: String,
    /// The wrapped bytes.
    pub wrapped: Vec<u8>,
}

/// A key vault (DESIGN.md R9): keys with versions and attributes, access
/// policies per principal, soft delete, wrap and unwrap done inside the
/// vault, and a tamper-evident audit log of every call.
///
/// Data-plane calls take the calling [`Principal`] and are checked against
/// its access policy; management-plane calls (access policies, purge
/// protection) are made by whoever holds the vault value. Every call,
/// allowed or denied, is audited.
pub trait KeyVault: Send + Sync {
    /// The vault's properties.
    ///
    /// # Errors
    /// Storage failures.
    fn properties(&self) -> Result<VaultProperties, VaultError>;

    /// Turns purge protection on, for good.
    ///
    /// # Errors
    /// Storage failures.
    fn enable_purge_protection(&self) -> Result<(), VaultError>;

    /// Sets `principal`'s access policy (replacing any earlier one;
    /// [`Permissions::NONE`] revokes everything). Takes effect on the very
    /// next call.
    ///
    /// # Errors
    /// Storage failures.
    fn set_access_policy(
        &self,
        principal: &Principal,
        permissions: Permissions,
    ) -> Result<(), VaultError>;

    /// `principal`'s access policy.
    ///
    /// # Errors
    /// Storage failures.
    fn access_policy(&self, principal: &Principal) -> Result<Permissions, VaultError>;

    /// Creates key `name` with a first version made inside the vault.
    ///
    /// # Errors
    /// Access denied (`create`), [`VaultError::KeyExists`], invalid name or
    /// options, backend failures.
    fn create_key(
        &self,
        caller: &Principal,
        name: &str,
        key_type: KeyType,
        options: KeyOptions,
    ) -> Result<KeyVersionInfo, VaultError>;

    /// Imports key material as key `name`, or as a new version of it if it
    /// exists with the same key type.
    ///
    /// # Errors
    /// Access denied (`import`), [`VaultError::InvalidKeyMaterial`],
    /// backend failures.
    fn import_key(
        &self,
        caller: &Principal,
        name: &str,
        key: KeyImport<'_>,
        options: KeyOptions,
    ) -> Result<KeyVersionInfo, VaultError>;

    /// The public part and attributes of a version (`None`: the latest).
    ///
    /// # Errors
    /// Access denied (`get`), not found, deleted, purged.
    fn get_key(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
    ) -> Result<KeyVersionInfo, VaultError>;

    /// The latest version of every active key.
    ///
    /// # Errors
    /// Access denied (`list`).
    fn list_keys(&self, caller: &Principal) -> Result<Vec<KeyVersionInfo>, VaultError>;

    /// Every version of a key, oldest first.
    ///
    /// # Errors
    /// Access denied (`list`), not found, deleted, purged.
    fn list_versions(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Vec<KeyVersionInfo>, VaultError>;

    /// Changes a version's attributes.
    ///
    /// # Errors
    /// Access denied (`update`), not found, deleted, invalid attributes.
    fn update_key(
        &self,
        caller: &Principal,
        name: &str,
        version: &str,
        update: AttributeUpdate,
    ) -> Result<KeyVersionInfo, VaultError>;

    /// Makes a new version of a key (same type); it becomes the latest.
    ///
    /// # Errors
    /// Access denied (`rotate`), not found, deleted, imported-only... see
    /// the implementation.
    fn rotate_key(
        &self,
        caller: &Principal,
        name: &str,
        options: KeyOptions,
    ) -> Result<KeyVersionInfo, VaultError>;

    /// Soft-deletes a key with all its versions.
    ///
    /// # Errors
    /// Access denied (`delete`), not found.
    fn delete_key(&self, caller: &Principal, name: &str) -> Result<DeletedKeyInfo, VaultError>;

    /// The soft-deleted keys.
    ///
    /// # Errors
    /// Access denied (`list`).
    fn list_deleted_keys(&self, caller: &Principal) -> Result<Vec<DeletedKeyInfo>, VaultError>;

    /// Brings a soft-deleted key back.
    ///
    /// # Errors
    /// Access denied (`recover`), not deleted, purged.
    fn recover_key(&self, caller: &Principal, name: &str) -> Result<KeyVersionInfo, VaultError>;

    /// Destroys a soft-deleted key for good.
    ///
    /// # Errors
    /// Access denied (`purge`), [`VaultError::PurgeProtected`], not deleted.
    fn purge_key(&self, caller: &Principal, name: &str) -> Result<(), VaultError>;

    /// Wraps `dek` under a version of key `name` (`None`: the latest
    /// enabled version).
    ///
    /// # Errors
    /// Access denied (`wrapKey`), disabled, expired, not yet valid, deleted,
    /// purged, operation not permitted, algorithm mismatch.
    fn wrap_key(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
        algorithm: WrapAlgorithm,
        dek: &[u8],
    ) -> Result<Wrapped, VaultError>;

    /// Unwraps a DEK wrapped under a version of key `name`.
    ///
    /// # Errors
    /// Access denied (`unwrapKey`), disabled, deleted, purged, operation not
    /// permitted, algorithm mismatch, [`VaultError::DecryptionFailed`].
    fn unwrap_key(
        &self,
        caller: &Principal,
        name: &str,
        version: &str,
        algorithm: WrapAlgorithm,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError>;

    /// Unwraps what [`wrap_key`](Self::wrap_key) returned: the
    /// [`Wrapped`] value carries its version, so it goes back as it came.
    ///
    /// ```
    /// use strongroom_envelope::WrapAlgorithm;
    /// use strongroom_keyvault::{
    ///     KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permissions, Principal, VaultProperties,
    /// };
    ///
    /// let vault = MemoryKeyVault::new(VaultProperties::new("kv"))?;
    /// let admin = Principal::new("admin");
    /// vault.set_access_policy(&admin, Permissions::all())?;
    /// vault.create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())?;
    /// let wrapped = vault.wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &[7; 32])?;
    /// let dek = vault.unwrap_wrapped(&admin, "pmk", WrapAlgorithm::A256Kw, &wrapped)?;
    /// assert_eq!(dek.as_slice(), [7; 32]);
    /// # Ok::<(), strongroom_keyvault::VaultError>(())
    /// ```
    ///
    /// # Errors
    /// As [`unwrap_key`](Self::unwrap_key).
    fn unwrap_wrapped(
        &self,
        caller: &Principal,
        name: &str,
        algorithm: WrapAlgorithm,
        wrapped: &Wrapped,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.unwrap_key(caller, name, &wrapped.version, algorithm, &wrapped.wrapped)
    }

    /// Sets a secret: a new version of secret `name` with this value (the
    /// secret is made if it does not exist; it becomes the latest
    /// version).
    ///
    /// # Errors
    /// Access denied (`setSecret`), [`VaultError::SecretExists`] for a
    /// soft-deleted secret, limits (value, content type, tags, versions),
    /// invalid name or attributes, backend failures.
    fn set_secret(
        &self,
        caller: &Principal,
        name: &str,
        value: &[u8],
        options: SecretOptions,
    ) -> Result<SecretVersionInfo, VaultError>;

    /// A secret version's value and attributes (`None`: the latest
    /// version). Not-before and expiry are not enforced, as in Azure Key
    /// Vault: see [`SecretAttributes::is_valid_at`](crate::SecretAttributes::is_valid_at).
    ///
    /// # Errors
    /// Access denied (`getSecret`), not found, deleted, purged,
    /// [`VaultError::SecretDisabled`], [`VaultError::SecretCorrupt`].
    fn get_secret(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
    ) -> Result<Secret, VaultError>;

    /// The latest version of every active secret (no values).
    ///
    /// # Errors
    /// Access denied (`listSecrets`).
    fn list_secrets(&self, caller: &Principal) -> Result<Vec<SecretVersionInfo>, VaultError>;

    /// Every version of a secret, oldest first (no values).
    ///
    /// # Errors
    /// Access denied (`listSecrets`), not found, deleted, purged.
    fn list_secret_versions(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Vec<SecretVersionInfo>, VaultError>;

    /// Changes a secret version's attributes (never its value).
    ///
    /// # Errors
    /// Access denied (`setSecret`), not found, deleted, invalid
    /// attributes, limits.
    fn update_secret(
        &self,
        caller: &Principal,
        name: &str,
        version: &str,
        update: SecretUpdate,
    ) -> Result<SecretVersionInfo, VaultError>;

    /// Soft-deletes a secret with all its versions.
    ///
    /// # Errors
    /// Access denied (`deleteSecret`), not found.
    fn delete_secret(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<DeletedSecretInfo, VaultError>;

    /// The soft-deleted secrets.
    ///
    /// # Errors
    /// Access denied (`listSecrets`).
    fn list_deleted_secrets(
        &self,
        caller: &Principal,
    ) -> Result<Vec<DeletedSecretInfo>, VaultError>;

    /// Brings a soft-deleted secret back.
    ///
    /// # Errors
    /// Access denied (`recoverSecret`), not deleted, purged.
    fn recover_secret(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<SecretVersionInfo, VaultError>;

    /// Destroys a soft-deleted secret for good.
    ///
    /// # Errors
    /// Access denied (`purgeSecret`),
    /// [`VaultError::SecretPurgeProtected`], not deleted.
    fn purge_secret(&self, caller: &Principal, name: &str) -> Result<(), VaultError>;

    /// Backs key `name` up: every version, with its attributes and
    /// material, in one blob encrypted under the vault's
    /// [`OwnerKey`](crate::OwnerKey) (see [`restore_key`](Self::restore_key)).
    ///
    /// # Errors
    /// Access denied (`backup`), not found, deleted, purged,
    /// [`VaultError::NotExportable`] (a PKCS#11 token's keys), material
    /// errors.
    fn backup_key(&self, caller: &Principal, name: &str) -> Result<Vec<u8>, VaultError>;

    /// Restores a key from [`backup_key`](Self::backup_key)'s blob, with its
    /// name, versions (the same version ids) and attributes, into this
    /// vault if it has the owner of the vault that made the backup. As in
    /// Azure Key Vault, the name must be free: no active or soft-deleted
    /// key holds it (a purged one may).
    ///
    /// # Errors
    /// Access denied (`restore`), [`VaultError::BackupInvalid`] (not a
    /// key backup, altered, cut short), [`VaultError::BackupOwnerMismatch`],
    /// [`VaultError::KeyExists`], limits, backend failures.
    fn restore_key(&self, caller: &Principal, backup: &[u8]) -> Result<KeyVersionInfo, VaultError>;

    /// Backs secret `name` up: every version, with its attributes and
    /// value, as [`backup_key`](Self::backup_key) does for a key.
    ///
    /// # Errors
    /// Access denied (`backupSecret`), not found, deleted, purged,
    /// [`VaultError::SecretCorrupt`].
    fn backup_secret(&self, caller: &Principal, name: &str) -> Result<Vec<u8>, VaultError>;

    /// Restores a secret from [`backup_secret`](Self::backup_secret)'s
    /// blob, as [`restore_key`](Self::restore_key) does for a key.
    ///
    /// # Errors
    /// Access denied (`restoreSecret`), [`VaultError::BackupInvalid`],
    /// [`VaultError::BackupOwnerMismatch`], [`VaultError::SecretExists`],
    /// limits, backend failures.
    fn restore_secret(
        &self,
        caller: &Principal,
        backup: &[u8],
    ) -> Result<SecretVersionInfo, VaultError>;

    /// Gives the vault its owner's key (management plane), which its key
    /// and secret backups are bound to: they restore into any vault given
    /// the same key. Idempotent for the same key; refused once the vault
    /// has another (one it was given, or made for its first backup).
    ///
    /// # Errors
    /// [`VaultError::InvalidArgument`] when the vault has another owner
    /// key; backend failures.
    fn set_owner_key(&self, owner: &crate::OwnerKey) -> Result<(), VaultError>;

    /// The vault's owner id ([`OwnerKey::id`](crate::OwnerKey::id)), or
    /// `None` before it was given or made one.
    ///
    /// # Errors
    /// Storage failures.
    fn owner_id(&self) -> Result<Option<String>, VaultError>;

    /// Every audit entry, oldest first. For a vault kept in a directory
    /// whose log was rotated
    /// ([`FileKeyVault::rotate_audit_log`](crate::FileKeyVault::rotate_audit_log)),
    /// the entries of the live segment: those since the last rotation. The
    /// same holds for [`verify_audit_log`](Self::verify_audit_log) and
    /// [`export_audit_log`](Self::export_audit_log).
    ///
    /// # Errors
    /// Storage failures.
    fn audit_log(&self) -> Result<Vec<AuditEntry>, VaultError>;

    /// Verifies the audit log: every entry's MAC under the vault's audit
    /// key, the chain between entries (from the genesis or from the
    /// checkpoint an archived prefix left), and that the log reaches the
    /// newest entry the vault's state records.
    ///
    /// # Errors
    /// [`VaultError::AuditTampered`] naming the first entry that was
    /// forged, edited, inserted, removed or reordered, or that entries are
    /// missing at the end; storage failures ([`VaultError::Io`],
    /// [`VaultError::Corrupt`] for a log that cannot be read at all).
    fn verify_audit_log(&self) -> Result<(), VaultError>;

    /// Verifies `entries` as this vault's audit log (e.g. a copy exported
    /// earlier and since edited): as
    /// [`verify_audit_log`](Self::verify_audit_log), on the given entries.
    ///
    /// # Errors
    /// As [`verify_audit_log`](Self::verify_audit_log).
    fn verify_audit_entries(&self, entries: &[AuditEntry]) -> Result<(), VaultError>;

    /// The audit log, verified, as JSON lines (one [`AuditEntry`] per line,
    /// oldest first): for a SIEM or an archive.
    ///
    /// # Errors
    /// As [`verify_audit_log`](Self::verify_audit_log): nothing is exported
    /// from a log that does not verify.
    fn export_audit_log(&self) -> Result<String, VaultError>;
}

/// The vault logic over a state store and a key backend. Every public vault
/// type ([`MemoryKeyVault`](crate::MemoryKeyVault), `FileKeyVault`,
/// `Pkcs11KeyVault`) holds one and implements [`AsVault`], and through it
/// [`KeyVault`].
pub struct Vault {
    pub(crate) store: Box<dyn StateStore>,
    pub(crate) crypto: Box<dyn KeyCrypto>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// Implemented by each public vault type to reach its [`Vault`]; sealed
/// (unreachable from outside the crate), so `KeyVault`'s blanket
/// implementation covers exactly our backends.
pub trait AsVault {
    /// The vault logic.
    fn vault(&self) -> &Vault;
}

/// The principal recorded in the audit log for management-plane calls
/// (access policies, purge protection), which are made by whoever holds the
/// vault value rather than as a principal.
pub(crate) const MANAGEMENT: &str = "(management)";

/// The principal recorded for what the vault does by itself (purging a
/// deleted key whose retention ended).
pub(crate) const SYSTEM: &str = "(vault)";

/// Test hook: whether the process aborts once a purge is committed,
/// before the purged material is destroyed.
static ABORT_AFTER_PURGE_COMMIT: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Arms (or disarms) [`crash_after_purge_commit`] for this process.
/// Only the PKCS#11 vault's crash hook calls it: without the feature it
/// would be dead code (a warning in any build of a dependent crate alone).
#[cfg(feature = "pkcs11")]
pub(crate) fn set_abort_after_purge_commit(on: bool) {
    ABORT_AFTER_PURGE_COMMIT.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// Stops the process, as a power cut would, between a purge's commit and
/// the destruction of its material, when a crash test armed it.
fn crash_after_purge_commit() {
    if ABORT_AFTER_PURGE_COMMIT.load(std::sync::atomic::Ordering::SeqCst) {
        std::process::abort();
    }
}

/// Seconds in a day, for the soft-delete retention.
pub(crate) const DAY: u64 = 86_400;

/// Checks a vault's properties: a name that fits a key reference (1 to 255
/// bytes) and 7 to 90 days of soft-delete retention.
///
/// # Errors
/// [`VaultError::InvalidArgument`] saying which property is wrong.
pub(crate) fn validate_properties(properties: &VaultProperties) -> Result<(), VaultError> {
    if properties.name.is_empty() || properties.name.len() > 255 {
        return Err(invalid(
            "the vault name must be 1 to 255 bytes of UTF-8 (it is recorded in every key reference)",
        ));
    }
    if !VaultProperties::RETENTION_DAYS.contains(&properties.soft_delete_retention_days) {
        return Err(invalid(format!(
            "soft-delete retention must be {} to {} days, not {}",
            VaultProperties::RETENTION_DAYS.start(),
            VaultProperties::RETENTION_DAYS.end(),
            properties.soft_delete_retention_days
        )));
    }
    Ok(())
}

/// Whether `name` is a key name Azure Key Vault would accept: 1 to 127
/// characters of `A-Z`, `a-z`, `0-9` and `-`.
pub(crate) fn valid_key_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether `version` has the form the vault gives versions: 32 lowercase
/// hex digits.
pub(crate) fn valid_version(version: &str) -> bool {
    version.len() == 32
        && version
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A fresh version identifier: 16 random bytes as 32 lowercase hex digits.
pub(crate) fn new_version() -> Result<String, VaultError> {
    crate::state::random_bytes(16).map(|bytes| hex(&bytes))
}

pub(crate) fn invalid(reason: impl Into<String>) -> VaultError {
    VaultError::InvalidArgument {
        reason: reason.into(),
    }
}

/// Whether `algorithm` can be used with a key of `key_type`.
pub(crate) fn algorithm_fits(key_type: KeyType, algorithm: WrapAlgorithm) -> bool {
    match algorithm {
        WrapAlgorithm::A256Kw => key_type == KeyType::Aes256,
        WrapAlgorithm::RsaOaep256 | WrapAlgorithm::RsaOaep => key_type.is_rsa(),
        _ => false,
    }
}

/// The working context of one call inside a transaction.
pub(crate) struct Tx<'s> {
    pub(crate) state: &'s mut State,
    pub(crate) now: UnixTime,
    /// The key or secret version the call concerned, once known (for the
    /// audit log).
    pub(crate) version: Option<String>,
    /// The key or secret the call concerned, when it is known only inside
    /// the call (a restore learns it from the backup).
    pub(crate) subject: Option<String>,
}

/// Material a committed purge leaves to destroy.
pub(crate) enum Doomed {
    /// A key version's.
    Key(Material),
    /// A secret version's.
    Secret(Material),
}

/// Records one audit entry in the transaction and advances the head.
pub(crate) fn audit(
    state: &mut State,
    now: UnixTime,
    principal: &str,
    operation: &str,
    key: Option<&str>,
    version: Option<String>,
    outcome: AuditOutcome,
) {
    let (entry, head) = AuditEntry::chain(
        &state.audit_head,
        AuditRecord {
            time: now,
            principal: principal.to_owned(),
            operation: operation.to_owned(),
            key: key.map(str::to_owned),
            version,
            outcome,
        },
    );
    state.pending_audit.push(entry);
    state.audit_head = head;
}

/// Purges every deleted key and secret whose retention ended by `now`,
/// auditing each as done by the vault itself; returns their material to
/// destroy once the transaction committed.
fn purge_due(state: &mut State, now: UnixTime) -> Vec<Doomed> {
    let mut materials = crate::secrets::purge_due_secrets(state, now);
    // Most calls find nothing due without looking at the deleted keys.
    if state
        .purge_memo
        .earliest(&state.deleted)
        .is_none_or(|earliest| earliest > now)
    {
        return materials;
    }
    let due: Vec<String> = state
        .deleted
        .iter()
        .filter(|(_, record)| record.scheduled_purge <= now)
        .map(|(name, _)| name.clone())
        .collect();
    for name in due {
        if let Some(record) = state.deleted.remove(&name) {
            materials.extend(
                record
                    .key
                    .versions
                    .into_iter()
                    .map(|v| Doomed::Key(v.material)),
            );
            state.purged.insert(name.clone(), now);
            audit(
                state,
                now,
                SYSTEM,
                "purge (retention ended)",
                Some(&name),
                None,
                AuditOutcome::Allowed,
            );
        }
    }
    materials
}

/// The spelling under which the state holds key `name` (active,
/// soft-deleted or purged), compared case-insensitively as Azure Key Vault
/// compares key names; `name` itself when the state has no such key.
pub(crate) fn stored_name(state: &State, name: &str) -> String {
    if state.keys.contains_key(name)
        || state.deleted.contains_key(name)
        || state.purged.contains_key(name)
    {
        return name.to_owned();
    }
    state
        .keys
        .find_ignore_case(name)
        .or_else(|| state.deleted.find_ignore_case(name))
        .or_else(|| state.purged.find_ignore_case(name))
        .map_or_else(|| name.to_owned(), Clone::clone)
}

/// The active key `name`, or the error that says where it went.
pub(crate) fn active<'s>(state: &'s State, name: &str) -> Result<&'s KeyRecord, VaultError> {
    if let Some(record) = state.keys.get(name) {
        return Ok(record);
    }
    Err(missing(state, name))
}

fn active_mut<'s>(state: &'s mut State, name: &str) -> Result<&'s mut KeyRecord, VaultError> {
    if !state.keys.contains_key(name) {
        return Err(missing(state, name));
    }
    state
        .keys
        .get_mut(name)
        .ok_or_else(|| VaultError::KeyNotFound {
            name: name.to_owned(),
            version: None,
        })
}

/// Why there is no active key `name`: deleted, purged, or never there.
pub(crate) fn missing(state: &State, name: &str) -> VaultError {
    if let Some(deleted) = state.deleted.get(name) {
        VaultError::KeyDeleted {
            name: name.to_owned(),
            scheduled_purge: deleted.scheduled_purge,
        }
    } else if let Some(purged) = state.purged.get(name) {
        VaultError::KeyPurged {
            name: name.to_owned(),
            purged: *purged,
        }
    } else {
        VaultError::KeyNotFound {
            name: name.to_owned(),
            version: None,
        }
    }
}

/// Refuses a name that an active or soft-deleted key holds.
pub(crate) fn ensure_name_free(state: &State, name: &str) -> Result<(), VaultError> {
    if state.keys.contains_key(name) {
        return Err(VaultError::KeyExists {
            name: name.to_owned(),
            deleted: false,
        });
    }
    if state.deleted.contains_key(name) {
        return Err(VaultError::KeyExists {
            name: name.to_owned(),
            deleted: true,
        });
    }
    Ok(())
}

/// The position of `version` in `record`, checking its form first.
pub(crate) fn find_version(record: &KeyRecord, version: &str) -> Result<usize, VaultError> {
    if !valid_version(version) {
        return Err(invalid(
            "a key version is 32 lowercase hex digits, as the vault hands them out",
        ));
    }
    record
        .versions
        .iter()
        .position(|v| v.version == version)
        .ok_or_else(|| VaultError::KeyNotFound {
            name: record.name.clone(),
            version: Some(version.to_owned()),
        })
}

pub(crate) fn check_window(
    not_before: Option<UnixTime>,
    expires: Option<UnixTime>,
) -> Result<(), VaultError> {
    if let (Some(nbf), Some(exp)) = (not_before, expires)
        && nbf >= exp
    {
        return Err(invalid("not-before must be earlier than expires"));
    }
    Ok(())
}

pub(crate) fn normalize_operations(mut operations: Vec<KeyOperation>) -> Vec<KeyOperation> {
    operations.sort_unstable();
    operations.dedup();
    operations
}

fn new_attributes(options: KeyOptions, now: UnixTime) -> Result<KeyAttributes, VaultError> {
    check_window(options.not_before, options.expires)?;
    crate::limits::check_tags(&options.tags)?;
    Ok(KeyAttributes {
        enabled: options.enabled,
        not_before: options.not_before,
        expires: options.expires,
        operations: normalize_operations(options.operations),
        tags: options.tags,
        created: now,
        updated: now,
    })
}

/// What `get` shows of a version: public part and attributes only.
pub(crate) fn info(vault: &str, record: &KeyRecord, version: &VersionRecord) -> KeyVersionInfo {
    KeyVersionInfo {
        vault: vault.to_owned(),
        name: record.name.clone(),
        version: version.version.clone(),
        key_type: record.key_type,
        public: version.material.public.clone(),
        attributes: version.attributes.clone(),
    }
}

pub(crate) fn latest_info(vault: &str, record: &KeyRecord) -> Result<KeyVersionInfo, VaultError> {
    record
        .versions
        .last()
        .map(|v| info(vault, record, v))
        .ok_or_else(|| VaultError::KeyNotFound {
            name: record.name.clone(),
            version: None,
        })
}

fn deleted_info(vault: &str, record: &DeletedRecord) -> Result<DeletedKeyInfo, VaultError> {
    Ok(DeletedKeyInfo {
        name: record.key.name.clone(),
        deleted: record.deleted,
        scheduled_purge: record.scheduled_purge,
        latest: latest_info(vault, &record.key)?,
    })
}

/// Refuses a version that is disabled or does not permit `operation`.
fn check_usable(
    record: &KeyRecord,
    version: &VersionRecord,
    operation: KeyOperation,
) -> Result<(), VaultError> {
    if !version.attributes.enabled {
        return Err(VaultError::KeyDisabled {
            name: record.name.clone(),
            version: version.version.clone(),
        });
    }
    if !version.attributes.operations.contains(&operation) {
        return Err(VaultError::OperationNotPermitted {
            name: record.name.clone(),
            version: version.version.clone(),
            operation,
        });
    }
    Ok(())
}

fn check_algorithm(record: &KeyRecord, algorithm: WrapAlgorithm) -> Result<(), VaultError> {
    if algorithm_fits(record.key_type, algorithm) {
        Ok(())
    } else {
        Err(VaultError::AlgorithmMismatch {
            name: record.name.clone(),
            key_type: record.key_type,
            algorithm,
        })
    }
}

impl Vault {
    /// Closes the live audit log segment and begins the next, whose first
    /// entry records the rotation (by the vault itself).
    pub(crate) fn rotate_audit_log(&self) -> Result<Option<crate::AuditSegment>, VaultError> {
        let now = self.clock.now();
        self.store.rotate_audit(&mut |start, end| AuditRecord {
            time: now,
            principal: SYSTEM.to_owned(),
            operation: format!(
                "rotateAuditLog (entries {} to {} archived)",
                start.seq + 1,
                end.seq
            ),
            key: None,
            version: None,
            outcome: AuditOutcome::Allowed,
        })
    }

    /// Verifies the entries of archived audit log segments, oldest first,
    /// as the entries that come right before the live segment. Returns the
    /// sequence numbers they cover.
    pub(crate) fn verify_archived_entries(
        &self,
        entries: &[AuditEntry],
    ) -> Result<core::ops::RangeInclusive<u64>, VaultError> {
        let live = self.store.audit_log()?;
        if live.start.is_genesis() {
            return Err(invalid(
                "the audit log was never rotated: there is no archived segment to verify",
            ));
        }
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Err(invalid("no archived audit entries were given"));
        };
        // The oldest segments may have been let go: the entries then start
        // where the first one says it follows. Its MAC still proves the
        // vault wrote it; what comes before it is not checked.
        let start = if first.seq <= 1 {
            crate::AuditHead::genesis()
        } else {
            crate::AuditHead {
                seq: first.seq - 1,
                mac: first.prev.clone(),
            }
        };
        verify_chain(entries, &start, &live.start, self.store.audit_key())?;
        if last.seq != live.start.seq {
            // verify_chain allows entries past its head (a crash's leftovers
            // in a live log); an archive ends exactly where the live log
            // begins.
            return Err(VaultError::AuditTampered(crate::AuditError {
                index: (live.start.seq - start.seq) as usize,
                reason: "runs past the start of the live log (was the live segment given?)",
            }));
        }
        Ok(first.seq..=last.seq)
    }
    /// The vault logic over `store`, `crypto` and `clock`, after checking
    /// the stored properties ([`validate_properties`]).
    ///
    /// # Errors
    /// [`VaultError::InvalidArgument`] for bad properties; the store's own.
    pub(crate) fn new(
        store: Box<dyn StateStore>,
        crypto: Box<dyn KeyCrypto>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        store.transact(&mut |state| validate_properties(&state.properties))?;
        Ok(Self {
            store,
            crypto,
            clock,
        })
    }

    /// Reads the state without auditing (properties).
    pub(crate) fn read<R>(&self, mut f: impl FnMut(&State) -> R) -> Result<R, VaultError> {
        let mut out = None;
        self.store.transact(&mut |state| {
            out = Some(f(state));
            Ok(())
        })?;
        out.ok_or_else(|| invalid("the state store did not run the transaction"))
    }

    /// Runs one audited call in a transaction: first purges what is due
    /// (in a transaction of its own, so a failing call cannot undo it), then
    /// checks the key name and the caller's permission, then runs `op`.
    /// Whatever happens, one audit entry records it.
    pub(crate) fn execute<R>(
        &self,
        principal: &str,
        operation: &str,
        permission: Option<Permission>,
        key: Option<&str>,
        mut op: impl FnMut(&mut Tx<'_>) -> Result<R, VaultError>,
    ) -> Result<R, VaultError> {
        loop {
            let mut to_destroy: Vec<Doomed> = Vec::new();
            let mut value: Option<R> = None;
            self.store.transact(&mut |state| {
                to_destroy.clear();
                value = None;
                let now = self.clock.now();
                let due = purge_due(state, now);
                if !due.is_empty() {
                    to_destroy = due;
                    return Ok(());
                }
                if let Err(err) = crate::limits::check_principal(principal) {
                    audit(
                        state,
                        now,
                        &crate::limits::principal_note(principal),
                        operation,
                        None,
                        None,
                        AuditOutcome::Failed(err.to_string()),
                    );
                    return Err(err);
                }
                let audited_key = key.filter(|k| valid_key_name(k));
                if let Some(name) = key
                    && !valid_key_name(name)
                {
                    let noun = if permission.is_some_and(Permission::is_secret) {
                        "secret"
                    } else {
                        "key"
                    };
                    let err = invalid(format!(
                        "a {noun} name is 1 to 127 characters of A-Z, a-z, 0-9 and '-'"
                    ));
                    audit(
                        state,
                        now,
                        principal,
                        operation,
                        None,
                        None,
                        AuditOutcome::Failed(err.to_string()),
                    );
                    return Err(err);
                }
                if let Some(permission) = permission {
                    let granted = state.access.get(principal).copied().unwrap_or_default();
                    if !granted.contains(permission) {
                        audit(
                            state,
                            now,
                            principal,
                            operation,
                            audited_key,
                            None,
                            AuditOutcome::Denied(format!("lacks the {permission} permission")),
                        );
                        return Err(VaultError::AccessDenied {
                            principal: Principal::new(principal),
                            permission,
                            key: audited_key.map(str::to_owned),
                        });
                    }
                }
                let mut tx = Tx {
                    state: &mut *state,
                    now,
                    version: None,
                    subject: None,
                };
                let result = op(&mut tx);
                let version = tx.version.take();
                let subject = tx.subject.take();
                let audited_key = audited_key.or(subject.as_deref());
                match result {
                    Ok(v) => {
                        audit(
                            state,
                            now,
                            principal,
                            operation,
                            audited_key,
                            version,
                            AuditOutcome::Allowed,
                        );
                        value = Some(v);
                        Ok(())
                    }
                    Err(err) => {
                        audit(
                            state,
                            now,
                            principal,
                            operation,
                            audited_key,
                            version,
                            AuditOutcome::Failed(err.to_string()),
                        );
                        Err(err)
                    }
                }
            })?;
            // The purge is committed: the material can go. Best effort: a
            // token that fails to delete its objects leaves unreachable
            // objects, never a usable key (and the next open of a vault
            // kept in a directory destroys them).
            if !to_destroy.is_empty() {
                crash_after_purge_commit();
            }
            for doomed in &to_destroy {
                let _ = match doomed {
                    Doomed::Key(material) => self.crypto.destroy(material),
                    Doomed::Secret(material) => self.crypto.destroy_secret(material),
                };
            }
            if let Some(value) = value {
                return Ok(value);
            }
            if to_destroy.is_empty() {
                return Err(invalid("the state store did not run the transaction"));
            }
        }
    }

    fn generate(&self, key_type: KeyType) -> Result<Material, VaultError> {
        self.crypto.generate(key_type)
    }

    /// Makes the material of a new key version before its transaction,
    /// outside the store's lock (RSA generation takes seconds, and other
    /// callers and processes must not wait for it), when a read of the
    /// state says the call will get that far: a caller without
    /// `permission`, or a name that is taken (create, `key_type` given) or
    /// absent (rotate), makes nothing. The transaction checks again and
    /// makes its own if the state changed meanwhile.
    fn early_material(
        &self,
        principal: &str,
        permission: Permission,
        name: &str,
        key_type: Option<KeyType>,
    ) -> Result<Option<(KeyType, Material)>, VaultError> {
        let wanted = self.read(|state| {
            if crate::limits::check_principal(principal).is_err() || !valid_key_name(name) {
                return None;
            }
            let granted = state.access.get(principal).copied().unwrap_or_default();
            if !granted.contains(permission) {
                return None;
            }
            let stored = stored_name(state, name);
            match key_type {
                Some(t) => (!state.keys.contains_key(&stored)
                    && !state.deleted.contains_key(&stored))
                .then_some(t),
                None => state.keys.get(&stored).map(|r| r.key_type),
            }
        })?;
        match wanted {
            Some(t) => Ok(Some((t, self.generate(t)?))),
            None => Ok(None),
        }
    }

    /// The material a create or rotate commits, inside its transaction:
    /// the early one when it is of `key_type` (the key's type may have
    /// changed since the read), else new material, which is added to
    /// `made`. Either way adopted by the vault before the commit.
    fn material_for(
        &self,
        early: Option<&(KeyType, Material)>,
        key_type: KeyType,
        made: &mut Vec<Material>,
    ) -> Result<Material, VaultError> {
        let material = match early {
            Some((t, m)) if *t == key_type => m.clone(),
            _ => {
                let m = self.generate(key_type)?;
                made.push(m.clone());
                m
            }
        };
        self.crypto.adopt(&material)?;
        Ok(material)
    }

    /// The end of a create or rotate: on success the material is the
    /// state's; refused before committing, every piece made for it is
    /// destroyed; failed while committing (the store's own error), it is
    /// left, since the commit may have happened.
    fn settle<R>(
        &self,
        result: Result<R, VaultError>,
        committing: Option<Vec<u8>>,
        made: Vec<Material>,
    ) -> Result<R, VaultError> {
        match (&result, committing) {
            // Early material the transaction did not use (the key's type
            // changed meanwhile) is nobody's.
            (Ok(_), Some(used)) => self.discard(made.into_iter().filter(|m| m.id != used)),
            (Err(_), None) => self.discard(made),
            // Failed while committing: the commit may have happened.
            (Err(_), Some(_)) | (Ok(_), None) => {}
        }
        result
    }

    /// Destroys material made for a call that was refused (best effort:
    /// it is in no state; a PKCS#11 vault kept in a directory would also
    /// sweep it later).
    fn discard(&self, unused: impl IntoIterator<Item = Material>) {
        for material in unused {
            let _ = self.crypto.destroy(&material);
        }
    }
}

impl<T: AsVault + Send + Sync> KeyVault for T {
    fn properties(&self) -> Result<VaultProperties, VaultError> {
        self.vault().read(|state| state.properties.clone())
    }

    fn enable_purge_protection(&self) -> Result<(), VaultError> {
        self.vault()
            .execute(MANAGEMENT, "enablePurgeProtection", None, None, |tx| {
                tx.state.properties.purge_protection = true;
                Ok(())
            })
    }

    fn set_access_policy(
        &self,
        principal: &Principal,
        permissions: Permissions,
    ) -> Result<(), VaultError> {
        let names: Vec<&str> = permissions.iter().map(Permission::name).collect();
        let checked = crate::limits::check_principal(principal.id());
        let shown = match checked {
            Ok(()) => principal.id().to_owned(),
            Err(_) => crate::limits::principal_note(principal.id()),
        };
        let operation = format!("setAccessPolicy {shown}: [{}]", names.join(","));
        self.vault()
            .execute(MANAGEMENT, &operation, None, None, |tx| {
                crate::limits::check_principal(principal.id())?;
                if permissions == Permissions::NONE {
                    tx.state.access.remove(principal.id());
                } else {
                    tx.state
                        .access
                        .insert(principal.id().to_owned(), permissions);
                }
                crate::limits::check_state(tx.state)
            })
    }

    fn access_policy(&self, principal: &Principal) -> Result<Permissions, VaultError> {
        self.vault().read(|state| {
            state
                .access
                .get(principal.id())
                .copied()
                .unwrap_or_default()
        })
    }

    fn create_key(
        &self,
        caller: &Principal,
        name: &str,
        key_type: KeyType,
        options: KeyOptions,
    ) -> Result<KeyVersionInfo, VaultError> {
        let vault = self.vault();
        let early = vault.early_material(caller.id(), Permission::Create, name, Some(key_type))?;
        // Material made and not (yet) in a committed state; whether the
        // transaction got as far as committing.
        let mut made: Vec<Material> = early.iter().map(|(_, m)| m.clone()).collect();
        let mut committing: Option<Vec<u8>> = None;
        let result = vault.execute(
            caller.id(),
            "create",
            Some(Permission::Create),
            Some(name),
            |tx| {
                let given = name;
                let stored = stored_name(tx.state, name);
                let name = stored.as_str();
                ensure_name_free(tx.state, name)?;
                let attributes = new_attributes(options.clone(), tx.now)?;
                let version = new_version()?;
                let material = vault.material_for(early.as_ref(), key_type, &mut made)?;
                let material_id = material.id.clone();
                tx.version = Some(version.clone());
                // A new key keeps the caller's spelling.
                let record = KeyRecord {
                    name: given.to_owned(),
                    key_type,
                    versions: vec![VersionRecord {
                        version,
                        attributes,
                        material,
                    }],
                };
                let shown = latest_info(&tx.state.properties.name, &record)?;
                tx.state.purged.remove(name);
                tx.state.keys.insert(given.to_owned(), record);
                crate::limits::check_state(tx.state)?;
                committing = Some(material_id);
                Ok(shown)
            },
        );
        vault.settle(result, committing, made)
    }

    fn import_key(
        &self,
        caller: &Principal,
        name: &str,
        key: KeyImport<'_>,
        options: KeyOptions,
    ) -> Result<KeyVersionInfo, VaultError> {
        let vault = self.vault();
        vault.execute(
            caller.id(),
            "import",
            Some(Permission::Import),
            Some(name),
            |tx| {
                let given = name;
                let stored = stored_name(tx.state, name);
                let name = stored.as_str();
                if tx.state.deleted.contains_key(name) {
                    return Err(VaultError::KeyExists {
                        name: name.to_owned(),
                        deleted: true,
                    });
                }
                crate::limits::check("bytes of imported key", key.len(), crate::limits::MAX_IMPORT_BYTES)?;
                let imported = crate::import::parse(key)?;
                let key_type = imported.key_type();
                if let Some(existing) = tx.state.keys.get(name)
                    && existing.key_type != key_type
                {
                    return Err(VaultError::InvalidKeyMaterial {
                        reason: format!(
                            "key {name} is {}, the imported key is {key_type}; import it under another name",
                            existing.key_type
                        ),
                    });
                }
                if let Some(existing) = tx.state.keys.get(name) {
                    crate::limits::check(
                        "versions of a key",
                        existing.versions.len() + 1,
                        crate::limits::MAX_VERSIONS_PER_KEY,
                    )?;
                }
                let attributes = new_attributes(options.clone(), tx.now)?;
                let version = new_version()?;
                let material = vault.crypto.import(imported)?;
                if let Err(err) = vault.crypto.adopt(&material) {
                    vault.discard([material]);
                    return Err(err);
                }
                tx.version = Some(version.clone());
                let vault_name = tx.state.properties.name.clone();
                tx.state.purged.remove(name);
                let name = if tx.state.keys.contains_key(name) {
                    name
                } else {
                    given
                };
                if !tx.state.keys.contains_key(name) {
                    tx.state.keys.insert(
                        name.to_owned(),
                        KeyRecord {
                            name: name.to_owned(),
                            key_type,
                            versions: Vec::new(),
                        },
                    );
                }
                let record = tx
                    .state
                    .keys
                    .get_mut(name)
                    .ok_or_else(|| invalid("the key was just inserted"))?;
                record.versions.push(VersionRecord {
                    version,
                    attributes,
                    material,
                });
                let shown = latest_info(&vault_name, record)?;
                crate::limits::check_state(tx.state)?;
                Ok(shown)
            },
        )
    }

    fn get_key(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
    ) -> Result<KeyVersionInfo, VaultError> {
        self.vault().execute(
            caller.id(),
            "get",
            Some(Permission::Get),
            Some(name),
            |tx| {
                let stored = stored_name(tx.state, name);
                let name = stored.as_str();
                let record = active(tx.state, name)?;
                let index = match version {
                    Some(v) => find_version(record, v)?,
                    None => record.versions.len().saturating_sub(1),
                };
                let v = record
                    .versions
                    .get(index)
                    .ok_or_else(|| VaultError::KeyNotFound {
                        name: name.to_owned(),
                        version: None,
                    })?;
                tx.version = Some(v.version.clone());
                Ok(info(&tx.state.properties.name, record, v))
            },
        )
    }

    fn list_keys(&self, caller: &Principal) -> Result<Vec<KeyVersionInfo>, VaultError> {
        self.vault()
            .execute(caller.id(), "list", Some(Permission::List), None, |tx| {
                tx.state
                    .keys
                    .values()
                    .map(|record| latest_info(&tx.state.properties.name, record))
                    .collect()
            })
    }

    fn list_versions(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Vec<KeyVersionInfo>, VaultError> {
        self.vault().execute(
            caller.id(),
            "listVersions",
            Some(Permission::List),
            Some(name),
            |tx| {
                let stored = stored_name(tx.state, name);
                let name = stored.as_str();
                let record = active(tx.state, name)?;
                Ok(record
                    .versions
                    .iter()
                    .map(|v| info(&tx.state.properties.name, record, v))
                    .collect())
            },
        )
    }

    fn update_key(
        &self,
        caller: &Principal,
        name: &str,
        version: &str,
        update: AttributeUpdate,
    ) -> Result<KeyVersionInfo, VaultError> {
        self.vault().execute(
            caller.id(),
            "update",
            Some(Permission::Update),
            Some(name),
            |tx| {
                let stored = stored_name(tx.state, name);
                let name = stored.as_str();
                let now = tx.now;
                let vault_name = tx.state.properties.name.clone();
                let record = active_mut(tx.state, name)?;
                let index = find_version(record, version)?;
                tx.version = Some(version.to_owned());
                let mut attributes = record.versions[index].attributes.clone();
                if let Some(enabled) = update.enabled {
                    attributes.enabled = enabled;
                }
                if let Some(not_before) = update.not_before {
                    attributes.not_before = not_before;
                }
                if let Some(expires) = update.expires {
                    attributes.expires = expires;
                }
                if let Some(operations) = &update.operations {
                    attributes.operations = normalize_operations(operations.clone());
                }
                if let Some(tags) = &update.tags {
                    crate::limits::check_tags(tags)?;
                    attributes.tags = tags.clone();
                }
                check_window(attributes.not_before, attributes.expires)?;
                attributes.updated = now;
                record.versions[index].attributes = attributes;
                let shown = info(&vault_name, record, &record.versions[index]);
                crate::limits::check_state(tx.state)?;
                Ok(shown)
            },
        )
    }

    fn rotate_key(
        &self,
        caller: &Principal,
        name: &str,
        options: KeyOptions,
    ) -> Result<KeyVersionInfo, VaultError> {
        let vault = self.vault();
        let early = vault.early_material(caller.id(), Permission::Rotate, name, None)?;
        let mut made: Vec<Material> = early.iter().map(|(_, m)| m.clone()).collect();
        let mut committing: Option<Vec<u8>> = None;
        let result = vault.execute(
            caller.id(),
            "rotate",
            Some(Permission::Rotate),
            Some(name),
            |tx| {
                let stored = stored_name(tx.state, name);
                let name = stored.as_str();
                let record = active(tx.state, name)?;
                crate::limits::check(
                    "versions of a key",
                    record.versions.len() + 1,
                    crate::limits::MAX_VERSIONS_PER_KEY,
                )?;
                let key_type = record.key_type;
                let attributes = new_attributes(options.clone(), tx.now)?;
                let version = new_version()?;
                let material = vault.material_for(early.as_ref(), key_type, &mut made)?;
                let material_id = material.id.clone();
                tx.version = Some(version.clone());
                let vault_name = tx.state.properties.name.clone();
                let record = active_mut(tx.state, name)?;
                record.versions.push(VersionRecord {
                    version,
                    attributes,
                    material,
                });
                let shown = latest_info(&vault_name, record)?;
                crate::limits::check_state(tx.state)?;
                committing = Some(material_id);
                Ok(shown)
            },
        );
        vault.settle(result, committing, made)
    }

    fn delete_key(&self, caller: &Principal, name: &str) -> Result<DeletedKeyInfo, VaultError> {
        self.vault().execute(
            caller.id(),
            "delete",
            Some(Permission::Delete),
            Some(name),
            |tx| {
                let stored = stored_name(tx.state, name);
                let name = stored.as_str();
                active(tx.state, name)?;
                let key = tx
                    .state
                    .keys
                    .remove(name)
                    .ok_or_else(|| missing(tx.state, name))?;
                let days = u64::from(tx.state.properties.soft_delete_retention_days);
                let record = DeletedRecord {
                    key,
                    deleted: tx.now,
                    scheduled_purge: tx.now.saturating_add(days * DAY),
                };
                let shown = deleted_info(&tx.state.properties.name, &record)?;
                tx.state.deleted.insert(name.to_owned(), record);
                Ok(shown)
            },
        )
    }

    fn list_deleted_keys(&self, caller: &Principal) -> Result<Vec<DeletedKeyInfo>, VaultError> {
        self.vault().execute(
            caller.id(),
            "listDeleted",
            Some(Permission::List),
            None,
            |tx| {
                tx.state
                    .deleted
                    .values()
                    .map(|record| deleted_info(&tx.state.properties.name, record))
                    .collect()
            },
        )
    }

    fn recover_key(&self, caller: &Principal, name: &str) -> Result<KeyVersionInfo, VaultError> {
        self.vault().execute(
            caller.id(),
            "recover",
            Some(Permission::Recover),
            Some(name),
            |tx| {
                let stored = stored_name(tx.state, name);
                let name = stored.as_str();
                if tx.state.keys.contains_key(name) {
                    return Err(invalid(format!(
                        "key {name} is not deleted; there is nothing to recover"
                    )));
                }
                let record = tx
                    .state
                    .deleted
                    .remove(name)
                    .ok_or_else(|| missing(tx.state, name))?;
                let shown = latest_info(&tx.state.properties.name, &record.key)?;
                tx.state.keys.insert(name.to_owned(), record.key);
                Ok(shown)
            },
        )
    }

    fn purge_key(&self, caller: &Principal, name: &str) -> Result<(), VaultError> {
        let vault = self.vault();
        let materials = vault.execute(
            caller.id(),
            "purge",
            Some(Permission::Purge),
            Some(name),
            |tx| {
                let stored = stored_name(tx.state, name);
                let name = stored.as_str();
                if tx.state.keys.contains_key(name) {
                    return Err(invalid(format!(
                        "key {name} is not deleted; delete it before purging it"
                    )));
                }
                let record = tx
                    .state
                    .deleted
                    .get(name)
                    .ok_or_else(|| missing(tx.state, name))?;
                if tx.state.properties.purge_protection && tx.now < record.scheduled_purge {
                    return Err(VaultError::PurgeProtected {
                        name: name.to_owned(),
                        until: record.scheduled_purge,
                    });
                }
                let record = tx
                    .state
                    .deleted
                    .remove(name)
                    .ok_or_else(|| missing(tx.state, name))?;
                tx.state.purged.insert(name.to_owned(), tx.now);
                Ok(record
                    .key
                    .versions
                    .into_iter()
                    .map(|v| v.material)
                    .collect::<Vec<_>>())
            },
        )?;
        // Destroyed only once the purge is committed: a crash before this
        // point leaves the key deleted-but-present, never half-purged; a
        // crash after it leaves objects the next open destroys (PKCS#11).
        crash_after_purge_commit();
        for material in &materials {
            vault.crypto.destroy(material)?;
        }
        Ok(())
    }

    fn wrap_key(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
        algorithm: WrapAlgorithm,
        dek: &[u8],
    ) -> Result<Wrapped, VaultError> {
        let vault = self.vault();
        vault.execute(
            caller.id(),
            "wrapKey",
            Some(Permission::WrapKey),
            Some(name),
            |tx| {
                let stored = stored_name(tx.state, name);
                let name = stored.as_str();
                let record = active(tx.state, name)?;
                let index = match version {
                    Some(v) => find_version(record, v)?,
                    // Versionless: the latest enabled version (R14).
                    None => record
                        .versions
                        .iter()
                        .rposition(|v| v.attributes.enabled)
                        .ok_or_else(|| VaultError::KeyDisabled {
                            name: name.to_owned(),
                            version: record
                                .versions
                                .last()
                                .map(|v| v.version.clone())
                                .unwrap_or_default(),
                        })?,
                };
                let v = &record.versions[index];
                tx.version = Some(v.version.clone());
                check_usable(record, v, KeyOperation::WrapKey)?;
                check_algorithm(record, algorithm)?;
                if let Some(not_before) = v.attributes.not_before
                    && tx.now < not_before
                {
                    return Err(VaultError::KeyNotYetValid {
                        name: name.to_owned(),
                        version: v.version.clone(),
                        not_before,
                    });
                }
                if let Some(expires) = v.attributes.expires
                    && tx.now >= expires
                {
                    return Err(VaultError::KeyExpired {
                        name: name.to_owned(),
                        version: v.version.clone(),
                        expires,
                    });
                }
                if dek.len() != 32 {
                    return Err(invalid(format!(
                        "a DEK is 32 bytes (AES-256), not {}",
                        dek.len()
                    )));
                }
                let wrapped = vault
                    .crypto
                    .wrap(&v.material, record.key_type, algorithm, dek)
                    .map_err(|e| e.for_version(name, &v.version))?;
                Ok(Wrapped {
                    version: v.version.clone(),
                    wrapped,
                })
            },
        )
    }

    fn unwrap_key(
        &self,
        caller: &Principal,
        name: &str,
        version: &str,
        algorithm: WrapAlgorithm,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let vault = self.vault();
        vault.execute(
            caller.id(),
            "unwrapKey",
            Some(Permission::UnwrapKey),
            Some(name),
            |tx| {
                let stored = stored_name(tx.state, name);
                let name = stored.as_str();
                let record = active(tx.state, name)?;
                let index = find_version(record, version)?;
                let v = &record.versions[index];
                tx.version = Some(v.version.clone());
                // No validity window here: outside not-before / expires,
                // unwrap still works (as in Azure Key Vault), so data
                // wrapped earlier stays readable.
                check_usable(record, v, KeyOperation::UnwrapKey)?;
                check_algorithm(record, algorithm)?;
                let dek = vault
                    .crypto
                    .unwrap(&v.material, record.key_type, algorithm, wrapped)
                    .map_err(|e| e.for_version(name, &v.version))?;
                if dek.len() != 32 {
                    return Err(VaultError::DecryptionFailed);
                }
                Ok(dek)
            },
        )
    }

    fn set_secret(
        &self,
        caller: &Principal,
        name: &str,
        value: &[u8],
        options: SecretOptions,
    ) -> Result<SecretVersionInfo, VaultError> {
        self.vault().set_secret(caller, name, value, options)
    }

    fn get_secret(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
    ) -> Result<Secret, VaultError> {
        self.vault().get_secret(caller, name, version)
    }

    fn list_secrets(&self, caller: &Principal) -> Result<Vec<SecretVersionInfo>, VaultError> {
        self.vault().list_secrets(caller)
    }

    fn list_secret_versions(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Vec<SecretVersionInfo>, VaultError> {
        self.vault().list_secret_versions(caller, name)
    }

    fn update_secret(
        &self,
        caller: &Principal,
        name: &str,
        version: &str,
        update: SecretUpdate,
    ) -> Result<SecretVersionInfo, VaultError> {
        self.vault().update_secret(caller, name, version, update)
    }

    fn delete_secret(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<DeletedSecretInfo, VaultError> {
        self.vault().delete_secret(caller, name)
    }

    fn list_deleted_secrets(
        &self,
        caller: &Principal,
    ) -> Result<Vec<DeletedSecretInfo>, VaultError> {
        self.vault().list_deleted_secrets(caller)
    }

    fn recover_secret(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<SecretVersionInfo, VaultError> {
        self.vault().recover_secret(caller, name)
    }

    fn purge_secret(&self, caller: &Principal, name: &str) -> Result<(), VaultError> {
        self.vault().purge_secret(caller, name)
    }

    fn backup_key(&self, caller: &Principal, name: &str) -> Result<Vec<u8>, VaultError> {
        self.vault().backup_key(caller, name)
    }

    fn restore_key(&self, caller: &Principal, backup: &[u8]) -> Result<KeyVersionInfo, VaultError> {
        self.vault().restore_key(caller, backup)
    }

    fn backup_secret(&self, caller: &Principal, name: &str) -> Result<Vec<u8>, VaultError> {
        self.vault().backup_secret(caller, name)
    }

    fn restore_secret(
        &self,
        caller: &Principal,
        backup: &[u8],
    ) -> Result<SecretVersionInfo, VaultError> {
        self.vault().restore_secret(caller, backup)
    }

    fn set_owner_key(&self, owner: &crate::OwnerKey) -> Result<(), VaultError> {
        self.vault().set_owner_key(owner)
    }

    fn owner_id(&self) -> Result<Option<String>, VaultError> {
        self.vault().owner_id()
    }

    fn audit_log(&self) -> Result<Vec<AuditEntry>, VaultError> {
        Ok(self.vault().store.audit_log()?.entries)
    }

    fn verify_audit_log(&self) -> Result<(), VaultError> {
        let store = &self.vault().store;
        let log = store.audit_log()?;
        verify_chain(&log.entries, &log.start, &log.head, store.audit_key())
    }

    fn verify_audit_entries(&self, entries: &[AuditEntry]) -> Result<(), VaultError> {
        let store = &self.vault().store;
        let log = store.audit_log()?;
        verify_chain(entries, &log.start, &log.head, store.audit_key())
    }

    fn export_audit_log(&self) -> Result<String, VaultError> {
        let store = &self.vault().store;
        let log = store.audit_log()?;
        verify_chain(&log.entries, &log.start, &log.head, store.audit_key())?;
        let mut out = String::new();
        for entry in &log.entries {
            // safe: an entry is strings and numbers, which always serialize.
            out.push_str(&serde_json::to_string(entry).expect("an audit entry serializes"));
            out.push('\n');
        }
        Ok(out)
    }
}

impl core::fmt::Debug for Vault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Vault")
            .field("backend", &self.crypto.backend_name())
            .finish_non_exhaustive()
    }
}
