//! Preflight checks of a customer-managed key (DESIGN.md R13): every
//! problem at once, each with what to do about it.

use core::fmt;

use strongroom_keyvault::{
    KeyOperation, KeyType, KeyVault, KeyVersionInfo, Permission, Principal, UnixTime, VaultError,
};

use crate::{CustomerKey, Identity, InvalidField, VaultIdentities};

/// What the vault's identity needs on its key (R13), in the order problems
/// are reported.
const NEEDED_PERMISSIONS: [Permission; 3] =
    [Permission::Get, Permission::WrapKey, Permission::UnwrapKey];

/// What the key's permitted operations must include.
const NEEDED_OPERATIONS: [KeyOperation; 2] = [KeyOperation::WrapKey, KeyOperation::UnwrapKey];

/// One reason a customer key cannot be used yet. Its `Display` says what is
/// wrong and what to do, in one sentence; none carries key material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The key reference names an identity the vault does not have.
    IdentityUnknown(Identity),
    /// The identity's access policy lacks a permission it needs (`get`,
    /// `wrapKey` or `unwrapKey`); one problem per missing permission.
    MissingPermission {
        /// The identity's principal.
        principal: Principal,
        /// The missing permission.
        permission: Permission,
    },
    /// The key vault does not keep deleted keys (no soft delete).
    SoftDeleteOff,
    /// The key vault lets deleted keys be purged before their retention
    /// ends.
    PurgeProtectionOff,
    /// The key reference names another key vault than the one checked.
    WrongKeyVault {
        /// The vault the key reference names.
        expected: String,
        /// The name of the vault checked.
        found: String,
    },
    /// No key of that name, or no such version.
    KeyNotFound {
        /// The key's name.
        name: String,
        /// The version asked for (`None`: versionless).
        version: Option<String>,
    },
    /// The key is soft-deleted.
    KeyDeleted {
        /// The key's name.
        name: String,
    },
    /// The key was purged: it is gone for good.
    KeyPurged {
        /// The key's name.
        name: String,
    },
    /// The key is not RSA 2048, 3072 or 4096.
    NotRsa {
        /// Its type.
        key_type: KeyType,
    },
    /// The key version is disabled.
    KeyDisabled {
        /// The key's name.
        name: String,
        /// The version checked.
        version: String,
    },
    /// The key version's not-before time is still ahead.
    NotYetValid {
        /// The key's name.
        name: String,
        /// The version checked.
        version: String,
        /// When it becomes valid.
        not_before: UnixTime,
    },
    /// The key version has expired.
    Expired {
        /// The key's name.
        name: String,
        /// The version checked.
        version: String,
        /// When it expired.
        expires: UnixTime,
    },
    /// The key version's permitted operations lack `wrapKey` or
    /// `unwrapKey`; one problem per missing operation.
    OperationNotPermitted {
        /// The key's name.
        name: String,
        /// The version checked.
        version: String,
        /// The missing operation.
        operation: KeyOperation,
    },
    /// The key vault failed (storage, token, corrupt state): the checks
    /// that needed it could not run.
    KeyVaultUnavailable {
        /// The key vault's error message (never key material).
        reason: String,
    },
    /// A name in the key reference is out of bounds; the key itself was not
    /// looked up.
    InvalidKeyReference(InvalidField),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdentityUnknown(identity) => write!(
                f,
                "the vault has no {identity}: enable it on the vault, or pick an identity the vault has"
            ),
            Self::MissingPermission {
                principal,
                permission,
            } => write!(
                f,
                "principal {principal} lacks the {permission} permission on the key vault: grant it get, wrapKey and unwrapKey in the key vault's access policy"
            ),
            Self::SoftDeleteOff => f.write_str(
                "the key vault has soft delete off: turn soft delete on so that a deleted key can be recovered",
            ),
            Self::PurgeProtectionOff => f.write_str(
                "the key vault has purge protection off: turn it on so that a deleted key cannot be purged before its retention ends",
            ),
            Self::WrongKeyVault { expected, found } => write!(
                f,
                "the key reference names key vault {expected} but vault {found} was checked: check the key in {expected}, or correct the reference"
            ),
            Self::KeyNotFound {
                name,
                version: Some(version),
            } => write!(
                f,
                "key {name} has no version {version}: reference an existing version, or leave the version out to follow the latest"
            ),
            Self::KeyNotFound { name, version: None } => write!(
                f,
                "the key vault has no key named {name}: create or import it, or correct the name"
            ),
            Self::KeyDeleted { name } => write!(
                f,
                "key {name} is soft-deleted: recover it in the key vault before its retention ends"
            ),
            Self::KeyPurged { name } => write!(
                f,
                "key {name} was purged and is gone for good: choose another key"
            ),
            Self::NotRsa { key_type } => write!(
                f,
                "the key is {key_type}, not RSA: use an RSA 2048, 3072 or 4096 key"
            ),
            Self::KeyDisabled { name, version } => write!(
                f,
                "key {name} version {version} is disabled: enable it, or reference an enabled version"
            ),
            Self::NotYetValid {
                name,
                version,
                not_before,
            } => write!(
                f,
                "key {name} version {version} is not valid before {not_before} (Unix time): wait until then, or move its not-before earlier"
            ),
            Self::Expired {
                name,
                version,
                expires,
            } => write!(
                f,
                "key {name} version {version} expired at {expires} (Unix time): extend its expiry, or rotate the key"
            ),
            Self::OperationNotPermitted {
                name,
                version,
                operation,
            } => write!(
                f,
                "key {name} version {version} does not permit {operation}: add wrapKey and unwrapKey to its permitted operations"
            ),
            Self::KeyVaultUnavailable { reason } => write!(
                f,
                "the key vault failed ({reason}): fix the key vault and run the checks again"
            ),
            Self::InvalidKeyReference(field) => write!(f, "invalid key reference: {field}"),
        }
    }
}

