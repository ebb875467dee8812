//! The `strongroom` binary end to end: each command's happy path, and the
//! error classes with their messages and exit codes, nothing left behind
//! by a failed restore.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Run {
    code: i32,
    /// Stdout's bytes as written.
    raw: Vec<u8>,
    stdout: String,
    stderr: String,
}

fn strongroom(dir: &Path, args: &[&str]) -> Run {
    strongroom_with_stdin(dir, args, None)
}

fn strongroom_with_stdin(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    strongroom_with_env(dir, args, stdin, &[])
}

fn strongroom_with_env(
    dir: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(String, String)],
) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .current_dir(dir)
        .env_remove("STRONGROOM_VAULT")
        .env_remove("STRONGROOM_STORE")
        .env_remove("STRONGROOM_ALLOW_HTTP_LOOPBACK")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    if let Some(bytes) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(bytes).expect("stdin");
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("the binary ends");
    let run = Run {
        code: status.code().expect("an exit code, not a signal"),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        raw: stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "a panic: {}",
        run.stderr
    );
    run
}

/// Runs and expects success; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let run = strongroom(dir, args);
    assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
    run.stdout
}

/// Runs and expects exit `code`; returns stderr.
fn fails(dir: &Path, args: &[&str], code: i32) -> String {
    let run = strongroom(dir, args);
    assert_eq!(run.code, code, "{args:?}: {}{}", run.stdout, run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    run.stderr
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 977) as u8).collect()
}

/// A vault with item `db` and one point of `data(len)`; returns its id.
fn vault_with_point(dir: &Path, len: usize) -> String {
    ok(dir, &["init"]);
    ok(dir, &["protect", "db"]);
    std::fs::write(dir.join("db.dump"), data(len)).unwrap();
    let id = ok(dir, &["backup", "db", "db.dump"]);
    id.trim().to_owned()
}

fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == name) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn help_shows_an_example_for_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let help = ok(tmp.path(), &["--help"]);
    assert!(help.contains("Examples:"), "{help}");
    for command in [
        "init",
        "protect",
        "backup",
        "points",
        "restore",
        "verify",
        "delete",
        "gc",
        "rewrap",
        "demo",
        "completions",
    ] {
        let help = ok(tmp.path(), &[command, "--help"]);
        assert!(help.contains("Example"), "{command}: {help}");
    }
    for command in [
        ["encryption", "show"],
        ["encryption", "set"],
        ["keys", "health"],
        ["keys", "rotate-platform"],
        ["keys", "create"],
        ["keys", "import"],
        ["keys", "rotate"],
        ["keys", "disable"],
        ["keys", "enable"],
        ["keys", "delete"],
        ["keys", "recover"],
        ["keys", "purge"],
        ["keys", "list"],
        ["key-vault", "create"],
        ["key-vault", "list"],
        ["access", "grant"],
        ["access", "revoke"],
        ["access", "list"],
        ["audit", "show"],
        ["audit", "verify"],
        ["secrets", "set"],
        ["secrets", "list"],
        ["secrets", "delete"],
        ["secrets", "recover"],
        ["secrets", "purge"],
    ] {
        let help = ok(tmp.path(), &[command[0], command[1], "--help"]);
        assert!(help.contains("Example"), "{command:?}: {help}");
    }
    let script = ok(tmp.path(), &["completions", "bash"]);
    assert!(script.contains("strongroom"), "{script}");
    let run = strongroom(tmp.path(), &["no-such-command"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn a_file_goes_in_and_comes_back_whole_and_by_range() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let len = 3 * 1024 * 1024 + 123;
    let id = vault_with_point(dir, len);
    assert_eq!(id.len(), 30, "{id}");

    let listed: serde_json::Value = serde_json::from_str(&ok(dir, &["points", "--json"])).unwrap();
    assert_eq!(listed[0]["point"], id);
    assert_eq!(listed[0]["item"], "db");
    assert_eq!(listed[0]["size"], len);
    assert_eq!(listed[0]["keys"][0]["algorithm"], "A256KW");
    let table = ok(dir, &["points", "db"]);
    assert!(table.contains(&id), "{table}");

    ok(dir, &["restore", &id, "-o", "restored.dump"]);
    assert!(std::fs::read(dir.join("restored.dump")).unwrap() == data(len));
    let run = strongroom(dir, &["restore", &id, "--range", "1000..5096", "-o", "-"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.raw == data(len)[1000..5096]);
    let verified = ok(dir, &["verify", &id]);
    assert!(verified.contains(&len.to_string()), "{verified}");

    // From stdin.
    let piped = strongroom_with_stdin(dir, &["backup", "db", "-"], Some(b"from a pipe"));
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    let second = piped.stdout.trim().to_owned();
    let run = strongroom(dir, &["restore", &second, "-o", "-"]);
    assert_eq!(run.stdout, "from a pipe");

    // Settings and key health, for scripts.
    let settings: serde_json::Value =
        serde_json::from_str(&ok(dir, &["encryption", "show", "--json"])).unwrap();
    assert_eq!(
        settings["settings"]["key"], "platform_managed",
        "{settings}"
    );
    assert_eq!(settings["protection_attempted"], true);
    let health: serde_json::Value =
        serde_json::from_str(&ok(dir, &["keys", "health", "--json"])).unwrap();
    assert_eq!(health[0]["points"], 2, "{health}");

    // Rotation, then rewrap: both points move; the old version is free.
    let old = health[0]["version"].as_str().unwrap().to_owned();
    ok(dir, &["keys", "rotate-platform"]);
    let report: serde_json::Value = serde_json::from_str(&ok(dir, &["rewrap", "--json"])).unwrap();
    assert_eq!(report["rewrapped"], 2, "{report}");
    let health: serde_json::Value =
        serde_json::from_str(&ok(dir, &["keys", "health", "--json"])).unwrap();
    assert!(
        health
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["version"] != old.as_str())
    );
    ok(dir, &["restore", &id, "-o", "again.dump"]);
    assert!(std::fs::read(dir.join("again.dump")).unwrap() == data(len));

    // Delete: gone, and nothing for gc.
    ok(dir, &["delete", &second]);
    let stderr = fails(dir, &["restore", &second, "-o", "-"], 3);
    assert!(stderr.contains("no recovery point"), "{stderr}");
    let gc = ok(dir, &["gc", "--grace-secs", "0"]);
    assert!(gc.contains("removed 0"), "{gc}");
}

#[test]
fn each_error_class_has_its_message_and_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // Not found (3): no vault, no item, no point.
    let stderr = fails(dir, &["points"], 3);
    assert!(
        stderr.contains("no vault") && stderr.contains("strongroom init"),
        "{stderr}"
    );
    let id = vault_with_point(dir, 100_000);
    let stderr = fails(dir, &["backup", "web", "db.dump"], 3);
    assert!(stderr.contains("strongroom protect web"), "{stderr}");
    fails(dir, &["verify", "1700000000000-0000000000000000"], 3);
    fails(dir, &["verify", "not-a-point"], 3);

    // Usage (2): a vault there already, an existing output, a bad range,
    // a bad chunk size.
    let stderr = fails(dir, &["init"], 2);
    assert!(stderr.contains("already exists"), "{stderr}");
    let stderr = fails(dir, &["restore", &id, "-o", "db.dump"], 2);
    assert!(stderr.contains("--force"), "{stderr}");
    fails(dir, &["restore", &id, "--range", "9..1", "-o", "-"], 2);
    fails(dir, &["restore", &id, "--range", "x", "-o", "-"], 2);
    fails(dir, &["backup", "db", "db.dump", "--chunk-size", "1000"], 2);

    // Storage (6): a source that is not there.
    fails(dir, &["backup", "db", "missing.dump"], 6);

    // Integrity (5): a byte of the body changed; the restore leaves no
    // output file and no temporary one.
    let body = &files_named(dir, "body")[0];
    let mut bytes = std::fs::read(body).unwrap();
    bytes[5000] ^= 1;
    std::fs::write(body, &bytes).unwrap();
    let stderr = fails(dir, &["restore", &id, "-o", "out.dump"], 5);
    assert!(
        stderr.contains("nothing was written to out.dump"),
        "{stderr}"
    );
    assert!(!dir.join("out.dump").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".strongroom-restore-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    fails(dir, &["verify", &id], 5);
    // Cut short.
    bytes[5000] ^= 1;
    bytes.truncate(bytes.len() - 10);
    std::fs::write(body, &bytes).unwrap();
    fails(dir, &["restore", &id, "-o", "out.dump"], 5);
    assert!(!dir.join("out.dump").exists());

    // A damaged vault record is an integrity failure too.
    let vault_json = dir.join(".strongroom/store/vault.json");
    std::fs::write(&vault_json, b"{\"magic\": 1}").unwrap();
    fails(dir, &["points"], 5);
}

#[test]
fn the_vault_can_live_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["--vault", "v2", "init", "--name", "other"]);
    ok(dir, &["--vault", "v2", "protect", "x"]);
    let run = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .current_dir(dir)
        .env("STRONGROOM_VAULT", "v2")
        .args(["points", "--json"])
        .output()
        .unwrap();
    assert!(run.status.success());
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "[]");
    assert!(!dir.join(".strongroom").exists());
}

