//! A delegating key vault for the one problem no real vault can show.

use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    AttributeUpdate, KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permissions, Principal,
    VaultError, VaultProperties,
};

/// A real [`MemoryKeyVault`] that reports soft delete off: no vault of ours
/// can be made so (they keep 7 to 90 days), but any [`KeyVault`] may report
/// it. Every call goes to the real vault; only `properties` is changed.
pub struct ReportsSoftDeleteOff(pub MemoryKeyVault);

impl KeyVault for ReportsSoftDeleteOff {
    fn properties(&self) -> Result<VaultProperties, VaultError> {
        let mut properties = self.0.properties()?;
        properties.soft_delete_retention_days = 0;
        Ok(properties)
    }
    fn enable_purge_protection(&self) -> Result<(), VaultError> {
        self.0.enable_purge_protection()
    }
    fn set_access_policy(&self, p: &Principal, perms: Permissions) -> Result<(), VaultError> {
        self.0.set_access_policy(p, perms)
    }
    fn access_policy(&self, p: &Principal) -> Result<Permissions, VaultError> {
        self.0.access_policy(p)
    }
    fn create_key(
        &self,
        c: &Principal,
        n: &str,
        t: KeyType,
        o: KeyOptions,
    ) -> Result<strongroom_keyvault::KeyVersionInfo, VaultError> {
        self.0.create_key(c, n, t, o)
    }
    fn import_key(
        &self,
        c: &Principal,
        n: &str,
        k: strongroom_keyvault::KeyImport<'_>,
        o: KeyOptions,
    ) -> Result<strongroom_keyvault::KeyVersionInfo, VaultError> {
        self.0.import_key(c, n, k, o)
    }
    fn get_key(
        &self,
        c: &Principal,
        n: &str,
        v: Option<&str>,
    ) -> Result<strongroom_keyvault::KeyVersionInfo, VaultError> {
        self.0.get_key(c, n, v)
    }
    fn list_keys(
        &self,
        c: &Principal,
    ) -> Result<Vec<strongroom_keyvault::KeyVersionInfo>, VaultError> {
        self.0.list_keys(c)
    }
    fn list_versions(
        &self,
        c: &Principal,
        n: &str,
    ) -> Result<Vec<strongroom_keyvault::KeyVersionInfo>, VaultError> {
        self.0.list_versions(c, n)
    }
    fn update_key(
        &self,
        c: &Principal,
        n: &str,
        v: &str,
        u: AttributeUpdate,
    ) -> Result<strongroom_keyvault::KeyVersionInfo, VaultError> {
        self.0.update_key(c, n, v, u)
    }
    fn rotate_key(
        &self,
        c: &Principal,
        n: &str,
        o: KeyOptions,
    ) -> Result<strongroom_keyvault::KeyVersionInfo, VaultError> {
        self.0.rotate_key(c, n, o)
    }
    fn delete_key(
        &self,
        c: &Principal,
        n: &str,
    ) -> Result<strongroom_keyvault::DeletedKeyInfo, VaultError> {
        self.0.delete_key(c, n)
    }
    fn list_deleted_keys(
        &self,
        c: &Principal,
    ) -> Result<Vec<strongroom_keyvault::DeletedKeyInfo>, VaultError> {
        self.0.list_deleted_keys(c)
    }
    fn recover_key(
        &self,
        c: &Principal,
        n: &str,
    ) -> Result<strongroom_keyvault::KeyVersionInfo, VaultError> {
        self.0.recover_key(c, n)
    }
    fn purge_key(&self, c: &Principal, n: &str) -> Result<(), VaultError> {
        self.0.purge_key(c, n)
    }
    fn wrap_key(
        &self,
        c: &Principal,
        n: &str,
        v: Option<&str>,
        a: WrapAlgorithm,
        dek: &[u8],
    ) -> Result<strongroom_keyvault::Wrapped, VaultError> {
        self.0.wrap_key(c, n, v, a, dek)
    }
    fn unwrap_key(
        &self,
        c: &Principal,
        n: &str,
        v: &str,
        a: WrapAlgorithm,
        w: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, VaultError> {
        self.0.unwrap_key(c, n, v, a, w)
    }
    fn audit_log(&self) -> Result<Vec<strongroom_keyvault::AuditEntry>, VaultError> {
        self.0.audit_log()
    }
    fn verify_audit_log(&self) -> Result<(), VaultError> {
        self.0.verify_audit_log()
    }
    fn verify_audit_entries(
        &self,
        entries: &[strongroom_keyvault::AuditEntry],
    ) -> Result<(), VaultError> {
        self.0.verify_audit_entries(entries)
    }
    fn export_audit_log(&self) -> Result<String, VaultError> {
        self.0.export_audit_log()
    }
    fn set_secret(
        &self,
        c: &Principal,
        n: &str,
        v: &[u8],
        o: strongroom_keyvault::SecretOptions,
    ) -> Result<strongroom_keyvault::SecretVersionInfo, VaultError> {
        self.0.set_secret(c, n, v, o)
    }
    fn get_secret(
        &self,
        c: &Principal,
        n: &str,
        v: Option<&str>,
    ) -> Result<strongroom_keyvault::Secret, VaultError> {
        self.0.get_secret(c, n, v)
    }
    fn list_secrets(
        &self,
        c: &Principal,
    ) -> Result<Vec<strongroom_keyvault::SecretVersionInfo>, VaultError> {
        self.0.list_secrets(c)
    }
    fn list_secret_versions(
        &self,
        c: &Principal,
        n: &str,
    ) -> Result<Vec<strongroom_keyvault::SecretVersionInfo>, VaultError> {
        self.0.list_secret_versions(c, n)
    }
    fn update_secret(
        &self,
        c: &Principal,
        n: &str,
        v: &str,
        u: strongroom_keyvault::SecretUpdate,
    ) -> Result<strongroom_keyvault::SecretVersionInfo, VaultError> {
        self.0.update_secret(c, n, v, u)
    }
    fn delete_secret(
        &self,
        c: &Principal,
        n: &str,
    ) -> Result<strongroom_keyvault::DeletedSecretInfo, VaultError> {
        self.0.delete_secret(c, n)
    }
    fn list_deleted_secrets(
        &self,
        c: &Principal,
    ) -> Result<Vec<strongroom_keyvault::DeletedSecretInfo>, VaultError> {
        self.0.list_deleted_secrets(c)
    }
    fn recover_secret(
        &self,
        c: &Principal,
        n: &str,
    ) -> Result<strongroom_keyvault::SecretVersionInfo, VaultError> {
        self.0.recover_secret(c, n)
    }
    fn purge_secret(&self, c: &Principal, n: &str) -> Result<(), VaultError> {
        self.0.purge_secret(c, n)
    }
    fn backup_key(&self, c: &Principal, n: &str) -> Result<Vec<u8>, VaultError> {
        self.0.backup_key(c, n)
    }
    fn restore_key(
        &self,
        c: &Principal,
        b: &[u8],
    ) -> Result<strongroom_keyvault::KeyVersionInfo, VaultError> {
        self.0.restore_key(c, b)
    }
    fn backup_secret(&self, c: &Principal, n: &str) -> Result<Vec<u8>, VaultError> {
        self.0.backup_secret(c, n)
    }
    fn restore_secret(
        &self,
        c: &Principal,
        b: &[u8],
    ) -> Result<strongroom_keyvault::SecretVersionInfo, VaultError> {
        self.0.restore_secret(c, b)
    }
    fn set_owner_key(&self, o: &strongroom_keyvault::OwnerKey) -> Result<(), VaultError> {
        self.0.set_owner_key(o)
    }
    fn owner_id(&self) -> Result<Option<String>, VaultError> {
        self.0.owner_id()
    }
}
