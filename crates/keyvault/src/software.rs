//! Key material in software: RSA and AES keys sealed under a root key.
//!
//! Each private or secret key is kept in [`Material::handle`] as
//! `nonce (12 bytes) || AES-256-GCM(root, nonce, key, aad)`, where the key
//! is a PKCS#8 DER `PrivateKeyInfo` (RSA) or the 32 raw bytes (AES), and the
//! associated data binds the material's id, its key type and its public part:
//!
//! ```text
//! aad = "strongroom keyvault material v1" || id (16 bytes) || key type name
//!       || for RSA: len(n) (4 bytes BE) || n || len(e) (4 bytes BE) || e
//! ```
//!
//! So sealed material cannot be moved to another version or key type, and a
//! public key substituted in the state is caught before anything is wrapped
//! under it. Every secret in between (DER, raw key, unwrapped DEK) lives in
//! `Zeroizing` buffers.
//!
//! Secret values (a secret version's, the owner key) are sealed the same
//! way under their own label: `aad = "strongroom keyvault secret v1" || id`.
//!
//! RSA private operations are blinded with the operating system's generator
//! (the `getrandom` feature of `rsa`): the mitigation available for
//! RUSTSEC-2023-0071 (see SECURITY.md).

use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};
use strongroom_aes::aead::{Aead, Payload};
use strongroom_aes::kw::Aes256Kw;
use strongroom_aes::{Aes256Gcm, Aes256Key};
use strongroom_envelope::WrapAlgorithm;
use zeroize::Zeroizing;

use crate::state::{ImportedKey, KeyCrypto, Material};
use crate::{KeyType, RsaPublicParts, VaultError};

/// The domain label at the start of every sealing's associated data.
const AAD_LABEL: &[u8] = b"strongroom keyvault material v1";
/// The domain label at the start of a sealed secret value's associated
/// data.
const SECRET_AAD_LABEL: &[u8] = b"strongroom keyvault secret v1";
/// The backend name in errors.
const BACKEND: &str = "software";
/// Length of a material id.
const ID_LEN: usize = crate::state::MATERIAL_ID_LEN;
/// Length of the GCM nonce stored in front of the sealed key.
const NONCE_LEN: usize = 12;
/// Length of the GCM tag.
const TAG_LEN: usize = 16;

/// Key material in software, sealed under a root key (AES-256-GCM).
pub(crate) struct SoftwareCrypto {
    root: Aes256Gcm,
}

impl SoftwareCrypto {
    /// Seals and opens material under `root`.
    pub(crate) fn new(root: Aes256Key) -> Self {
        Self {
            root: Aes256Gcm::with_key(&root),
        }
    }

    fn seal(
        &self,
        id: &[u8],
        key_type: KeyType,
        public: Option<&RsaPublicParts>,
        secret: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        self.seal_with(&aad(id, key_type, public), secret)
    }

