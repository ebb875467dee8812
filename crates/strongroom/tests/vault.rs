//! The recovery vault over the local store with its platform key: round
//! trips, ranges, tampering, crypto-shred, gc and races.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strongroom::{BackupOptions, Error, Progress, RecoveryVault};

/// Bytes that differ at every offset (a misplaced chunk shows).
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed)
        .collect()
}

fn files_under(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
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
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_round_trip_at_every_size_that_matters() {
    let tmp = tempfile::tempdir().unwrap();
    let vault = RecoveryVault::create_local(tmp.path(), "test")
        .await
        .unwrap();
    let item = vault.protect("vm-1/disk-0").await.unwrap();
    let chunk = 4096;
    // Empty, one byte, chunk edges, and past a part (8 MiB) by a byte.
    for len in [
        0,
        1,
        chunk - 1,
        chunk,
        chunk + 1,
        8 * 1024 * 1024,
        8 * 1024 * 1024 + 1,
    ] {
        let disk = data(len, len as u8);
        let options = BackupOptions::default().chunk_size(chunk).unwrap();
        let point = vault.backup(&item, disk.as_slice(), options).await.unwrap();
        assert_eq!(point.size(), len as u64);
        let mut restored = Vec::new();
        assert_eq!(
            vault.restore(&point, &mut restored).await.unwrap(),
            len as u64
        );
        assert!(restored == disk, "length {len}");
        assert_eq!(vault.verify(&point).await.unwrap(), len as u64);
    }
    let points = vault.points(&item).await.unwrap();
    assert_eq!(points.len(), 7);
    assert!(points.windows(2).all(|w| w[0].id() < w[1].id()));
    let keys = points[0].keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        keys[0].algorithm,
        strongroom::envelope::WrapAlgorithm::A256Kw
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_reports_progress_up_to_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    let vault = RecoveryVault::create_local(tmp.path(), "test")
        .await
        .unwrap();
    let item = vault.protect("db").await.unwrap();
    let disk = data(20 * 1024 * 1024 + 3, 9);
    let seen: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let log = Arc::clone(&seen);
    let options = BackupOptions::default()
        .size_hint(disk.len() as u64)
        .progress(move |p| log.lock().unwrap().push(p));
    let point = vault.backup(&item, disk.as_slice(), options).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "one report per 8 MiB part: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0].done < w[1].done));
    assert_eq!(seen.last().unwrap().done, disk.len() as u64);
    assert!(seen.iter().all(|p| p.total == Some(disk.len() as u64)));

    let restored_progress: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let log = Arc::clone(&restored_progress);
    let mut out = Vec::new();
    vault
        .restore_with_progress(&point, &mut out, move |p| log.lock().unwrap().push(p))
        .await
        .unwrap();
    assert!(out == disk);
    let last = *restored_progress.lock().unwrap().last().unwrap();
    assert_eq!(last.done, disk.len() as u64);
    assert_eq!(last.total, Some(disk.len() as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_ranges_restore_exactly_those_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let vault = RecoveryVault::create_local(tmp.path(), "test")
        .await
        .unwrap();
    let item = vault.protect("vm").await.unwrap();
    let chunk = 4096u64;
    let disk = data(10 * 4096 + 17, 3);
    let options = BackupOptions::default().chunk_size(chunk as usize).unwrap();
    let point = vault.backup(&item, disk.as_slice(), options).await.unwrap();
    let len = disk.len() as u64;
    for (a, b) in [
        (0, 0),
        (0, 1),
        (0, len),
        (chunk - 1, chunk + 1),
        (chunk, 2 * chunk),
        (3 * chunk + 5, 7 * chunk + 9),
        (len - 1, len),
        (len, len),
    ] {
        let mut out = Vec::new();
        let n = vault.restore_range(&point, a..b, &mut out).await.unwrap();
        assert_eq!(n, b - a);
        assert!(out == disk[a as usize..b as usize], "range {a}..{b}");
    }
    let past = vault.restore_range(&point, 0..len + 1, Vec::new()).await;
    assert!(
        matches!(past, Err(Error::InvalidArgument { .. })),
        "{past:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_anywhere_fails_integrity_and_nothing_of_its_chunk_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let vault = RecoveryVault::create_local(tmp.path(), "test")
        .await
        .unwrap();
    let item = vault.protect("vm").await.unwrap();
    let disk = data(64 * 1024, 1);
    let options = BackupOptions::default().chunk_size(4096).unwrap();
    let point = vault.backup(&item, disk.as_slice(), options).await.unwrap();
    let body = files_under(tmp.path(), "body").pop().unwrap();
    let original = std::fs::read(&body).unwrap();
    for offset in [0, original.len() / 2, original.len() - 1] {
        let mut bad = original.clone();
        bad[offset] ^= 0x40;
        std::fs::write(&body, &bad).unwrap();
        let mut out = Vec::new();
        let restored = vault.restore(&point, &mut out).await;
        assert!(
            matches!(restored, Err(Error::Integrity { .. })),
            "{restored:?}"
        );
        assert!(
            out.len() < disk.len() && disk.starts_with(&out),
            "only authenticated bytes before the bad chunk may reach the sink"
        );
        let verified = vault.verify(&point).await;
        assert!(
            matches!(verified, Err(Error::Integrity { .. })),
            "{verified:?}"
        );
    }
    // Cut: the final chunk missing.
    std::fs::write(&body, &original[..original.len() - 100]).unwrap();
    let verified = vault.verify(&point).await;
    assert!(
        matches!(verified, Err(Error::Integrity { .. })),
        "{verified:?}"
    );
    std::fs::write(&body, &original).unwrap();
    vault.verify(&point).await.unwrap();

    // The header: its metadata binds it to this point.
    let header = files_under(tmp.path(), "header").pop().unwrap();
    let original = std::fs::read(&header).unwrap();
    let mut bad = original.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&header, &bad).unwrap();
    assert!(vault.verify(&point).await.is_err());
    std::fs::write(&header, &original).unwrap();
    vault.verify(&point).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_that_disagrees_with_its_objects_is_refused_before_any_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let vault = RecoveryVault::create_local(tmp.path(), "test")
        .await
        .unwrap();
    let item = vault.protect("vm").await.unwrap();
    let disk = data(20_000, 2);
    let point = vault
        .backup(
            &item,
            disk.as_slice(),
            BackupOptions::default().chunk_size(4096).unwrap(),
        )
        .await
        .unwrap();
    let manifest = files_under(tmp.path(), "manifest.json").pop().unwrap();
    let original = std::fs::read_to_string(&manifest).unwrap();
    for (field, value) in [("size", 20_001), ("size", 19_999), ("body_size", 1)] {
        let needle = format!("\"{field}\": ");
        let at = original.find(&needle).unwrap() + needle.len();
        let end = at + original[at..].find(|c: char| !c.is_ascii_digit()).unwrap();
        let edited = format!("{}{value}{}", &original[..at], &original[end..]);
        std::fs::write(&manifest, edited).unwrap();
        let point = vault.point(&item, point.id()).await.unwrap();
        let mut out = Vec::new();
        let restored = vault.restore(&point, &mut out).await;
        assert!(
            matches!(restored, Err(Error::Integrity { .. })),
            "{field}: {restored:?}"
        );
        assert!(out.is_empty(), "{field}");
        let mut out = Vec::new();
        let ranged = vault.restore_range(&point, 0..1, &mut out).await;
        assert!(
            matches!(ranged, Err(Error::Integrity { .. })),
            "{field}: {ranged:?}"
        );
        assert!(out.is_empty(), "{field}");
    }
    std::fs::write(&manifest, original).unwrap();
    let point = vault.point(&item, point.id()).await.unwrap();
    assert_eq!(vault.verify(&point).await.unwrap(), disk.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_s_header_and_body_cannot_be_swapped_with_another_s() {
    let tmp = tempfile::tempdir().unwrap();
    let vault = RecoveryVault::create_local(tmp.path(), "test")
        .await
        .unwrap();
    let item = vault.protect("vm").await.unwrap();
    let a = vault
        .backup(&item, data(5000, 1).as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let b = vault
        .backup(&item, data(5000, 2).as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let bodies = files_under(tmp.path(), "body");
    let headers = files_under(tmp.path(), "header");
    assert_eq!((bodies.len(), headers.len()), (2, 2));
    // Swap the headers: each now names the other point in its
    // authenticated metadata.
    let (h0, h1) = (
        std::fs::read(&headers[0]).unwrap(),
        std::fs::read(&headers[1]).unwrap(),
    );
    std::fs::write(&headers[0], &h1).unwrap();
    std::fs::write(&headers[1], &h0).unwrap();
    for point in [&a, &b] {
        let verified = vault.verify(point).await;
        assert!(
            matches!(verified, Err(Error::Integrity { .. })),
            "{verified:?}"
        );
    }
    std::fs::write(&headers[0], &h0).unwrap();
    std::fs::write(&headers[1], &h1).unwrap();
    // Swap the bodies: another DEK, so no chunk authenticates.
    let (b0, b1) = (
        std::fs::read(&bodies[0]).unwrap(),
        std::fs::read(&bodies[1]).unwrap(),
    );
    std::fs::write(&bodies[0], &b1).unwrap();
    std::fs::write(&bodies[1], &b0).unwrap();
    for point in [&a, &b] {
        let verified = vault.verify(point).await;
        assert!(
            matches!(verified, Err(Error::Integrity { .. })),
            "{verified:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_point_is_gone_even_with_a_copy_of_its_body() {
    let tmp = tempfile::tempdir().unwrap();
    let vault = RecoveryVault::create_local(tmp.path(), "test")
        .await
        .unwrap();
    let item = vault.protect("vm").await.unwrap();
    let keep = vault
        .backup(&item, data(3000, 5).as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let doomed = vault
        .backup(&item, data(3000, 6).as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let dir = files_under(tmp.path(), "manifest.json")
        .into_iter()
        .map(|p| p.parent().unwrap().to_path_buf())
        .find(|d| d.ends_with(doomed.id()))
        .unwrap();
    let body_copy = std::fs::read(dir.join("body")).unwrap();
    vault.delete_point(&doomed).await.unwrap();
    assert!(!dir.join("header").exists() && !dir.join("body").exists());
    assert!(matches!(
        vault.point(&item, doomed.id()).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(vault.points(&item).await.unwrap(), vec![keep.clone()]);

    // Put the copied body back, with the surviving point's header: the
    // DEK is another, so nothing opens.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("body"), &body_copy).unwrap();
    let keep_dir = dir.parent().unwrap().join(keep.id());
    std::fs::copy(keep_dir.join("body"), keep_dir.join("body.orig")).unwrap();
    std::fs::write(keep_dir.join("body"), &body_copy).unwrap();
    let verified = vault.verify(&keep).await;
    assert!(
        matches!(verified, Err(Error::Integrity { .. })),
        "{verified:?}"
    );
    std::fs::rename(keep_dir.join("body.orig"), keep_dir.join("body")).unwrap();
    vault.verify(&keep).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_leaves_nothing_and_gc_clears_what_a_crash_leaves() {
    struct Failing(usize);
    impl tokio::io::AsyncRead for Failing {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.0 == 0 {
                return std::task::Poll::Ready(Err(std::io::Error::other("disk gone")));
            }
            let n = self.0.min(buf.remaining()).min(1 << 20);
            buf.put_slice(&vec![7u8; n]);
            self.0 -= n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    let tmp = tempfile::tempdir().unwrap();
    let vault = RecoveryVault::create_local(tmp.path(), "test")
        .await
        .unwrap();
    let item = vault.protect("vm").await.unwrap();
    let failed = vault
        .backup(&item, Failing(20 << 20), BackupOptions::default())
        .await;
    assert!(matches!(failed, Err(Error::Io(_))), "{failed:?}");
    assert!(vault.points(&item).await.unwrap().is_empty());
    assert!(files_under(tmp.path(), "header").is_empty());
    assert!(files_under(tmp.path(), "body").is_empty());

    // A crash after the header and body, before the manifest: not listed,
    // and gc removes it once past the grace period (not before).
    let point = vault
        .backup(&item, data(5000, 1).as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let manifest = files_under(tmp.path(), "manifest.json").pop().unwrap();
    std::fs::remove_file(&manifest).unwrap();
    assert!(vault.points(&item).await.unwrap().is_empty());
    assert_eq!(vault.gc(Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(files_under(tmp.path(), "header").len(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(vault.gc(Duration::ZERO).await.unwrap(), 1);
    assert!(files_under(tmp.path(), "header").is_empty());
    assert!(files_under(tmp.path(), "body").is_empty());
    assert!(matches!(
        vault.point(&item, point.id()).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_whose_header_a_gc_removed_fails_instead_of_committing() {
    /// 1000 bytes, then nothing until the gate opens, then the end.
    struct Gated {
        sent: bool,
        gate: tokio::sync::oneshot::Receiver<()>,
    }
    impl tokio::io::AsyncRead for Gated {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if !self.sent {
                self.sent = true;
                buf.put_slice(&[3u8; 1000]);
                return std::task::Poll::Ready(Ok(()));
            }
            std::pin::Pin::new(&mut self.gate).poll(cx).map(|_| Ok(()))
        }
    }
    use std::future::Future;

    let tmp = tempfile::tempdir().unwrap();
    let vault = RecoveryVault::create_local(tmp.path(), "test")
        .await
        .unwrap();
    let item = vault.protect("vm").await.unwrap();
    let (open, gate) = tokio::sync::oneshot::channel();
    let running = {
        let (vault, item) = (vault.clone(), item.clone());
        tokio::spawn(async move {
            let source = Gated { sent: false, gate };
            vault.backup(&item, source, BackupOptions::default()).await
        })
    };
    while files_under(tmp.path(), "header").is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A gc with no grace takes the running backup for an abandoned one.
    assert_eq!(vault.gc(Duration::ZERO).await.unwrap(), 1);
    open.send(()).unwrap();
    let result = running.await.unwrap();
    assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");
    assert!(vault.points(&item).await.unwrap().is_empty());
    assert!(files_under(tmp.path(), "manifest.json").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_reopens_and_refuses_what_is_not_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let vault = RecoveryVault::create_local(&dir, "first").await.unwrap();
    let item = vault.protect("vm").await.unwrap();
    let disk = data(10_000, 4);
    let point = vault
        .backup(&item, disk.as_slice(), BackupOptions::default())
        .await
        .unwrap();
    drop(vault);

    assert!(matches!(
        RecoveryVault::create_local(&dir, "again").await,
        Err(Error::AlreadyExists { .. })
    ));
    let vault = RecoveryVault::open_or_create(&dir).await.unwrap();
    assert_eq!(vault.name(), "first");
    let items = vault.items().await.unwrap();
    assert_eq!(items, vec![item.clone()]);
    let again = vault.point(&item, point.id()).await.unwrap();
    assert_eq!(again, point);
    let mut out = Vec::new();
    vault.restore(&again, &mut out).await.unwrap();
    assert!(out == disk);

    assert!(matches!(
        vault.protect("vm").await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        vault.protect("").await,
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        vault.item("nope").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        vault.point(&item, "../../etc").await,
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        RecoveryVault::open_local(tmp.path().join("none")).await,
        Err(Error::NotFound { .. })
    ));

    // Another vault's point, copied in, is refused: its records name the
    // other vault, and its header's metadata too.
    let other = RecoveryVault::create_local(tmp.path().join("w"), "other")
        .await
        .unwrap();
    let other_item = other.protect("vm").await.unwrap();
    let foreign = other
        .backup(&other_item, disk.as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let from = tmp.path().join("w/store/points/vm").join(foreign.id());
    let to = dir.join("store/points/vm").join(foreign.id());
    std::fs::create_dir_all(&to).unwrap();
    for name in ["header", "body", "manifest.json"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
    let listed = vault.points(&item).await;
    assert!(matches!(listed, Err(Error::Corrupt { .. })), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_racing_to_protect_one_item_get_one_winner() {
    let tmp = tempfile::tempdir().unwrap();
    RecoveryVault::create_local(tmp.path(), "race")
        .await
        .unwrap();
    for round in 0..10 {
        let a = RecoveryVault::open_local(tmp.path()).await.unwrap();
        let b = RecoveryVault::open_local(tmp.path()).await.unwrap();
        let name = format!("item-{round}");
        let (ra, rb) = tokio::join!(a.protect(&name), b.protect(&name));
        let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{ra:?} {rb:?}");
        assert!(
            [ra, rb]
                .into_iter()
                .any(|r| matches!(r, Err(Error::AlreadyExists { .. })))
        );
    }
}

#[test]
fn the_blocking_facade_backs_up_and_restores_with_read_and_write() {
    let tmp = tempfile::tempdir().unwrap();
    let vault = strongroom::blocking::RecoveryVault::open_or_create(tmp.path()).unwrap();
    let item = vault.protect("file.bin").unwrap();
    let disk = data(3 * 65536 + 11, 8);
    let point = vault
        .backup(
            &item,
            std::io::Cursor::new(disk.clone()),
            BackupOptions::default(),
        )
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(vault.restore(&point, &mut out).unwrap(), disk.len() as u64);
    assert!(out == disk);
    let mut part = Vec::new();
    vault
        .restore_range(&point, 70_000..70_100, &mut part)
        .unwrap();
    assert!(part == disk[70_000..70_100]);
    assert_eq!(vault.verify(&point).unwrap(), disk.len() as u64);
    vault.check_keys(&point).unwrap();
    assert!(!vault.encryption().unwrap().settings().is_customer_managed());
    assert!(vault.encryption().unwrap().protection_attempted());
    let health = vault.key_health().unwrap();
    assert_eq!(health.versions().len(), 1);
    assert_eq!(health.versions()[0].points, 1);
    assert_eq!(vault.points(&item).unwrap().len(), 1);
    vault.delete_point(&point).unwrap();
    assert!(vault.points(&item).unwrap().is_empty());
}
