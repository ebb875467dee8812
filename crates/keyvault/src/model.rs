//! The key vault's public nouns: principals, permissions, key types,
//! attributes and the vault's own properties.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Who makes a call: a user, a service, or a backup vault's managed
/// identity. Access policies and the audit log name principals.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Principal(String);

impl Principal {
    /// A principal with this identifier (e.g. `"backup-vault-7/system"`).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One data-plane permission of an access policy: the key permissions and
/// the secret permissions of Azure Key Vault (the secret ones end in
/// `Secret(s)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Permission {
    /// Read a key's public part and attributes.
    Get,
    /// List keys, versions and deleted keys.
    List,
    /// Create a key.
    Create,
    /// Import a key (bring your own key).
    Import,
    /// Update a key version's attributes.
    Update,
    /// Soft-delete a key.
    Delete,
    /// Recover a soft-deleted key.
    Recover,
    /// Purge a soft-deleted key for good.
    Purge,
    /// Rotate a key (make a new version).
    Rotate,
    /// Back a key up.
    Backup,
    /// Restore a key from a backup.
    Restore,
    /// Wrap a key (a DEK) under a vault key.
    WrapKey,
    /// Unwrap a key (a DEK) under a vault key.
    UnwrapKey,
    /// Read a secret's value and attributes.
    GetSecret,
    /// List secrets, their versions and the deleted secrets (never values).
    ListSecrets,
    /// Set a secret (make a new version) or update a version's attributes
    /// (Azure Key Vault's `set` covers both).
    SetSecret,
    /// Soft-delete a secret.
    DeleteSecret,
    /// Recover a soft-deleted secret.
    RecoverSecret,
    /// Purge a soft-deleted secret for good.
    PurgeSecret,
    /// Back a secret up.
    BackupSecret,
    /// Restore a secret from a backup.
    RestoreSecret,
}

impl Permission {
    /// Every permission, in a fixed order.
    pub const ALL: [Self; 21] = [
        Self::Get,
        Self::List,
        Self::Create,
        Self::Import,
        Self::Update,
        Self::Delete,
        Self::Recover,
        Self::Purge,
        Self::Rotate,
        Self::Backup,
        Self::Restore,
        Self::WrapKey,
        Self::UnwrapKey,
        Self::GetSecret,
        Self::ListSecrets,
        Self::SetSecret,
        Self::DeleteSecret,
        Self::RecoverSecret,
        Self::PurgeSecret,
        Self::BackupSecret,
        Self::RestoreSecret,
    ];

    /// The Azure Key Vault name (`get`, `wrapKey`, ...).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Create => "create",
            Self::Import => "import",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Recover => "recover",
            Self::Purge => "purge",
            Self::Rotate => "rotate",
            Self::Backup => "backup",
            Self::Restore => "restore",
            Self::WrapKey => "wrapKey",
            Self::UnwrapKey => "unwrapKey",
            Self::GetSecret => "getSecret",
            Self::ListSecrets => "listSecrets",
            Self::SetSecret => "setSecret",
            Self::DeleteSecret => "deleteSecret",
            Self::RecoverSecret => "recoverSecret",
            Self::PurgeSecret => "purgeSecret",
            Self::BackupSecret => "backupSecret",
            Self::RestoreSecret => "restoreSecret",
        }
    }

    /// Whether this is a secret permission (rather than a key one).
    #[must_use]
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            Self::GetSecret
                | Self::ListSecrets
                | Self::SetSecret
                | Self::DeleteSecret
                | Self::RecoverSecret
                | Self::PurgeSecret
                | Self::BackupSecret
                | Self::RestoreSecret
        )
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of permissions: one principal's access policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Permissions(u32);

impl Permissions {
    /// No permission at all.
    pub const NONE: Self = Self(0);

    /// Every permission.
    #[must_use]
    pub fn all() -> Self {
        Self::from_iter(Permission::ALL)
    }

    /// What a backup vault's identity needs on its customer-managed key
    /// (DESIGN.md R13): get, wrapKey and unwrapKey.
    #[must_use]
    pub fn key_user() -> Self {
        Self::from_iter([Permission::Get, Permission::WrapKey, Permission::UnwrapKey])
    }

    /// What a backup vault's identity needs on the key vault that holds an
    /// in-guest-encrypted machine's disk encryption secret (BEK) and its
    /// key-encryption key (DESIGN.md R17, as Azure Backup documents it):
    /// get, list and backup on keys and on secrets.
    #[must_use]
    pub fn disk_encryption_backup() -> Self {
        Self::from_iter([
            Permission::Get,
            Permission::List,
            Permission::Backup,
            Permission::GetSecret,
            Permission::ListSecrets,
            Permission::BackupSecret,
        ])
    }

    /// Whether `permission` is in the set.
    #[must_use]
    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// The set with `permission` added.
    #[must_use]
    pub fn with(self, permission: Permission) -> Self {
        Self(self.0 | permission.bit())
    }

