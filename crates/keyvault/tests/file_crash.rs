//! Crash safety of FileKeyVault: every operation is interrupted at every
//! step of its write (the process aborts at a crash point, in a child
//! process running this same test binary), and the vault must then open
//! in exactly the old or the new state, with an audit log that verifies
//! and goes on. A second test kills a child with SIGKILL at random moments
//! of a loop of operations.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    AttributeUpdate, FileKeyVault, KeyOptions, KeyType, KeyVault, ManualClock, Permission,
    Permissions, Principal, RootKeySource, VaultError, VaultProperties,
};

const T0: u64 = 1_750_000_000;
/// Tells a re-run of this binary that it is a child, and what to do.
const CHILD_ENV: &str = "STRONGROOM_FILE_CRASH_CHILD";

fn admin() -> Principal {
    Principal::new("admin")
}

fn reader() -> Principal {
    Principal::new("reader")
}

fn props() -> VaultProperties {
    let mut p = VaultProperties::new("kv-crash");
    p.soft_delete_retention_days = 7;
    p
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(T0 + 100))
}

fn open(dir: &Path, key_file: &Path) -> Result<FileKeyVault, VaultError> {
    FileKeyVault::open_with_clock(dir, RootKeySource::KeyFile(key_file.into()), clock())
}

/// The operations interrupted. Each makes one transaction (create: the
/// vault's creation).
const OPS: &[&str] = &[
    "create-vault",
    "create-key",
    "rotate",
    "update",
    "delete",
    "recover",
    "purge",
    "set-policy",
    "wrap",
    "unwrap",
    "denied",
];

/// Runs `op` on the vault in `dir` (a child's work). A fixed wrapped key
/// for "unwrap" is read from `dir/../wrapped`.
fn run_op(op: &str, dir: &Path, key_file: &Path) -> Result<(), VaultError> {
    if op == "create-vault" {
        FileKeyVault::create_with_clock(
            dir,
            props(),
            RootKeySource::KeyFile(key_file.into()),
            clock(),
        )?;
        return Ok(());
    }
    let vault = open(dir, key_file)?;
    // The version of "k" the base vault wrapped under, and the wrapped key.
    let text = fs::read_to_string(dir.parent().unwrap().join("wrapped")).unwrap();
    let (version, hex) = text.split_once(' ').unwrap();
    match op {
        "create-key" => {
            vault.create_key(&admin(), "new", KeyType::Aes256, KeyOptions::default())?;
        }
        "rotate" => {
            vault.rotate_key(&admin(), "k", KeyOptions::default())?;
        }
        "update" => {
            let update = AttributeUpdate {
                enabled: Some(false),
                ..AttributeUpdate::default()
            };
            vault.update_key(&admin(), "k", version, update)?;
        }
        "delete" => {
            vault.delete_key(&admin(), "k")?;
        }
        "recover" => {
            vault.recover_key(&admin(), "old")?;
        }
        "purge" => {
            vault.purge_key(&admin(), "old")?;
        }
        "set-policy" => {
            vault.set_access_policy(&reader(), Permissions::NONE)?;
        }
        "wrap" => {
            vault.wrap_key(&reader(), "k", None, WrapAlgorithm::A256Kw, &[1; 32])?;
        }
        "unwrap" => {
            let wrapped: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            let dek = vault.unwrap_key(&reader(), "k", version, WrapAlgorithm::A256Kw, &wrapped)?;
            assert_eq!(dek.as_slice(), [2; 32]);
        }
        "compact" => {
            vault.compact()?;
        }
        "rotate-audit" => {
            vault.rotate_audit_log()?;
        }
        "denied" => {
            let err = vault
                .create_key(&reader(), "nope", KeyType::Aes256, KeyOptions::default())
                .unwrap_err();
            assert!(matches!(err, VaultError::AccessDenied { .. }));
        }
        other => panic!("unknown op {other}"),
    }
    Ok(())
}