#[test]
fn the_demo_tells_the_whole_story_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let run = strongroom(tmp.path(), &["demo"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    for told in [
        "platform-managed key",
        "preflight",
        "rotated",
        "rewrap",
        "restore refused",
        "granted get, wrapKey and unwrapKey again",
        "identical",
        "Crypto-shred",
        "Every step behaved as told.",
    ] {
        assert!(
            run.stdout.contains(told),
            "{told:?} missing from:\n{}",
            run.stdout
        );
    }
}

#[test]
fn a_customer_key_from_the_command_line_revoked_and_granted_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init"]);
    ok(dir, &["key-vault", "create", "contoso"]);
    ok(
        dir,
        &[
            "keys",
            "create",
            "cmk",
            "--key-vault",
            "contoso",
            "--type",
            "rsa-2048",
        ],
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ok(dir, &["key-vault", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["name"], "contoso");
    assert_eq!(listed[0]["passphrase"], false);

    // Preflight lists every problem (purge protection off, no access) and
    // changes nothing.
    let set = [
        "encryption",
        "set",
        "--key-vault",
        "contoso",
        "--key",
        "cmk",
    ];
    let stderr = fails(dir, &set, 4);
    assert!(
        stderr.contains("purge protection") && stderr.contains("wrapKey"),
        "{stderr}"
    );
    let shown: serde_json::Value =
        serde_json::from_str(&ok(dir, &["encryption", "show", "--json"])).unwrap();
    assert_eq!(shown["settings"]["key"], "platform_managed");

    // Purge protection on (a new key vault with it), access granted.
    ok(
        dir,
        &["key-vault", "create", "fabrikam", "--purge-protection"],
    );
    ok(
        dir,
        &[
            "keys",
            "create",
            "cmk",
            "--key-vault",
            "fabrikam",
            "--type",
            "rsa-2048",
        ],
    );
    let granted = ok(
        dir,
        &[
            "access",
            "grant",
            "--key-vault",
            "fabrikam",
            "--vault-identity",
        ],
    );
    assert!(
        granted.contains("get, wrapKey, unwrapKey") || granted.contains("wrapKey"),
        "{granted}"
    );
    let shown = ok(
        dir,
        &[
            "encryption",
            "set",
            "--key-vault",
            "fabrikam",
            "--key",
            "cmk",
            "--infrastructure-encryption",
        ],
    );
    assert!(
        shown.contains("customer-managed") && shown.contains("infrastructure encryption: on"),
        "{shown}"
    );

    ok(dir, &["protect", "db"]);
    std::fs::write(dir.join("db.dump"), data(200_000)).unwrap();
    let id = ok(dir, &["backup", "db", "db.dump"]).trim().to_owned();
    let points: serde_json::Value = serde_json::from_str(&ok(dir, &["points", "--json"])).unwrap();
    assert_eq!(points[0]["keys"][0]["key_vault"], "fabrikam");
    assert_eq!(points[0]["keys"][0]["algorithm"], "RSA-OAEP-256");
    assert_eq!(
        points[0]["infrastructure_keys"].as_array().unwrap().len(),
        1
    );

    // Revoked: the restore is refused (4) and leaves nothing.
    ok(
        dir,
        &[
            "access",
            "revoke",
            "--key-vault",
            "fabrikam",
            "--vault-identity",
        ],
    );
    let stderr = fails(dir, &["restore", &id, "-o", "out.dump"], 4);
    assert!(stderr.contains("get permission"), "{stderr}");
    assert!(!dir.join("out.dump").exists());
    let access: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &["access", "list", "--key-vault", "fabrikam", "--json"],
    ))
    .unwrap();
    assert_eq!(
        access[0]["permissions"].as_array().unwrap().len(),
        0,
        "{access}"
    );

    // Granted back: it restores.
    ok(
        dir,
        &[
            "access",
            "grant",
            "--key-vault",
            "fabrikam",
            "--vault-identity",
        ],
    );
    ok(dir, &["restore", &id, "-o", "out.dump"]);
    assert!(std::fs::read(dir.join("out.dump")).unwrap() == data(200_000));

    // Rotation: the old version is needed until a rewrap moves the point.
    let keys: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &["keys", "list", "--key-vault", "fabrikam", "--json"],
    ))
    .unwrap();
    let v1 = keys[0]["version"].as_str().unwrap().to_owned();
    ok(dir, &["keys", "rotate", "cmk", "--key-vault", "fabrikam"]);
    let stderr = fails(
        dir,
        &["keys", "disable", "cmk", &v1, "--key-vault", "fabrikam"],
        4,
    );
    assert!(stderr.contains("strongroom rewrap"), "{stderr}");
    ok(dir, &["rewrap"]);
    ok(
        dir,
        &["keys", "disable", "cmk", &v1, "--key-vault", "fabrikam"],
    );
    ok(dir, &["verify", &id]);
    let enabled = |dir: &Path| -> Vec<bool> {
        let keys: serde_json::Value = serde_json::from_str(&ok(
            dir,
            &["keys", "list", "--key-vault", "fabrikam", "--json"],
        ))
        .unwrap();
        let mut versions: Vec<_> = keys
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["version"] == v1.as_str(), k["enabled"] == true))
            .collect();
        versions.sort();
        versions.into_iter().map(|(_, on)| on).collect()
    };
    // [the new version, v1]
    assert_eq!(enabled(dir), [true, false]);
    ok(
        dir,
        &["keys", "enable", "cmk", &v1, "--key-vault", "fabrikam"],
    );
    assert_eq!(enabled(dir), [true, true]);
    // The latest version holds the point's only copy now: refused, then
    // forced (and the point cannot be opened until it is enabled again).
    let latest = points_key_version(dir, &id);
    fails(
        dir,
        &["keys", "disable", "cmk", &latest, "--key-vault", "fabrikam"],
        4,
    );
    ok(
        dir,
        &[
            "keys",
            "disable",
            "cmk",
            &latest,
            "--key-vault",
            "fabrikam",
            "--force",
        ],
    );
    fails(dir, &["verify", &id], 4);
    ok(
        dir,
        &["keys", "enable", "cmk", &latest, "--key-vault", "fabrikam"],
    );
    ok(dir, &["verify", &id]);

    // The key vault's audit log saw all of it, and verifies.
    let audit: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &["audit", "show", "--key-vault", "fabrikam", "--json"],
    ))
    .unwrap();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["operation"] == "unwrapKey"),
        "{audit}"
    );
    ok(dir, &["audit", "verify", "--key-vault", "fabrikam"]);
}