    /// The set with `permission` removed.
    #[must_use]
    pub fn without(self, permission: Permission) -> Self {
        Self(self.0 & !permission.bit())
    }

    /// The permissions in the set, in [`Permission::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, p| bits | p.bit()))
    }
}

/// The kind and size of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// An AES-256 key (a platform-managed style key; wraps with A256KW).
    Aes256,
}

impl KeyType {
    /// The RSA modulus size in bits, or `None` for AES.
    #[must_use]
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            Self::Aes256 => None,
        }
    }

    /// The RSA key type of this modulus size, if it is one we accept.
    #[must_use]
    pub fn rsa_from_bits(bits: usize) -> Option<Self> {
        match bits {
            2048 => Some(Self::Rsa2048),
            3072 => Some(Self::Rsa3072),
            4096 => Some(Self::Rsa4096),
            _ => None,
        }
    }

    /// Whether this is an RSA key.
    #[must_use]
    pub fn is_rsa(self) -> bool {
        self.rsa_bits().is_some()
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rsa2048 => "RSA-2048",
            Self::Rsa3072 => "RSA-3072",
            Self::Rsa4096 => "RSA-4096",
            Self::Aes256 => "AES-256",
        })
    }
}

/// An operation a key version may be used for (its `key_ops`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum KeyOperation {
    /// Wrap a key under this key.
    WrapKey,
    /// Unwrap a key under this key.
    UnwrapKey,
}

impl KeyOperation {
    /// The JOSE / Azure name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::WrapKey => "wrapKey",
            Self::UnwrapKey => "unwrapKey",
        }
    }
}

impl fmt::Display for KeyOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Seconds since the Unix epoch (UTC). Every time in the vault is one.
pub type UnixTime = u64;

/// The attributes of one key version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttributes {
    /// A disabled version does nothing at all.
    pub enabled: bool,
    /// Before this time only unwrap works.
    pub not_before: Option<UnixTime>,
    /// From this time on only unwrap works.
    pub expires: Option<UnixTime>,
    /// What the version may be used for.
    pub operations: Vec<KeyOperation>,
    /// Free-form tags.
    pub tags: BTreeMap<String, String>,
    /// When the version was made.
    pub created: UnixTime,
    /// When its attributes last changed.
    pub updated: UnixTime,
}

/// What a caller sets when creating, importing or rotating a key; the rest
/// of [`KeyAttributes`] is filled in by the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOptions {
    /// Whether the new version starts enabled (default: yes).
    pub enabled: bool,
    /// Not valid before this time (default: none).
    pub not_before: Option<UnixTime>,
    /// Expiry (default: none).
    pub expires: Option<UnixTime>,
    /// Permitted operations (default: wrapKey and unwrapKey).
    pub operations: Vec<KeyOperation>,
    /// Tags (default: none).
    pub tags: BTreeMap<String, String>,
}

impl Default for KeyOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            not_before: None,
            expires: None,
            operations: vec![KeyOperation::WrapKey, KeyOperation::UnwrapKey],
            tags: BTreeMap::new(),
        }
    }
}

/// A change to a key version's attributes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeUpdate {
    /// Enable or disable the version.
    pub enabled: Option<bool>,
    /// Set (`Some(Some(t))`) or clear (`Some(None)`) not-before.
    pub not_before: Option<Option<UnixTime>>,
    /// Set or clear the expiry.
    pub expires: Option<Option<UnixTime>>,
    /// Replace the permitted operations.
    pub operations: Option<Vec<KeyOperation>>,
    /// Replace the tags.
    pub tags: Option<BTreeMap<String, String>>,
}

/// The properties of a key vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultProperties {
    /// The vault's name, recorded in every key reference it hands out.
    pub name: String,
    /// How long a deleted key can be recovered: 7 to 90 days.
    pub soft_delete_retention_days: u16,
    /// Once on, a deleted key cannot be purged before its retention ends,
    /// and this can never be turned off again.
    pub purge_protection: bool,
}

impl VaultProperties {
    /// The fewest and most retention days a vault accepts.
    pub const RETENTION_DAYS: core::ops::RangeInclusive<u16> = 7..=90;

    /// A vault named `name` with 90 days of soft-delete retention and purge
    /// protection off.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            soft_delete_retention_days: 90,
            purge_protection: false,
        }
    }
}

/// What [`get`](crate::KeyVault::get_key) returns: a key version's public
/// part and attributes. Never any private or secret key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersionInfo {
    /// The vault's name.
    pub vault: String,
    /// The key's name.
    pub name: String,
    /// The version.
    pub version: String,
    /// The key type.
    pub key_type: KeyType,
    /// For RSA keys, the public key (modulus and exponent, big-endian).
    pub public: Option<RsaPublicParts>,
    /// The version's attributes.
    pub attributes: KeyAttributes,
}