/// The vault every op starts from: key "k" (AES, one version), a deleted
/// key "old", admin with every permission, reader with get/wrap/unwrap.
fn make_base(dir: &Path, key_file: &Path) {
    let vault = FileKeyVault::create_with_clock(
        dir,
        props(),
        RootKeySource::KeyFile(key_file.into()),
        Arc::new(ManualClock::new(T0)),
    )
    .unwrap();
    vault
        .set_access_policy(&admin(), Permissions::all())
        .unwrap();
    vault
        .set_access_policy(
            &reader(),
            Permissions::NONE
                .with(Permission::Get)
                .with(Permission::WrapKey)
                .with(Permission::UnwrapKey),
        )
        .unwrap();
    vault
        .create_key(&admin(), "k", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    vault
        .create_key(&admin(), "old", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    vault.delete_key(&admin(), "old").unwrap();
    let w = vault
        .wrap_key(&admin(), "k", None, WrapAlgorithm::A256Kw, &[2; 32])
        .unwrap();
    let hex: String = w.wrapped.iter().map(|b| format!("{b:02x}")).collect();
    fs::write(
        dir.parent().unwrap().join("wrapped"),
        format!("{} {hex}", w.version),
    )
    .unwrap();
}

/// What a vault holds, with version ids replaced by their position so that
/// two runs of one operation compare equal. Read without changing the
/// vault's state (only its audit log grows).
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    keys: BTreeMap<String, Vec<String>>,
    deleted: Vec<String>,
    reader: Permissions,
    purge_protection: bool,
}

fn snapshot(vault: &FileKeyVault) -> Snapshot {
    let mut keys = BTreeMap::new();
    for info in vault.list_keys(&admin()).unwrap() {
        let versions = vault
            .list_versions(&admin(), &info.name)
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(i, v)| format!("#{i} {:?} {:?}", v.key_type, v.attributes))
            .collect();
        keys.insert(info.name, versions);
    }
    let deleted = vault
        .list_deleted_keys(&admin())
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    Snapshot {
        keys,
        deleted,
        reader: vault.access_policy(&reader()).unwrap(),
        purge_protection: vault.properties().unwrap().purge_protection,
    }
}

/// Copies a closed vault directory's files.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Re-runs this test binary's test `test` as a child doing `op` on `dir`,
/// aborting at `point`.
fn run_child(test: &str, op: &str, point: Option<&str>, dir: &Path, key_file: &Path) -> ExitStatus {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(
            CHILD_ENV,
            format!(
                "{op};{};{};{}",
                point.unwrap_or("none"),
                dir.display(),
                key_file.display()
            ),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
}

/// If this process is a child, does its work and exits.
fn child_main() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split(';');
    let op = parts.next().unwrap().to_owned();
    let point = parts.next().unwrap();
    let dir = PathBuf::from(parts.next().unwrap());
    let key_file = PathBuf::from(parts.next().unwrap());
    if point != "none" {
        FileKeyVault::set_crash_point_for_tests(Some(point)).unwrap();
    }
    let code = match run_op(&op, &dir, &key_file) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("child {op}: {e}");
            3
        }
    };
    std::process::exit(code);
}

fn aborted(status: ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal() == Some(6)
    }
    #[cfg(not(unix))]
    {
        !status.success()
    }
}

/// Which state a crash at `point` must leave: false = old, true = new. A
/// transaction commits when its op record is whole in `ops.log` (the abort
/// keeps what was written, fsynced or not, as a process kill does); a
/// vault's creation when `state.json` is renamed into place.
fn commits(point: &str) -> bool {
    matches!(
        point,
        "ops:before-fsync" | "ops:after-fsync" | "state.json:before-dir-fsync" | "state.json:done"
    )
}

/// Whether the op's audit entry must be in the log after a crash at
/// `point` (appended completely, whatever became of the state).
fn entry_kept(point: &str) -> bool {
    !matches!(point, "audit:before-append" | "audit:torn-append")
}

