//! The `KeyWrapper` trait and the two local wrappers.

use core::fmt;

use rsa::sha2::Sha256;
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};
use strongroom_aes::{Aes256Key, kw::Aes256Kw};

use crate::{Dek, KeyRef, WrapAlgorithm};

/// Something that wraps and unwraps DEKs under one key-encryption key: a
/// local key, or a key inside a key vault or HSM.
///
/// `wrap` must be randomized or deterministic per the algorithm, and must
/// never reveal the DEK; `unwrap` must return the one DEK that was wrapped or
/// fail. Implementations in key vaults check access and key state and report
/// refusals as [`WrapError::Backend`] with their own typed error inside.
///
/// ```
/// use strongroom_envelope::{AesKeyWrapper, Dek, KeyRef, KeyWrapper, WrapAlgorithm};
/// use strongroom_aes::Aes256Key;
///
/// let kek = AesKeyWrapper::new(
///     KeyRef::new("vault-1", "platform-key", "v1", WrapAlgorithm::A256Kw),
///     &Aes256Key::generate()?,
/// );
/// let dek = Dek::generate()?;
/// let wrapped = kek.wrap(&dek)?;
/// let unwrapped = kek.unwrap(kek.key_ref(), &wrapped)?;
/// assert_eq!(unwrapped.key().expose_secret(), dek.key().expose_secret());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait KeyWrapper: Send + Sync {
    /// The key this wrapper wraps under; recorded next to each wrapped copy.
    fn key_ref(&self) -> &KeyRef;

    /// Wraps `dek`.
    ///
    /// # Errors
    /// [`WrapError::Backend`] when the key cannot be used (for a key vault:
    /// access denied, key disabled, ...).
    fn wrap(&self, dek: &Dek) -> Result<Vec<u8>, WrapError>;

    /// Unwraps a DEK recorded under `key_ref` (one that
    /// [`can_unwrap`](Self::can_unwrap) accepted).
    ///
    /// # Errors
    /// [`WrapError::DecryptionFailed`] when `wrapped` does not unwrap under
    /// this key; [`WrapError::UnwrapUnsupported`] for wrap-only keys;
    /// [`WrapError::Backend`] when the key cannot be used.
    fn unwrap(&self, key_ref: &KeyRef, wrapped: &[u8]) -> Result<Dek, WrapError>;

    /// Whether this wrapper can unwrap a copy recorded under `key_ref`: the
    /// matching rule of docs/FORMAT.md section 3.2. By default only its own
    /// exact reference (vault, name, version and algorithm equal, strings
    /// byte for byte; an empty version matches only an empty one). A key
    /// vault that holds every version of a key may accept any version of
    /// it, and then unwraps with the version `key_ref` names. The vault,
    /// name and algorithm must always be equal: [`unwrap`](Self::unwrap)
    /// uses exactly the recorded algorithm.
    fn can_unwrap(&self, key_ref: &KeyRef) -> bool {
        self.key_ref() == key_ref
    }
}

/// Why a wrapper could not wrap or unwrap.
#[derive(Debug)]
#[non_exhaustive]
pub enum WrapError {
    /// The wrapped key did not unwrap under this key: another key made it,
    /// or it was altered. Deliberately says nothing more.
    DecryptionFailed,
    /// This wrapper holds only a public key and cannot unwrap.
    UnwrapUnsupported {
        /// The key that lacks its private part here.
        key: Box<KeyRef>,
    },
    /// The wrapper was built with a key that does not fit its algorithm.
    InvalidKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key's backend refused or failed: for a key vault, its own typed
    /// error (access denied, key disabled, expired, deleted, ...). Downcast
    /// the inner error to inspect it.
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for WrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DecryptionFailed => f.write_str(
                "the wrapped key did not unwrap: it was made under another key, or altered",
            ),
            Self::UnwrapUnsupported { key } => write!(
                f,
                "key {key} is held here as a public key only; unwrap with the private key or the key vault"
            ),
            Self::InvalidKey { reason } => write!(f, "unusable key-encryption key: {reason}"),
            Self::Backend(inner) => write!(f, "the key-encryption key could not be used: {inner}"),
        }
    }
}

impl std::error::Error for WrapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Backend(inner) => Some(inner.as_ref()),
            _ => None,
        }
    }
}

/// A local AES-256 key-encryption key, wrapping with RFC 3394 (the
/// platform-managed style of R6).
pub struct AesKeyWrapper {
    key_ref: KeyRef,
    kek: Aes256Kw,
}