#[cfg(unix)]
#[test]
fn key_files_every_user_may_read_and_wrong_passphrases_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init"]);
    ok(dir, &["key-vault", "create", "contoso"]);
    let key_file = dir.join(".strongroom/keyvaults/contoso.key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = fails(dir, &["keys", "list", "--key-vault", "contoso"], 4);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    // (Opening the vault attaches its key vaults: refused the same way.)
    fails(dir, &["points"], 4);
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(dir, &["keys", "list", "--key-vault", "contoso"]);

    // A passphrase key vault: the passphrase from a file, never argv.
    let pass = dir.join("pass.txt");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pass = pass.to_str().unwrap();
    let stderr = fails(dir, &["key-vault", "create", "locked", "--passphrase"], 2);
    assert!(
        stderr.contains("STRONGROOM_KEYVAULT_PASSPHRASE"),
        "{stderr}"
    );
    ok(
        dir,
        &[
            "key-vault",
            "create",
            "locked",
            "--passphrase",
            "--passphrase-file",
            pass,
        ],
    );
    ok(
        dir,
        &[
            "keys",
            "create",
            "k",
            "--key-vault",
            "locked",
            "--type",
            "rsa-2048",
            "--passphrase-file",
            pass,
        ],
    );
    let wrong = dir.join("wrong.txt");
    std::fs::write(&wrong, "wrong").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let stderr = fails(
        dir,
        &[
            "keys",
            "list",
            "--key-vault",
            "locked",
            "--passphrase-file",
            wrong.to_str().unwrap(),
        ],
        4,
    );
    assert!(stderr.contains("passphrase"), "{stderr}");
    // Without it: the command says how to give it.
    let stderr = fails(dir, &["keys", "list", "--key-vault", "locked"], 4);
    assert!(stderr.contains("--passphrase-file"), "{stderr}");
}

