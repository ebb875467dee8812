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

/// The bytes of the state's files (snapshot and op log; not the audit log).
fn state_files(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        fs::read(dir.join("state.json")).unwrap(),
        fs::read(dir.join("ops.log")).unwrap_or_default(),
    )
}

fn put_back(dir: &Path, (state, ops): &(Vec<u8>, Vec<u8>)) {
    fs::write(dir.join("state.json"), state).unwrap();
    fs::write(dir.join("ops.log"), ops).unwrap();
}

#[test]
fn an_older_state_under_a_newer_audit_log_is_refused_without_a_witness() {
    let fx = Fixture::new();
    let reader = Principal::new("reader");
    let vault = fx.open().unwrap();
    vault
        .set_access_policy(&reader, Permissions::key_user())
        .unwrap();
    let wrapped = vault
        .wrap_key(&reader, "k", None, WrapAlgorithm::A256Kw, &[3; 32])
        .unwrap();
    let old_state = state_files(&fx.dir);
    // Revoke, protect, and make a key: three commits.
    vault.set_access_policy(&reader, Permissions::NONE).unwrap();
    vault.enable_purge_protection().unwrap();
    vault
        .create_key(&admin(), "later", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    drop(vault);

    // Put back the older state files, keep the newer audit log.
    put_back(&fx.dir, &old_state);
    match fx.open() {
        Err(VaultError::RolledBack { found, last_seen }) => {
            assert!(found < last_seen, "{found} < {last_seen}");
            assert_eq!(last_seen - found, 3, "three commits undone");
        }
        other => panic!("expected RolledBack, got {other:?}"),
    }
    let err = fx.open().unwrap_err().to_string();
    assert!(err.contains("rolled back"), "{err}");
    // Nothing the older state would allow happens: the revoked principal
    // cannot unwrap, since the vault does not open.
    let _ = wrapped;
}

#[test]
fn a_rollback_of_every_file_is_refused_with_a_witness() {
    let fx = Fixture::new();
    let witness = fx._tmp.path().join("elsewhere").join("kv.witness");
    fs::create_dir_all(witness.parent().unwrap()).unwrap();
    let options = || {
        strongroom_keyvault::FileVaultOptions::new()
            .clock(fx.clock.clone())
            .witness(&witness)
    };
    let open = || {
        FileKeyVault::open_with_options(
            &fx.dir,
            RootKeySource::KeyFile(fx.key_file.clone()),
            options(),
        )
    };
    let reader = Principal::new("reader");
    let vault = open().unwrap();
    assert!(witness.exists(), "made at open");
    vault
        .set_access_policy(&reader, Permissions::key_user())
        .unwrap();
    let wrapped = vault
        .wrap_key(&reader, "k", None, WrapAlgorithm::A256Kw, &[3; 32])
        .unwrap();
    drop(vault);
    let old_state = state_files(&fx.dir);
    let old_log = fs::read(fx.dir.join("audit.log")).unwrap();

    let vault = open().unwrap();
    vault.set_access_policy(&reader, Permissions::NONE).unwrap();
    vault.enable_purge_protection().unwrap();
    drop(vault);

    // State and audit log put back together: consistent with each other,
    // so only the witness can tell.
    put_back(&fx.dir, &old_state);
    fs::write(fx.dir.join("audit.log"), &old_log).unwrap();
    let plain = fx.open().unwrap();
    assert!(
        plain
            .unwrap_key(
                &reader,
                "k",
                &wrapped.version,
                WrapAlgorithm::A256Kw,
                &wrapped.wrapped
            )
            .is_ok(),
        "without a witness, a consistent rollback of every file is not seen"
    );
    drop(plain);
    put_back(&fx.dir, &old_state);
    fs::write(fx.dir.join("audit.log"), &old_log).unwrap();
    match open() {
        Err(VaultError::RolledBack { found, last_seen }) => {
            assert_eq!(last_seen - found, 2, "{found} < {last_seen}");
        }
        other => panic!("expected RolledBack, got {other:?}"),
    }

    // The audit log alone cut back (reads since the last commit): the
    // witness counts entries too.
    let fx = Fixture::new();
    let witness = fx._tmp.path().join("w2");
    let open = || {
        FileKeyVault::open_with_options(
            &fx.dir,
            RootKeySource::KeyFile(fx.key_file.clone()),
            strongroom_keyvault::FileVaultOptions::new()
                .clock(fx.clock.clone())
                .witness(&witness),
        )
    };
    let vault = open().unwrap();
    let log = fs::read(fx.dir.join("audit.log")).unwrap();
    vault.get_key(&admin(), "k", None).unwrap();
    vault.get_key(&admin(), "k", None).unwrap();
    drop(vault);
    fs::write(fx.dir.join("audit.log"), &log).unwrap();
    match open() {
        Err(VaultError::AuditRolledBack { found, last_seen }) => {
            assert_eq!(last_seen - found, 2, "{found} < {last_seen}");
        }
        other => panic!("expected AuditRolledBack, got {other:?}"),
    }
}

#[test]
fn reads_leave_the_state_file_alone() {
    let fx = Fixture::new();
    let vault = fx.open().unwrap();
    let wrapped = vault
        .wrap_key(&admin(), "k", None, WrapAlgorithm::A256Kw, &[5; 32])
        .unwrap();
    let path = fx.dir.join("state.json");
    let ops = fx.dir.join("ops.log");
    let before = state_files(&fx.dir);
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let ops_mtime = fs::metadata(&ops).unwrap().modified().unwrap();
    let log_len = vault.audit_log().unwrap().len();
    std::thread::sleep(std::time::Duration::from_millis(20));
    for _ in 0..3 {
        vault.get_key(&admin(), "k", None).unwrap();
        vault
            .wrap_key(&admin(), "k", None, WrapAlgorithm::A256Kw, &[5; 32])
            .unwrap();
        vault
            .unwrap_key(
                &admin(),
                "k",
                &wrapped.version,
                WrapAlgorithm::A256Kw,
                &wrapped.wrapped,
            )
            .unwrap();
        assert!(vault.get_key(&Principal::new("nobody"), "k", None).is_err());
    }
    assert_eq!(state_files(&fx.dir), before, "byte for byte");
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    assert_eq!(fs::metadata(&ops).unwrap().modified().unwrap(), ops_mtime);
    assert_eq!(
        vault.audit_log().unwrap().len(),
        log_len + 12,
        "each audited"
    );
    vault.verify_audit_log().unwrap();
    drop(vault);
    // Another process (a fresh open) picks the chain up after the reads.
    let vault = fx.open().unwrap();
    vault.list_keys(&admin()).unwrap();
    vault.verify_audit_log().unwrap();
    assert_eq!(vault.audit_log().unwrap().len(), log_len + 13);
}

/// Bytes a create and a policy change add to the state's files.
fn bytes_per_change(keys: usize) -> u64 {
    let fx = Fixture::new();
    let vault = fx.open().unwrap();
    for i in 0..keys {
        vault
            .create_key(
                &admin(),
                &format!("k{i}"),
                KeyType::Aes256,
                KeyOptions::default(),
            )
            .unwrap();
    }
    // Start from an empty op log, so no compaction falls in the middle.
    vault.compact().unwrap();
    let size = |dir: &Path| {
        let (state, ops) = state_files(dir);
        (state.len() as u64, ops.len() as u64)
    };
    let (state_before, ops_before) = size(&fx.dir);
    vault
        .create_key(&admin(), "probe", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    vault
        .set_access_policy(&Principal::new("probe"), Permissions::key_user())
        .unwrap();
    let (state_after, ops_after) = size(&fx.dir);
    assert_eq!(state_after, state_before, "the snapshot is not rewritten");
    ops_after - ops_before
}

#[test]
fn a_change_writes_what_changed_not_the_whole_vault() {
    let small = bytes_per_change(2);
    let large = bytes_per_change(60);
    // The records differ only in numbers (generation, audit offset).
    assert!(small.abs_diff(large) <= 16, "{small} vs {large} bytes");
    assert!(small < 2048, "{small} bytes for two small changes");
}

#[test]
fn the_op_log_is_folded_into_a_snapshot_as_it_grows_and_survives_reopening() {
    let fx = Fixture::new();
    let vault = fx.open().unwrap();
    let mut max_ops = 0;
    let mut folded = false;
    for i in 0..60 {
        vault
            .create_key(
                &admin(),
                &format!("k{i}"),
                KeyType::Aes256,
                KeyOptions::default(),
            )
            .unwrap();
        let (state, ops) = state_files(&fx.dir);
        // Never larger than the snapshot (and the 16 KiB floor) plus one
        // record.
        assert!(ops.len() <= state.len().max(16 * 1024) + 2048, "{i}");
        folded |= ops.len() < max_ops;
        max_ops = max_ops.max(ops.len());
    }
    assert!(folded, "a compaction happened");
    drop(vault);
    let vault = fx.open().unwrap();
    assert_eq!(vault.list_keys(&admin()).unwrap().len(), 61);
    vault.verify_audit_log().unwrap();
}

#[test]
fn an_altered_op_record_is_caught() {
    let fx = Fixture::new();
    let path = fx.dir.join("ops.log");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"admin\""), "{text}");
    fs::write(&path, text.replacen("\"admin\"", "\"mallory\"", 1)).unwrap();
    match fx.open() {
        Err(VaultError::Corrupt { path, reason }) => {
            assert!(path.ends_with("ops.log"), "{path:?}");
            assert!(reason.contains("MAC"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

// ------------------------------------------------- audit log rotation

/// Three wraps: the log holds the fixture's two entries and three more.
fn with_entries(fx: &Fixture) -> FileKeyVault {
    let vault = fx.open().unwrap();
    for _ in 0..3 {
        vault
            .wrap_key(&admin(), "k", None, WrapAlgorithm::A256Kw, &[1; 32])
            .unwrap();
    }
    vault
}

#[test]
fn a_rotated_audit_log_verifies_live_and_archived_across_processes_and_moves() {
    let fx = Fixture::new();
    let vault = with_entries(&fx);
    // A second handle (as another process) that has read the log before.
    let other = fx.open().unwrap();
    assert_eq!(other.audit_log().unwrap().len(), 5);

    let first = vault.rotate_audit_log().unwrap().expect("a segment");
    assert_eq!((first.first_seq, first.last_seq), (1, 5));
    assert_eq!(first.path, fx.dir.join("audit.log"));
    let live = vault.audit_log().unwrap();
    assert_eq!(live.len(), 1, "the rotation's own entry");
    assert_eq!(live[0].seq, 6);
    assert!(live[0].operation.starts_with("rotateAuditLog"), "{live:?}");
    vault.verify_audit_log().unwrap();

    // The other handle writes on into the new segment, linked to the old.
    other
        .wrap_key(&admin(), "k", None, WrapAlgorithm::A256Kw, &[2; 32])
        .unwrap();
    let live = vault.audit_log().unwrap();
    assert_eq!(live.iter().map(|e| e.seq).collect::<Vec<_>>(), [6, 7]);
    vault.verify_audit_log().unwrap();
    other.verify_audit_log().unwrap();
    assert_eq!(log_lines(&fx.dir).len(), 5, "the archive is never written");

    let second = other.rotate_audit_log().unwrap().expect("a segment");
    assert_eq!((second.first_seq, second.last_seq), (6, 7));
    assert_eq!(second.path, fx.dir.join(format!("audit.{:020}.log", 6)));
    assert_eq!(
        vault.rotate_audit_log().unwrap().map(|s| s.first_seq),
        Some(8)
    );
    drop((vault, other));

    // Archives moved elsewhere verify, in order, against the live log of a
    // reopened vault; the oldest may be left out.
    let vault = fx.open().unwrap();
    vault.verify_audit_log().unwrap();
    let away = fx._tmp.path().join("cold-storage");
    fs::create_dir_all(&away).unwrap();
    let mut moved = Vec::new();
    for (i, segment) in [&first, &second].iter().enumerate() {
        let to = away.join(format!("segment-{i}"));
        fs::rename(&segment.path, &to).unwrap();
        moved.push(to);
    }
    let third = fx.dir.join(format!("audit.{:020}.log", 8));
    let all = [moved[0].clone(), moved[1].clone(), third.clone()];
    assert_eq!(vault.verify_archived_audit_log(&all).unwrap(), 1..=8);
    assert_eq!(vault.verify_archived_audit_log(&all[1..]).unwrap(), 6..=8);
    // The vault goes on after its archives were moved away.
    vault
        .wrap_key(&admin(), "k", None, WrapAlgorithm::A256Kw, &[3; 32])
        .unwrap();
    drop(vault);
    let vault = fx.open().unwrap();
    vault.verify_audit_log().unwrap();

    // Out of order, with a segment missing, ending short, or running into
    // the live log: each refused.
    let wrong_order = [moved[1].clone(), moved[0].clone(), third.clone()];
    assert_eq!(
        common::tampered_at(
            vault.verify_archived_audit_log(&wrong_order).map(drop),
            "reordered"
        ),
        2
    );
    let gap = [moved[0].clone(), third.clone()];
    assert_eq!(
        common::tampered_at(vault.verify_archived_audit_log(&gap).map(drop), "gap"),
        5
    );
    let short = [moved[0].clone(), moved[1].clone()];
    assert_eq!(
        common::tampered_at(vault.verify_archived_audit_log(&short).map(drop), "short"),
        7
    );
    let live = fx.dir.join(format!("audit.{:020}.log", 9));
    let too_far = [third.clone(), live];
    assert_eq!(
        common::tampered_at(
            vault.verify_archived_audit_log(&too_far).map(drop),
            "live given"
        ),
        1
    );
    assert!(matches!(
        vault.verify_archived_audit_log(&[] as &[&Path]),
        Err(VaultError::InvalidArgument { .. })
    ));
}

#[test]
fn a_forged_or_edited_archived_entry_is_found() {
    let fx = Fixture::new();
    let vault = with_entries(&fx);
    let archived = vault.rotate_audit_log().unwrap().unwrap();
    let lines = log_lines(&fx.dir);
    assert_eq!(lines.len(), 5);
    // An entry rewritten, with a MAC made without the vault's key.
    let mut edited = lines.clone();
    edited[3] = forged_after(&lines[2]);
    let path = fx._tmp.path().join("edited.log");
    fs::write(&path, edited.join("\n") + "\n").unwrap();
    assert_eq!(
        common::tampered_at(
            vault.verify_archived_audit_log(&[&path]).map(drop),
            "edited"
        ),
        3
    );
    // A forged entry appended to the closed segment.
    let appended = fx._tmp.path().join("appended.log");
    fs::write(
        &appended,
        format!("{}\n{}\n", lines.join("\n"), forged_after(&lines[4])),
    )
    .unwrap();
    assert_eq!(
        common::tampered_at(
            vault.verify_archived_audit_log(&[&appended]).map(drop),
            "appended"
        ),
        5
    );
    // Not an audit log at all.
    let junk = fx._tmp.path().join("junk.log");
    fs::write(&junk, "{}\n").unwrap();
    assert!(matches!(
        vault.verify_archived_audit_log(&[&junk]),
        Err(VaultError::Corrupt { .. })
    ));
    assert_eq!(
        vault.verify_archived_audit_log(&[&archived.path]).unwrap(),
        1..=5
    );
}

#[test]
fn a_tampered_live_log_is_not_archived() {
    let fx = Fixture::new();
    let lines = log_lines(&fx.dir);
    let forged = forged_after(&lines[lines.len() - 1]);
    fs::write(
        fx.dir.join("audit.log"),
        format!("{}\n{forged}\n", lines.join("\n")),
    )
    .unwrap();
    let vault = fx.open().unwrap();
    assert_eq!(
        common::tampered_at(vault.rotate_audit_log().map(drop), "rotate"),
        lines.len()
    );
    assert!(
        !fx.dir
            .join(format!("audit.{:020}.log", lines.len() + 1))
            .exists(),
        "no new segment"
    );
}

#[test]
fn a_state_from_before_a_rotation_is_refused_without_a_witness() {
    let fx = Fixture::new();
    let vault = with_entries(&fx);
    let before = state_files(&fx.dir);
    vault.rotate_audit_log().unwrap().unwrap();
    // Right after, the live segment holds the rotation's entry alone.
    let again = vault.rotate_audit_log().unwrap().unwrap();
    assert_eq!((again.first_seq, again.last_seq), (6, 6));
    drop(vault);
    // The old state names audit.log (whole, and untouched since) as the
    // live log; the segment the rotation began shows it is old.
    put_back(&fx.dir, &before);
    match fx.open() {
        Err(VaultError::RolledBack { found, last_seen }) => {
            assert_eq!(last_seen, found + 1, "one commit undone");
        }
        other => panic!("expected RolledBack, got {other:?}"),
    }
}
