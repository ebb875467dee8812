//! Vault keys as the envelope's key-encryption keys.

use std::sync::Arc;

use strongroom_aes::Aes256Key;
use strongroom_envelope::{Dek, KeyRef, KeyWrapper, WrapAlgorithm, WrapError};

use crate::{KeyVault, Principal, VaultError};

/// A key in a [`KeyVault`] as a [`KeyWrapper`] of `strongroom-envelope`:
/// wrap and unwrap are done by the vault, as `caller`, checked against its
/// access policy and the key's state, and audited.
///
/// The wrapper is built for one key and algorithm. Its [`key_ref`] is the
/// exact version it wraps under: the version given, or, for a versionless
/// wrapper, the latest enabled version when it was built (R14: build a new
/// wrapper to follow a rotation). It unwraps copies made under *any*
/// version of the same key and algorithm in the same vault, so data wrapped
/// before a rotation stays readable.
///
/// A vault refusal travels as [`WrapError::Backend`] holding the
/// [`VaultError`] (downcast it to learn the principal, permission and key);
/// a wrapped key that does not unwrap is [`WrapError::DecryptionFailed`].
///
/// ```
/// use std::io::{Read, Write};
/// use std::sync::Arc;
/// use strongroom_envelope::{Decryptor, Encryptor, HeaderOptions, WrapAlgorithm};
/// use strongroom_keyvault::{
///     KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permissions, Principal, VaultKeyWrapper,
///     VaultProperties,
/// };
///
/// let vault = Arc::new(MemoryKeyVault::new(VaultProperties::new("kv-demo"))?);
/// let admin = Principal::new("admin");
/// vault.set_access_policy(&admin, Permissions::all())?;
/// vault.create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())?;
///
/// let identity = Principal::new("backup-vault/system");
/// vault.set_access_policy(&identity, Permissions::key_user())?;
/// let kek = VaultKeyWrapper::new(vault, identity, "cmk", None, WrapAlgorithm::RsaOaep256)?;
///
/// let mut encryptor = Encryptor::new(Vec::new(), &[&kek], &HeaderOptions::default())?;
/// encryptor.write_all(b"disk block")?;
/// let stored = encryptor.finish()?;
///
/// let mut plain = Vec::new();
/// Decryptor::new(stored.as_slice(), &[&kek])?.read_to_end(&mut plain)?;
/// assert_eq!(plain, b"disk block");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`key_ref`]: KeyWrapper::key_ref
pub struct VaultKeyWrapper {
    vault: Arc<dyn KeyVault>,
    caller: Principal,
    key_ref: KeyRef,
}

impl VaultKeyWrapper {
    /// A wrapper for key `name` of `vault`, used as `caller`, wrapping
    /// under `version` (`None`: the latest enabled version, resolved now
    /// with a `get`, and a `list` of the versions when the latest is
    /// disabled) with `algorithm`.
    ///
    /// # Errors
    /// What `get` refuses (access denied without `get`, key not found,
    /// deleted, purged); [`VaultError::AlgorithmMismatch`] when the key
    /// type cannot do `algorithm`; [`VaultError::KeyDisabled`] when a
    /// versionless key has no enabled version, or its latest version is
    /// disabled and `caller` may not list the others.
    pub fn new(
        vault: Arc<dyn KeyVault>,
        caller: Principal,
        name: &str,
        version: Option<&str>,
        algorithm: WrapAlgorithm,
    ) -> Result<Self, VaultError> {
        let info = match version {
            Some(v) => vault.get_key(&caller, name, Some(v))?,
            None => {
                let latest = vault.get_key(&caller, name, None)?;
                if latest.attributes.enabled {
                    latest
                } else {
                    let disabled = VaultError::KeyDisabled {
                        name: latest.name.clone(),
                        version: latest.version.clone(),
                    };
                    match vault.list_versions(&caller, name) {
                        Ok(versions) => versions
                            .into_iter()
                            .rev()
                            .find(|v| v.attributes.enabled)
                            .ok_or(disabled)?,
                        // Without `list`, older versions are out of
                        // sight: what stops the caller is the disabled
                        // latest version, so say that.
                        Err(VaultError::AccessDenied { .. }) => return Err(disabled),
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        if !crate::vault::algorithm_fits(info.key_type, algorithm) {
            return Err(VaultError::AlgorithmMismatch {
                name: info.name,
                key_type: info.key_type,
                algorithm,
            });
        }
        Ok(Self {
            key_ref: KeyRef::new(info.vault, info.name, info.version, algorithm),
            vault,
            caller,
        })
    }

    /// The principal the wrapper calls the vault as.
    #[must_use]
    pub fn caller(&self) -> &Principal {
        &self.caller
    }
}

fn backend(err: VaultError) -> WrapError {
    match err {
        VaultError::DecryptionFailed => WrapError::DecryptionFailed,
        other => WrapError::Backend(Box::new(other)),
    }
}

impl KeyWrapper for VaultKeyWrapper {
    fn key_ref(&self) -> &KeyRef {
        &self.key_ref
    }

    fn wrap(&self, dek: &Dek) -> Result<Vec<u8>, WrapError> {
        self.vault
            .wrap_key(
                &self.caller,
                &self.key_ref.name,
                Some(&self.key_ref.version),
                self.key_ref.algorithm,
                dek.key().expose_secret(),
            )
            .map(|w| w.wrapped)
            .map_err(backend)
    }

    fn unwrap(&self, key_ref: &KeyRef, wrapped: &[u8]) -> Result<Dek, WrapError> {
        if !self.can_unwrap(key_ref) {
            return Err(WrapError::DecryptionFailed);
        }
        let bytes = self
            .vault
            .unwrap_key(
                &self.caller,
                &key_ref.name,
                &key_ref.version,
                key_ref.algorithm,
                wrapped,
            )
            .map_err(backend)?;
        Aes256Key::try_from_slice(&bytes)
            .map(Dek::from_key)
            .map_err(|_| WrapError::DecryptionFailed)
    }

    fn can_unwrap(&self, key_ref: &KeyRef) -> bool {
        key_ref.vault == self.key_ref.vault
            && key_ref.name == self.key_ref.name
            && key_ref.algorithm == self.key_ref.algorithm
    }
}

impl core::fmt::Debug for VaultKeyWrapper {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VaultKeyWrapper")
            .field("key_ref", &self.key_ref)
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}