#[test]
fn a_directory_goes_in_as_a_tar_stream_that_tar_extracts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init"]);
    ok(dir, &["protect", "photos"]);
    let photos = dir.join("photos");
    std::fs::create_dir_all(photos.join("2026/december")).unwrap();
    std::fs::write(photos.join("a.jpg"), data(300_000)).unwrap();
    std::fs::write(photos.join("2026/december/b.jpg"), data(5)).unwrap();
    std::fs::write(photos.join("2026/empty"), b"").unwrap();
    let id = ok(dir, &["backup", "photos", "photos"]).trim().to_owned();

    let restored = strongroom(dir, &["restore", &id, "-o", "photos.tar"]);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let tar = Command::new("tar")
        .arg("-xf")
        .arg(dir.join("photos.tar"))
        .arg("-C")
        .arg(&out)
        .output()
        .expect("tar runs");
    assert!(
        tar.status.success(),
        "{}",
        String::from_utf8_lossy(&tar.stderr)
    );
    assert!(std::fs::read(out.join("a.jpg")).unwrap() == data(300_000));
    assert!(std::fs::read(out.join("2026/december/b.jpg")).unwrap() == data(5));
    assert!(std::fs::read(out.join("2026/empty")).unwrap().is_empty());
}

#[cfg(unix)]
#[test]
fn a_directory_that_cannot_be_read_whole_commits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init"]);
    ok(dir, &["protect", "d"]);
    std::fs::create_dir(dir.join("d")).unwrap();
    std::fs::write(dir.join("d/x"), b"x").unwrap();
    // A socket cannot go into a tar stream: the stream fails part-way.
    let _socket = std::os::unix::net::UnixListener::bind(dir.join("d/sock")).unwrap();
    let stderr = fails(dir, &["backup", "d", "d"], 6);
    assert!(
        stderr.contains("sock") && stderr.contains("nothing was committed"),
        "{stderr}"
    );
    let points: serde_json::Value = serde_json::from_str(&ok(dir, &["points", "--json"])).unwrap();
    assert_eq!(points, serde_json::json!([]));
}

