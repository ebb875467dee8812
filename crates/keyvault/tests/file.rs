//! FileKeyVault: the conformance suite (each test in a fresh directory),
//! persistence across reopen, root keys, corrupt and foreign files, sealing
//! at rest, and several vault values on one directory.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64ct::{Base64, Base64Url, Base64UrlUnpadded, Encoding};
use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    AttributeUpdate, AuditEntry, DeletedKeyInfo, FileKeyVault, KdfParams, KeyImport, KeyOptions,
    KeyType, KeyVault, KeyVersionInfo, ManualClock, OwnerKey, Passphrase, Permission, Permissions,
    Principal, RootKeySource, SecretOptions, VaultError, VaultProperties, Wrapped,
};
use zeroize::Zeroizing;

/// A file vault in a temporary directory that lives as long as it does.
struct InTempDir {
    vault: FileKeyVault,
    _tmp: tempfile::TempDir,
}

/// A fresh file vault for each conformance test: a new directory, a new key
/// file.
fn make(clock: Arc<ManualClock>) -> Box<dyn KeyVault> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let key_file = tmp.path().join("root.key");
    FileKeyVault::generate_key_file(&key_file).expect("key file");
    let properties = VaultProperties {
        name: common::VAULT.to_owned(),
        soft_delete_retention_days: 7,
        purge_protection: false,
    };
    let vault = FileKeyVault::create_with_clock(
        tmp.path().join("vault"),
        properties,
        RootKeySource::KeyFile(key_file),
        clock,
    )
    .expect("file vault");
    Box::new(InTempDir { vault, _tmp: tmp })
}

keyvault_conformance!(make);

/// Delegates every call to the file vault (the temporary directory only
/// rides along).
impl KeyVault for InTempDir {
    fn properties(&self) -> Result<VaultProperties, VaultError> {
        self.vault.properties()
    }
    fn enable_purge_protection(&self) -> Result<(), VaultError> {
        self.vault.enable_purge_protection()
    }
    fn set_access_policy(&self, p: &Principal, perms: Permissions) -> Result<(), VaultError> {
        self.vault.set_access_policy(p, perms)
    }
    fn access_policy(&self, p: &Principal) -> Result<Permissions, VaultError> {
        self.vault.access_policy(p)
    }
    fn create_key(
        &self,
        c: &Principal,
        name: &str,
        key_type: KeyType,
        options: KeyOptions,
    ) -> Result<KeyVersionInfo, VaultError> {
        self.vault.create_key(c, name, key_type, options)
    }
    fn import_key(
        &self,
        c: &Principal,
        name: &str,
        key: KeyImport<'_>,
        options: KeyOptions,
    ) -> Result<KeyVersionInfo, VaultError> {
        self.vault.import_key(c, name, key, options)
    }
    fn get_key(
        &self,
        c: &Principal,
        name: &str,
        version: Option<&str>,
    ) -> Result<KeyVersionInfo, VaultError> {
        self.vault.get_key(c, name, version)
    }
    fn list_keys(&self, c: &Principal) -> Result<Vec<KeyVersionInfo>, VaultError> {
        self.vault.list_keys(c)
    }
    fn list_versions(&self, c: &Principal, name: &str) -> Result<Vec<KeyVersionInfo>, VaultError> {
        self.vault.list_versions(c, name)
    }
    fn update_key(
        &self,
        c: &Principal,
        name: &str,
        version: &str,
        update: AttributeUpdate,
    ) -> Result<KeyVersionInfo, VaultError> {
        self.vault.update_key(c, name, version, update)
    }
    fn rotate_key(
        &self,
        c: &Principal,
        name: &str,
        options: KeyOptions,
    ) -> Result<KeyVersionInfo, VaultError> {
        self.vault.rotate_key(c, name, options)
    }
    fn delete_key(&self, c: &Principal, name: &str) -> Result<DeletedKeyInfo, VaultError> {
        self.vault.delete_key(c, name)
    }
    fn list_deleted_keys(&self, c: &Principal) -> Result<Vec<DeletedKeyInfo>, VaultError> {
        self.vault.list_deleted_keys(c)
    }
    fn recover_key(&self, c: &Principal, name: &str) -> Result<KeyVersionInfo, VaultError> {
        self.vault.recover_key(c, name)
    }
    fn purge_key(&self, c: &Principal, name: &str) -> Result<(), VaultError> {
        self.vault.purge_key(c, name)
    }
    fn wrap_key(
        &self,
        c: &Principal,
        name: &str,
        version: Option<&str>,
        algorithm: WrapAlgorithm,
        dek: &[u8],
    ) -> Result<Wrapped, VaultError> {
        self.vault.wrap_key(c, name, version, algorithm, dek)
    }
    fn unwrap_key(
        &self,
        c: &Principal,
        name: &str,
        version: &str,
        algorithm: WrapAlgorithm,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.vault.unwrap_key(c, name, version, algorithm, wrapped)
    }
    fn audit_log(&self) -> Result<Vec<AuditEntry>, VaultError> {
        self.vault.audit_log()
    }
    fn verify_audit_log(&self) -> Result<(), VaultError> {
        self.vault.verify_audit_log()
    }
    fn verify_audit_entries(&self, entries: &[AuditEntry]) -> Result<(), VaultError> {
        self.vault.verify_audit_entries(entries)
    }
    fn export_audit_log(&self) -> Result<String, VaultError> {
        self.vault.export_audit_log()
    }
    fn set_secret(
        &self,
        c: &Principal,
        n: &str,
        v: &[u8],
        o: SecretOptions,
    ) -> Result<strongroom_keyvault::SecretVersionInfo, VaultError> {
        self.vault.set_secret(c, n, v, o)
    }
    fn get_secret(
        &self,
        c: &Principal,
        n: &str,
        v: Option<&str>,
    ) -> Result<strongroom_keyvault::Secret, VaultError> {
        self.vault.get_secret(c, n, v)
    }
    fn list_secrets(
        &self,
        c: &Principal,
    ) -> Result<Vec<strongroom_keyvault::SecretVersionInfo>, VaultError> {
        self.vault.list_secrets(c)
    }
    fn list_secret_versions(
        &self,
        c: &Principal,
        n: &str,
    ) -> Result<Vec<strongroom_keyvault::SecretVersionInfo>, VaultError> {
        self.vault.list_secret_versions(c, n)
    }
    fn update_secret(
        &self,
        c: &Principal,
        n: &str,
        v: &str,
        u: strongroom_keyvault::SecretUpdate,
    ) -> Result<strongroom_keyvault::SecretVersionInfo, VaultError> {
        self.vault.update_secret(c, n, v, u)
    }
    fn delete_secret(
        &self,
        c: &Principal,
        n: &str,
    ) -> Result<strongroom_keyvault::DeletedSecretInfo, VaultError> {
        self.vault.delete_secret(c, n)
    }
    fn list_deleted_secrets(
        &self,
        c: &Principal,
    ) -> Result<Vec<strongroom_keyvault::DeletedSecretInfo>, VaultError> {
        self.vault.list_deleted_secrets(c)
    }
    fn recover_secret(
        &self,
        c: &Principal,
        n: &str,
    ) -> Result<strongroom_keyvault::SecretVersionInfo, VaultError> {
        self.vault.recover_secret(c, n)
    }
    fn purge_secret(&self, c: &Principal, n: &str) -> Result<(), VaultError> {
        self.vault.purge_secret(c, n)
    }
    fn backup_key(&self, c: &Principal, n: &str) -> Result<Vec<u8>, VaultError> {
        self.vault.backup_key(c, n)
    }
    fn restore_key(&self, c: &Principal, b: &[u8]) -> Result<KeyVersionInfo, VaultError> {
        self.vault.restore_key(c, b)
    }
    fn backup_secret(&self, c: &Principal, n: &str) -> Result<Vec<u8>, VaultError> {
        self.vault.backup_secret(c, n)
    }
    fn restore_secret(
        &self,
        c: &Principal,
        b: &[u8],
    ) -> Result<strongroom_keyvault::SecretVersionInfo, VaultError> {
        self.vault.restore_secret(c, b)
    }
    fn set_owner_key(&self, o: &OwnerKey) -> Result<(), VaultError> {
        self.vault.set_owner_key(o)
    }
    fn owner_id(&self) -> Result<Option<String>, VaultError> {
        self.vault.owner_id()
    }
}