/// Checks everything R13 asks of a customer key before a vault uses it, and
/// returns every problem found (empty: the key is ready). Nothing is
/// changed; `now` is the time the validity window is checked against.
///
/// The checks, in the order problems are listed:
///
/// 1. The key reference's names are in bounds ([`Problem::InvalidKeyReference`];
///    the key is then not looked up).
/// 2. The key vault's properties: its name is the reference's (names
///    compared exactly, as key references are; [`Problem::WrongKeyVault`],
///    and then nothing else of this vault is checked: its settings, access
///    policies and keys are not the ones that will be used), soft delete
///    (a retention of 0 days reads as off: our vaults always keep 7–90
///    days, but any [`KeyVault`] may report it) and purge protection.
/// 3. The identity exists in `identities` ([`Problem::IdentityUnknown`]; the
///    key is then not looked up, for want of someone to look it up as).
/// 4. Its access policy (management plane, [`KeyVault::access_policy`]) has
///    `get`, `wrapKey` and `unwrapKey`: one [`Problem::MissingPermission`]
///    each.
/// 5. The key, read as the identity with [`KeyVault::get_key`] (the version
///    referenced, or for a versionless reference the newest version, which
///    is what the vault will follow): it exists, is not deleted or purged,
///    is RSA 2048/3072/4096, enabled, inside its not-before / expires
///    window at `now`, and permits `wrapKey` and `unwrapKey`.
///
/// **Without `get`, the key is not checked.** The identity cannot read it,
/// and this function has no other principal to read it as; asking anyway
/// would only add a denied call to the key vault's audit log. The `get`
/// problem is listed, and the key's own problems appear once it is granted:
/// a preflight is final only when it lists no missing `get`.
///
/// Permitted operations are read as the key vault applies them: the
/// operations listed are all that is permitted, so an empty list permits
/// nothing (unlike Azure's absent `key_ops`, which permits all).
///
/// A versionless reference is checked on the key's newest version (what
/// [`KeyVault::get_key`] returns without a version). If that version is
/// disabled, the problem is listed even though wrapping would fall back to
/// an older enabled version: the reference is meant to follow the newest.
///
/// Key-vault errors map to problems: access denied to
/// [`Problem::MissingPermission`], not found / deleted / purged to their
/// problems, a version of a form the vault never hands out to
/// [`Problem::KeyNotFound`] with that version, anything else to
/// [`Problem::KeyVaultUnavailable`] with the error's message. Each problem
/// is listed once.
///
/// ```
/// use strongroom_keyvault::{
///     KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permission, Permissions, Principal,
///     VaultProperties,
/// };
/// use strongroom_policy::{preflight, CustomerKey, Problem, VaultIdentities};
///
/// let kv = MemoryKeyVault::new(VaultProperties::new("contoso-kv"))?;
/// let admin = Principal::new("admin");
/// kv.set_access_policy(&admin, Permissions::all())?;
/// kv.create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())?;
/// let system = Principal::new("backup-vault-7/system");
/// kv.set_access_policy(&system, Permissions::key_user().without(Permission::UnwrapKey))?;
/// let identities = VaultIdentities::new().with_system(system.clone());
///
/// let key = CustomerKey::new("contoso-kv", "cmk");
/// let problems = preflight(&kv, &identities, &key, 0);
/// assert_eq!(problems, [
///     Problem::PurgeProtectionOff,
///     Problem::MissingPermission { principal: system, permission: Permission::UnwrapKey },
/// ]);
/// # Ok::<(), strongroom_keyvault::VaultError>(())
/// ```
#[must_use]
pub fn preflight(
    key_vault: &dyn KeyVault,
    identities: &VaultIdentities,
    key: &CustomerKey,
    now: UnixTime,
) -> Vec<Problem> {
    let mut problems = Problems::default();

    let reference_valid = match key.validate() {
        Ok(()) => true,
        Err(field) => {
            problems.push(Problem::InvalidKeyReference(field));
            false
        }
    };

    let mut right_vault = true;
    match key_vault.properties() {
        Ok(properties) if properties.name != key.key_vault => {
            problems.push(Problem::WrongKeyVault {
                expected: key.key_vault.clone(),
                found: properties.name,
            });
            right_vault = false;
        }
        Ok(properties) => {
            if properties.soft_delete_retention_days == 0 {
                problems.push(Problem::SoftDeleteOff);
            }
            if !properties.purge_protection {
                problems.push(Problem::PurgeProtectionOff);
            }
        }
        // The other checks still run: each says what it could not do.
        Err(err) => problems.vault_error(err),
    }

    let Some(principal) = identities.resolve(&key.identity) else {
        problems.push(Problem::IdentityUnknown(key.identity.clone()));
        return problems.0;
    };
    if !right_vault {
        return problems.0;
    }

    let can_get = match key_vault.access_policy(principal) {
        Ok(granted) => {
            for permission in NEEDED_PERMISSIONS {
                if !granted.contains(permission) {
                    problems.push(Problem::MissingPermission {
                        principal: principal.clone(),
                        permission,
                    });
                }
            }
            granted.contains(Permission::Get)
        }
        // Unknown: try the key, whose own refusal would name a missing get.
        Err(err) => {
            problems.vault_error(err);
            true
        }
    };

    if !reference_valid || !can_get {
        return problems.0;
    }

    match key_vault.get_key(principal, &key.key_name, key.key_version.as_deref()) {
        Ok(info) => check_key(&info, now, &mut problems),
        Err(err) => problems.key_error(err, key),
    }
    problems.0
}