/// Runs the command with its file size limit at `kib` KiB and SIGXFSZ
/// ignored: a write past the limit fails with EFBIG, as on a full disk.
#[cfg(unix)]
fn strongroom_on_a_full_disk(dir: &Path, kib: u32, args: &[&str]) -> Run {
    let script = format!(
        "trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"",
        kib * 2 // 512-byte blocks (POSIX sh)
    );
    let output = Command::new("sh")
        .current_dir(dir)
        .env_remove("STRONGROOM_VAULT")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_strongroom"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("sh runs");
    let run = Run {
        code: output.status.code().expect("an exit code, not a signal"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        raw: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "a panic: {}", run.stderr);
    run
}

#[cfg(unix)]
#[test]
fn a_full_disk_fails_backup_and_restore_cleanly_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = vault_with_point(dir, 2 * 1024 * 1024);
    std::fs::write(dir.join("big.dump"), data(3 * 1024 * 1024)).unwrap();

    // A backup that cannot write its body: storage (6), nothing committed.
    let run = strongroom_on_a_full_disk(dir, 512, &["backup", "db", "big.dump"]);
    assert_eq!(run.code, 6, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    let points: serde_json::Value = serde_json::from_str(&ok(dir, &["points", "--json"])).unwrap();
    assert_eq!(points.as_array().unwrap().len(), 1, "{points}");
    assert_eq!(points[0]["point"], id.as_str());

    // A restore that cannot write its output: storage (6), no output file,
    // no temporary file.
    let run = strongroom_on_a_full_disk(dir, 512, &["restore", &id, "-o", "out.dump"]);
    assert_eq!(run.code, 6, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("nothing was written to out.dump"),
        "{}",
        run.stderr
    );
    assert!(!dir.join("out.dump").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".strongroom-restore-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Room again: the point is whole, and gc clears what the failed backup
    // left.
    ok(dir, &["restore", &id, "-o", "out.dump"]);
    assert!(std::fs::read(dir.join("out.dump")).unwrap() == data(2 * 1024 * 1024));
    ok(dir, &["gc", "--grace-secs", "0"]);
    ok(dir, &["backup", "db", "big.dump"]);
}

#[test]
fn a_damaged_vault_directory_is_reported_not_acted_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = vault_with_point(dir, 10_000);
    let vault = dir.join(".strongroom");

    // A settings record cut short: an integrity failure naming it.
    let settings = std::fs::read_dir(vault.join("store/settings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let record = std::fs::read(&settings).unwrap();
    std::fs::write(&settings, &record[..record.len() / 2]).unwrap();
    let stderr = fails(dir, &["restore", &id, "-o", "-"], 5);
    assert!(stderr.contains("settings"), "{stderr}");
    std::fs::write(&settings, &record).unwrap();
    ok(dir, &["verify", &id]);

    // The platform key vault gone: its key cannot be used (4), nothing is
    // written.
    std::fs::rename(vault.join("platform-keyvault"), dir.join("moved")).unwrap();
    let stderr = fails(dir, &["restore", &id, "-o", "out.dump"], 4);
    assert!(stderr.contains("platform key vault is missing"), "{stderr}");
    assert!(!dir.join("out.dump").exists());
    std::fs::rename(dir.join("moved"), vault.join("platform-keyvault")).unwrap();
    ok(dir, &["verify", &id]);
}

#[test]
fn a_user_assigned_identity_reaches_the_customer_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init"]);
    ok(
        dir,
        &["key-vault", "create", "contoso", "--purge-protection"],
    );
    ok(
        dir,
        &[
            "keys",
            "create",
            "cmk",
            "--key-vault",
            "contoso",
            "--type",
            "rsa-2048",
        ],
    );
    ok(
        dir,
        &[
            "access",
            "grant",
            "--key-vault",
            "contoso",
            "--principal",
            "contoso/backup-id",
        ],
    );
    let shown = ok(
        dir,
        &[
            "encryption",
            "set",
            "--key-vault",
            "contoso",
            "--key",
            "cmk",
            "--user-assigned-identity",
            "backup=contoso/backup-id",
        ],
    );
    assert!(shown.contains("user-assigned identity backup"), "{shown}");
    // A later run knows the identity (DIR/identities.json).
    ok(dir, &["protect", "db"]);
    std::fs::write(dir.join("db.dump"), data(50_000)).unwrap();
    let id = ok(dir, &["backup", "db", "db.dump"]).trim().to_owned();
    ok(dir, &["verify", &id]);
    ok(
        dir,
        &[
            "access",
            "revoke",
            "--key-vault",
            "contoso",
            "--principal",
            "contoso/backup-id",
        ],
    );
    let stderr = fails(dir, &["verify", &id], 4);
    assert!(stderr.contains("contoso/backup-id"), "{stderr}");
    fails(
        dir,
        &[
            "encryption",
            "set",
            "--key-vault",
            "contoso",
            "--key",
            "cmk",
            "--user-assigned-identity",
            "x",
        ],
        2,
    );
}

#[test]
fn keys_go_through_their_life_import_delete_recover_purge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init"]);
    ok(dir, &["key-vault", "create", "lab"]);
    // An AES-256 key as a JWK (`oct`); a file that is no key is refused
    // without quoting it.
    std::fs::write(
        dir.join("k.jwk"),
        r#"{"kty":"oct","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}"#,
    )
    .unwrap();
    let imported = ok(
        dir,
        &["keys", "import", "aes", "k.jwk", "--key-vault", "lab"],
    );
    assert!(imported.contains("lab/aes"), "{imported}");
    std::fs::write(
        dir.join("bad.pem"),
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let stderr = fails(
        dir,
        &["keys", "import", "bad", "bad.pem", "--key-vault", "lab"],
        2,
    );
    assert!(!stderr.contains("c2VjcmV0"), "{stderr}");
    ok(
        dir,
        &[
            "keys",
            "create",
            "rsa",
            "--key-vault",
            "lab",
            "--type",
            "rsa-2048",
        ],
    );
    let keys: serde_json::Value =
        serde_json::from_str(&ok(dir, &["keys", "list", "--key-vault", "lab", "--json"])).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2, "{keys}");

    // Deleted: gone from the list, recoverable; then deleted and purged
    // (no purge protection here).
    ok(dir, &["keys", "delete", "rsa", "--key-vault", "lab"]);
    let keys: serde_json::Value =
        serde_json::from_str(&ok(dir, &["keys", "list", "--key-vault", "lab", "--json"])).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    ok(dir, &["keys", "recover", "rsa", "--key-vault", "lab"]);
    ok(dir, &["keys", "delete", "rsa", "--key-vault", "lab"]);
    ok(dir, &["keys", "purge", "rsa", "--key-vault", "lab"]);
    let stderr = fails(dir, &["keys", "recover", "rsa", "--key-vault", "lab"], 4);
    assert!(stderr.contains("purged"), "{stderr}");

    // Under purge protection a purge is refused (4).
    ok(dir, &["key-vault", "create", "safe", "--purge-protection"]);
    ok(
        dir,
        &[
            "keys",
            "create",
            "k",
            "--key-vault",
            "safe",
            "--type",
            "rsa-2048",
        ],
    );
    ok(dir, &["keys", "delete", "k", "--key-vault", "safe"]);
    fails(dir, &["keys", "purge", "k", "--key-vault", "safe"], 4);
    ok(dir, &["keys", "recover", "k", "--key-vault", "safe"]);
    // An unknown key vault (3) and an unknown permission (2).
    fails(dir, &["keys", "list", "--key-vault", "nowhere"], 3);
    fails(
        dir,
        &[
            "access",
            "grant",
            "--key-vault",
            "safe",
            "--vault-identity",
            "--permissions",
            "fly",
        ],
        2,
    );
}

/// The key version point `id`'s data key is wrapped under.
fn points_key_version(dir: &Path, id: &str) -> String {
    let points: serde_json::Value = serde_json::from_str(&ok(dir, &["points", "--json"])).unwrap();
    let point = points
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["point"] == id)
        .expect("the point is listed");
    point["keys"][0]["version"].as_str().unwrap().to_owned()
}

