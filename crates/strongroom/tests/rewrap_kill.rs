//! The rewrap job killed with SIGKILL at random moments (issue 13): after
//! every kill, every recovery point restores (under its old header or its
//! new one), and a job run to the end moves them all.
//!
//! The test runs itself as the child: with `STRONGROOM_REWRAP_CHILD` set,
//! the test function runs one rewrap job on the vault there and exits.

use std::process::{Command, Stdio};
use std::time::Duration;

use strongroom::{BackupOptions, Error, RecoveryVault, RewrapOptions};

const TEST: &str = "a_rewrap_job_killed_at_random_moments_leaves_every_point_restorable";
const KILLS: usize = 50;
const POINTS: usize = 60;

fn data(i: usize) -> Vec<u8> {
    (0..3000 + i * 211)
        .map(|j| (j * 13 + i * 7) as u8)
        .collect()
}

fn child(dir: &std::path::Path) -> ! {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let vault = RecoveryVault::open_local(dir).await.unwrap();
        let options = RewrapOptions::default().in_flight(2).unwrap();
        let report = vault.rewrap(options).await.unwrap();
        println!("rewrapped={}", report.rewrapped);
    });
    std::process::exit(0);
}

/// Every point restores to its data, through a fresh handle; returns how
/// many are under `version`.
async fn check(dir: &std::path::Path, ids: &[(String, String)], version: &str) -> usize {
    let vault = RecoveryVault::open_local(dir).await.unwrap();
    let mut under = 0;
    for (i, (item, id)) in ids.iter().enumerate() {
        let item = vault.item(item).await.unwrap();
        let point = vault.point(&item, id).await.unwrap();
        let mut out = Vec::new();
        vault
            .restore(&point, &mut out)
            .await
            .unwrap_or_else(|e| panic!("point {i}: {e}"));
        assert!(out == data(i), "point {i}");
        under += usize::from(point.keys()[0].version == version);
    }
    under
}

#[test]
fn a_rewrap_job_killed_at_random_moments_leaves_every_point_restorable() {
    if let Some(dir) = std::env::var_os("STRONGROOM_REWRAP_CHILD") {
        child(std::path::Path::new(&dir));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let ids: Vec<(String, String)> = runtime.block_on(async {
        let vault = RecoveryVault::create_local(&dir, "kill").await.unwrap();
        let mut ids = Vec::new();
        for i in 0..POINTS {
            let name = format!("item-{}", i % 3);
            let item = match vault.protect(&name).await {
                Ok(item) => item,
                Err(Error::AlreadyExists { .. }) => vault.item(&name).await.unwrap(),
                Err(e) => panic!("{e}"),
            };
            let options = BackupOptions::default().chunk_size(4096).unwrap();
            let point = vault
                .backup(&item, data(i).as_slice(), options)
                .await
                .unwrap();
            ids.push((name, point.id().to_owned()));
        }
        ids
    });

    // How long a whole job takes here, child start included: the kills
    // fall uniformly within it (machines differ several-fold).
    let spawn = |dir: &std::path::Path| {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env("STRONGROOM_REWRAP_CHILD", dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    runtime.block_on(async {
        let vault = RecoveryVault::open_local(&dir).await.unwrap();
        vault.rotate_platform_key().await.unwrap()
    });
    let began = std::time::Instant::now();
    assert!(spawn(&dir).wait().unwrap().success());
    let job_ms = (began.elapsed().as_millis() as u64).max(10);
    eprintln!("a whole job took {job_ms} ms");

    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut mid_job = 0;
    let mut version = String::new();
    for kill in 0..KILLS {
        // A new target each time, so that every job has work to do.
        version = runtime.block_on(async {
            let vault = RecoveryVault::open_local(&dir).await.unwrap();
            vault.rotate_platform_key().await.unwrap()
        });
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_millis(state % job_ms);
        let mut child = spawn(&dir);
        std::thread::sleep(delay);
        // SIGKILL (or nothing, when the job already ended).
        let _ = child.kill();
        child.wait().unwrap();
        let under = runtime.block_on(check(&dir, &ids, &version));
        if 0 < under && under < POINTS {
            mid_job += 1;
        }
        eprintln!("kill {kill} after {delay:?}: {under} of {POINTS} points moved");
    }
    println!("{mid_job} of {KILLS} kills landed part-way through a job");
    // Otherwise the kills tested nothing (all before or after the job).
    assert!(mid_job > 0, "no kill landed part-way through a job");

    // A job to the end moves every point, and all restore.
    runtime.block_on(async {
        let vault = RecoveryVault::open_local(&dir).await.unwrap();
        let report = vault.rewrap(RewrapOptions::default()).await.unwrap();
        assert!(report.skipped.is_empty(), "{report:?}");
        assert_eq!(report.rewrapped + report.current, POINTS);
    });
    assert_eq!(runtime.block_on(check(&dir, &ids, &version)), POINTS);
}