#[test]
fn a_crash_at_any_step_leaves_the_old_or_the_new_state() {
    child_main();
    const TEST: &str = "a_crash_at_any_step_leaves_the_old_or_the_new_state";
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("root.key");
    FileKeyVault::generate_key_file(&key_file).unwrap();
    let base = tmp.path().join("base").join("vault");
    make_base(&base, &key_file);
    let tx_points: Vec<&str> = FileKeyVault::crash_points_for_tests()
        .iter()
        .copied()
        .filter(|p| p.starts_with("audit:") || p.starts_with("ops:"))
        .collect();
    assert_eq!(tx_points.len(), 8);
    let mut runs = 0;

    for &op in &OPS[1..] {
        let case_dir = |name: &str| {
            let d = tmp.path().join(format!("{op}-{name}")).join("vault");
            copy_dir(&base, &d);
            fs::copy(
                base.parent().unwrap().join("wrapped"),
                d.parent().unwrap().join("wrapped"),
            )
            .unwrap();
            d
        };
        // The old and the new state, and the audit log's length in each.
        let old_dir = case_dir("old");
        let old_vault = open(&old_dir, &key_file).unwrap();
        let old_len = old_vault.audit_log().unwrap().len();
        let old = snapshot(&old_vault);
        drop(old_vault);
        let new_dir = case_dir("new");
        let status = run_child(TEST, op, None, &new_dir, &key_file);
        assert!(status.success(), "{op} without a crash: {status}");
        let new_vault = open(&new_dir, &key_file).unwrap();
        let new_len = new_vault.audit_log().unwrap().len();
        let new = snapshot(&new_vault);
        drop(new_vault);
        let changes_state = !matches!(op, "wrap" | "unwrap" | "denied");
        assert_eq!(old != new, changes_state, "{op}: {old:?} -> {new:?}");
        let op_entries = new_len - old_len;
        assert!(op_entries >= 1, "{op} was not audited");

        for &point in &tx_points {
            let dir = case_dir(point);
            let status = run_child(TEST, op, Some(point), &dir, &key_file);
            if !changes_state && point.starts_with("ops:") {
                // A read (or a refused call) appends its audit entry and
                // never reaches a commit: the state file is the base's,
                // byte for byte, and there is no op record.
                assert!(status.success(), "{op} at {point}: {status}");
                runs += 1;
                assert_eq!(
                    fs::read(dir.join("state.json")).unwrap(),
                    fs::read(base.join("state.json")).unwrap(),
                    "{op}: a read rewrote state.json"
                );
                let vault = open(&dir, &key_file).unwrap();
                assert_eq!(vault.audit_log().unwrap().len(), new_len, "{op}");
                assert_eq!(snapshot(&vault), old, "{op}");
                vault.verify_audit_log().unwrap();
                continue;
            }
            assert!(
                aborted(status),
                "{op} at {point}: the child did not stop there ({status})"
            );
            runs += 1;
            let vault = open(&dir, &key_file).unwrap_or_else(|e| panic!("{op} at {point}: {e}"));
            vault
                .verify_audit_log()
                .unwrap_or_else(|e| panic!("{op} at {point}: audit log: {e}"));
            let log_len = vault.audit_log().unwrap().len();
            let snap = snapshot(&vault);
            let (expected, expected_len) = if commits(point) {
                (&new, new_len)
            } else if entry_kept(point) {
                (&old, old_len + op_entries)
            } else {
                (&old, old_len)
            };
            assert_eq!(&snap, expected, "{op} at {point}: state");
            assert_eq!(log_len, expected_len, "{op} at {point}: audit log length");
            // The vault goes on: another call, another reopen, and the
            // chain still verifies with no gap.
            vault
                .rotate_key(&admin(), "k", KeyOptions::default())
                .map(|_| ())
                .or_else(|e| match e {
                    VaultError::KeyDeleted { .. } => Ok(()),
                    e => Err(e),
                })
                .unwrap();
            drop(vault);
            let vault = open(&dir, &key_file).unwrap();
            let log = vault.audit_log().unwrap();
            vault.verify_audit_log().unwrap();
            for (i, e) in log.iter().enumerate() {
                assert_eq!(e.seq, i as u64 + 1, "{op} at {point}: gap");
            }
            // The next commit replaced any leftover temporary file.
            assert!(!dir.join("state.json.tmp").exists(), "{op} at {point}");
        }
    }
    assert_eq!(runs, (OPS.len() - 1) * tx_points.len());
}