const T0: u64 = 1_750_000_000;

fn admin() -> Principal {
    Principal::new("admin")
}

fn props() -> VaultProperties {
    let mut p = VaultProperties::new("kv-file");
    p.soft_delete_retention_days = 7;
    p
}

/// Cheap Argon2id for tests (the default takes 64 MiB and 3 passes).
fn cheap_kdf() -> KdfParams {
    KdfParams::new(256, 1, 1).expect("valid test parameters")
}

fn passphrase(p: &str) -> RootKeySource {
    RootKeySource::Passphrase(Passphrase::from(p).with_kdf(cheap_kdf()))
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    key_file: PathBuf,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let key_file = tmp.path().join("root.key");
        FileKeyVault::generate_key_file(&key_file).expect("key file");
        Self {
            dir: tmp.path().join("vault"),
            key_file,
            clock: Arc::new(ManualClock::new(T0)),
            _tmp: tmp,
        }
    }

    fn root(&self) -> RootKeySource {
        RootKeySource::KeyFile(self.key_file.clone())
    }

    fn create(&self) -> FileKeyVault {
        let vault =
            FileKeyVault::create_with_clock(&self.dir, props(), self.root(), self.clock.clone())
                .expect("create");
        vault
            .set_access_policy(&admin(), Permissions::all())
            .expect("policy");
        vault
    }

    fn open(&self) -> Result<FileKeyVault, VaultError> {
        FileKeyVault::open_with_clock(&self.dir, self.root(), self.clock.clone())
    }
}

fn open_err(dir: &Path, root: RootKeySource) -> VaultError {
    match FileKeyVault::open(dir, root) {
        Ok(v) => panic!("opened {v:?}, expected an error"),
        Err(e) => e,
    }
}

fn assert_corrupt(err: VaultError, file: &str, reason_part: &str) {
    match err {
        VaultError::Corrupt { path, reason } => {
            assert_eq!(
                path.file_name().and_then(|n| n.to_str()),
                Some(file),
                "wrong file in {reason}"
            );
            assert!(
                reason.contains(reason_part),
                "reason {reason:?} does not mention {reason_part:?}"
            );
        }
        other => panic!("expected Corrupt({file}), got {other:?}"),
    }
}

/// A JWK for a known AES-256 key.
fn oct_jwk(key: &[u8; 32]) -> String {
    format!(
        r#"{{"kty":"oct","k":"{}"}}"#,
        Base64UrlUnpadded::encode_string(key)
    )
}

