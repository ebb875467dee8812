//! The `KeyVault` trait and the one implementation of its rules, shared by
//! every backend.

use std::sync::Arc;

use strongroom_envelope::WrapAlgorithm;
use zeroize::Zeroizing;

use crate::audit::{AuditEntry, AuditError};
use crate::clock::Clock;
use crate::state::{KeyCrypto, StateStore};
use crate::{
    AttributeUpdate, DeletedKeyInfo, KeyOptions, KeyType, KeyVersionInfo, Permissions, Principal,
    VaultError, VaultProperties,
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

    /// Every audit entry, oldest first.
    ///
    /// # Errors
    /// Storage failures.
    fn audit_log(&self) -> Result<Vec<AuditEntry>, VaultError>;

    /// Verifies the audit log's hash chain against the head the vault
    /// recorded.
    ///
    /// # Errors
    /// Storage failures (outer), or the first tampered entry (inner).
    fn verify_audit_log(&self) -> Result<Result<(), AuditError>, VaultError>;
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