#[test]
fn a_crash_at_any_step_of_creation_leaves_no_vault_or_a_whole_one() {
    child_main();
    const TEST: &str = "a_crash_at_any_step_of_creation_leaves_no_vault_or_a_whole_one";
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("root.key");
    FileKeyVault::generate_key_file(&key_file).unwrap();
    let points: Vec<&str> = FileKeyVault::crash_points_for_tests()
        .iter()
        .copied()
        .filter(|p| {
            !["audit:", "recover:", "ops:", "compact:", "rotate:"]
                .iter()
                .any(|t| p.starts_with(t))
        })
        .collect();
    assert_eq!(points.len(), 12);
    for point in points {
        let dir = tmp.path().join(point.replace(':', "-")).join("vault");
        let status = run_child(TEST, "create-vault", Some(point), &dir, &key_file);
        assert!(aborted(status), "create at {point}: {status}");
        if commits(point) {
            // The vault exists, whole and empty.
            let vault = open(&dir, &key_file).unwrap();
            assert!(vault.audit_log().unwrap().is_empty());
            assert_eq!(vault.properties().unwrap(), props());
        } else {
            // No vault: opening says so, and creating again works.
            let err = open(&dir, &key_file).unwrap_err();
            assert!(
                matches!(
                    &err,
                    VaultError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound
                ) || matches!(&err, VaultError::Corrupt { reason, .. } if reason.contains("creation did not finish")),
                "create at {point}: {err:?}"
            );
            FileKeyVault::create_with_clock(
                &dir,
                props(),
                RootKeySource::KeyFile(key_file.clone()),
                clock(),
            )
            .unwrap_or_else(|e| panic!("create again after a crash at {point}: {e}"));
        }
        let vault = open(&dir, &key_file).unwrap();
        vault
            .set_access_policy(&admin(), Permissions::all())
            .unwrap();
        vault
            .create_key(&admin(), "k", KeyType::Aes256, KeyOptions::default())
            .unwrap();
        vault.verify_audit_log().unwrap();
        assert!(
            FileKeyVault::create(&dir, props(), RootKeySource::KeyFile(key_file.clone())).is_err()
        );
    }
}

#[test]
fn a_crash_at_any_step_of_compaction_leaves_the_state_whole() {
    child_main();
    const TEST: &str = "a_crash_at_any_step_of_compaction_leaves_the_state_whole";
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("root.key");
    FileKeyVault::generate_key_file(&key_file).unwrap();
    let base = tmp.path().join("base").join("vault");
    make_base(&base, &key_file);
    let before = snapshot(&open(&base, &key_file).unwrap());
    assert!(fs::metadata(base.join("ops.log")).unwrap().len() > 0);
    let points: Vec<&str> = FileKeyVault::crash_points_for_tests()
        .iter()
        .copied()
        .filter(|p| p.starts_with("state.json:") || p.starts_with("compact:"))
        .collect();
    assert_eq!(points.len(), 7);
    for point in points {
        let dir = tmp.path().join(point.replace(':', "-")).join("vault");
        copy_dir(&base, &dir);
        fs::copy(
            base.parent().unwrap().join("wrapped"),
            dir.parent().unwrap().join("wrapped"),
        )
        .unwrap();
        let status = run_child(TEST, "compact", Some(point), &dir, &key_file);
        assert!(aborted(status), "compact at {point}: {status}");
        // Old snapshot and its op log, or new snapshot (with or without
        // the stale op log): the same state either way.
        let vault = open(&dir, &key_file).unwrap_or_else(|e| panic!("{point}: {e}"));
        assert_eq!(snapshot(&vault), before, "compact at {point}");
        vault.verify_audit_log().unwrap();
        // It goes on: a change, a reopen, a compaction, a reopen.
        vault
            .rotate_key(&admin(), "k", KeyOptions::default())
            .unwrap();
        drop(vault);
        let vault = open(&dir, &key_file).unwrap();
        assert_eq!(
            vault.list_versions(&admin(), "k").unwrap().len(),
            2,
            "{point}"
        );
        vault.compact().unwrap();
        assert_eq!(fs::metadata(dir.join("ops.log")).unwrap().len(), 0);
        drop(vault);
        let vault = open(&dir, &key_file).unwrap();
        assert_eq!(
            vault.list_versions(&admin(), "k").unwrap().len(),
            2,
            "{point}"
        );
        vault.verify_audit_log().unwrap();
        assert!(!dir.join("state.json.tmp").exists(), "{point}");
    }
}