/// `init --store` on Azurite and on moto: the points go to the emulator
/// (the vault directory holds the platform key and `store.json`, no
/// point), every later command finds the store, and plain HTTP without
/// `--allow-http-loopback` is refused before anything is sent.
#[test]
fn a_vault_in_azure_blob_or_s3() {
    for emulator in [
        strongroom_test_stores::azurite(),
        strongroom_test_stores::moto(),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let env = emulator.env(emulator.addr());
        let url = emulator.url(&strongroom_test_stores::unique_prefix("cli"));
        let run = |args: &[&str]| strongroom_with_env(dir, args, None, &env);

        let refused = run(&["init", "--store", &url]);
        assert_eq!(refused.code, 2, "{emulator:?}: {}", refused.stderr);
        assert!(
            refused.stderr.contains("plain HTTP")
                && refused.stderr.contains("--allow-http-loopback"),
            "{}",
            refused.stderr
        );
        assert!(
            !dir.join(".strongroom").exists(),
            "a refused init left a vault"
        );

        let init = run(&["--allow-http-loopback", "init", "--store", &url]);
        assert_eq!(init.code, 0, "{emulator:?}: {}", init.stderr);
        assert!(init.stdout.contains(&url), "{}", init.stdout);
        let with = |args: &[&str]| {
            let mut all = vec!["--allow-http-loopback"];
            all.extend_from_slice(args);
            let run = run(&all);
            assert_eq!(run.code, 0, "{emulator:?} {args:?}: {}", run.stderr);
            run.stdout
        };
        with(&["protect", "db"]);
        let source = data(9 * 1024 * 1024 + 77);
        std::fs::write(dir.join("db.dump"), &source).unwrap();
        let id = with(&["backup", "db", "db.dump"]).trim().to_owned();
        assert!(with(&["points"]).contains(&id));
        with(&["restore", &id, "-o", "restored.dump"]);
        assert!(std::fs::read(dir.join("restored.dump")).unwrap() == source);
        with(&["verify", &id]);
        // No point in the vault directory: the store holds them.
        assert!(files_named(dir, "manifest.json").is_empty(), "{emulator:?}");
        assert!(files_named(dir, "body").is_empty(), "{emulator:?}");

        // Without the flag, the recorded store is refused as plain HTTP.
        let refused = run(&["points"]);
        assert_eq!(refused.code, 2, "{}", refused.stderr);
        // Another store than the recorded one is refused.
        let other = emulator.url("another");
        let refused = run(&["--allow-http-loopback", "--store", &other, "points"]);
        assert_eq!(refused.code, 2, "{}", refused.stderr);
        assert!(refused.stderr.contains(&url), "{}", refused.stderr);
    }
}

