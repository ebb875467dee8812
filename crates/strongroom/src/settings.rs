//! The vault's encryption settings (R11–R14): kept as a log of records in
//! the store, changed only as `strongroom-policy` allows, a customer key
//! checked by preflight before it is taken.
//!
//! Each change writes `settings/<seq>.json` with the next sequence number,
//! create-only: of two processes changing the settings at once, one
//! writes the number and the other reads again and re-applies its change
//! to what won (or is refused by the rules). The highest number is in
//! force.
//!
//! The store is not trusted with the settings: each record carries an
//! HMAC-SHA256 under the vault's settings key (random, kept in
//! `vault.json` wrapped by the platform key), so a record written by
//! anyone else is refused; and the newest sequence number is witnessed
//! in a tag of the platform key's version (`strongroom.settings-seq`), in
//! the platform key vault, so deleting the newest records (rolling the
//! settings back, e.g. to the platform key) is detected.

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use strongroom_keyvault::AttributeUpdate;
use zeroize::Zeroizing;

use strongroom_envelope::{KeyWrapper, WrapAlgorithm};
use strongroom_keyvault::{KeyVault, Principal, VaultKeyWrapper};
use strongroom_policy::{
    CustomerKey, EncryptionSettings, Identity, KeyHealth, PointKeys, Problem, VaultEncryption,
    VaultIdentities,
};

use crate::error::key_error;
use crate::layout::{self, SettingsRecord};
use crate::vault::{RecoveryVault, blocking, now_secs};
use crate::{Error, store};

/// How many times a settings change is re-applied when other writers keep
/// winning the race for the next record.
const SETTINGS_RETRIES: usize = 32;

/// The platform key version's tag that witnesses the newest settings
/// record's sequence number.
pub(crate) const SETTINGS_SEQ_TAG: &str = "strongroom.settings-seq";

/// Domain separation of the settings records' MAC.
const SETTINGS_MAC_LABEL: &[u8] = b"strongroom settings record v1\0";

/// The key that authenticates the settings records: 32 random bytes,
/// zeroized on drop, never printed.
pub(crate) struct SettingsKey(pub(crate) Zeroizing<[u8; 32]>);

impl SettingsKey {
    pub(crate) fn generate() -> Result<Self, Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *key).map_err(|_| Error::InvalidArgument {
            reason: "the operating system's random generator failed".into(),
        })?;
        Ok(Self(key))
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let key: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(key)))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // safe: HMAC takes keys of any length.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&*self.0)
            .expect("HMAC takes a key of any length");
        mac.update(SETTINGS_MAC_LABEL);
        mac
    }

    /// The MAC of `record` (its `mac` field left out).
    fn sign(&self, record: &SettingsRecord) -> String {
        let mut mac = self.mac();
        mac.update(&unsigned_bytes(record));
        layout::hex(&mac.finalize().into_bytes())
    }

    /// Whether `record`'s MAC is right (compared in constant time).
    fn verify(&self, record: &SettingsRecord) -> bool {
        let Some(tag) = layout::unhex(&record.mac) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(&unsigned_bytes(record));
        mac.verify_slice(&tag).is_ok()
    }
}

/// The bytes a settings record's MAC covers: the record with an empty
/// `mac`, as serialized.
fn unsigned_bytes(record: &SettingsRecord) -> Vec<u8> {
    let mut unsigned = record.clone();
    unsigned.mac = String::new();
    layout::to_json(&unsigned)
}

