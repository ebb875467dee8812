//! The encryption rules of a Strongroom recovery vault (DESIGN.md R11–R16):
//! its settings, the changes it accepts, the preflight checks of a
//! customer-managed key and which key versions its recovery points still
//! need. Sans I/O: the only calls out are through the
//! [`KeyVault`](strongroom_keyvault::KeyVault) trait, in [`preflight`].
//!
//! # Platform-managed by default, a customer key before the first backup
//!
//! ```
//! use strongroom_keyvault::{
//!     KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permissions, Principal, VaultProperties,
//! };
//! use strongroom_policy::{
//!     preflight, CustomerKey, EncryptionSettings, TransitionError, VaultEncryption,
//!     VaultIdentities,
//! };
//!
//! // A new vault uses a platform-managed key: nothing to set up (R11).
//! let mut vault = VaultEncryption::new();
//! assert_eq!(vault.settings(), &EncryptionSettings::platform_managed());
//!
//! // The customer's key vault: purge protection on, an RSA key, and the
//! // recovery vault's identity allowed get, wrapKey and unwrapKey.
//! let kv = MemoryKeyVault::new(VaultProperties::new("contoso-kv"))?;
//! kv.enable_purge_protection()?;
//! let admin = Principal::new("admin@contoso");
//! kv.set_access_policy(&admin, Permissions::all())?;
//! kv.create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())?;
//! let system = Principal::new("backup-vault-7/system");
//! kv.set_access_policy(&system, Permissions::key_user())?;
//! let identities = VaultIdentities::new().with_system(system);
//!
//! // Every problem at once (R13), then the switch (R12).
//! let key = CustomerKey::new("contoso-kv", "cmk"); // versionless
//! assert_eq!(preflight(&kv, &identities, &key, 0), []);
//! vault.set(EncryptionSettings::customer_managed(key))?;
//!
//! // Once an item was protected (or only attempted), there is no way back.
//! vault.record_protection_attempt();
//! let refused = vault.set(EncryptionSettings::platform_managed()).unwrap_err();
//! assert_eq!(refused, TransitionError::NoWayBackToPlatformManaged);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Every problem at once
//!
//! [`preflight`] does not stop at the first problem: a key vault set up
//! wrong in several ways gets one list, each [`Problem`] saying what to do.
//!
//! ```
//! use std::sync::Arc;
//! use strongroom_keyvault::{
//!     AttributeUpdate, KeyOptions, KeyType, KeyVault, ManualClock, MemoryKeyVault, Permission,
//!     Permissions, Principal, VaultProperties,
//! };
//! use strongroom_policy::{preflight, CustomerKey, Identity, Problem, VaultIdentities};
//!
//! let clock = Arc::new(ManualClock::new(1_000));
//! let kv = MemoryKeyVault::with_clock(VaultProperties::new("contoso-kv"), clock.clone())?;
//! let admin = Principal::new("admin");
//! kv.set_access_policy(&admin, Permissions::all())?;
//! let options = KeyOptions { expires: Some(2_000), ..KeyOptions::default() };
//! kv.create_key(&admin, "aes", KeyType::Aes256, options)?;
//! clock.set(3_000);
//!
//! let uami = Principal::new("uami-backup");
//! kv.set_access_policy(&uami, Permissions::NONE.with(Permission::Get))?;
//! let identities = VaultIdentities::new().with_user_assigned("uami-backup", uami.clone());
//! let key = CustomerKey::new("contoso-kv", "aes")
//!     .with_identity(Identity::UserAssigned("uami-backup".into()));
//!
//! let problems = preflight(&kv, &identities, &key, 3_000);
//! assert_eq!(problems.len(), 5);
//! assert_eq!(problems[0], Problem::PurgeProtectionOff);
//! assert_eq!(
//!     problems[1].to_string(),
//!     "principal uami-backup lacks the wrapKey permission on the key vault: grant it get, wrapKey and unwrapKey in the key vault's access policy"
//! );
//! assert!(matches!(problems[3], Problem::NotRsa { key_type: KeyType::Aes256 }));
//! assert!(matches!(problems[4], Problem::Expired { expires: 2_000, .. }));
//! # Ok::<(), strongroom_keyvault::VaultError>(())
//! ```
//!
//! # Which key versions are still needed
//!
//! [`key_health`] reads the key references of recovery points' wrapped DEK
//! copies and says, per key version, how many points still need it and for
//! which it holds the only copy (R14).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod health;
mod identities;
mod preflight;
pub mod settings;
mod transition;

pub use health::{KeyHealth, PointKeys, VersionHealth, key_health};
pub use identities::VaultIdentities;
pub use preflight::{Problem, preflight};
pub use settings::{
    CustomerKey, EncryptionSettings, Identity, InvalidField, KeySource, MAX_SETTINGS_JSON_BYTES,
    SettingsField, SettingsParseError,
};
pub use transition::{TransitionError, VaultEncryption};

/// The examples in `README.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
