//! A `FileKeyVault` directory whose files come from the input
//! (`FileKeyVault::open` and the calls after it, and
//! `FileKeyVault::verify_archived_audit_log`).
//!
//! Once per process a vault is made in a temporary directory (under
//! `/dev/shm` when there is one): AES and RSA keys, a rotated key, a
//! deleted and a purged key, calls allowed, denied and failed, an audit log
//! rotation and more calls after it, and a witness file outside the
//! directory. The bytes of its files are kept.
//!
//! An input is `[file, how, offset (2 bytes, little-endian), payload...]`.
//! A copy of the directory is put back as it was made, then one file
//! (`file` picks one of the directory's files, in name order: the live
//! `audit.<n>.log`, `audit.log` which the rotation archived, `ops.log`,
//! `state.json`, `vault.json`; or the witness; or none) is, by `how`:
//! replaced by the payload, overwritten by it at the offset, has it
//! inserted at the offset, is cut at the offset and the payload appended,
//! or is deleted. The vault is opened with its key file and witness; if it
//! opens, its audit log is read, verified and exported, and its keys and
//! secrets listed and read. The payload, and the archived `audit.log` when it was
//! the file changed, are also verified as archived audit log segments
//! against the untouched vault.
//!
//! For every input: no panic, and every error displays (a `Corrupt` one
//! names a file of the vault or the witness). An untouched directory opens
//! and everything on it succeeds. `verify_audit_log` succeeding means
//! `audit_log`, `verify_audit_entries` on its entries and
//! `export_audit_log` succeed too, and a log that verified still verifies
//! after the vault's own calls. An archive that verifies ends where the
//! live log begins.

#![no_main]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    AttributeUpdate, FileKeyVault, FileVaultOptions, KeyOptions, KeyType, KeyVault, Permissions,
    Principal, RootKeySource, SecretOptions, VaultError, VaultProperties,
};