#[test]
fn a_crash_at_any_step_of_an_audit_log_rotation_loses_no_entry() {
    child_main();
    const TEST: &str = "a_crash_at_any_step_of_an_audit_log_rotation_loses_no_entry";
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("root.key");
    FileKeyVault::generate_key_file(&key_file).unwrap();
    let base = tmp.path().join("base").join("vault");
    make_base(&base, &key_file);
    let entries = open(&base, &key_file).unwrap().audit_log().unwrap().len() as u64;
    let points: Vec<&str> = FileKeyVault::crash_points_for_tests()
        .iter()
        .copied()
        .filter(|p| {
            ["ops:", "audit:", "rotate:"]
                .iter()
                .any(|t| p.starts_with(t))
        })
        .collect();
    assert_eq!(points.len(), 9);
    let next_segment = format!("audit.{:020}.log", entries + 1);
    for point in points {
        let dir = tmp.path().join(point.replace(':', "-")).join("vault");
        copy_dir(&base, &dir);
        fs::copy(
            base.parent().unwrap().join("wrapped"),
            dir.parent().unwrap().join("wrapped"),
        )
        .unwrap();
        let status = run_child(TEST, "rotate-audit", Some(point), &dir, &key_file);
        assert!(aborted(status), "rotate at {point}: {status}");
        // Committed once its op record is whole; the rotation's own entry
        // is there once appended whole.
        let committed = !matches!(point, "ops:before-append" | "ops:torn-append");
        let entry_kept = matches!(point, "audit:before-fsync" | "audit:after-fsync");
        let vault = open(&dir, &key_file).unwrap_or_else(|e| panic!("{point}: {e}"));
        vault
            .verify_audit_log()
            .unwrap_or_else(|e| panic!("{point}: {e}"));
        let live: Vec<u64> = vault.audit_log().unwrap().iter().map(|e| e.seq).collect();
        if committed {
            assert_eq!(
                vault
                    .verify_archived_audit_log(&[dir.join("audit.log")])
                    .unwrap(),
                1..=entries,
                "{point}"
            );
            let expected: &[u64] = if entry_kept { &[entries + 1] } else { &[] };
            assert_eq!(live, expected, "{point}");
            if !entry_kept {
                // An empty live segment has nothing to rotate.
                assert_eq!(vault.rotate_audit_log().unwrap(), None, "{point}");
            }
        } else {
            assert_eq!(live, (1..=entries).collect::<Vec<_>>(), "{point}");
            assert!(!dir.join(&next_segment).exists(), "{point}");
            let again = vault.rotate_audit_log().unwrap().unwrap();
            assert_eq!((again.first_seq, again.last_seq), (1, entries), "{point}");
        }
        // It goes on: a call, a reopen, the chain whole across segments.
        vault
            .wrap_key(&reader(), "k", None, WrapAlgorithm::A256Kw, &[1; 32])
            .unwrap();
        drop(vault);
        let vault = open(&dir, &key_file).unwrap();
        vault.verify_audit_log().unwrap();
        let live = vault.audit_log().unwrap();
        let first = live[0].seq;
        assert_eq!(
            vault
                .verify_archived_audit_log(&[dir.join("audit.log")])
                .unwrap(),
            1..=first - 1,
            "{point}"
        );
        for (i, e) in live.iter().enumerate() {
            assert_eq!(e.seq, first + i as u64, "{point}: gap");
        }
    }
}

#[test]
fn a_crash_while_repairing_a_torn_log_is_repaired_again() {
    child_main();
    const TEST: &str = "a_crash_while_repairing_a_torn_log_is_repaired_again";
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("root.key");
    FileKeyVault::generate_key_file(&key_file).unwrap();
    let dir = tmp.path().join("base").join("vault");
    make_base(&dir, &key_file);
    let before = open(&dir, &key_file).unwrap().audit_log().unwrap();
    let committed_log = fs::read(dir.join("audit.log")).unwrap();

    // 1. Torn append: half a line at the end of the log.
    let status = run_child(TEST, "rotate", Some("audit:torn-append"), &dir, &key_file);
    assert!(aborted(status));
    let torn = fs::read(dir.join("audit.log")).unwrap();
    assert!(torn.len() > committed_log.len() && !torn.ends_with(b"\n"));
    // 2. The next writer crashes right after cutting it off.
    let status = run_child(
        TEST,
        "rotate",
        Some("recover:after-truncate"),
        &dir,
        &key_file,
    );
    assert!(aborted(status));
    assert_eq!(fs::read(dir.join("audit.log")).unwrap(), committed_log);
    // 3. A third one finishes.
    let status = run_child(TEST, "rotate", None, &dir, &key_file);
    assert!(status.success());
    let vault = open(&dir, &key_file).unwrap();
    let log = vault.audit_log().unwrap();
    assert_eq!(vault.list_versions(&admin(), "k").unwrap().len(), 2);
    assert_eq!(&log[..before.len()], before.as_slice());
    assert_eq!(log.len(), before.len() + 1);
    vault.verify_audit_log().unwrap();
}

