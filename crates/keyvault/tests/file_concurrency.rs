//! Two processes using one FileKeyVault directory at once (children that
//! re-run this test binary): no lost update, every unwrap works, and the
//! audit log verifies with no gap.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    FileKeyVault, KeyOptions, KeyType, KeyVault, Permissions, Principal, RootKeySource, VaultError,
    VaultProperties,
};

const CHILD_ENV: &str = "STRONGROOM_FILE_CONCURRENCY_CHILD";
/// Rotations each child makes.
const ROTATIONS: usize = 12;

fn admin() -> Principal {
    Principal::new("admin")
}

fn props() -> VaultProperties {
    let mut p = VaultProperties::new("kv-concurrent");
    p.soft_delete_retention_days = 7;
    p
}

fn root(key_file: &Path) -> RootKeySource {
    RootKeySource::KeyFile(key_file.to_path_buf())
}

/// Waits until the parent says go, so that both children start together.
fn wait_for_go(go: &Path) {
    let start = Instant::now();
    while !go.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no go signal");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn spawn(test: &str, spec: String) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// A child's stdout, and whether it exited cleanly.
fn finish(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// One child's work: its own key, `ROTATIONS` rotations of the shared key,
/// a wrap and unwrap under each new version, and an unwrap under the RSA
/// key and under the shared key's first version each time.
fn worker(name: &str, dir: &Path, key_file: &Path, go: &Path) {
    let vault = FileKeyVault::open(dir, root(key_file)).unwrap();
    let me = Principal::new(name);
    let fixed: Vec<String> = fs::read_to_string(dir.parent().unwrap().join("fixtures"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let unhex = |h: &str| -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    };
    let (rsa_version, rsa_wrapped) = (&fixed[0], unhex(&fixed[1]));
    let (aes_version, aes_wrapped) = (&fixed[2], unhex(&fixed[3]));
    wait_for_go(go);
    vault
        .create_key(
            &me,
            &format!("own-{name}"),
            KeyType::Aes256,
            KeyOptions::default(),
        )
        .unwrap();
    for i in 0..ROTATIONS {
        let v = vault
            .rotate_key(&me, "shared", KeyOptions::default())
            .unwrap();
        let dek = [i as u8; 32];
        let w = vault
            .wrap_key(&me, "shared", Some(&v.version), WrapAlgorithm::A256Kw, &dek)
            .unwrap();
        assert_eq!(w.version, v.version);
        let back = vault
            .unwrap_key(&me, "shared", &w.version, WrapAlgorithm::A256Kw, &w.wrapped)
            .unwrap();
        assert_eq!(back.as_slice(), dek);
        let rsa = vault
            .unwrap_key(
                &me,
                "rsa",
                rsa_version,
                WrapAlgorithm::RsaOaep256,
                &rsa_wrapped,
            )
            .unwrap();
        assert_eq!(rsa.as_slice(), [0xee; 32]);
        let first = vault
            .unwrap_key(
                &me,
                "shared",
                aes_version,
                WrapAlgorithm::A256Kw,
                &aes_wrapped,
            )
            .unwrap();
        assert_eq!(first.as_slice(), [0xaa; 32]);
    }
    println!("worker {name} done");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn two_processes_rotating_and_unwrapping_lose_no_update() {
    const TEST: &str = "two_processes_rotating_and_unwrapping_lose_no_update";
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let parts: Vec<&str> = spec.split(';').collect();
        worker(
            parts[0],
            Path::new(parts[1]),
            Path::new(parts[2]),
            Path::new(parts[3]),
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("root.key");
    FileKeyVault::generate_key_file(&key_file).unwrap();
    let dir = tmp.path().join("vault");
    let go = tmp.path().join("go");
    {
        let vault = FileKeyVault::create(&dir, props(), root(&key_file)).unwrap();
        vault
            .set_access_policy(&admin(), Permissions::all())
            .unwrap();
        for p in ["a", "b"] {
            vault
                .set_access_policy(&Principal::new(p), Permissions::all())
                .unwrap();
        }
        let shared = vault
            .create_key(&admin(), "shared", KeyType::Aes256, KeyOptions::default())
            .unwrap();
        vault
            .create_key(&admin(), "rsa", KeyType::Rsa2048, KeyOptions::default())
            .unwrap();
        let r = vault
            .wrap_key(
                &admin(),
                "rsa",
                None,
                WrapAlgorithm::RsaOaep256,
                &[0xee; 32],
            )
            .unwrap();
        let a = vault
            .wrap_key(
                &admin(),
                "shared",
                Some(&shared.version),
                WrapAlgorithm::A256Kw,
                &[0xaa; 32],
            )
            .unwrap();
        fs::write(
            tmp.path().join("fixtures"),
            format!(
                "{}\n{}\n{}\n{}\n",
                r.version,
                hex(&r.wrapped),
                a.version,
                hex(&a.wrapped)
            ),
        )
        .unwrap();
    }
    let before = FileKeyVault::open(&dir, root(&key_file))
        .unwrap()
        .audit_log()
        .unwrap()
        .len();
    let spec = |name: &str| {
        format!(
            "{name};{};{};{}",
            dir.display(),
            key_file.display(),
            go.display()
        )
    };
    let children = [spawn(TEST, spec("a")), spawn(TEST, spec("b"))];
    std::thread::sleep(Duration::from_millis(300));
    fs::write(&go, b"go").unwrap();
    for child in children {
        let (ok, out) = finish(child);
        assert!(ok, "a worker failed: {out}");
        assert!(out.contains("done"), "{out}");
    }

    let vault = FileKeyVault::open(&dir, root(&key_file)).unwrap();
    let log = vault.audit_log().unwrap();
    vault.verify_audit_log().unwrap();
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "gap in the audit log");
    }
    // Per worker: create + ROTATIONS x (rotate, wrap, 3 unwraps).
    for name in ["a", "b"] {
        let mine: Vec<_> = log.iter().filter(|e| e.principal == name).collect();
        assert_eq!(mine.len(), 1 + 5 * ROTATIONS, "{name}");
        assert_eq!(
            mine.iter().filter(|e| e.operation == "rotate").count(),
            ROTATIONS
        );
        assert!(mine.iter().all(|e| e.outcome.to_string() == "allowed"));
    }
    assert_eq!(log.len(), before + 2 * (1 + 5 * ROTATIONS));
    // No lost update: every rotation of both is there, once.
    let versions = vault.list_versions(&admin(), "shared").unwrap();
    assert_eq!(versions.len(), 2 * ROTATIONS + 1);
    let mut ids: Vec<_> = versions.iter().map(|v| v.version.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2 * ROTATIONS + 1);
    // The rotations interleaved (both ran at once), as the log shows.
    let rotators: String = log
        .iter()
        .filter(|e| e.operation == "rotate")
        .map(|e| e.principal.as_str())
        .collect();
    assert!(
        rotators.contains("ab") || rotators.contains("ba"),
        "{rotators}"
    );
    assert_eq!(vault.list_keys(&admin()).unwrap().len(), 4);
}

#[test]
fn two_processes_creating_one_vault_make_exactly_one() {
    const TEST: &str = "two_processes_creating_one_vault_make_exactly_one";
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let parts: Vec<&str> = spec.split(';').collect();
        let (dir, key_file, go) = (
            PathBuf::from(parts[1]),
            PathBuf::from(parts[2]),
            PathBuf::from(parts[3]),
        );
        wait_for_go(&go);
        match FileKeyVault::create(&dir, props(), root(&key_file)) {
            Ok(vault) => {
                vault
                    .set_access_policy(&admin(), Permissions::all())
                    .unwrap();
                vault
                    .create_key(
                        &admin(),
                        &format!("by-{}", parts[0]),
                        KeyType::Aes256,
                        KeyOptions::default(),
                    )
                    .unwrap();
                println!("created by {}", parts[0]);
            }
            Err(VaultError::InvalidArgument { reason }) if reason.contains("already holds") => {
                println!("refused");
            }
            Err(e) => panic!("{e}"),
        }
        return;
    }
    for round in 0..3 {
        let tmp = tempfile::tempdir().unwrap();
        // Each process its own key file: the loser must not clobber the
        // winner's vault.
        let keys = [tmp.path().join("a.key"), tmp.path().join("b.key")];
        for k in &keys {
            FileKeyVault::generate_key_file(k).unwrap();
        }
        let dir = tmp.path().join("vault");
        let go = tmp.path().join("go");
        let children: Vec<Child> = ["a", "b"]
            .iter()
            .zip(&keys)
            .map(|(name, key)| {
                spawn(
                    TEST,
                    format!(
                        "{name};{};{};{}",
                        dir.display(),
                        key.display(),
                        go.display()
                    ),
                )
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        fs::write(&go, b"go").unwrap();
        let outs: Vec<String> = children
            .into_iter()
            .map(|c| {
                let (ok, out) = finish(c);
                assert!(ok, "round {round}: {out}");
                out
            })
            .collect();
        let winners: Vec<usize> = (0..2).filter(|&i| outs[i].contains("created by")).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outs:?}");
        let loser = 1 - winners[0];
        assert!(outs[loser].contains("refused"), "round {round}: {outs:?}");
        let vault = FileKeyVault::open(&dir, root(&keys[winners[0]])).unwrap();
        assert_eq!(vault.list_keys(&admin()).unwrap().len(), 1);
        vault.verify_audit_log().unwrap();
        assert!(matches!(
            FileKeyVault::open(&dir, root(&keys[loser])),
            Err(VaultError::WrongRootKey)
        ));
    }
}
