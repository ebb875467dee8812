//! The key vault's one error type.

use std::fmt;
use std::path::PathBuf;

use strongroom_envelope::WrapAlgorithm;

use crate::{AuditError, KeyOperation, KeyType, Permission, Principal, UnixTime};

/// Why a key vault call failed. Refusals name the principal, permission,
/// key and version involved (they are public facts); a wrapped key that does
/// not unwrap is one detail-free [`DecryptionFailed`](Self::DecryptionFailed).
#[derive(Debug)]
#[non_exhaustive]
pub enum VaultError {
    /// The principal's access policy lacks the permission.
    AccessDenied {
        /// Who called.
        principal: Principal,
        /// The permission the call needs.
        permission: Permission,
        /// The key or secret concerned, if the call is about one (a
        /// secret permission's refusal names a secret).
        key: Option<String>,
    },
    /// No secret (or no such version) of this name exists.
    SecretNotFound {
        /// The secret's name.
        name: String,
        /// The version asked for, if any.
        version: Option<String>,
    },
    /// The secret is soft-deleted: recover it to use it again.
    SecretDeleted {
        /// The secret's name.
        name: String,
        /// When the vault will purge it.
        scheduled_purge: UnixTime,
    },
    /// The secret was purged: it is gone for good (a backup of it may
    /// still be restored).
    SecretPurged {
        /// The secret's name.
        name: String,
        /// When it was purged.
        purged: UnixTime,
    },
    /// The secret version is disabled: its value cannot be read until it
    /// is enabled again.
    SecretDisabled {
        /// The secret's name.
        name: String,
        /// The version.
        version: String,
    },
    /// A secret (active or soft-deleted) of this name already exists.
    SecretExists {
        /// The secret's name.
        name: String,
        /// Whether the existing secret is soft-deleted (recover or purge
        /// it first).
        deleted: bool,
    },
    /// Purge protection keeps the deleted secret until its retention ends.
    SecretPurgeProtected {
        /// The secret's name.
        name: String,
        /// When it may be purged.
        until: UnixTime,
    },
    /// The stored value of one secret version cannot be read: it does not
    /// open under the vault's root key (the state was damaged), or the
    /// token no longer holds its data object.
    SecretCorrupt {
        /// The secret's name.
        name: String,
        /// The version.
        version: String,
        /// What is wrong (never any of the value).
        reason: String,
    },
    /// A key or secret backup cannot be restored: it is not a backup,
    /// was cut short or altered, or is of the other kind (a key backup
    /// given to `restore_secret`).
    BackupInvalid {
        /// What is wrong.
        reason: String,
    },
    /// A backup belongs to another owner's vaults: it restores only into
    /// a vault of the owner whose vault made it (see
    /// [`OwnerKey`](crate::OwnerKey)).
    BackupOwnerMismatch {
        /// The owner id the backup was made under.
        backup_owner: String,
        /// This vault's owner id.
        vault_owner: String,
    },
    /// The key's material cannot leave its token (a non-extractable
    /// PKCS#11 object), so the vault cannot back it up.
    NotExportable {
        /// The key's name.
        name: String,
        /// The token (as [`AlgorithmUnsupported`](Self::AlgorithmUnsupported)
        /// names it).
        backend: &'static str,
    },
    /// No key (or no such version) of this name exists.
    KeyNotFound {
        /// The key's name.
        name: String,
        /// The version asked for, if any.
        version: Option<String>,
    },
    /// The key is soft-deleted: recover it to use it again.
    KeyDeleted {
        /// The key's name.
        name: String,
        /// When the vault will purge it.
        scheduled_purge: UnixTime,
    },
    /// The key was purged: it is gone for good, and whatever was wrapped
    /// only under it can no longer be decrypted.
    KeyPurged {
        /// The key's name.
        name: String,
        /// When it was purged.
        purged: UnixTime,
    },
    /// The key version is disabled: it can do nothing until re-enabled.
    KeyDisabled {
        /// The key's name.
        name: String,
        /// The version.
        version: String,
    },
    /// The key version is not valid yet (only unwrap works before
    /// not-before).
    KeyNotYetValid {
        /// The key's name.
        name: String,
        /// The version.
        version: String,
        /// When it becomes valid.
        not_before: UnixTime,
    },
    /// The key version has expired (only unwrap still works).
    KeyExpired {
        /// The key's name.
        name: String,
        /// The version.
        version: String,
        /// When it expired.
        expires: UnixTime,
    },
    /// The version's permitted operations do not include this one.
    OperationNotPermitted {
        /// The key's name.
        name: String,
        /// The version.
        version: String,
        /// The refused operation.
        operation: KeyOperation,
    },
    /// The algorithm does not fit the key type (e.g. A256KW on an RSA key).
    AlgorithmMismatch {
        /// The key's name.
        name: String,
        /// The key's type.
        key_type: KeyType,
        /// The algorithm asked for.
        algorithm: WrapAlgorithm,
    },
    /// The backend cannot do this algorithm (e.g. RSA-OAEP-256 on a token
    /// that only has SHA-1 OAEP).
    AlgorithmUnsupported {
        /// The algorithm asked for.
        algorithm: WrapAlgorithm,
        /// Which backend lacks it.
        backend: &'static str,
    },
    /// A key (active or soft-deleted) of this name already exists.
    KeyExists {
        /// The key's name.
        name: String,
        /// Whether the existing key is soft-deleted (recover or purge it
        /// first).
        deleted: bool,
    },
    /// Purge protection keeps the deleted key until its retention ends.
    PurgeProtected {
        /// The key's name.
        name: String,
        /// When it may be purged.
        until: UnixTime,
    },
    /// Purge protection, once on, cannot be turned off.
    PurgeProtectionPermanent,
    /// A wrapped key did not unwrap: another key made it, or it was altered.
    DecryptionFailed,
    /// An argument is out of range or malformed (key name, retention days,
    /// DEK length, attribute combination, ...).
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// A caller-supplied field is longer, or a list has more entries, than
    /// the vault accepts (principal ids, key names, tags, versions per
    /// key, ...). Checked before anything is written; the audit entry of a
    /// refused call records lengths, never the over-long value.
    LimitExceeded {
        /// What is too long or too many (e.g. `"characters in a tag
        /// value"`).
        what: &'static str,
        /// The most the vault accepts.
        limit: usize,
        /// What the call gave.
        found: usize,
    },
    /// The stored material of one key version cannot be used: its sealed
    /// key does not open although the root key does (the state was
    /// damaged), or the token's objects for it do not match the vault's
    /// record (several objects with its `CKA_ID`, another modulus,
    /// exponent or key type). The vault never picks one of several
    /// candidates: nothing is wrapped or unwrapped under this version.
    KeyMaterialCorrupt {
        /// The key's name.
        name: String,
        /// The version.
        version: String,
        /// What is wrong (never any key bytes).
        reason: String,
    },
    /// The token no longer holds the material of a key version (its
    /// object was destroyed outside the vault): nothing can be wrapped or
    /// unwrapped under this version until the token is restored.
    KeyMaterialMissing {
        /// The key's name.
        name: String,
        /// The version.
        version: String,
        /// Which object is missing (e.g. `"RSA private key"`).
        object: &'static str,
        /// The token (as [`AlgorithmUnsupported`](Self::AlgorithmUnsupported)
        /// names it).
        backend: &'static str,
    },
    /// Imported key material could not be used.
    InvalidKeyMaterial {
        /// What is wrong with it (never any of its bytes).
        reason: String,
    },
    /// The root key (key file or passphrase) does not open this vault.
    WrongRootKey,
    /// A vault file is corrupt, truncated, or not a vault file.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A filesystem operation failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The HSM (PKCS#11 token) refused or failed.
    Token {
        /// The PKCS#11 function or step.
        operation: &'static str,
        /// The token's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The operating system's random generator failed.
    RandomnessUnavailable,
    /// The audit log does not verify: an entry was forged, edited,
    /// inserted, removed or reordered, or entries are missing at its end.
    AuditTampered(AuditError),
    /// The vault's state is older than one it had already reached (a
    /// rollback: older files were put back), as its audit log or its
    /// witness records.
    RolledBack {
        /// The generation of the state found.
        found: u64,
        /// The newest generation the audit log or the witness has seen.
        last_seen: u64,
    },
    /// The audit log is shorter than its witness records: entries were cut
    /// off or an older log was put back.
    AuditRolledBack {
        /// Entries in the log found.
        found: u64,
        /// Entries the witness has seen.
        last_seen: u64,
    },
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AccessDenied {
                principal,
                permission,
                key: Some(key),
            } => write!(
                f,
                "access denied: principal {principal} lacks the {permission} permission on {} {key}; grant it in the vault's access policy",
                if permission.is_secret() {
                    "secret"
                } else {
                    "key"
                }
            ),
            Self::SecretNotFound {
                name,
                version: Some(v),
            } => write!(f, "secret {name} has no version {v}"),
            Self::SecretNotFound {
                name,
                version: None,
            } => write!(f, "no secret named {name} in this vault"),
            Self::SecretDeleted {
                name,
                scheduled_purge,
            } => write!(
                f,
                "secret {name} is deleted; recover it before {scheduled_purge} (Unix time) to use it again"
            ),
            Self::SecretPurged { name, purged } => write!(
                f,
                "secret {name} was purged at {purged} (Unix time): it is gone; restore it from a backup"
            ),
            Self::SecretDisabled { name, version } => write!(
                f,
                "secret {name} version {version} is disabled; enable it to read it"
            ),
            Self::SecretExists {
                name,
                deleted: false,
            } => write!(f, "a secret named {name} already exists"),
            Self::SecretExists {
                name,
                deleted: true,
            } => write!(
                f,
                "a deleted secret named {name} exists; recover or purge it first"
            ),
            Self::SecretPurgeProtected { name, until } => write!(
                f,
                "purge protection keeps deleted secret {name} until {until} (Unix time)"
            ),
            Self::SecretCorrupt {
                name,
                version,
                reason,
            } => write!(
                f,
                "the value of secret {name} version {version} cannot be read: {reason}; restore it from a backup or disable this version"
            ),
            Self::BackupInvalid { reason } => {
                write!(f, "the backup cannot be restored: {reason}")
            }
            Self::BackupOwnerMismatch {
                backup_owner,
                vault_owner,
            } => write!(
                f,
                "the backup belongs to owner {backup_owner}, this vault to owner {vault_owner}: a backup restores only into a vault of the owner that made it"
            ),
            Self::NotExportable { name, backend } => write!(
                f,
                "key {name} lives in the {backend} token and cannot leave it: the vault cannot back it up; back the token up with its vendor's tools"
            ),
            Self::AccessDenied {
                principal,
                permission,
                key: None,
            } => write!(
                f,
                "access denied: principal {principal} lacks the {permission} permission; grant it in the vault's access policy"
            ),
            Self::KeyNotFound {
                name,
                version: Some(v),
            } => write!(f, "key {name} has no version {v}"),
            Self::KeyNotFound {
                name,
                version: None,
            } => write!(f, "no key named {name} in this vault"),
            Self::KeyDeleted {
                name,
                scheduled_purge,
            } => write!(
                f,
                "key {name} is deleted; recover it before {scheduled_purge} (Unix time) to use it again"
            ),
            Self::KeyPurged { name, purged } => write!(
                f,
                "key {name} was purged at {purged} (Unix time): it is gone, and data wrapped only under it cannot be recovered"
            ),
            Self::KeyDisabled { name, version } => write!(
                f,
                "key {name} version {version} is disabled; enable it to use it"
            ),
            Self::KeyNotYetValid {
                name,
                version,
                not_before,
            } => write!(
                f,
                "key {name} version {version} is not valid before {not_before} (Unix time)"
            ),
            Self::KeyExpired {
                name,
                version,
                expires,
            } => write!(
                f,
                "key {name} version {version} expired at {expires} (Unix time); only unwrap still works"
            ),
            Self::OperationNotPermitted {
                name,
                version,
                operation,
            } => write!(
                f,
                "key {name} version {version} does not permit {operation}; update its permitted operations"
            ),
            Self::AlgorithmMismatch {
                name,
                key_type,
                algorithm,
            } => write!(f, "key {name} is {key_type} and cannot do {algorithm}"),
            Self::AlgorithmUnsupported { algorithm, backend } => {
                write!(f, "the {backend} backend cannot do {algorithm}")
            }
            Self::KeyExists {
                name,
                deleted: false,
            } => write!(f, "a key named {name} already exists"),
            Self::KeyExists {
                name,
                deleted: true,
            } => write!(
                f,
                "a deleted key named {name} exists; recover or purge it first"
            ),
            Self::PurgeProtected { name, until } => write!(
                f,
                "purge protection keeps deleted key {name} until {until} (Unix time)"
            ),
            Self::PurgeProtectionPermanent => {
                f.write_str("purge protection cannot be turned off once it is on")
            }
            Self::DecryptionFailed => f.write_str(
                "the wrapped key did not unwrap: it was made under another key, or altered",
            ),
            Self::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
            Self::LimitExceeded { what, limit, found } => write!(
                f,
                "limit exceeded: {found} {what}, at most {limit} are accepted; shorten it"
            ),
            Self::KeyMaterialCorrupt {
                name,
                version,
                reason,
            } => write!(
                f,
                "the material of key {name} version {version} is damaged or not the vault's: {reason}; restore it from a backup or disable this version"
            ),
            Self::KeyMaterialMissing {
                name,
                version,
                object,
                backend,
            } => write!(
                f,
                "the {backend} token no longer holds the {object} of key {name} version {version}: it was destroyed outside the vault; restore the token from a backup"
            ),
            Self::InvalidKeyMaterial { reason } => write!(f, "unusable key material: {reason}"),
            Self::WrongRootKey => {
                f.write_str("the root key (key file or passphrase) does not open this vault")
            }
            Self::Corrupt { path, reason } => {
                write!(f, "vault file {} is corrupt: {reason}", path.display())
            }
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Token { operation, source } => {
                write!(f, "the HSM token failed in {operation}: {source}")
            }
            Self::RandomnessUnavailable => {
                f.write_str("the operating system's random generator failed")
            }
            Self::AuditTampered(err) => write!(
                f,
                "{err}; keep the log and the vault directory as they are for investigation"
            ),
            Self::RolledBack { found, last_seen } => write!(
                f,
                "the vault state was rolled back: found generation {found}, but generation {last_seen} was already reached; restore the newest state files"
            ),
            Self::AuditRolledBack { found, last_seen } => write!(
                f,
                "the audit log was rolled back: it holds {found} entries, but {last_seen} were already written; restore the newest audit log"
            ),
        }
    }
}