#[test]
fn every_crash_point_is_a_known_name() {
    child_main();
    let points = FileKeyVault::crash_points_for_tests();
    assert_eq!(points.len(), 24);
    for p in points {
        FileKeyVault::set_crash_point_for_tests(Some(p)).unwrap();
    }
    FileKeyVault::set_crash_point_for_tests(None).unwrap();
    assert!(matches!(
        FileKeyVault::set_crash_point_for_tests(Some("no-such-point")),
        Err(VaultError::InvalidArgument { .. })
    ));
}

/// The killed child's loop: rotate "k", wrap under the new version, print
/// the count after each rotation returned.
fn rotate_forever(dir: &Path, key_file: &Path) -> ! {
    let vault = open(dir, key_file).unwrap();
    let mut out = std::io::stdout();
    for n in 1.. {
        let v = vault
            .rotate_key(&admin(), "k", KeyOptions::default())
            .unwrap();
        vault
            .wrap_key(
                &admin(),
                "k",
                Some(&v.version),
                WrapAlgorithm::A256Kw,
                &[5; 32],
            )
            .unwrap();
        writeln!(out, "rotated {n}").unwrap();
        out.flush().unwrap();
    }
    unreachable!()
}

#[test]
fn a_child_killed_at_a_random_moment_leaves_a_consistent_vault() {
    const TEST: &str = "a_child_killed_at_a_random_moment_leaves_a_consistent_vault";
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (dir, key_file) = spec.split_once(';').unwrap();
        rotate_forever(Path::new(dir), Path::new(key_file));
    }
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("root.key");
    FileKeyVault::generate_key_file(&key_file).unwrap();
    let dir = tmp.path().join("base").join("vault");
    make_base(&dir, &key_file);
    let mut versions = 1;
    let mut rotations_before = 0;
    for round in 0..6 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(
                CHILD_ENV,
                format!("{};{}", dir.display(), key_file.display()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the first acknowledged rotation, then a random while.
        // (libtest's own output comes first, on the same line.)
        let mut lines = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.find("rotated ").map(|i| l[i..].to_owned()));
        assert_eq!(lines.next().as_deref(), Some("rotated 1"), "round {round}");
        let wait = 5 + getrandom::u32().unwrap() % 150;
        std::thread::sleep(Duration::from_millis(u64::from(wait)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        let acked = 1 + lines.count();

        let vault = open(&dir, &key_file).unwrap();
        vault
            .verify_audit_log()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let now = vault.list_versions(&admin(), "k").unwrap();
        // Every acknowledged rotation is there; the one in flight may be.
        assert!(
            now.len() == versions + acked || now.len() == versions + acked + 1,
            "round {round}: {} versions, {versions} before, {acked} acknowledged",
            now.len()
        );
        eprintln!(
            "round {round}: killed after {wait} ms, {acked} rotations acknowledged, {} made",
            now.len() - versions
        );
        let versions_before = versions;
        versions = now.len();
        // Every version works.
        for v in &now {
            let w = vault
                .wrap_key(
                    &admin(),
                    "k",
                    Some(&v.version),
                    WrapAlgorithm::A256Kw,
                    &[6; 32],
                )
                .unwrap();
            let back = vault
                .unwrap_key(&admin(), "k", &w.version, WrapAlgorithm::A256Kw, &w.wrapped)
                .unwrap();
            assert_eq!(back.as_slice(), [6; 32]);
        }
        // Each rotation made is audited; the one in flight may have been
        // audited without being made (its entry was appended, the state
        // not yet renamed into place), never the other way round.
        let log = vault.audit_log().unwrap();
        let rotations = log.iter().filter(|e| e.operation == "rotate").count();
        let (new_entries, made) = (rotations - rotations_before, versions - versions_before);
        assert!(
            new_entries == made || new_entries == made + 1,
            "round {round}: {new_entries} rotate entries for {made} rotations"
        );
        rotations_before = rotations;
        vault.verify_audit_log().unwrap();
    }
}
