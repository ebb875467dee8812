//! What someone who can write a FileKeyVault's directory but lacks its root
//! key can and cannot do (issue 11): forge audit entries (found, never
//! adopted), put back older files (a rollback: refused, naming both
//! generations, where the audit log or a witness shows it), and what each
//! call writes (reads leave the state files alone; a change writes what
//! changed, not the whole vault).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    FileKeyVault, KeyOptions, KeyType, KeyVault, ManualClock, Permissions, Principal,
    RootKeySource, VaultError, VaultProperties,
};

const T0: u64 = 1_750_000_000;

fn admin() -> Principal {
    Principal::new("admin")
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    key_file: PathBuf,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let key_file = tmp.path().join("root.key");
        FileKeyVault::generate_key_file(&key_file).unwrap();
        let dir = tmp.path().join("vault");
        let clock = Arc::new(ManualClock::new(T0));
        let vault = FileKeyVault::create_with_clock(
            &dir,
            VaultProperties::new("kv-integrity"),
            RootKeySource::KeyFile(key_file.clone()),
            clock.clone(),
        )
        .unwrap();
        vault
            .set_access_policy(&admin(), Permissions::all())
            .unwrap();
        vault
            .create_key(&admin(), "k", KeyType::Aes256, KeyOptions::default())
            .unwrap();
        Self {
            _tmp: tmp,
            dir,
            key_file,
            clock,
        }
    }

    fn open(&self) -> Result<FileKeyVault, VaultError> {
        FileKeyVault::open_with_clock(
            &self.dir,
            RootKeySource::KeyFile(self.key_file.clone()),
            self.clock.clone(),
        )
    }
}

/// The audit log's lines.
fn log_lines(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("audit.log"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// An entry that follows `last` and claims `admin` unwrapped a key: numbered
/// and linked right, with a MAC made without the vault's key (here 32 bytes
/// of SHA-256 of the line, as a plain hash chain would have it).
fn forged_after(last: &str) -> String {
    use sha2::{Digest, Sha256};
    let last: serde_json::Value = serde_json::from_str(last).unwrap();
    let mut fake = last.clone();
    fake["seq"] = (last["seq"].as_u64().unwrap() + 1).into();
    fake["prev"] = last["mac"].clone();
    fake["principal"] = "admin".into();
    fake["operation"] = "unwrapKey".into();
    fake["key"] = "k".into();
    fake["outcome"] = "Allowed".into();
    let digest = Sha256::digest(fake.to_string().as_bytes());
    fake["mac"] = digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into();
    fake.to_string()
}

#[test]
fn an_appended_forged_entry_is_found_and_never_adopted() {
    let fx = Fixture::new();
    let lines = log_lines(&fx.dir);
    let n = lines.len();
    let forged = forged_after(&lines[n - 1]);
    let path = fx.dir.join("audit.log");
    fs::write(&path, format!("{}\n{forged}\n", lines.join("\n"))).unwrap();

    let vault = fx.open().unwrap();
    assert_eq!(common::tampered_at(vault.verify_audit_log(), "appended"), n);
    // The next real call does not take it into the chain (crash recovery
    // adopts only entries whose MAC verifies): its own entry follows the
    // real head, and the forgery stays exposed.
    vault.list_keys(&admin()).unwrap();
    let log = vault.audit_log().unwrap();
    assert_eq!(log.len(), n + 2);
    assert_eq!(log[n + 1].prev, log[n - 1].mac, "chained past the forgery");
    assert_eq!(
        common::tampered_at(vault.verify_audit_log(), "after a call"),
        n
    );
    assert!(vault.export_audit_log().is_err(), "nothing exported");
    drop(vault);
    // Reopened, the same.
    let vault = fx.open().unwrap();
    assert_eq!(common::tampered_at(vault.verify_audit_log(), "reopened"), n);
}

#[test]
fn an_inserted_or_rewritten_forged_entry_is_found() {
    let fx = Fixture::new();
    let vault = fx.open().unwrap();
    for _ in 0..3 {
        vault
            .wrap_key(&admin(), "k", None, WrapAlgorithm::A256Kw, &[1; 32])
            .unwrap();
    }
    drop(vault);
    let lines = log_lines(&fx.dir);
    let path = fx.dir.join("audit.log");

    // Rewritten in place: the third entry now says something else, with
    // its seq and prev kept and a MAC the attacker made up.
    let mut rewritten = lines.clone();
    rewritten[2] = forged_after(&lines[1]);
    fs::write(&path, rewritten.join("\n") + "\n").unwrap();
    let vault = fx.open().unwrap();
    assert_eq!(
        common::tampered_at(vault.verify_audit_log(), "rewritten"),
        2
    );
    drop(vault);

    // Inserted, and every later entry renumbered to fit.
    let mut inserted = lines.clone();
    inserted.insert(2, forged_after(&lines[1]));
    for (i, line) in inserted.iter_mut().enumerate().skip(3) {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["seq"] = (i as u64 + 1).into();
        *line = v.to_string();
    }
    fs::write(&path, inserted.join("\n") + "\n").unwrap();
    let vault = fx.open().unwrap();
    assert_eq!(common::tampered_at(vault.verify_audit_log(), "inserted"), 2);
}