impl RecoveryVault {
    /// The encryption settings in force, and whether an item was ever
    /// protected (after which a customer key can no longer be enabled).
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Corrupt`] for a damaged settings record.
    pub async fn encryption(&self) -> Result<VaultEncryption, Error> {
        Ok(self.latest_settings().await?.1)
    }

    /// Changes the vault's encryption settings (R12): a customer-managed
    /// key only while no item was ever protected (a failed attempt
    /// included), never back to platform-managed; the customer key or its
    /// key vault may change later. A customer key is checked first with
    /// [`preflight`](Self::preflight) and refused on any problem, all of
    /// them listed. Its key vault must be attached
    /// ([`attach_key_vault`](Self::attach_key_vault)) and its identity
    /// known ([`identities`](Self::identities)).
    ///
    /// New recovery points are wrapped under the new key; existing ones
    /// keep theirs (a rewrap moves them).
    ///
    /// Infrastructure encryption
    /// ([`EncryptionSettings::with_infrastructure_encryption`], R16) is
    /// chosen with the first customer key and kept for good: every point
    /// is then sealed in two independent layers, the inner under a DEK
    /// wrapped by the customer key, the outer under a second DEK wrapped
    /// by the platform key (docs/FORMAT.md section 9).
    ///
    /// # Errors
    /// [`Error::Policy`] for a change the rules refuse, saying what to do
    /// instead; [`Error::Preflight`] with every problem found;
    /// [`Error::Store`].
    pub async fn set_encryption(&self, settings: EncryptionSettings) -> Result<(), Error> {
        settings
            .validate()
            .map_err(|field| Error::InvalidArgument {
                reason: field.to_string(),
            })?;
        // The rules first, before asking the key vault anything.
        let (_, current) = self.latest_settings().await?;
        current.check(&settings).map_err(Error::Policy)?;
        if let Some(key) = settings.key.customer_key() {
            let problems = self.preflight(key).await?;
            if !problems.is_empty() {
                return Err(Error::Preflight {
                    key: key.to_string(),
                    problems,
                });
            }
        }
        self.update_settings(|current| {
            current.check(&settings).map_err(Error::Policy)?;
            if current.settings() == &settings {
                return Ok(None);
            }
            let mut next = current.clone();
            next.set(settings.clone()).map_err(Error::Policy)?;
            Ok(Some(next))
        })
        .await
        .map(drop)
    }

    /// Checks a customer key as [`set_encryption`](Self::set_encryption)
    /// would (R13): the identity, its get / wrapKey / unwrapKey
    /// permissions, soft delete and purge protection, and the key itself
    /// (RSA 2048/3072/4096, enabled, in its validity window, wrap and
    /// unwrap allowed). Returns every problem, or none.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the key's key vault is not attached.
    pub async fn preflight(&self, key: &CustomerKey) -> Result<Vec<Problem>, Error> {
        let key_vault = self.key_vault(&key.key_vault)?;
        let identities = self.identities();
        let key = key.clone();
        blocking(move || {
            strongroom_policy::preflight(key_vault.as_ref(), &identities, &key, now_secs())
        })
        .await
    }

    /// The identities the vault acts as towards customer key vaults: its
    /// system-assigned identity (principal `strongroom/vault/<id>/system`),
    /// and the user-assigned ones added to this handle.
    #[must_use]
    pub fn identities(&self) -> VaultIdentities {
        self.inner
            .identities
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The principal of the vault's system-assigned identity: grant it
    /// get, wrapKey and unwrapKey in a customer key vault.
    #[must_use]
    pub fn system_identity(&self) -> Principal {
        system_principal(self.id())
    }

    /// Adds a user-assigned identity `name`, acting as `principal`, to
    /// this handle (like key vaults, identities are attached to a handle;
    /// the settings name them).
    pub fn add_user_assigned_identity(&self, name: &str, principal: Principal) {
        let mut identities = self
            .inner
            .identities
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *identities = identities.clone().with_user_assigned(name, principal);
    }

    /// Which key versions the vault's recovery points still need (R14):
    /// per version, how many points hold a copy of their DEK under it,
    /// and which points would become unrestorable if it were disabled.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Corrupt`].
    pub async fn key_health(&self) -> Result<KeyHealth, Error> {
        let mut points = Vec::new();
        for item in self.items().await? {
            for point in self.points(&item).await? {
                let name = format!("{}/{}", point.item, point.id);
                // Each layer needs one of its own keys: the outer layer
                // counts as a point of its own.
                if point.infrastructure_encrypted() {
                    points.push(PointKeys {
                        point: format!("{name} (infrastructure layer)"),
                        keys: point.infrastructure_keys,
                    });
                }
                points.push(PointKeys {
                    point: name,
                    keys: point.keys,
                });
            }
        }
        Ok(strongroom_policy::key_health(&points))
    }

    /// The key vault named `name`: the platform one, or an attached one.
    pub(crate) fn key_vault(&self, name: &str) -> Result<Arc<dyn KeyVault>, Error> {
        if name == self.inner.record.platform_key_vault {
            return Ok(Arc::clone(&self.inner.platform));
        }
        self.inner
            .key_vaults
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: format!("key vault {name:?} (attach it with attach_key_vault)"),
            })
    }

    /// The principal the vault reaches customer key vault `name` as: the
    /// identity the settings in force name for it, the system-assigned
    /// one otherwise.
    pub(crate) async fn principal_for_key_vault(&self, name: &str) -> Result<Principal, Error> {
        let (_, encryption) = self.latest_settings().await?;
        self.customer_principal(&encryption, name)
    }

    /// The principal for customer key vault `name` under `encryption`.
    fn customer_principal(
        &self,
        encryption: &VaultEncryption,
        name: &str,
    ) -> Result<Principal, Error> {
        match encryption.settings().key.customer_key() {
            Some(current) if current.key_vault == name => self.principal_for(&current.identity),
            _ => Ok(self.system_identity()),
        }
    }

    /// The principal the vault reaches `key`'s key vault as.
    fn principal_for(&self, identity: &Identity) -> Result<Principal, Error> {
        self.identities()
            .resolve(identity)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: format!("the vault's {identity} (add it to this handle)"),
            })
    }

    /// The wrappers of new points under the settings in force, from one
    /// reading of them: the data layer's
    /// ([`current_wrapper`](Self::current_wrapper)), and with
    /// infrastructure encryption the outer layer's, the platform key's
    /// latest enabled version.
    pub(crate) async fn current_wrappers(&self) -> Result<Wrappers, Error> {
        let (_, encryption) = self.latest_settings().await?;
        let data = self.wrapper_under(&encryption).await?;
        let infrastructure = if encryption.settings().infrastructure_encryption {
            Some(self.platform_wrapper().await?)
        } else {
            None
        };
        Ok(Wrappers {
            data,
            infrastructure,
        })
    }

    /// The platform key's latest enabled version, as a wrapper (A256KW).
    pub(crate) async fn platform_wrapper(&self) -> Result<Arc<dyn KeyWrapper>, Error> {
        let inner = Arc::clone(&self.inner);
        blocking(move || -> Result<Arc<dyn KeyWrapper>, Error> {
            let record = &inner.record;
            let wrapper = VaultKeyWrapper::new(
                Arc::clone(&inner.platform),
                inner.platform_principal.clone(),
                &record.platform_key,
                None,
                WrapAlgorithm::A256Kw,
            )
            .map_err(|e| platform_key_error(&inner, e))?;
            Ok(Arc::new(wrapper))
        })
        .await?
    }

    /// The wrapper that wraps new points' DEKs under the settings in
    /// force: the platform key, or the customer key as the vault's
    /// identity (RSA-OAEP-256; a versionless reference follows the latest
    /// enabled version).
    pub(crate) async fn current_wrapper(&self) -> Result<Arc<dyn KeyWrapper>, Error> {
        let (_, encryption) = self.latest_settings().await?;
        self.wrapper_under(&encryption).await
    }

    /// The data layer's wrapper under `encryption`.
    async fn wrapper_under(
        &self,
        encryption: &VaultEncryption,
    ) -> Result<Arc<dyn KeyWrapper>, Error> {
        let Some(key) = encryption.settings().key.customer_key() else {
            return self.platform_wrapper().await;
        };
        let (vault, principal, name, version, label) = (
            self.key_vault(&key.key_vault)?,
            self.principal_for(&key.identity)?,
            key.key_name.clone(),
            key.key_version.clone(),
            key.to_string(),
        );
        blocking(move || -> Result<Arc<dyn KeyWrapper>, Error> {
            let wrapper = VaultKeyWrapper::new(
                vault,
                principal,
                &name,
                version.as_deref(),
                WrapAlgorithm::RsaOaep256,
            )
            .map_err(|e| key_error(label, e))?;
            Ok(Arc::new(wrapper))
        })
        .await?
    }

    /// The wrappers that may open a point recorded under `keys`: the
    /// platform key, and each attached key vault's key a reference names,
    /// reached as the identity the settings in force name for that key
    /// vault (the system-assigned one otherwise).
    pub(crate) async fn unwrappers(
        &self,
        keys: &[strongroom_envelope::KeyRef],
    ) -> Result<Vec<Arc<dyn KeyWrapper>>, Error> {
        let (_, encryption) = self.latest_settings().await?;
        let mut candidates = Vec::new();
        for key in keys {
            let Ok(vault) = self.key_vault(&key.vault) else {
                continue;
            };
            let principal = if key.vault == self.inner.record.platform_key_vault {
                self.inner.platform_principal.clone()
            } else {
                self.customer_principal(&encryption, &key.vault)?
            };
            candidates.push((vault, principal, key.clone()));
        }
        blocking(move || -> Result<Vec<Arc<dyn KeyWrapper>>, Error> {
            let mut wrappers: Vec<Arc<dyn KeyWrapper>> = Vec::new();
            let mut first_error = None;
            for (vault, principal, key) in candidates {
                match VaultKeyWrapper::new(
                    vault,
                    principal,
                    &key.name,
                    Some(&key.version),
                    key.algorithm,
                ) {
                    Ok(w) => wrappers.push(Arc::new(w)),
                    Err(e) => {
                        first_error.get_or_insert_with(|| key_error(key.to_string(), e));
                    }
                }
            }
            match (wrappers.is_empty(), first_error) {
                (true, Some(e)) => Err(e),
                _ => Ok(wrappers),
            }
        })
        .await?
    }

    /// Records, durably and before anything else of a protection, that an
    /// item was (or is being) protected: from then on a customer key can
    /// no longer be enabled (R12), even if the protection fails.
    pub(crate) async fn record_protection_attempt(&self) -> Result<(), Error> {
        self.update_settings(|current| {
            if current.protection_attempted() {
                return Ok(None);
            }
            let mut next = current.clone();
            next.record_protection_attempt();
            Ok(Some(next))
        })
        .await
        .map(drop)
    }

    /// The settings record in force and its sequence number (0 and the
    /// defaults before any was written): authenticated, and not older
    /// than the newest the platform key vault has witnessed.
    async fn latest_settings(&self) -> Result<(u64, VaultEncryption), Error> {
        let layout = &self.inner.layout;
        let store = self.inner.store.as_ref();
        // The witness first, then the list: a record is witnessed only
        // after its put completed, so every record the witness counts is
        // in a list made after it. (The other order races a writer: a list
        // made just before its put, a witness read just after.)
        let witnessed = self.witnessed_settings_seq().await?;
        let latest = store::list(store, &layout.settings_dir())
            .await?
            .iter()
            .filter_map(|meta| layout.settings_seq(&meta.location))
            .max();
        let seq = latest.unwrap_or(0);
        if seq < witnessed {
            return Err(Error::RolledBack {
                what: format!(
                    "the vault's settings: the newest record in the store is number {seq}, but number {witnessed} was written; restore the settings records from a copy of the store"
                ),
            });
        }
        if seq == 0 {
            return Ok((0, VaultEncryption::new()));
        }
        let path = layout.settings(seq);
        let bytes = store::get_small(store, &path, layout::MAX_RECORD)
            .await?
            .ok_or_else(|| layout::corrupt(&path, "listed, then gone"))?;
        let record: SettingsRecord = layout::parse(&path, &bytes)?;
        layout::check_ours(&path, record.format, &record.vault_id, self.id())?;
        if record.seq != seq {
            return Err(layout::corrupt(&path, "it holds another sequence number"));
        }
        if !self.inner.settings_key.verify(&record) {
            return Err(layout::corrupt(
                &path,
                "its MAC does not verify: it was not written by this vault",
            ));
        }
        if seq > witnessed {
            // A writer stopped between its record and the witness (or
            // lost a race to update it): catch the witness up. A failure
            // here leaves it behind, which the next write fixes.
            let _ = self.witness_settings_seq(seq).await;
        }
        Ok((seq, record.encryption))
    }

    /// The newest settings sequence number the platform key vault has
    /// seen (0 when none).
    async fn witnessed_settings_seq(&self) -> Result<u64, Error> {
        let inner = Arc::clone(&self.inner);
        blocking(move || -> Result<u64, Error> {
            let record = &inner.record;
            let info = inner
                .platform
                .get_key(
                    &inner.platform_principal,
                    &record.platform_key,
                    Some(&record.platform_key_version),
                )
                .map_err(|e| platform_key_error(&inner, e))?;
            match info.attributes.tags.get(SETTINGS_SEQ_TAG) {
                None => Ok(0),
                Some(seq) => seq.parse().map_err(|_| Error::Corrupt {
                    path: format!("{}/{}", record.platform_key_vault, record.platform_key),
                    reason: format!("its tag {SETTINGS_SEQ_TAG} is not a number"),
                }),
            }
        })
        .await?
    }

    /// Records `seq` as the newest settings record in the platform key
    /// vault, unless a newer one is recorded already.
    async fn witness_settings_seq(&self, seq: u64) -> Result<(), Error> {
        let inner = Arc::clone(&self.inner);
        blocking(move || -> Result<(), Error> {
            let record = &inner.record;
            let platform = &inner.platform;
            let principal = &inner.platform_principal;
            let info = platform
                .get_key(
                    principal,
                    &record.platform_key,
                    Some(&record.platform_key_version),
                )
                .map_err(|e| platform_key_error(&inner, e))?;
            let current = info
                .attributes
                .tags
                .get(SETTINGS_SEQ_TAG)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            if current >= seq {
                return Ok(());
            }
            let mut tags = info.attributes.tags;
            tags.insert(SETTINGS_SEQ_TAG.to_owned(), seq.to_string());
            platform
                .update_key(
                    principal,
                    &record.platform_key,
                    &record.platform_key_version,
                    AttributeUpdate {
                        tags: Some(tags),
                        ..AttributeUpdate::default()
                    },
                )
                .map(drop)
                .map_err(|e| platform_key_error(&inner, e))
        })
        .await?
    }

    /// Applies `change` to the settings in force and writes the result as
    /// the next record; `None` from `change` leaves them as they are.
    /// Returns the settings in force afterwards.
    async fn update_settings(
        &self,
        change: impl Fn(&VaultEncryption) -> Result<Option<VaultEncryption>, Error>,
    ) -> Result<VaultEncryption, Error> {
        for _ in 0..SETTINGS_RETRIES {
            let (seq, current) = self.latest_settings().await?;
            let Some(next) = change(&current)? else {
                return Ok(current);
            };
            let mut record = SettingsRecord {
                format: layout::FORMAT,
                vault_id: self.id().to_owned(),
                seq: seq + 1,
                encryption: next.clone(),
                mac: String::new(),
            };
            record.mac = self.inner.settings_key.sign(&record);
            let path = self.inner.layout.settings(seq + 1);
            if store::put_new(self.inner.store.as_ref(), &path, layout::to_json(&record)).await? {
                self.witness_settings_seq(seq + 1).await?;
                return Ok(next);
            }
        }
        Err(Error::Conflict {
            what: "the vault's encryption settings kept changing under this update".into(),
        })
    }
}

/// The keys new recovery points are wrapped under.
pub(crate) struct Wrappers {
    /// The data layer's: the platform key, or the customer key.
    pub(crate) data: Arc<dyn KeyWrapper>,
    /// With infrastructure encryption, the outer layer's: the platform
    /// key.
    pub(crate) infrastructure: Option<Arc<dyn KeyWrapper>>,
}

/// A platform key vault error about the vault's own key.
fn platform_key_error(inner: &crate::vault::Inner, e: strongroom_keyvault::VaultError) -> Error {
    key_error(
        format!(
            "{}/{}",
            inner.record.platform_key_vault, inner.record.platform_key
        ),
        e,
    )
}

/// The principal of vault `id`'s system-assigned identity.
pub(crate) fn system_principal(id: &str) -> Principal {
    Principal::new(format!("strongroom/vault/{id}/system"))
}
