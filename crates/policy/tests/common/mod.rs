//! A customer's key vault set up the way R13 asks, for the preflight tests
//! to break one thing at a time.

#![allow(dead_code)] // each test file uses its own part

mod reports_soft_delete_off;

pub use reports_soft_delete_off::ReportsSoftDeleteOff;

use std::sync::Arc;

use strongroom_keyvault::{
    KeyOptions, KeyType, KeyVault, KeyVersionInfo, ManualClock, MemoryKeyVault, Permissions,
    Principal, VaultProperties,
};
use strongroom_policy::{CustomerKey, VaultIdentities};

/// The key vault's name.
pub const KV: &str = "contoso-kv";
/// The customer key's name.
pub const KEY: &str = "cmk";
/// The time the vault's clock shows and preflight checks at.
pub const NOW: u64 = 1_000_000;

/// A key vault with purge protection on, an RSA-2048 key `cmk` and the
/// recovery vault's system identity allowed get, wrapKey and unwrapKey.
pub struct Setup {
    pub kv: MemoryKeyVault,
    pub clock: Arc<ManualClock>,
    pub admin: Principal,
    pub system: Principal,
    pub identities: VaultIdentities,
    pub key: KeyVersionInfo,
}

impl Setup {
    pub fn new() -> Self {
        Self::with_key(KeyType::Rsa2048, KeyOptions::default())
    }

    pub fn with_key(key_type: KeyType, options: KeyOptions) -> Self {
        let clock = Arc::new(ManualClock::new(NOW));
        let kv = MemoryKeyVault::with_clock(VaultProperties::new(KV), clock.clone()).unwrap();
        kv.enable_purge_protection().unwrap();
        let admin = Principal::new("admin@contoso");
        kv.set_access_policy(&admin, Permissions::all()).unwrap();
        let key = kv.create_key(&admin, KEY, key_type, options).unwrap();
        let system = Principal::new("backup-vault-7/system");
        kv.set_access_policy(&system, Permissions::key_user())
            .unwrap();
        let identities = VaultIdentities::new().with_system(system.clone());
        Self {
            kv,
            clock,
            admin,
            system,
            identities,
            key,
        }
    }

    /// A versionless reference to `cmk`, reached as the system identity.
    pub fn reference(&self) -> CustomerKey {
        CustomerKey::new(KV, KEY)
    }
}