impl AesKeyWrapper {
    /// A wrapper for `kek`, recorded under `key_ref`. The reference's
    /// algorithm is set to [`WrapAlgorithm::A256Kw`].
    #[must_use]
    pub fn new(mut key_ref: KeyRef, kek: &Aes256Key) -> Self {
        key_ref.algorithm = WrapAlgorithm::A256Kw;
        Self {
            key_ref,
            kek: Aes256Kw::new(kek),
        }
    }
}

impl KeyWrapper for AesKeyWrapper {
    fn key_ref(&self) -> &KeyRef {
        &self.key_ref
    }

    fn wrap(&self, dek: &Dek) -> Result<Vec<u8>, WrapError> {
        self.kek
            .wrap(dek.key().expose_secret())
            .map_err(|_| WrapError::InvalidKey {
                reason: "the DEK could not be wrapped with RFC 3394",
            })
    }

    fn unwrap(&self, _key_ref: &KeyRef, wrapped: &[u8]) -> Result<Dek, WrapError> {
        let bytes = self
            .kek
            .unwrap(wrapped)
            .map_err(|_| WrapError::DecryptionFailed)?;
        Aes256Key::try_from_slice(&bytes)
            .map(Dek::from_key)
            .map_err(|_| WrapError::DecryptionFailed)
    }
}

impl fmt::Debug for AesKeyWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AesKeyWrapper")
            .field("key_ref", &self.key_ref)
            .finish_non_exhaustive()
    }
}

/// A local RSA key-encryption key (2048, 3072 or 4096 bits), wrapping with
/// RSA-OAEP-256 (SHA-256 for hash and MGF1, empty label): the
/// customer-managed style of R6. Wrapping needs only the public key.
pub struct RsaOaepWrapper {
    key_ref: KeyRef,
    public: PublicKey,
    private: Option<PrivateKey>,
}

impl RsaOaepWrapper {
    /// A wrap-only wrapper for a public key.
    ///
    /// # Errors
    /// [`WrapError::InvalidKey`] unless the modulus is 2048, 3072 or 4096
    /// bits.
    pub fn from_public_key(mut key_ref: KeyRef, public: PublicKey) -> Result<Self, WrapError> {
        check_modulus(&public)?;
        key_ref.algorithm = WrapAlgorithm::RsaOaep256;
        Ok(Self {
            key_ref,
            public,
            private: None,
        })
    }

    /// A wrapper that can wrap and unwrap.
    ///
    /// # Errors
    /// [`WrapError::InvalidKey`] unless the modulus is 2048, 3072 or 4096
    /// bits.
    pub fn from_private_key(key_ref: KeyRef, private: PrivateKey) -> Result<Self, WrapError> {
        let mut wrapper = Self::from_public_key(key_ref, private.to_public_key())?;
        wrapper.private = Some(private);
        Ok(wrapper)
    }
}

fn check_modulus(public: &PublicKey) -> Result<(), WrapError> {
    match public.size() * 8 {
        2048 | 3072 | 4096 => Ok(()),
        _ => Err(WrapError::InvalidKey {
            reason: "RSA key-encryption keys must be 2048, 3072 or 4096 bits",
        }),
    }
}

impl KeyWrapper for RsaOaepWrapper {
    fn key_ref(&self) -> &KeyRef {
        &self.key_ref
    }

    fn wrap(&self, dek: &Dek) -> Result<Vec<u8>, WrapError> {
        self.public
            .oaep_encrypt::<Sha256>(dek.key().expose_secret())
            .map_err(|e| WrapError::Backend(Box::new(e)))
    }

    fn unwrap(&self, _key_ref: &KeyRef, wrapped: &[u8]) -> Result<Dek, WrapError> {
        let private = self
            .private
            .as_ref()
            .ok_or_else(|| WrapError::UnwrapUnsupported {
                key: Box::new(self.key_ref.clone()),
            })?;
        // Blinded with the OS generator (`getrandom` feature of `rsa`): the
        // mitigation available for RUSTSEC-2023-0071; see SECURITY.md.
        let bytes = zeroize::Zeroizing::new(
            private
                .oaep_decrypt::<Sha256>(wrapped)
                .map_err(|_| WrapError::DecryptionFailed)?,
        );
        Aes256Key::try_from_slice(&bytes)
            .map(Dek::from_key)
            .map_err(|_| WrapError::DecryptionFailed)
    }
}

impl fmt::Debug for RsaOaepWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaOaepWrapper")
            .field("key_ref", &self.key_ref)
            .field("bits", &(self.public.size() * 8))
            .field("can_unwrap", &self.private.is_some())
            .finish_non_exhaustive()
    }
}