#[test]
fn reopen_keeps_keys_versions_access_deleted_keys_and_audit_log() {
    let fx = Fixture::new();
    let vault = fx.create();
    let reader = Principal::new("backup-identity");
    vault
        .set_access_policy(
            &reader,
            Permissions::NONE
                .with(Permission::Get)
                .with(Permission::WrapKey)
                .with(Permission::UnwrapKey),
        )
        .unwrap();
    let aes = vault
        .create_key(&admin(), "aes", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let rsa = vault
        .create_key(&admin(), "rsa", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    fx.clock.advance(10);
    let rsa2 = vault
        .rotate_key(&admin(), "rsa", KeyOptions::default())
        .unwrap();
    vault
        .update_key(
            &admin(),
            "aes",
            &aes.version,
            AttributeUpdate {
                expires: Some(Some(T0 + 1_000_000)),
                ..AttributeUpdate::default()
            },
        )
        .unwrap();
    let imported_key = [0x5a; 32];
    vault
        .import_key(
            &admin(),
            "byok",
            KeyImport::Jwk(&oct_jwk(&imported_key)),
            KeyOptions::default(),
        )
        .unwrap();
    vault
        .create_key(&admin(), "gone", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    vault.delete_key(&admin(), "gone").unwrap();
    vault.enable_purge_protection().unwrap();

    let dek = [0x11; 32];
    let w_aes = vault
        .wrap_key(&reader, "aes", None, WrapAlgorithm::A256Kw, &dek)
        .unwrap();
    let w_rsa1 = vault
        .wrap_key(
            &reader,
            "rsa",
            Some(&rsa.version),
            WrapAlgorithm::RsaOaep256,
            &dek,
        )
        .unwrap();
    let w_rsa2 = vault
        .wrap_key(&reader, "rsa", None, WrapAlgorithm::RsaOaep, &dek)
        .unwrap();
    assert_eq!(w_rsa2.version, rsa2.version);
    let w_byok = vault
        .wrap_key(&reader, "byok", None, WrapAlgorithm::A256Kw, &dek)
        .unwrap();

    let before = (
        vault.properties().unwrap(),
        vault.list_keys(&admin()).unwrap(),
        vault.list_versions(&admin(), "rsa").unwrap(),
        vault.list_versions(&admin(), "aes").unwrap(),
        vault.list_deleted_keys(&admin()).unwrap(),
        vault.access_policy(&reader).unwrap(),
    );
    let log_before = vault.audit_log().unwrap();
    drop(vault);

    let vault = fx.open().unwrap();
    assert_eq!(vault.audit_log().unwrap(), log_before);
    let after = (
        vault.properties().unwrap(),
        vault.list_keys(&admin()).unwrap(),
        vault.list_versions(&admin(), "rsa").unwrap(),
        vault.list_versions(&admin(), "aes").unwrap(),
        vault.list_deleted_keys(&admin()).unwrap(),
        vault.access_policy(&reader).unwrap(),
    );
    assert_eq!(before, after);
    assert!(after.0.purge_protection);
    assert_eq!(after.2.len(), 2);
    assert_eq!(after.4.len(), 1);
    assert_eq!(after.4[0].name, "gone");
    vault.verify_audit_log().unwrap();

    for (name, w, alg) in [
        ("aes", &w_aes, WrapAlgorithm::A256Kw),
        ("rsa", &w_rsa1, WrapAlgorithm::RsaOaep256),
        ("rsa", &w_rsa2, WrapAlgorithm::RsaOaep),
        ("byok", &w_byok, WrapAlgorithm::A256Kw),
    ] {
        let back = vault
            .unwrap_key(&reader, name, &w.version, alg, &w.wrapped)
            .unwrap();
        assert_eq!(back.as_slice(), dek, "{name}");
    }
    // The imported key really is the one we gave: unwrap under it in
    // software.
    let kek =
        strongroom_aes::kw::Aes256Kw::new(&strongroom_aes::Aes256Key::from_bytes(imported_key));
    assert_eq!(kek.unwrap(&w_byok.wrapped).unwrap().as_slice(), dek);

    // The log kept growing across the reopen, and still verifies.
    let n = vault.audit_log().unwrap().len();
    vault.get_key(&reader, "aes", None).unwrap();
    assert_eq!(vault.audit_log().unwrap().len(), n + 1);
    vault.verify_audit_log().unwrap();
    // The deleted key can still be recovered after the reopen.
    vault.recover_key(&admin(), "gone").unwrap();
}

#[test]
fn passphrase_vault_opens_only_with_its_passphrase() {
    let fx = Fixture::new();
    let vault =
        FileKeyVault::create(&fx.dir, props(), passphrase("correct horse battery")).unwrap();
    vault
        .set_access_policy(&admin(), Permissions::all())
        .unwrap();
    vault
        .create_key(&admin(), "k", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let w = vault
        .wrap_key(&admin(), "k", None, WrapAlgorithm::A256Kw, &[3; 32])
        .unwrap();
    drop(vault);

    // vault.json records the parameters and salt, not the passphrase.
    let header = fs::read_to_string(fx.dir.join("vault.json")).unwrap();
    assert!(header.contains("\"argon2id\""));
    assert!(header.contains("\"memory_kib\": 256"));
    assert!(!header.contains("horse"));

    assert!(matches!(
        open_err(&fx.dir, passphrase("correct horse battery!")),
        VaultError::WrongRootKey
    ));
    assert!(matches!(
        open_err(&fx.dir, passphrase("")),
        VaultError::WrongRootKey
    ));
    // The kind of root key is part of the vault: a key file does not open
    // a passphrase vault.
    assert!(matches!(
        open_err(&fx.dir, fx.root()),
        VaultError::WrongRootKey
    ));

    // The parameters given at open do not matter: the vault's are used.
    let vault = FileKeyVault::open(
        &fx.dir,
        RootKeySource::Passphrase(Passphrase::new("correct horse battery".to_owned())),
    )
    .unwrap();
    let back = vault
        .unwrap_key(&admin(), "k", &w.version, WrapAlgorithm::A256Kw, &w.wrapped)
        .unwrap();
    assert_eq!(back.as_slice(), [3; 32]);
}

#[test]
fn key_file_vault_refuses_other_key_files_and_passphrases() {
    let fx = Fixture::new();
    drop(fx.create());
    let other = fx.dir.parent().unwrap().join("other.key");
    FileKeyVault::generate_key_file(&other).unwrap();
    assert!(matches!(
        open_err(&fx.dir, RootKeySource::KeyFile(other)),
        VaultError::WrongRootKey
    ));
    assert!(matches!(
        open_err(&fx.dir, passphrase("anything")),
        VaultError::WrongRootKey
    ));
    // A file that is not a key file at all.
    let short = fx.dir.parent().unwrap().join("short.key");
    fs::write(&short, [1; 31]).unwrap();
    assert!(matches!(
        open_err(&fx.dir, RootKeySource::KeyFile(short)),
        VaultError::InvalidKeyMaterial { .. }
    ));
    let missing = fx.dir.parent().unwrap().join("missing.key");
    assert!(matches!(
        open_err(&fx.dir, RootKeySource::KeyFile(missing)),
        VaultError::Io { .. }
    ));
    fx.open().expect("the right key file still opens it");
}

#[test]
fn generate_key_file_is_private_random_and_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.key");
    let b = tmp.path().join("b.key");
    FileKeyVault::generate_key_file(&a).unwrap();
    FileKeyVault::generate_key_file(&b).unwrap();
    let bytes_a = fs::read(&a).unwrap();
    assert_eq!(bytes_a.len(), 32);
    assert_ne!(bytes_a, fs::read(&b).unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let err = FileKeyVault::generate_key_file(&a).unwrap_err();
    assert!(
        matches!(&err, VaultError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
        "{err:?}"
    );
    assert_eq!(fs::read(&a).unwrap(), bytes_a, "the old key file is intact");
}

#[test]
fn vault_files_are_private() {
    let fx = Fixture::new();
    let vault = fx.create();
    vault
        .create_key(&admin(), "k", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&fx.dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        for name in ["vault.json", "state.json", "audit.log", "lock"] {
            let mode = fs::metadata(fx.dir.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
    assert_eq!(vault.dir(), fx.dir);
    assert_eq!(vault.vault_id().len(), 32);
}

#[test]
fn create_refuses_an_existing_vault_or_a_foreign_directory() {
    let fx = Fixture::new();
    let vault = fx.create();
    vault
        .create_key(&admin(), "k", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let err = FileKeyVault::create(&fx.dir, props(), fx.root()).unwrap_err();
    assert!(
        matches!(&err, VaultError::InvalidArgument { reason } if reason.contains("already holds a vault")),
        "{err:?}"
    );
    // The existing vault is untouched.
    assert_eq!(vault.list_keys(&admin()).unwrap().len(), 1);
    vault.verify_audit_log().unwrap();

    let other = fx.dir.parent().unwrap().join("photos");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("cat.jpg"), b"meow").unwrap();
    let err = FileKeyVault::create(&other, props(), fx.root()).unwrap_err();
    assert!(
        matches!(&err, VaultError::InvalidArgument { reason } if reason.contains("not empty")),
        "{err:?}"
    );
    assert_eq!(fs::read(other.join("cat.jpg")).unwrap(), b"meow");

    // Bad properties and an empty passphrase are refused before anything
    // is written.
    let fresh = fx.dir.parent().unwrap().join("fresh");
    let mut bad = props();
    bad.soft_delete_retention_days = 3;
    assert!(matches!(
        FileKeyVault::create(&fresh, bad, fx.root()),
        Err(VaultError::InvalidArgument { .. })
    ));
    assert!(matches!(
        FileKeyVault::create(&fresh, props(), passphrase("")),
        Err(VaultError::InvalidArgument { .. })
    ));
    assert!(!fresh.exists());
    // No vault at all.
    assert!(matches!(
        open_err(&fresh, fx.root()),
        VaultError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound
    ));
}

#[test]
fn kdf_params_are_bounded() {
    assert!(KdfParams::new(7, 1, 1).is_err());
    assert!(KdfParams::new(8, 0, 1).is_err());
    assert!(KdfParams::new(64, 1, 0).is_err());
    assert!(KdfParams::new(64, 1, 17).is_err());
    assert!(KdfParams::new(KdfParams::MAX_MEMORY_KIB + 1, 1, 1).is_err());
    assert!(KdfParams::new(64, KdfParams::MAX_ITERATIONS + 1, 1).is_err());
    let p = KdfParams::new(1024, 2, 2).unwrap();
    assert_eq!(
        (p.memory_kib(), p.iterations(), p.parallelism()),
        (1024, 2, 2)
    );
    let d = KdfParams::default();
    assert_eq!(
        (d.memory_kib(), d.iterations(), d.parallelism()),
        (65536, 3, 4)
    );
}

#[test]
fn secrets_never_print() {
    let p = Passphrase::from("hunter2-very-secret");
    assert_eq!(format!("{p:?}"), "Passphrase(..)");
    let root = RootKeySource::Passphrase(p);
    assert!(!format!("{root:?}").contains("hunter2"));
    let err = VaultError::WrongRootKey.to_string();
    assert!(!err.contains("hunter2"));
}

/// Every file of a directory, by name.
fn dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn lower_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn key_material_is_sealed_at_rest() {
    let fx = Fixture::new();
    let vault = fx.create();
    // A recognisable key, so that any encoding of it would be found.
    let key: [u8; 32] = core::array::from_fn(|i| 0xa0 ^ (i as u8 * 7));
    vault
        .import_key(
            &admin(),
            "byok",
            KeyImport::Jwk(&oct_jwk(&key)),
            KeyOptions::default(),
        )
        .unwrap();
    vault
        .wrap_key(&admin(), "byok", None, WrapAlgorithm::A256Kw, &[1; 32])
        .unwrap();
    drop(vault);
    let encodings: Vec<Vec<u8>> = vec![
        key.to_vec(),
        key[..16].to_vec(),
        key[16..].to_vec(),
        lower_hex(&key).into_bytes(),
        lower_hex(&key[..12]).into_bytes(),
        upper_hex(&key).into_bytes(),
        Base64UrlUnpadded::encode_string(&key).into_bytes(),
        Base64Url::encode_string(&key[..12]).into_bytes(),
        Base64::encode_string(&key).into_bytes(),
    ];
    let files = dir_files(&fx.dir);
    assert!(files.iter().any(|(n, _)| n == "state.json"));
    for (name, bytes) in &files {
        for enc in &encodings {
            assert!(
                !contains(bytes, enc),
                "{name} holds the imported key in the clear"
            );
        }
    }
    // And the key file's bytes (the root secret) are not there either.
    let root = fs::read(&fx.key_file).unwrap();
    for (name, bytes) in &files {
        assert!(!contains(bytes, &root), "{name} holds the root key");
        assert!(
            !contains(bytes, lower_hex(&root).as_bytes()),
            "{name} holds the root key in hex"
        );
    }
}

#[test]
fn secrets_and_the_owner_key_persist_sealed_at_rest() {
    let fx = Fixture::new();
    let vault = fx.create();
    let value: [u8; 32] = core::array::from_fn(|i| 0x5c ^ (i as u8).wrapping_mul(11));
    let owner = OwnerKey::from_bytes(core::array::from_fn(|i| 0x3a ^ (i as u8).wrapping_mul(13)));
    vault.set_owner_key(&owner).unwrap();
    let v1 = vault
        .set_secret(&admin(), "bek", &value, SecretOptions::default())
        .unwrap();
    vault
        .set_secret(&admin(), "bek", b"second", SecretOptions::default())
        .unwrap();
    vault
        .set_secret(&admin(), "gone", b"deleted", SecretOptions::default())
        .unwrap();
    vault.delete_secret(&admin(), "gone").unwrap();
    let backup = vault.backup_secret(&admin(), "bek").unwrap();
    drop(vault);
    // Nothing of the value or the owner key is in the clear in any file.
    let files = dir_files(&fx.dir);
    for secret in [&value, owner.expose_secret()] {
        for enc in [
            secret.to_vec(),
            secret[..16].to_vec(),
            lower_hex(secret).into_bytes(),
            upper_hex(secret).into_bytes(),
            Base64::encode_string(secret).into_bytes(),
        ] {
            for (name, bytes) in &files {
                assert!(!contains(bytes, &enc), "{name} holds a secret in the clear");
            }
        }
    }
    // Reopened (from the op log, then from a compacted snapshot): the same
    // secrets, versions, deleted secret and owner.
    for compact in [false, true] {
        let vault = fx.open().unwrap();
        if compact {
            vault.compact().unwrap();
            drop(vault);
        }
        let vault = fx.open().unwrap();
        assert_eq!(vault.owner_id().unwrap(), Some(owner.id()));
        let read = vault
            .get_secret(&admin(), "bek", Some(&v1.version))
            .unwrap();
        assert_eq!(read.value.expose_secret(), value);
        assert_eq!(
            vault.list_secret_versions(&admin(), "bek").unwrap().len(),
            2
        );
        assert_eq!(vault.list_deleted_secrets(&admin()).unwrap().len(), 1);
        vault.verify_audit_log().unwrap();
    }
    // The backup restores after a purge, in the reopened vault.
    let vault = fx.open().unwrap();
    vault.delete_secret(&admin(), "bek").unwrap();
    vault.purge_secret(&admin(), "bek").unwrap();
    vault.restore_secret(&admin(), &backup).unwrap();
    assert_eq!(
        vault
            .get_secret(&admin(), "bek", Some(&v1.version))
            .unwrap()
            .value
            .expose_secret(),
        value
    );
}

#[test]
fn a_vault_made_before_secrets_opens_and_takes_them() {
    // A copy of tests/data/format-1-vault (see its README).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format-1-vault");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    fs::create_dir(&dir).unwrap();
    for name in ["audit.log", "ops.log", "state.json", "vault.json"] {
        fs::copy(fixture.join(name), dir.join(name)).unwrap();
    }
    let key_file = tmp.path().join("root.key");
    fs::copy(fixture.join("root.key"), &key_file).unwrap();
    let wrapped = fs::read_to_string(fixture.join("wrapped.txt")).unwrap();
    let mut lines = wrapped.lines();
    let version = lines.next().unwrap().to_owned();
    let hex = lines.next().unwrap();
    let wrapped: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let open = || FileKeyVault::open(&dir, RootKeySource::KeyFile(key_file.clone())).unwrap();
    let admin = Principal::new("admin");
    let vault = open();
    vault.verify_audit_log().unwrap();
    let names: Vec<String> = vault
        .list_keys(&admin)
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["after-compact", "pmk"]);
    assert_eq!(vault.list_deleted_keys(&admin).unwrap().len(), 1);
    let dek = vault
        .unwrap_key(&admin, "pmk", &version, WrapAlgorithm::A256Kw, &wrapped)
        .unwrap();
    assert_eq!(dek.as_slice(), [0x42; 32]);
    // Its access policies predate the secret permissions: they grant none.
    assert!(matches!(
        vault.set_secret(&admin, "bek", b"x", SecretOptions::default()),
        Err(VaultError::AccessDenied {
            permission: Permission::SetSecret,
            ..
        })
    ));
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    // It takes secrets, and keeps them across a compaction and a reopen.
    vault
        .set_secret(&admin, "bek", b"new in format 2", SecretOptions::default())
        .unwrap();
    vault.compact().unwrap();
    drop(vault);
    let vault = open();
    assert_eq!(
        vault
            .get_secret(&admin, "bek", None)
            .unwrap()
            .value
            .expose_secret(),
        b"new in format 2"
    );
    assert_eq!(vault.list_keys(&admin).unwrap().len(), 2);
    vault.verify_audit_log().unwrap();
    let state = fs::read_to_string(dir.join("state.json")).unwrap();
    assert!(
        state.contains(r#""state":{"format":2"#),
        "the snapshot is written as version 2"
    );
}

/// An edit of a JSON file, and what the error must say about it.
type Edit = (Box<dyn Fn(&mut serde_json::Value)>, &'static str);

/// Rewrites a JSON file through a closure on its value.
fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    f(&mut v);
    fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// A vault with one key, closed, and a pristine copy of each file.
fn closed_vault() -> (Fixture, Vec<(String, Vec<u8>)>) {
    let fx = Fixture::new();
    let vault = fx.create();
    vault
        .create_key(&admin(), "k", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    // The whole state in state.json (not in ops.log records), for the
    // tests that edit it.
    vault.compact().unwrap();
    drop(vault);
    let files = dir_files(&fx.dir);
    (fx, files)
}

fn restore(fx: &Fixture, files: &[(String, Vec<u8>)]) {
    for (name, bytes) in files {
        fs::write(fx.dir.join(name), bytes).unwrap();
    }
    fx.open().expect("the restored vault opens");
}

#[test]
fn corrupt_or_foreign_vault_json_is_reported() {
    let (fx, pristine) = closed_vault();
    let path = fx.dir.join("vault.json");
    let original = fs::read(&path).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (original[..original.len() / 2].to_vec(), "EOF"),
        (Vec::new(), "not a strongroom file key vault"),
        (
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
            "not a strongroom file key vault",
        ),
        (br#"{"name": "some other program"}"#.to_vec(), "magic"),
        (br#"[1, 2, 3]"#.to_vec(), "not a strongroom file key vault"),
        (br#""vault""#.to_vec(), "not a strongroom file key vault"),
    ];
    for (bytes, reason) in cases {
        fs::write(&path, &bytes).unwrap();
        assert_corrupt(open_err(&fx.dir, fx.root()), "vault.json", reason);
    }
    let edits: Vec<Edit> = vec![
        (Box::new(|v| v["format"] = 2.into()), "version 2"),
        (
            Box::new(|v| v["format"] = "one".into()),
            "no format version",
        ),
        (Box::new(|v| v["vault_id"] = "abcd".into()), "vault id"),
        (Box::new(|v| v["vault_id"] = "not hex!".into()), "malformed"),
        (Box::new(|v| v["check"] = "00".into()), "check value"),
        (Box::new(|v| v["extra"] = 1.into()), "malformed"),
        (
            Box::new(|v| v["root_key"] = serde_json::json!({"kind": "hsm"})),
            "malformed",
        ),
    ];
    for (edit, reason) in edits {
        fs::write(&path, &original).unwrap();
        edit_json(&path, edit);
        assert_corrupt(open_err(&fx.dir, fx.root()), "vault.json", reason);
    }
    // A check value that does not match: the root key is called wrong.
    fs::write(&path, &original).unwrap();
    edit_json(&path, |v| v["check"] = "00".repeat(32).into());
    assert!(matches!(
        open_err(&fx.dir, fx.root()),
        VaultError::WrongRootKey
    ));

    // A huge file is refused before it is read.
    let f = fs::File::create(&path).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    assert_corrupt(open_err(&fx.dir, fx.root()), "vault.json", "more than");
    restore(&fx, &pristine);
}

#[test]
fn hostile_argon2_parameters_are_refused_before_any_work() {
    let fx = Fixture::new();
    drop(FileKeyVault::create(&fx.dir, props(), passphrase("pw")).unwrap());
    let path = fx.dir.join("vault.json");
    let original = fs::read(&path).unwrap();
    for (field, value, reason) in [
        ("memory_kib", serde_json::json!(u32::MAX), "out of range"),
        ("iterations", serde_json::json!(1_000_000), "out of range"),
        ("parallelism", serde_json::json!(0), "out of range"),
        ("salt", serde_json::json!("00"), "salt"),
        ("algorithm", serde_json::json!("argon2i"), "argon2i"),
        ("version", serde_json::json!(16), "version 16"),
    ] {
        fs::write(&path, &original).unwrap();
        edit_json(&path, |v| v["root_key"][field] = value);
        let start = std::time::Instant::now();
        assert_corrupt(open_err(&fx.dir, passphrase("pw")), "vault.json", reason);
        assert!(start.elapsed().as_secs() < 5, "{field}: did work first");
    }
    // Changed but valid parameters only give a different key.
    fs::write(&path, &original).unwrap();
    edit_json(&path, |v| v["root_key"]["iterations"] = 2.into());
    assert!(matches!(
        open_err(&fx.dir, passphrase("pw")),
        VaultError::WrongRootKey
    ));
    fs::write(&path, &original).unwrap();
    FileKeyVault::open(&fx.dir, passphrase("pw")).unwrap();
}

#[test]
fn corrupt_or_altered_state_json_is_reported() {
    let (fx, pristine) = closed_vault();
    let path = fx.dir.join("state.json");
    let original = fs::read(&path).unwrap();
    for (bytes, reason) in [
        (
            original[..original.len() - 1].to_vec(),
            "not a vault state file",
        ),
        (original[..10].to_vec(), "not a vault state file"),
        (b"{}".to_vec(), "no format version"),
        (b"null".to_vec(), "not a vault state file"),
        (vec![0xff; 100], "not a vault state file"),
    ] {
        fs::write(&path, &bytes).unwrap();
        assert_corrupt(open_err(&fx.dir, fx.root()), "state.json", reason);
    }
    let edits: Vec<Edit> = vec![
        (Box::new(|v| v["format"] = 9.into()), "version 9"),
        (Box::new(|v| v["state"]["format"] = 1.into()), "MAC"),
        (
            Box::new(|v| v["state"]["properties"]["purge_protection"] = true.into()),
            "MAC",
        ),
        (
            Box::new(|v| v["state"]["access"]["mallory"] = v["state"]["access"]["admin"].clone()),
            "MAC",
        ),
        (Box::new(|v| v["generation"] = 99.into()), "MAC"),
        (Box::new(|v| v["audit_len"] = 0.into()), "MAC"),
        (Box::new(|v| v["mac"] = "00".repeat(32).into()), "MAC"),
        (
            Box::new(|v| v["vault_id"] = "00".repeat(16).into()),
            "another vault",
        ),
        (
            Box::new(|v| {
                v["state"]["keys"]["k"]["versions"][0]["material"]["handle"] = "00".into()
            }),
            "MAC",
        ),
        (Box::new(|v| v["state"]["keys"] = 5.into()), "malformed"),
        (
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("state");
            }),
            "malformed",
        ),
    ];
    for (edit, reason) in edits {
        fs::write(&path, &original).unwrap();
        edit_json(&path, edit);
        assert_corrupt(open_err(&fx.dir, fx.root()), "state.json", reason);
    }
    // Every single flipped byte of the sealed key material is caught.
    let text = String::from_utf8(original.clone()).unwrap();
    let handle_at = text.find("\"handle\":\"").unwrap() + 10;
    for offset in [0, 7, 40, 90] {
        let mut bytes = original.clone();
        bytes[handle_at + offset] = if bytes[handle_at + offset] == b'0' {
            b'1'
        } else {
            b'0'
        };
        fs::write(&path, &bytes).unwrap();
        assert_corrupt(open_err(&fx.dir, fx.root()), "state.json", "MAC");
    }
    // Oversized: refused before reading.
    let f = fs::File::create(&path).unwrap();
    f.set_len(65 << 20).unwrap();
    drop(f);
    assert_corrupt(open_err(&fx.dir, fx.root()), "state.json", "more than");
    fs::remove_file(&path).unwrap();
    assert_corrupt(open_err(&fx.dir, fx.root()), "state.json", "missing");
    restore(&fx, &pristine);
}

#[test]
fn a_state_json_from_another_vault_is_refused() {
    let fx = Fixture::new();
    drop(fx.create());
    // A second vault under the same key file.
    let dir2 = fx.dir.parent().unwrap().join("vault2");
    drop(FileKeyVault::create(&dir2, props(), fx.root()).unwrap());
    fs::copy(dir2.join("state.json"), fx.dir.join("state.json")).unwrap();
    assert_corrupt(open_err(&fx.dir, fx.root()), "state.json", "another vault");
    // Even with its vault id rewritten, the MAC key differs per vault.
    let own: serde_json::Value =
        serde_json::from_slice(&fs::read(fx.dir.join("vault.json")).unwrap()).unwrap();
    edit_json(&fx.dir.join("state.json"), |v| {
        v["vault_id"] = own["vault_id"].clone();
    });
    assert_corrupt(open_err(&fx.dir, fx.root()), "state.json", "MAC");
}

#[test]
fn a_changed_state_written_while_open_is_caught_at_the_next_call() {
    let (fx, _) = closed_vault();
    let vault = fx.open().unwrap();
    let path = fx.dir.join("state.json");
    let original = fs::read(&path).unwrap();
    edit_json(&path, |v| {
        v["state"]["access"]["mallory"] = v["state"]["access"]["admin"].clone();
        v["commit"] = "00".repeat(16).into();
    });
    let err = vault.list_keys(&Principal::new("mallory")).unwrap_err();
    assert_corrupt(err, "state.json", "MAC");
    fs::write(&path, &original).unwrap();
    assert_eq!(vault.list_keys(&admin()).unwrap().len(), 1);
    assert!(matches!(
        vault.list_keys(&Principal::new("mallory")),
        Err(VaultError::AccessDenied { .. })
    ));
    vault.verify_audit_log().unwrap();
}

#[test]
fn audit_log_edits_are_found_and_garbage_is_reported() {
    let (fx, pristine) = closed_vault();
    let path = fx.dir.join("audit.log");
    let original = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 2, "{original}");

    // An edited entry.
    let edited = original.replacen("\"admin\"", "\"someone-else\"", 1);
    assert_ne!(edited, original);
    fs::write(&path, &edited).unwrap();
    let vault = fx.open().unwrap();
    let bad = common::tampered_at(vault.verify_audit_log(), "edited");
    assert!(bad < lines.len());
    drop(vault);

    // A removed entry (the first).
    fs::write(&path, lines[1..].join("\n") + "\n").unwrap();
    let vault = fx.open().unwrap();
    assert_eq!(common::tampered_at(vault.verify_audit_log(), "removed"), 0);
    drop(vault);

    // Entries cut off the end: the state's head no longer matches.
    fs::write(&path, lines[..1].join("\n") + "\n").unwrap();
    let vault = fx.open().unwrap();
    common::tampered_at(vault.verify_audit_log(), "cut");
    drop(vault);

    // A line that is not an entry.
    fs::write(&path, format!("{}\nnot json\n{}\n", lines[0], lines[1])).unwrap();
    let vault = fx.open().unwrap();
    assert_corrupt(vault.audit_log().unwrap_err(), "audit.log", "line 2");
    drop(vault);
    restore(&fx, &pristine);
    let vault = fx.open().unwrap();
    vault.verify_audit_log().unwrap();
}

#[test]
fn a_torn_audit_line_is_cut_and_the_chain_goes_on() {
    let (fx, _) = closed_vault();
    let path = fx.dir.join("audit.log");
    let before = fs::read(&path).unwrap();
    // What a crash in the middle of an append leaves.
    let mut torn = before.clone();
    torn.extend_from_slice(br#"{"seq":99,"time":17500"#);
    fs::write(&path, &torn).unwrap();
    let vault = fx.open().unwrap();
    let entries = vault.audit_log().unwrap();
    assert_eq!(fs::read(&path).unwrap(), before, "the torn line was cut");
    vault.verify_audit_log().unwrap();
    vault.list_keys(&admin()).unwrap();
    assert_eq!(vault.audit_log().unwrap().len(), entries.len() + 1);
    vault.verify_audit_log().unwrap();
}

#[test]
fn two_vault_values_on_one_directory_see_each_other_at_once() {
    let fx = Fixture::new();
    let a = fx.create();
    let b = fx.open().unwrap();
    a.create_key(&admin(), "k", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let w = b
        .wrap_key(&admin(), "k", None, WrapAlgorithm::A256Kw, &[9; 32])
        .unwrap();
    a.set_access_policy(&admin(), Permissions::all().without(Permission::UnwrapKey))
        .unwrap();
    // b reads a's revocation on its very next call.
    assert!(matches!(
        b.unwrap_key(&admin(), "k", &w.version, WrapAlgorithm::A256Kw, &w.wrapped),
        Err(VaultError::AccessDenied {
            permission: Permission::UnwrapKey,
            ..
        })
    ));
    b.set_access_policy(&admin(), Permissions::all()).unwrap();
    let r = a.rotate_key(&admin(), "k", KeyOptions::default()).unwrap();
    assert_eq!(b.get_key(&admin(), "k", None).unwrap().version, r.version);
    assert_eq!(a.audit_log().unwrap(), b.audit_log().unwrap());
    b.verify_audit_log().unwrap();
}

#[test]
fn threads_and_vault_values_rotating_at_once_lose_no_update() {
    const PER_THREAD: usize = 6;
    let fx = Fixture::new();
    let first = fx.create();
    first
        .create_key(&admin(), "k", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let shared = Arc::new(first);
    let second = Arc::new(fx.open().unwrap());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let vault = if i % 2 == 0 {
                shared.clone()
            } else {
                second.clone()
            };
            std::thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let v = vault
                        .rotate_key(&admin(), "k", KeyOptions::default())
                        .unwrap();
                    let w = vault
                        .wrap_key(
                            &admin(),
                            "k",
                            Some(&v.version),
                            WrapAlgorithm::A256Kw,
                            &[4; 32],
                        )
                        .unwrap();
                    let back = vault
                        .unwrap_key(&admin(), "k", &w.version, WrapAlgorithm::A256Kw, &w.wrapped)
                        .unwrap();
                    assert_eq!(back.as_slice(), [4; 32]);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let versions = shared.list_versions(&admin(), "k").unwrap();
    assert_eq!(versions.len(), 1 + 4 * PER_THREAD);
    let log = second.audit_log().unwrap();
    assert_eq!(
        log.iter().filter(|e| e.operation == "rotate").count(),
        4 * PER_THREAD
    );
    shared.verify_audit_log().unwrap();
}

/// Issue 11, finding 2, on disk: after a 2 MiB principal id (no
/// permissions) and a 65 MiB tag (only `update`) were refused, the vault
/// still opens for everyone, and its audit log reads and verifies.
#[test]
fn oversized_caller_input_never_bricks_the_file_vault() {
    let fx = Fixture::new();
    let vault = fx.create();
    let info = vault
        .create_key(&admin(), "cmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let updater = Principal::new("updater");
    vault
        .set_access_policy(&updater, Permissions::NONE.with(Permission::Update))
        .unwrap();
    let huge = Principal::new("p".repeat(2 << 20));
    assert!(matches!(
        vault.get_key(&huge, "cmk", None),
        Err(VaultError::LimitExceeded { .. })
    ));
    let tags = [("t".to_owned(), "v".repeat(65 << 20))].into();
    assert!(matches!(
        vault.update_key(
            &updater,
            "cmk",
            &info.version,
            AttributeUpdate {
                tags: Some(tags),
                ..AttributeUpdate::default()
            },
        ),
        Err(VaultError::LimitExceeded { .. })
    ));
    drop(vault);
    for file in ["state.json", "audit.log"] {
        let len = fs::metadata(fx.dir.join(file)).unwrap().len();
        assert!(len < 64 * 1024, "{file} is {len} bytes");
    }
    let vault = fx.open().expect("the vault opens for everyone");
    assert_eq!(vault.audit_log().unwrap().len(), 5);
    vault.verify_audit_log().unwrap();
    vault.get_key(&admin(), "cmk", None).unwrap();
}

#[test]
fn versions_per_key_are_bounded() {
    common::versions_per_key_are_bounded(&make);
}
