//! Durable file operations (write a temporary file, fsync it, rename it over
//! the old one, fsync the directory), bounded reads, and the crash points
//! the crash-safety tests stop the process at.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::VaultError;

/// An I/O error on `path`.
pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VaultError + '_ {
    move |source| VaultError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A corrupt-file error on `path`.
pub(super) fn corrupt(path: &Path, reason: impl Into<String>) -> VaultError {
    VaultError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Every crash point, in the order a transaction meets them. The tests run
/// each operation once per point and check the vault afterwards.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(super) const CRASH_POINTS: &[&str] = &[
    // FileKeyVault::create
    "create:locked",
    "create:audit-log-created",
    "vault.json:tmp-torn",
    "vault.json:before-tmp-fsync",
    "vault.json:before-rename",
    "vault.json:before-dir-fsync",
    "vault.json:done",
    // every transaction: repairing what an earlier crash left
    "recover:after-truncate",
    // every transaction: the audit entries, then the state
    "audit:before-append",
    "audit:torn-append",
    "audit:before-fsync",
    "audit:after-fsync",
    // every transaction that changes the state: its op record
    "ops:before-append",
    "ops:torn-append",
    "ops:before-fsync",
    "ops:after-fsync",
    // creation, and compaction: a new snapshot, then the op log emptied
    "state.json:tmp-torn",
    "state.json:before-tmp-fsync",
    "state.json:before-rename",
    "state.json:before-dir-fsync",
    "state.json:done",
    "compact:before-truncate",
    "compact:done",
    // an audit log rotation: its commit, then the new segment's first entry
    "rotate:committed",
];

static ARMED: AtomicBool = AtomicBool::new(false);
static CRASH_AT: Mutex<Option<&'static str>> = Mutex::new(None);

/// Arms (or disarms) a crash point for this process.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(super) fn set_crash_point(point: Option<&str>) -> Result<(), VaultError> {
    let point = match point {
        None => None,
        Some(p) => Some(
            CRASH_POINTS
                .iter()
                .copied()
                .find(|known| *known == p)
                .ok_or_else(|| VaultError::InvalidArgument {
                    reason: format!("no crash point named {p}"),
                })?,
        ),
    };
    let mut at = CRASH_AT.lock().unwrap_or_else(|e| e.into_inner());
    *at = point;
    ARMED.store(point.is_some(), Ordering::SeqCst);
    Ok(())
}

/// Whether `point` is armed.
pub(super) fn armed(point: &str) -> bool {
    ARMED.load(Ordering::Relaxed)
        && *CRASH_AT.lock().unwrap_or_else(|e| e.into_inner()) == Some(point)
}

/// Stops the process, as a power cut or `kill -9` would, if `point` is
/// armed.
pub(super) fn crash_point(point: &str) {
    if armed(point) {
        std::process::abort();
    }
}

/// Writes `bytes`, stopping after half of them if `torn_point` is armed.
fn write_maybe_torn(file: &mut File, bytes: &[u8], torn_point: &str) -> io::Result<()> {
    if armed(torn_point) {
        file.write_all(&bytes[..bytes.len() / 2])?;
        file.sync_all()?;
        std::process::abort();
    }
    file.write_all(bytes)
}

/// Appends `bytes` to an open file and fsyncs it (the audit log, the op
/// log); `what` names its crash points (`audit`, `ops`).
pub(super) fn append_durable(
    file: &mut File,
    bytes: &[u8],
    path: &Path,
    what: &str,
) -> Result<(), VaultError> {
    let point = |step: &str| format!("{what}:{step}");
    crash_point(&point("before-append"));
    write_maybe_torn(file, bytes, &point("torn-append")).map_err(io_err(path))?;
    crash_point(&point("before-fsync"));
    file.sync_all().map_err(io_err(path))?;
    crash_point(&point("after-fsync"));
    Ok(())
}

/// Replaces `dir/name` by `bytes` atomically and durably: a crash at any
/// point leaves the old file or the new one.
pub(super) fn replace_durable(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), VaultError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let point = |step: &str| format!("{name}:{step}");
    // A stale temporary file from an earlier crash is simply overwritten:
    // only the holder of the vault lock writes it.
    let mut file = create_private(&tmp, true).map_err(io_err(&tmp))?;
    write_maybe_torn(&mut file, bytes, &point("tmp-torn")).map_err(io_err(&tmp))?;
    crash_point(&point("before-tmp-fsync"));
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    crash_point(&point("before-rename"));
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    crash_point(&point("before-dir-fsync"));
    sync_dir(dir)?;
    crash_point(&point("done"));
    Ok(())
}

/// Opens `path` for writing, created with mode 0600 on Unix (truncating
/// it if `truncate`, appending otherwise).
pub(super) fn create_private(path: &Path, truncate: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true);
    if truncate {
        options.write(true).truncate(true);
    } else {
        options.read(true).append(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes a directory's entries (a rename, a new file) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), VaultError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Reads a whole file of at most `max` bytes; a longer one is corrupt.
/// `Ok(None)` if it does not exist.
pub(super) fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>, VaultError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    read_open_bounded(file, path, max).map(Some)
}

/// Reads an open file of at most `max` bytes from its current position.
pub(super) fn read_open_bounded(file: File, path: &Path, max: u64) -> Result<Vec<u8>, VaultError> {
    let len = file.metadata().map_err(io_err(path))?.len();
    if len > max {
        return Err(too_big(path, len, max));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > max {
        return Err(too_big(path, bytes.len() as u64, max));
    }
    Ok(bytes)
}

fn too_big(path: &Path, len: u64, max: u64) -> VaultError {
    corrupt(
        path,
        format!("{len} bytes, more than the {max} this vault file may hold"),
    )
}

/// The paths of a vault directory's files.
#[derive(Debug, Clone)]
pub(super) struct Paths {
    pub dir: PathBuf,
    pub vault: PathBuf,
    pub state: PathBuf,
    pub audit: PathBuf,
    pub ops: PathBuf,
    pub lock: PathBuf,
}

impl Paths {
    pub(super) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            vault: dir.join(super::VAULT_FILE),
            state: dir.join(super::STATE_FILE),
            audit: dir.join(super::AUDIT_FILE),
            ops: dir.join(super::OPS_FILE),
            lock: dir.join(super::LOCK_FILE),
        }
    }

    /// The audit log segment whose first entry has sequence number
    /// `start_seq + 1`: `audit.log` for the first, `audit.<first seq, 20
    /// digits>.log` for each one begun by a rotation.
    pub(super) fn audit_segment(&self, start_seq: u64) -> PathBuf {
        if start_seq == 0 {
            self.audit.clone()
        } else {
            self.dir.join(format!("audit.{:020}.log", start_seq + 1))
        }
    }
}