    fn seal_with(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| VaultError::RandomnessUnavailable)?;
        let sealed = self
            .root
            .encrypt(&nonce.into(), Payload { msg: secret, aad })
            .map_err(|_| VaultError::InvalidArgument {
                reason: "key material too large to seal".to_owned(),
            })?;
        let mut handle = Vec::with_capacity(NONCE_LEN + sealed.len());
        handle.extend_from_slice(&nonce);
        handle.extend_from_slice(&sealed);
        Ok(handle)
    }

    /// Opens sealed material. Fails with [`VaultError::KeyMaterialCorrupt`]
    /// (named by the vault layer): the material was altered (including its
    /// id, key type or public part). The root key itself was checked when
    /// the vault opened, so a version that does not open is damaged, not
    /// the root key wrong.
    fn open(
        &self,
        material: &Material,
        key_type: KeyType,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.open_with(
            material,
            &aad(&material.id, key_type, material.public.as_ref()),
        )
    }

    fn open_with(&self, material: &Material, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if material.id.len() != ID_LEN || material.handle.len() < NONCE_LEN + TAG_LEN {
            return Err(damaged());
        }
        let (nonce, sealed) = material.handle.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| damaged())?;
        self.root
            .decrypt(&nonce.into(), Payload { msg: sealed, aad })
            .map(Zeroizing::new)
            .map_err(|_| damaged())
    }

    fn seal_rsa(&self, key: &PrivateKey, key_type: KeyType) -> Result<Material, VaultError> {
        let id = random_id()?;
        let public = public_parts(key.as_public_key());
        let der = key
            .to_pkcs8_der()
            .map_err(|_| VaultError::InvalidKeyMaterial {
                reason: "the RSA key could not be encoded as PKCS#8".to_owned(),
            })?;
        let handle = self.seal(&id, key_type, Some(&public), der.as_bytes())?;
        Ok(Material {
            id,
            public: Some(public),
            handle,
        })
    }

    fn seal_aes(&self, key: &Aes256Key) -> Result<Material, VaultError> {
        let id = random_id()?;
        let handle = self.seal(&id, KeyType::Aes256, None, key.expose_secret())?;
        Ok(Material {
            id,
            public: None,
            handle,
        })
    }

    fn private_key(
        &self,
        material: &Material,
        key_type: KeyType,
    ) -> Result<PrivateKey, VaultError> {
        let der = self.open(material, key_type)?;
        PrivateKey::from_pkcs8_der(&der).map_err(|_| damaged())
    }

    fn aes_key(&self, material: &Material) -> Result<Aes256Key, VaultError> {
        let raw = self.open(material, KeyType::Aes256)?;
        Aes256Key::try_from_slice(&raw).map_err(|_| damaged())
    }

    /// The public key, after checking (by opening the sealed private key,
    /// whose associated data covers it) that it belongs to this material.
    fn public_key(&self, material: &Material, key_type: KeyType) -> Result<PublicKey, VaultError> {
        let _authentic = self.open(material, key_type)?;
        let public = material.public.as_ref().ok_or_else(damaged)?;
        public.to_rsa().map_err(|_| damaged())
    }
}

/// Sealed material that does not open under the vault's (verified) root
/// key.
fn damaged() -> VaultError {
    VaultError::material_corrupt(
        "its sealed key does not open under the vault's root key (it was altered or damaged)",
    )
}

fn random_id() -> Result<Vec<u8>, VaultError> {
    crate::state::random_bytes(ID_LEN)
}

/// The public part of an RSA key as the vault shows it.
pub(crate) fn public_parts(key: &PublicKey) -> RsaPublicParts {
    RsaPublicParts {
        n: key.n_bytes().into_vec(),
        e: key.e_bytes().into_vec(),
    }
}

/// The associated data of a sealed secret value: its own label, so that
/// sealed key material never opens as a secret value or the other way
/// round, and the material id.
fn secret_aad(id: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SECRET_AAD_LABEL.len() + id.len());
    aad.extend_from_slice(SECRET_AAD_LABEL);
    aad.extend_from_slice(id);
    aad
}

fn aad(id: &[u8], key_type: KeyType, public: Option<&RsaPublicParts>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + id.len() + 16 + 600);
    aad.extend_from_slice(AAD_LABEL);
    aad.extend_from_slice(id);
    aad.extend_from_slice(key_type.to_string().as_bytes());
    if let Some(public) = public {
        for part in [&public.n, &public.e] {
            // safe: an RSA modulus or exponent is far below 4 GiB.
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            aad.extend_from_slice(&len.to_be_bytes());
            aad.extend_from_slice(part);
        }
    }
    aad
}

/// RSA-OAEP decryption as the vault does it: blinded, every failure the
/// one detail-free [`VaultError::DecryptionFailed`], the result zeroized.
/// Ciphertexts of the wrong length are refused before any private-key
/// arithmetic.
pub(crate) fn rsa_oaep_decrypt(
    key: &PrivateKey,
    algorithm: WrapAlgorithm,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    if wrapped.len() != key.size() {
        return Err(VaultError::DecryptionFailed);
    }
    let plain = match algorithm {
        WrapAlgorithm::RsaOaep256 => key.oaep_decrypt::<sha2::Sha256>(wrapped),
        WrapAlgorithm::RsaOaep => key.oaep_decrypt::<sha1::Sha1>(wrapped),
        _ => return Err(VaultError::DecryptionFailed),
    };
    plain
        .map(Zeroizing::new)
        .map_err(|_| VaultError::DecryptionFailed)
}