/// An RSA public key as big-endian modulus and exponent (JWK `n`, `e`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsaPublicParts {
    /// The modulus, big-endian, no leading zeros.
    #[serde(with = "crate::state::hex_bytes")]
    pub n: Vec<u8>,
    /// The public exponent, big-endian, no leading zeros.
    #[serde(with = "crate::state::hex_bytes")]
    pub e: Vec<u8>,
}

impl RsaPublicParts {
    /// The public key as an `rsa` crate key, e.g. for a local wrap-only
    /// [`RsaOaepWrapper`](strongroom_envelope::RsaOaepWrapper).
    ///
    /// # Errors
    /// When the numbers do not form a valid RSA public key.
    pub fn to_rsa(&self) -> Result<rsa::PublicKey, rsa::Error> {
        rsa::PublicKey::new(
            rsa::BoxedUint::from_be_slice_vartime(&self.n),
            rsa::BoxedUint::from_be_slice_vartime(&self.e),
        )
    }
}

/// A soft-deleted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedKeyInfo {
    /// The key's name.
    pub name: String,
    /// When it was deleted.
    pub deleted: UnixTime,
    /// When the vault purges it by itself (deleted + retention).
    pub scheduled_purge: UnixTime,
    /// Its newest version at deletion.
    pub latest: KeyVersionInfo,
}

/// The attributes of one secret version. As in Azure Key Vault, `enabled`
/// is enforced (a disabled version's value cannot be read) while
/// `not_before` and `expires` are recorded for the secret's users to
/// honour ([`SecretAttributes::is_valid_at`]): a value backed up years ago
/// must still be readable to restore what it protects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretAttributes {
    /// A disabled version's value cannot be read.
    pub enabled: bool,
    /// Not to be used before this time.
    pub not_before: Option<UnixTime>,
    /// Not to be used from this time on.
    pub expires: Option<UnixTime>,
    /// What the value is (e.g. `"BEK"`, `"application/octet-stream"`).
    pub content_type: Option<String>,
    /// Free-form tags.
    pub tags: BTreeMap<String, String>,
    /// When the version was made.
    pub created: UnixTime,
    /// When its attributes last changed.
    pub updated: UnixTime,
}

impl SecretAttributes {
    /// Whether the version is enabled and `now` lies inside its
    /// not-before / expires window.
    #[must_use]
    pub fn is_valid_at(&self, now: UnixTime) -> bool {
        self.enabled
            && self.not_before.is_none_or(|nbf| now >= nbf)
            && self.expires.is_none_or(|exp| now < exp)
    }
}

/// What a caller sets when setting a secret (making a new version); the
/// rest of [`SecretAttributes`] is filled in by the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretOptions {
    /// Whether the new version starts enabled (default: yes).
    pub enabled: bool,
    /// Not valid before this time (default: none).
    pub not_before: Option<UnixTime>,
    /// Expiry (default: none).
    pub expires: Option<UnixTime>,
    /// Content type (default: none).
    pub content_type: Option<String>,
    /// Tags (default: none).
    pub tags: BTreeMap<String, String>,
}

impl Default for SecretOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            not_before: None,
            expires: None,
            content_type: None,
            tags: BTreeMap::new(),
        }
    }
}

/// A change to a secret version's attributes; `None` leaves a field as it
/// is. The value of a version never changes: set a new version instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretUpdate {
    /// Enable or disable the version.
    pub enabled: Option<bool>,
    /// Set (`Some(Some(t))`) or clear (`Some(None)`) not-before.
    pub not_before: Option<Option<UnixTime>>,
    /// Set or clear the expiry.
    pub expires: Option<Option<UnixTime>>,
    /// Set or clear the content type.
    pub content_type: Option<Option<String>>,
    /// Replace the tags.
    pub tags: Option<BTreeMap<String, String>>,
}

/// A secret version's name and attributes: what listing shows. Never its
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersionInfo {
    /// The vault's name.
    pub vault: String,
    /// The secret's name.
    pub name: String,
    /// The version.
    pub version: String,
    /// The version's attributes.
    pub attributes: SecretAttributes,
}

/// A secret's value. Zeroized on drop; neither `Clone` nor a `Debug` that
/// shows the bytes.
pub struct SecretValue(zeroize::Zeroizing<Vec<u8>>);

impl SecretValue {
    pub(crate) fn new(bytes: zeroize::Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    /// The value's bytes.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// The value's length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue({} bytes)", self.0.len())
    }
}

/// What [`get_secret`](crate::KeyVault::get_secret) returns: a version's
/// value with its name and attributes.
#[derive(Debug)]
pub struct Secret {
    /// Which version, and its attributes.
    pub info: SecretVersionInfo,
    /// Its value.
    pub value: SecretValue,
}

/// A soft-deleted secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedSecretInfo {
    /// The secret's name.
    pub name: String,
    /// When it was deleted.
    pub deleted: UnixTime,
    /// When the vault purges it by itself (deleted + retention).
    pub scheduled_purge: UnixTime,
    /// Its newest version at deletion.
    pub latest: SecretVersionInfo,
}