struct Fixture {
    /// The key file every vault here opens with.
    key_file: PathBuf,
    /// The vault each input changes (a copy of `pristine`).
    work: PathBuf,
    /// Its witness, outside the directory.
    witness: PathBuf,
    /// Where the payload is written to be verified as an archive.
    segment: PathBuf,
    /// The directory's files as made, by name (`lock` left out: it is
    /// empty, and made again when missing).
    files: BTreeMap<String, Vec<u8>>,
    /// The witness as made.
    witness_bytes: Vec<u8>,
    /// The untouched vault (its own directory), for archive checks.
    reference: FileKeyVault,
    /// The sequence number the live audit log segment starts after.
    live_start: u64,
    admin: Principal,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

/// Prefix of this target's temporary directories (suffix: the process id).
const DIR_PREFIX: &str = "strongroom-fuzz-keyvault_files-";

/// A fresh directory for this process, under `/dev/shm` when it exists
/// (the vault fsyncs), after removing those that processes no longer
/// running left behind (libFuzzer exits without running destructors).
fn base_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let root = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    if Path::new("/proc/self").exists()
        && let Ok(entries) = std::fs::read_dir(&root)
    {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let base = root.join(format!("{DIR_PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("a temporary directory");
    base
}

fn setup() -> Fixture {
    let base = base_dir();
    let key_file = base.join("root.key");
    FileKeyVault::generate_key_file(&key_file).expect("a key file");
    let pristine = base.join("pristine");
    let witness = base.join("witness.json");
    let vault = FileKeyVault::create_with_options(
        &pristine,
        VaultProperties::new("fuzz"),
        RootKeySource::KeyFile(key_file.clone()),
        FileVaultOptions::new().witness(&witness),
    )
    .expect("a file vault");

    let admin = Principal::new("admin");
    let user = Principal::new("user");
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    vault
        .set_access_policy(&user, Permissions::key_user())
        .unwrap();
    let aes = vault
        .create_key(&admin, "aes", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let mut options = KeyOptions::default();
    options.tags.insert("team".into(), "backup".into());
    options.expires = Some(4_102_444_800);
    vault
        .create_key(&admin, "rsa", KeyType::Rsa2048, options)
        .unwrap();
    let wrapped = vault
        .wrap_key(&user, "aes", None, WrapAlgorithm::A256Kw, &[7; 32])
        .unwrap();
    vault
        .unwrap_wrapped(&user, "aes", WrapAlgorithm::A256Kw, &wrapped)
        .unwrap();
    vault.delete_key(&user, "aes").unwrap_err(); // denied
    vault.get_key(&admin, "missing", None).unwrap_err(); // failed
    for name in ["old", "gone"] {
        vault
            .create_key(&admin, name, KeyType::Aes256, KeyOptions::default())
            .unwrap();
        vault.delete_key(&admin, name).unwrap();
    }
    vault.purge_key(&admin, "gone").unwrap();
    // Secrets (sealed values), one deleted and one purged, and the owner
    // key a backup makes.
    let mut secret_options = SecretOptions::default();
    secret_options.content_type = Some("BEK".into());
    vault
        .set_secret(&admin, "bek", &[9; 32], secret_options)
        .unwrap();
    vault
        .set_secret(&admin, "bek", b"second", SecretOptions::default())
        .unwrap();
    for name in ["old-secret", "gone-secret"] {
        vault
            .set_secret(&admin, name, b"x", SecretOptions::default())
            .unwrap();
        vault.delete_secret(&admin, name).unwrap();
    }
    vault.purge_secret(&admin, "gone-secret").unwrap();
    vault.backup_secret(&admin, "bek").unwrap();
    vault
        .rotate_key(&admin, "aes", KeyOptions::default())
        .unwrap();
    let archived = vault
        .rotate_audit_log()
        .unwrap()
        .expect("entries to archive");
    vault
        .update_key(
            &admin,
            "aes",
            &aes.version,
            AttributeUpdate {
                enabled: Some(false),
                ..AttributeUpdate::default()
            },
        )
        .unwrap();
    vault
        .wrap_key(&user, "aes", None, WrapAlgorithm::A256Kw, &[8; 32])
        .unwrap();
    vault.list_keys(&admin).unwrap();
    vault.verify_audit_log().unwrap();
    drop(vault);

    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&pristine).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name != "lock" {
            files.insert(name, std::fs::read(entry.path()).unwrap());
        }
    }
    for name in ["vault.json", "state.json", "ops.log", "audit.log"] {
        assert!(files.contains_key(name), "the vault has no {name}");
    }
    assert!(files.len() > 4, "the vault has no live audit log segment");
    let witness_bytes = std::fs::read(&witness).unwrap();

    // The untouched vault; without a witness, so that its own never moves.
    let reference =
        FileKeyVault::open(&pristine, RootKeySource::KeyFile(key_file.clone())).unwrap();
    assert_eq!(
        reference
            .verify_archived_audit_log(&[&archived.path])
            .unwrap(),
        archived.first_seq..=archived.last_seq
    );

    let work = base.join("work");
    std::fs::create_dir(&work).unwrap();
    Fixture {
        key_file,
        work,
        witness: base.join("work-witness.json"),
        segment: base.join("segment.log"),
        files,
        witness_bytes,
        reference,
        live_start: archived.last_seq,
        admin,
    }
}

/// `original` changed by `how` at `offset` with `payload`; `None`: deleted.
fn mutate(original: &[u8], how: u8, offset: u16, payload: &[u8]) -> Option<Vec<u8>> {
    let at = usize::from(offset) % (original.len() + 1);
    let mut bytes = original.to_vec();
    match how % 5 {
        0 => bytes = payload.to_vec(),
        1 => {
            let end = (at + payload.len()).min(bytes.len());
            bytes.splice(at..end, payload.iter().copied());
        }
        2 => {
            bytes.splice(at..at, payload.iter().copied());
        }
        3 => {
            bytes.truncate(at);
            bytes.extend_from_slice(payload);
        }
        _ => return None,
    }
    Some(bytes)
}

/// Displays `err` and its sources; a `Corrupt` error names a vault file.
fn check_error(fixture: &Fixture, err: &VaultError) {
    let _ = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let _ = s.to_string();
        source = s.source();
    }
    if let VaultError::Corrupt { path, .. } = err {
        assert!(
            path.starts_with(&fixture.work) || *path == fixture.witness,
            "a corrupt file outside the vault: {err}"
        );
    }
}

/// Verifies `segment` as an archived segment against the untouched vault.
fn check_archive(fixture: &Fixture, segment: &Path) {
    match fixture.reference.verify_archived_audit_log(&[segment]) {
        Ok(range) => assert_eq!(
            *range.end(),
            fixture.live_start,
            "an archive that verifies ends where the live log begins"
        ),
        Err(VaultError::Corrupt { path, .. }) => assert_eq!(path, segment),
        Err(err) => {
            let _ = err.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let fixture = FIXTURE.get_or_init(setup);
    let (pick, how, offset, payload) = match data {
        [pick, how, lo, hi, payload @ ..] => (*pick, *how, u16::from_le_bytes([*lo, *hi]), payload),
        [pick, how, rest @ ..] => (*pick, *how, 0, rest),
        [pick] => (*pick, 0, 0, &[][..]),
        [] => (0, 0, 0, &[][..]),
    };

    // The directory as made, then one file changed.
    let work = &fixture.work;
    for entry in std::fs::read_dir(work).unwrap().flatten() {
        let name = entry.file_name();
        if !name
            .to_str()
            .is_some_and(|n| n == "lock" || fixture.files.contains_key(n))
        {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    for (name, bytes) in &fixture.files {
        std::fs::write(work.join(name), bytes).unwrap();
    }
    std::fs::write(&fixture.witness, &fixture.witness_bytes).unwrap();
    let names: Vec<&String> = fixture.files.keys().collect();
    let choice = usize::from(pick) % (names.len() + 2);
    let target = match choice {
        i if i < names.len() => Some((work.join(names[i]), fixture.files[names[i]].as_slice())),
        i if i == names.len() => Some((fixture.witness.clone(), fixture.witness_bytes.as_slice())),
        _ => None,
    };
    let untouched = target.is_none();
    if let Some((path, original)) = &target {
        match mutate(original, how, offset, payload) {
            Some(bytes) => std::fs::write(path, bytes).unwrap(),
            None => std::fs::remove_file(path).unwrap(),
        }
    }

    let opened = FileKeyVault::open_with_options(
        work,
        RootKeySource::KeyFile(fixture.key_file.clone()),
        FileVaultOptions::new().witness(&fixture.witness),
    );
    match opened {
        Ok(vault) => {
            let admin = &fixture.admin;
            let verified = vault.verify_audit_log();
            let entries = vault.audit_log();
            let exported = vault.export_audit_log();
            if verified.is_ok() {
                let entries = entries.as_ref().expect("a verified log reads");
                vault
                    .verify_audit_entries(entries)
                    .expect("the entries of a verified log verify");
                let exported = exported.as_ref().expect("a verified log exports");
                assert_eq!(exported.lines().count(), entries.len());
            }
            let listed = vault.list_keys(admin);
            let got = vault.get_key(admin, "rsa", None);
            let secrets = vault.list_secrets(admin);
            let secret = vault.get_secret(admin, "bek", None);
            let again = vault.verify_audit_log();
            if untouched {
                verified.as_ref().expect("an untouched vault verifies");
                assert_eq!(listed.as_ref().expect("list").len(), 2);
                got.as_ref().expect("get");
                assert_eq!(secrets.as_ref().expect("list secrets").len(), 1);
                let secret = secret.as_ref().expect("get secret");
                assert_eq!(secret.value.expose_secret(), b"second");
            }
            if verified.is_ok()
                && listed.is_ok()
                && got.is_ok()
                && secrets.is_ok()
                && secret.is_ok()
            {
                again
                    .as_ref()
                    .expect("the vault's own calls keep its log verifiable");
            }
            for result in [
                verified.err(),
                entries.err(),
                exported.err(),
                listed.err(),
                got.err(),
                secrets.err(),
                secret.err(),
                again.err(),
            ] {
                if let Some(err) = result {
                    check_error(fixture, &err);
                }
            }
        }
        Err(err) => {
            assert!(!untouched, "an untouched vault does not open: {err}");
            check_error(fixture, &err);
        }
    }

    // The archived segment, when it was the one changed, and the payload as
    // an archived segment.
    if let Some((path, _)) = &target
        && path.file_name().is_some_and(|n| n == "audit.log")
    {
        check_archive(fixture, path);
    }
    std::fs::write(&fixture.segment, payload).unwrap();
    check_archive(fixture, &fixture.segment);
});
