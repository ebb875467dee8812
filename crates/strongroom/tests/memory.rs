//! A backup's memory stays bounded whatever its size (issue 12): under
//! threads × 4 × chunk + 32 MiB above what the process held before.
//!
//! Measured as the growth of the process's peak resident set (`VmHWM`,
//! Linux) over its resident set before the backup, so this test must run
//! in a process of its own: cargo-nextest, which CI uses, runs every test
//! so. Under `cargo test` other tests' threads may share the process; the
//! test then still holds unless they grow the peak themselves, so it sits
//! alone in this file.
//!
//! `STRONGROOM_MEMORY_TEST_MIB` sets the size backed up (default 256 MiB);
//! the figure is printed for the closing notes of longer runs.

use std::pin::Pin;
use std::task::{Context, Poll};

use strongroom::{BackupOptions, RecoveryVault};
use tokio::io::{AsyncRead, ReadBuf};

/// `len` bytes of a generator, never held in memory.
struct Generated {
    left: u64,
    state: u64,
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left).min(1 << 16) as usize;
        let mut chunk = [0u8; 1 << 16];
        for byte in &mut chunk[..n] {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            *byte = self.state as u8;
        }
        buf.put_slice(&chunk[..n]);
        self.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// A line of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

#[test]
fn a_backup_s_memory_does_not_grow_with_its_size() {
    let mib: u64 = std::env::var("STRONGROOM_MEMORY_TEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let threads = 2usize;
    let chunk = 1usize << 20;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let vault = runtime
        .block_on(RecoveryVault::create_local(tmp.path(), "memory"))
        .unwrap();
    let item = runtime.block_on(vault.protect("big")).unwrap();
    // Warm up the runtime, the store and the sealing threads with a small
    // backup, so that what is measured is what grows with the size.
    let small = Generated {
        left: 3 << 20,
        state: 1,
    };
    runtime
        .block_on(vault.backup(
            &item,
            small,
            BackupOptions::default().chunk_size(chunk).unwrap(),
        ))
        .unwrap();

    let before = status_kib("VmRSS:");
    let source = Generated {
        left: mib << 20,
        state: 2,
    };
    let options = BackupOptions::default().chunk_size(chunk).unwrap();
    let point = runtime
        .block_on(vault.backup(&item, source, options))
        .unwrap();
    let peak = status_kib("VmHWM:");
    assert_eq!(point.size(), mib << 20);

    let grown_mib = peak.saturating_sub(before) as f64 / 1024.0;
    let bound_mib = (threads * 4 * chunk + (32 << 20)) as f64 / f64::from(1 << 20);
    println!(
        "backup of {mib} MiB: peak RSS {:.1} MiB, {grown_mib:.1} MiB above the {:.1} MiB before (bound {bound_mib} MiB)",
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    assert!(
        grown_mib <= bound_mib,
        "a backup of {mib} MiB grew the peak RSS by {grown_mib:.1} MiB, over the {bound_mib} MiB bound"
    );
}