/// RSA-OAEP encryption with the operating system's generator.
pub(crate) fn rsa_oaep_encrypt(
    key: &PublicKey,
    algorithm: WrapAlgorithm,
    dek: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let result = match algorithm {
        WrapAlgorithm::RsaOaep256 => key.oaep_encrypt::<sha2::Sha256>(dek),
        WrapAlgorithm::RsaOaep => key.oaep_encrypt::<sha1::Sha1>(dek),
        _ => {
            return Err(VaultError::AlgorithmUnsupported {
                algorithm,
                backend: BACKEND,
            });
        }
    };
    result.map_err(|e| match e {
        rsa::Error::Rng => VaultError::RandomnessUnavailable,
        _ => VaultError::InvalidArgument {
            reason: "the DEK does not fit RSA-OAEP under this key".to_owned(),
        },
    })
}

impl KeyCrypto for SoftwareCrypto {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn generate(&self, key_type: KeyType) -> Result<Material, VaultError> {
        match key_type.rsa_bits() {
            Some(bits) => {
                let key = PrivateKey::new(&mut getrandom::SysRng, bits).map_err(|e| match e {
                    rsa::Error::Rng => VaultError::RandomnessUnavailable,
                    _ => VaultError::InvalidArgument {
                        reason: format!("could not generate an {key_type} key"),
                    },
                })?;
                self.seal_rsa(&key, key_type)
            }
            None => {
                let key = Aes256Key::generate().map_err(|_| VaultError::RandomnessUnavailable)?;
                self.seal_aes(&key)
            }
        }
    }

    fn import(&self, key: ImportedKey) -> Result<Material, VaultError> {
        let key_type = key.key_type();
        match key {
            ImportedKey::Rsa(private) => self.seal_rsa(&private, key_type),
            ImportedKey::Aes256(secret) => self.seal_aes(&secret),
        }
    }

    fn wrap(
        &self,
        material: &Material,
        key_type: KeyType,
        algorithm: WrapAlgorithm,
        dek: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        match algorithm {
            WrapAlgorithm::A256Kw => {
                let kek = Aes256Kw::new(&self.aes_key(material)?);
                kek.wrap(dek).map_err(|_| VaultError::InvalidArgument {
                    reason: "the DEK does not fit AES key wrap".to_owned(),
                })
            }
            WrapAlgorithm::RsaOaep256 | WrapAlgorithm::RsaOaep => {
                let public = self.public_key(material, key_type)?;
                rsa_oaep_encrypt(&public, algorithm, dek)
            }
            _ => Err(VaultError::AlgorithmUnsupported {
                algorithm,
                backend: BACKEND,
            }),
        }
    }

    fn unwrap(
        &self,
        material: &Material,
        key_type: KeyType,
        algorithm: WrapAlgorithm,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        match algorithm {
            WrapAlgorithm::A256Kw => {
                let kek = Aes256Kw::new(&self.aes_key(material)?);
                kek.unwrap(wrapped)
                    .map_err(|_| VaultError::DecryptionFailed)
            }
            WrapAlgorithm::RsaOaep256 | WrapAlgorithm::RsaOaep => {
                let private = self.private_key(material, key_type)?;
                rsa_oaep_decrypt(&private, algorithm, wrapped)
            }
            _ => Err(VaultError::AlgorithmUnsupported {
                algorithm,
                backend: BACKEND,
            }),
        }
    }

    fn destroy(&self, _material: &Material) -> Result<(), VaultError> {
        // The sealed key lives only in the state, which the purge already
        // dropped; there is nothing else to destroy.
        Ok(())
    }

    fn seal_secret(&self, value: &[u8]) -> Result<Material, VaultError> {
        let id = random_id()?;
        let handle = self.seal_with(&secret_aad(&id), value)?;
        Ok(Material {
            id,
            public: None,
            handle,
        })
    }