impl VaultError {
    /// Names the key version in a material error raised below the vault
    /// layer (which does not know names): the backends leave `name` and
    /// `version` empty and the vault fills them in.
    pub(crate) fn for_version(self, key: &str, key_version: &str) -> Self {
        match self {
            Self::KeyMaterialCorrupt {
                name,
                version,
                reason,
            } if name.is_empty() && version.is_empty() => Self::KeyMaterialCorrupt {
                name: key.to_owned(),
                version: key_version.to_owned(),
                reason,
            },
            Self::KeyMaterialMissing {
                name,
                version,
                object,
                backend,
            } if name.is_empty() && version.is_empty() => Self::KeyMaterialMissing {
                name: key.to_owned(),
                version: key_version.to_owned(),
                object,
                backend,
            },
            other => other,
        }
    }

    /// Names the secret version in a material error raised below the
    /// vault layer, as [`SecretCorrupt`](Self::SecretCorrupt).
    pub(crate) fn for_secret_version(self, secret: &str, secret_version: &str) -> Self {
        match self {
            Self::KeyMaterialCorrupt { reason, .. } => Self::SecretCorrupt {
                name: secret.to_owned(),
                version: secret_version.to_owned(),
                reason,
            },
            Self::KeyMaterialMissing {
                object, backend, ..
            } => Self::SecretCorrupt {
                name: secret.to_owned(),
                version: secret_version.to_owned(),
                reason: format!(
                    "the {backend} token no longer holds its {object}: it was destroyed outside the vault"
                ),
            },
            other => other,
        }
    }

    /// A material error for the vault layer to name (see
    /// [`for_version`](Self::for_version)).
    pub(crate) fn material_corrupt(reason: impl Into<String>) -> Self {
        Self::KeyMaterialCorrupt {
            name: String::new(),
            version: String::new(),
            reason: reason.into(),
        }
    }
}

impl std::error::Error for VaultError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Token { source, .. } => Some(source.as_ref()),
            Self::AuditTampered(err) => Some(err),
            _ => None,
        }
    }
}
