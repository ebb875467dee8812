//! Two processes on one vault (issue 12): one enables a customer key while
//! the other protects the first item. The settings log makes the two
//! linearizable: either the key was set before the protection was
//! recorded, or it is refused; never both won with the key set after.
//!
//! The test runs itself as the two children: with `STRONGROOM_RACE_ROLE`
//! set, the test function plays that role and exits the process.

use std::process::{Command, Stdio};
use std::sync::Arc;

use strongroom::keyvault::{
    FileKeyVault, KeyOptions, KeyType, KeyVault, Permissions, Principal, RootKeySource,
    VaultProperties,
};
use strongroom::policy::{CustomerKey, EncryptionSettings};
use strongroom::{Error, RecoveryVault};

const TEST: &str = "two_processes_racing_a_customer_key_against_the_first_protection";

/// The child's part: prints one word for the parent and exits.
fn child(role: &str, dir: &std::path::Path) -> ! {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let vault = RecoveryVault::open_local(dir.join("vault")).await.unwrap();
        // Both wait for the same instant, to race for real.
        let go: u128 = std::env::var("STRONGROOM_RACE_AT")
            .unwrap()
            .parse()
            .unwrap();
        while std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            < go
        {
            std::hint::spin_loop();
        }
        match role {
            "protect" => match vault.protect("vm").await {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("error {e}"),
            },
            "cmk" => {
                let kv =
                    FileKeyVault::open(dir.join("kv"), RootKeySource::KeyFile(dir.join("kv.key")))
                        .unwrap();
                vault.attach_key_vault(Arc::new(kv)).unwrap();
                let settings =
                    EncryptionSettings::customer_managed(CustomerKey::new("contoso-kv", "cmk"));
                match vault.set_encryption(settings).await {
                    Ok(()) => "ok".to_owned(),
                    Err(Error::Policy(_)) => "refused".to_owned(),
                    Err(e) => format!("error {e}"),
                }
            }
            other => panic!("unknown role {other}"),
        }
    });
    println!("outcome={outcome}");
    std::process::exit(0);
}

fn spawn(role: &str, dir: &std::path::Path, at: u128) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env("STRONGROOM_RACE_ROLE", role)
        .env("STRONGROOM_RACE_DIR", dir)
        .env("STRONGROOM_RACE_AT", at.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn outcome(child: std::process::Child) -> String {
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout
        .lines()
        .find_map(|l| l.split_once("outcome=").map(|(_, o)| o.trim()))
        .unwrap_or_else(|| panic!("no outcome in {stdout:?}"))
        .to_owned()
}

/// The settings records, in order: (customer-managed, protection attempted).
fn settings_log(dir: &std::path::Path) -> Vec<(bool, bool)> {
    let settings_dir = dir.join("vault/store/settings");
    let mut names: Vec<_> = std::fs::read_dir(&settings_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .iter()
        .map(|path| {
            let record: serde_json::Value =
                serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            let encryption = &record["encryption"];
            (
                encryption["settings"]["key"].is_object(),
                encryption["protection_attempted"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn two_processes_racing_a_customer_key_against_the_first_protection() {
    if let Ok(role) = std::env::var("STRONGROOM_RACE_ROLE") {
        let dir = std::env::var_os("STRONGROOM_RACE_DIR").unwrap();
        child(&role, std::path::Path::new(&dir));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut set_first, mut refused) = (0, 0);
    for round in 0..8 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let vault = runtime
            .block_on(RecoveryVault::create_local(dir.join("vault"), "race"))
            .unwrap();
        FileKeyVault::generate_key_file(dir.join("kv.key")).unwrap();
        let kv = FileKeyVault::create(
            dir.join("kv"),
            VaultProperties::new("contoso-kv"),
            RootKeySource::KeyFile(dir.join("kv.key")),
        )
        .unwrap();
        kv.enable_purge_protection().unwrap();
        let admin = Principal::new("admin");
        kv.set_access_policy(&admin, Permissions::all()).unwrap();
        kv.create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
            .unwrap();
        kv.set_access_policy(&vault.system_identity(), Permissions::key_user())
            .unwrap();
        drop(kv);

        // Start both a little ahead, so that both are loaded and waiting;
        // vary the protection's delay (enabling a key asks the key vault
        // first, so it needs a head start to win some rounds).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let at = now + 1000;
        let cmk = spawn("cmk", dir, at);
        let protect = spawn("protect", dir, at + (round % 4) as u128 * 60);
        let (cmk, protect) = (outcome(cmk), outcome(protect));
        assert_eq!(protect, "ok", "round {round}");

        let log = settings_log(dir);
        // No record turns the key customer-managed after a record that
        // had the protection attempted with the platform key.
        for pair in log.windows(2) {
            let ((cmk_before, attempted_before), (cmk_after, _)) = (pair[0], pair[1]);
            assert!(
                !(attempted_before && !cmk_before && cmk_after),
                "round {round}: a customer key was enabled after the first protection: {log:?}"
            );
        }
        let last = *log.last().unwrap();
        assert!(last.1, "round {round}: the protection is recorded: {log:?}");
        match cmk.as_str() {
            "ok" => {
                assert!(last.0, "round {round}: {log:?}");
                set_first += 1;
            }
            "refused" => {
                assert!(!last.0, "round {round}: {log:?}");
                refused += 1;
            }
            other => panic!("round {round}: {other}"),
        }
        drop(vault);
    }
    println!("customer key set first: {set_first}, refused: {refused}");
}