    fn open_secret(&self, material: &Material) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if material.public.is_some() {
            return Err(damaged());
        }
        self.open_with(material, &secret_aad(&material.id))
    }

    fn destroy_secret(&self, _material: &Material) -> Result<(), VaultError> {
        // As for keys: the sealed value lived only in the state.
        Ok(())
    }

    fn export(
        &self,
        material: &Material,
        key_type: KeyType,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        // What is sealed is the export form: PKCS#8 DER or the raw AES key.
        // Opening checks it against the public part, as a wrap would.
        if key_type.is_rsa() {
            self.public_key(material, key_type)?;
        }
        self.open(material, key_type)
    }
}

impl core::fmt::Debug for SoftwareCrypto {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SoftwareCrypto(..)")
    }
}

/// The software path's RSA-OAEP decryption, for the Wycheproof tests.
#[cfg(feature = "testing")]
pub fn rsa_oaep_decrypt_for_tests(
    key: &PrivateKey,
    algorithm: WrapAlgorithm,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    rsa_oaep_decrypt(key, algorithm, wrapped)
}

#[cfg(test)]
mod tests {
    use strongroom_envelope::WrapAlgorithm;

    use crate::vault::AsVault;
    use crate::{
        KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permissions, Principal, VaultError,
        VaultProperties,
    };

    /// Issue 11: one damaged version (its sealed key altered in the state)
    /// is `KeyMaterialCorrupt` naming the key and version, not
    /// `WrongRootKey` (the root key opened the vault); the other versions
    /// keep working.
    #[test]
    fn a_damaged_version_is_corrupt_naming_the_key_and_version() {
        let vault = MemoryKeyVault::new(VaultProperties::new("kv")).unwrap();
        let admin = Principal::new("admin");
        vault.set_access_policy(&admin, Permissions::all()).unwrap();
        let v1 = vault
            .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
            .unwrap();
        let w1 = vault
            .wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &[1; 32])
            .unwrap();
        let v2 = vault
            .rotate_key(&admin, "pmk", KeyOptions::default())
            .unwrap();
        let rsa = vault
            .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
            .unwrap();
        vault
            .vault()
            .store
            .transact(&mut |state| {
                for name in ["pmk", "cmk"] {
                    let handle = &mut state.keys.get_mut(name).unwrap().versions[0]
                        .material
                        .handle;
                    handle[20] ^= 1;
                }
                Ok(())
            })
            .unwrap();
        let corrupt = |result: Result<(), VaultError>, name: &str, version: &str| match result {
            Err(VaultError::KeyMaterialCorrupt {
                name: n,
                version: v,
                reason,
            }) => {
                assert_eq!((n.as_str(), v.as_str()), (name, version));
                assert!(reason.contains("does not open"), "{reason}");
            }
            other => panic!("expected KeyMaterialCorrupt, got {other:?}"),
        };
        corrupt(
            vault
                .wrap_key(
                    &admin,
                    "pmk",
                    Some(&v1.version),
                    WrapAlgorithm::A256Kw,
                    &[1; 32],
                )
                .map(|_| ()),
            "pmk",
            &v1.version,
        );
        corrupt(
            vault
                .unwrap_key(
                    &admin,
                    "pmk",
                    &v1.version,
                    WrapAlgorithm::A256Kw,
                    &w1.wrapped,
                )
                .map(|_| ()),
            "pmk",
            &v1.version,
        );
        for alg in [WrapAlgorithm::RsaOaep256, WrapAlgorithm::RsaOaep] {
            corrupt(
                vault
                    .wrap_key(&admin, "cmk", None, alg, &[1; 32])
                    .map(|_| ()),
                "cmk",
                &rsa.version,
            );
            corrupt(
                vault
                    .unwrap_key(&admin, "cmk", &rsa.version, alg, &[0; 256])
                    .map(|_| ()),
                "cmk",
                &rsa.version,
            );
        }
        // The undamaged version works.
        let w2 = vault
            .wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &[2; 32])
            .unwrap();
        assert_eq!(w2.version, v2.version);
        let back = vault
            .unwrap_key(
                &admin,
                "pmk",
                &w2.version,
                WrapAlgorithm::A256Kw,
                &w2.wrapped,
            )
            .unwrap();
        assert_eq!(back.as_slice(), [2; 32]);
    }
}