#[test]
fn a_disk_encrypted_in_the_guest_gets_its_bek_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &["init"]);
    ok(dir, &["key-vault", "create", "contoso"]);
    let bek: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    std::fs::write(dir.join("os.bek"), &bek).unwrap();
    let set = ok(
        dir,
        &[
            "secrets",
            "set",
            "os-bek",
            "os.bek",
            "--key-vault",
            "contoso",
            "--content-type",
            "BEK",
        ],
    );
    let version = set.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(version.len(), 32, "{set}");
    ok(dir, &["protect", "vm-os", "--bek", "contoso/os-bek"]);
    std::fs::write(dir.join("disk.img"), data(20_000)).unwrap();
    // Without the backup permissions on the secret: refused, each named,
    // with the key class's exit code.
    let stderr = fails(dir, &["backup", "vm-os", "disk.img"], 4);
    for name in ["getSecret", "listSecrets", "backupSecret", "os-bek"] {
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
    // `access grant|revoke` of these permissions to the vault's identity.
    let access = |verb: &str, permissions: &str| {
        ok(
            dir,
            &[
                "access",
                verb,
                "--key-vault",
                "contoso",
                "--vault-identity",
                "--permissions",
                permissions,
            ],
        )
    };
    access(
        "grant",
        "get,list,backup,getSecret,listSecrets,backupSecret,restoreSecret",
    );
    ok(dir, &["backup", "vm-os", "disk.img"]);
    let points: serde_json::Value =
        serde_json::from_str(&ok(dir, &["points", "vm-os", "--json"])).unwrap();
    let point = points[0]["point"].as_str().unwrap().to_owned();
    let recorded = &points[0]["source_encryption"];
    assert_eq!(recorded["kind"], "in_guest");
    assert_eq!(recorded["bek"]["version"], version.as_str());
    assert!(ok(dir, &["points"]).contains(&format!("BEK contoso/os-bek/{version}")));

    // The BEK is lost; the restore brings the disk and, asked, the BEK back.
    ok(
        dir,
        &["secrets", "delete", "os-bek", "--key-vault", "contoso"],
    );
    // A restore whose keys cannot be put back: exit 4, the data restored
    // first (its line comes before the error) and whole; returns stderr.
    let keys_refused = |out: &str| {
        let run = strongroom(dir, &["restore", &point, "-o", out, "--disk-keys"]);
        assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("the data was restored"),
            "{}",
            run.stderr
        );
        assert_eq!(std::fs::read(dir.join(out)).unwrap(), data(20_000));
        run.stderr
    };
    // Soft-deleted: the BEK is in the way; the command says to recover or
    // purge it (not to grant permissions).
    let stderr = keys_refused("early.img");
    assert!(stderr.contains("soft-deleted"), "{stderr}");
    assert!(stderr.contains("recover it"), "{stderr}");
    assert!(!stderr.contains("needs list and restore"), "{stderr}");
    ok(
        dir,
        &["secrets", "purge", "os-bek", "--key-vault", "contoso"],
    );
    // Purged, but the identity may not restore secrets: the command names
    // the permissions that putting the keys back needs.
    access("revoke", "restoreSecret");
    let stderr = keys_refused("denied.img");
    assert!(stderr.contains("restoreSecret"), "{stderr}");
    assert!(stderr.contains("needs list and restore"), "{stderr}");
    access("grant", "restoreSecret");
    assert!(ok(dir, &["secrets", "list", "--key-vault", "contoso"]).contains("no secrets"));
    let run = strongroom(
        dir,
        &["restore", &point, "-o", "restored.img", "--disk-keys"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "BEK contoso/os-bek/{version}: restored from the point's backup"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(dir.join("restored.img")).unwrap(),
        data(20_000)
    );
    let listed: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &[
            "secrets",
            "list",
            "os-bek",
            "--key-vault",
            "contoso",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(listed[0]["version"], version.as_str());
    assert_eq!(listed[0]["content_type"], "BEK");
    // A malformed reference is a usage error.
    let stderr = fails(dir, &["protect", "vm-x", "--bek", "just-a-name"], 2);
    assert!(stderr.contains("KEY_VAULT/NAME"), "{stderr}");
}
