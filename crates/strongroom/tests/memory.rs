//! A backup's memory stays bounded whatever its size (issue 12): under
//! threads × 4 × chunk + 32 MiB above what the process held before.
//!
//! Measured as the peak of live heap bytes, counted by a global allocator
//! that wraps the system's: what the facade holds, not what the C
//! allocator keeps in its per-thread arenas after a free (the peak resident
//! set, `VmHWM`, is printed too; glibc may keep a freed 8 MiB part in
//! each thread's arena, so it varies from run to run). The test sits alone
//! in its file: nothing else allocates in the process while it measures.
//!
//! `STRONGROOM_MEMORY_TEST_MIB` sets the size backed up (default 256 MiB);
//! the figures are printed for the closing notes of longer runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use strongroom::{BackupOptions, RecoveryVault};
use tokio::io::{AsyncRead, ReadBuf};

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)]
// SAFETY: every call is passed to `System` unchanged, with the caller's
// layout and pointer; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System`'s.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout, i.e. from
        // `System`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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

    let rss_before = status_kib("VmRSS:");
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let source = Generated {
        left: mib << 20,
        state: 2,
    };
    let options = BackupOptions::default().chunk_size(chunk).unwrap();
    let point = runtime
        .block_on(vault.backup(&item, source, options))
        .unwrap();
    let peak = PEAK.load(Ordering::Relaxed);
    let rss_peak = status_kib("VmHWM:");
    assert_eq!(point.size(), mib << 20);

    let mib_of = |bytes: usize| bytes as f64 / f64::from(1 << 20);
    let grown = peak.saturating_sub(before);
    let bound = threads * 4 * chunk + (32 << 20);
    println!(
        "backup of {mib} MiB: live heap peak {:.1} MiB above the {:.1} MiB before (bound {:.0} MiB); peak RSS {:.1} MiB, {:.1} MiB before",
        mib_of(grown),
        mib_of(before),
        mib_of(bound),
        rss_peak as f64 / 1024.0,
        rss_before as f64 / 1024.0,
    );
    assert!(
        grown <= bound,
        "a backup of {mib} MiB held {:.1} MiB at its peak, over the {:.0} MiB bound",
        mib_of(grown),
        mib_of(bound)
    );
}