/// The key version's own checks: type, enabled, window, operations.
fn check_key(info: &KeyVersionInfo, now: UnixTime, problems: &mut Problems) {
    if !info.key_type.is_rsa() {
        problems.push(Problem::NotRsa {
            key_type: info.key_type,
        });
    }
    let attributes = &info.attributes;
    if !attributes.enabled {
        problems.push(Problem::KeyDisabled {
            name: info.name.clone(),
            version: info.version.clone(),
        });
    }
    // The key vault's own rule: valid from not-before, expired at expires.
    if let Some(not_before) = attributes.not_before
        && now < not_before
    {
        problems.push(Problem::NotYetValid {
            name: info.name.clone(),
            version: info.version.clone(),
            not_before,
        });
    }
    if let Some(expires) = attributes.expires
        && now >= expires
    {
        problems.push(Problem::Expired {
            name: info.name.clone(),
            version: info.version.clone(),
            expires,
        });
    }
    for operation in NEEDED_OPERATIONS {
        if !attributes.operations.contains(&operation) {
            problems.push(Problem::OperationNotPermitted {
                name: info.name.clone(),
                version: info.version.clone(),
                operation,
            });
        }
    }
}

/// The problems found so far, each once.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, problem: Problem) {
        if !self.0.contains(&problem) {
            self.0.push(problem);
        }
    }

    /// A failure of a call that is not about the key.
    fn vault_error(&mut self, err: VaultError) {
        match err {
            VaultError::AccessDenied {
                principal,
                permission,
                ..
            } => self.push(Problem::MissingPermission {
                principal,
                permission,
            }),
            other => self.push(Problem::KeyVaultUnavailable {
                reason: other.to_string(),
            }),
        }
    }

    /// A failure of `get_key`.
    fn key_error(&mut self, err: VaultError, key: &CustomerKey) {
        match err {
            VaultError::KeyNotFound { name, version } => {
                self.push(Problem::KeyNotFound { name, version });
            }
            VaultError::KeyDeleted { name, .. } => self.push(Problem::KeyDeleted { name }),
            VaultError::KeyPurged { name, .. } => self.push(Problem::KeyPurged { name }),
            // The name was checked above, so what the vault refuses is the
            // version's form: no version of that form exists.
            VaultError::InvalidArgument { .. } if key.key_version.is_some() => {
                self.push(Problem::KeyNotFound {
                    name: key.key_name.clone(),
                    version: key.key_version.clone(),
                });
            }
            other => self.vault_error(other),
        }
    }
}
