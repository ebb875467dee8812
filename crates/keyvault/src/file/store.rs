//! `DirStore`: the vault state in `state.json` and the audit log in
//! `audit.log`, under an exclusive file lock for every transaction.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::fsio::{self, Paths, corrupt, crash_point, io_err};
use crate::VaultError;
use crate::audit::{AuditEntry, AuditHead};
use crate::state::{
    AuditLog, Delta, OLDEST_STATE_FORMAT, STATE_FORMAT, State, StateStore, hex_bytes,
    run_transaction,
};
pub(crate) use crate::state::{LocalMacKey, StateMacKey};

/// The version of `state.json`'s envelope.
const STATE_FILE_FORMAT: u32 = 1;
/// Longest `state.json` read: far beyond any real vault (a key version is a
/// few kilobytes), small enough to refuse a hostile file before parsing it.
pub(super) const MAX_STATE_FILE: u64 = 64 * 1024 * 1024;
/// Longest audit log line (an entry is a few hundred bytes).
const MAX_AUDIT_LINE: u64 = 1024 * 1024;
/// The op log is folded into a new snapshot once it is larger than the
/// snapshot and than this.
const MIN_COMPACT: u64 = 16 * 1024;
/// How many leading bytes of `state.json` identify a commit (they hold its
/// random commit id).
const COMMIT_PREFIX: usize = 64;

/// The contents of `state.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    /// Random per commit; comes first so that the start of the file tells
    /// whether the state changed since this process last read it.
    #[serde(with = "hex_bytes")]
    commit: Vec<u8>,
    /// [`STATE_FILE_FORMAT`].
    format: u32,
    #[serde(with = "hex_bytes")]
    vault_id: Vec<u8>,
    /// 0 at creation, one more for every commit.
    generation: u64,
    /// Byte length of `audit.log` up to and including the entry at
    /// `state.audit_head`.
    audit_len: u64,
    state: State,
    /// HMAC-SHA256 over everything above, under the vault's MAC key.
    #[serde(with = "hex_bytes")]
    mac: Vec<u8>,
}

/// The one member of a JSON file looked at before parsing it whole.
#[derive(Deserialize)]
pub(super) struct Probe {
    #[serde(default)]
    pub magic: Option<serde_json::Value>,
    #[serde(default)]
    pub format: Option<serde_json::Value>,
}

/// A state read from (or written to) disk.
struct Loaded {
    /// The snapshot file's first [`COMMIT_PREFIX`] bytes.
    prefix: Vec<u8>,
    /// The snapshot's commit id, MAC and size in bytes.
    snapshot_commit: Vec<u8>,
    snapshot_mac: Vec<u8>,
    snapshot_len: u64,
    /// Bytes of `ops.log` replayed (complete, verified records of this
    /// snapshot); 0 when the log is stale (left by a compaction that
    /// crashed before emptying it).
    ops_len: u64,
    /// The MAC the next op record links to: the last record's, or the
    /// snapshot's.
    ops_mac: Vec<u8>,
    /// `ops.log` holds records of an older snapshot: emptied before the
    /// next append.
    ops_stale: bool,
    /// The generation after the last op record (the snapshot's if none).
    generation: u64,
    audit_len: u64,
    /// The audit head the state file records (at `audit_len`).
    committed_head: AuditHead,
    state: State,
    /// The audit log's end and head as this process last saw them (past
    /// `audit_len` when reads appended entries since the commit).
    tail: Option<(u64, AuditHead)>,
}

/// The vault state in a directory.
pub(crate) struct DirStore {
    paths: Paths,
    vault_id: Vec<u8>,
    mac_key: Box<dyn StateMacKey>,
    /// Where the newest generation and audit head seen are kept, outside
    /// the directory (rollback detection): a file the user named, or the
    /// PKCS#11 vault's token.
    witness: Option<Box<dyn Witness>>,
    /// The witness bytes the last [`check_witness`](Self::check_witness)
    /// found (`None`: none), or the last
    /// [`write_witness`](Self::write_witness) wrote: authenticated, so
    /// the same bytes found again need no MAC (a round trip to the token
    /// for the PKCS#11 vault), and the same bytes are not written again.
    /// Used under the `cache` lock only.
    witness_known: Mutex<Option<Vec<u8>>>,
    /// Held open for the store's life; locked (flock) for each transaction.
    lock_file: File,
    /// Serializes this process's threads (a file lock is per open file, so
    /// it does not exclude threads sharing `lock_file`), and caches the
    /// last state read.
    cache: Mutex<Option<Loaded>>,
}

/// Holds the directory's exclusive lock until dropped.
struct DirLock<'a>(&'a File);

impl<'a> DirLock<'a> {
    fn acquire(file: &'a File, paths: &Paths) -> Result<Self, VaultError> {
        file.lock().map_err(io_err(&paths.lock))?;
        Ok(Self(file))
    }
}

impl Drop for DirLock<'_> {
    fn drop(&mut self) {
        // Closing the file would release it too; an unlock error leaves
        // nothing to clean up.
        let _ = self.0.unlock();
    }
}

impl DirStore {
    /// Opens the lock file of an existing vault directory, keeping the
    /// newest generation seen in `witness` (outside the directory) if
    /// given.
    pub(super) fn open_with_witness(
        paths: Paths,
        vault_id: Vec<u8>,
        mac_key: Box<dyn StateMacKey>,
        witness: Option<Box<dyn Witness>>,
    ) -> Result<Self, VaultError> {
        let lock_file = fsio::create_private(&paths.lock, false).map_err(io_err(&paths.lock))?;
        let store = Self {
            paths,
            vault_id,
            mac_key,
            witness,
            witness_known: Mutex::new(None),
            lock_file,
            cache: Mutex::new(None),
        };
        // Read the state now so that a corrupt, foreign or rolled-back
        // state.json is reported by open(), not by the first call.
        {
            let mut cache = store.guard();
            let _lock = DirLock::acquire(&store.lock_file, &store.paths)?;
            let loaded = store.load(&mut cache)?;
            let (_, _, head, _) = store.recover_audit(loaded)?;
            store.check_witness(loaded.generation, &head)?;
            store.check_no_later_segment(loaded, &head)?;
            store.write_witness(loaded.generation, &head)?;
        }
        Ok(store)
    }

    /// Writes the first state of a new vault (the caller holds the lock).
    pub(super) fn write_initial(
        paths: &Paths,
        vault_id: &[u8],
        mac_key: &dyn StateMacKey,
        state: &State,
    ) -> Result<(), VaultError> {
        let sealed = seal_state(vault_id, mac_key, 0, 0, state)?;
        fsio::replace_durable(&paths.dir, super::STATE_FILE, &sealed.bytes)
    }

    fn guard(&self) -> MutexGuard<'_, Option<Loaded>> {
        // A panic in another thread mid-transaction leaves the files in
        // the old or the new state (as a crash would); the cache is
        // dropped and read again.
        self.cache.lock().unwrap_or_else(|poisoned| {
            let mut guard = poisoned.into_inner();
            *guard = None;
            guard
        })
    }

    /// Reads `state.json` unless it is the commit already cached. The
    /// caller holds the directory lock.
    fn load<'c>(&self, cache: &'c mut Option<Loaded>) -> Result<&'c mut Loaded, VaultError> {
        let path = &self.paths.state;
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(corrupt(
                    path,
                    "missing: the vault's creation did not finish, or the file was removed",
                ));
            }
            Err(e) => return Err(io_err(path)(e)),
        };
        // Unchanged since this process last looked: the same snapshot
        // (its first bytes hold its random commit id) and no more op
        // records than were replayed. Checking costs two small reads,
        // whatever the vault's size; new records are replayed one by one.
        let mut current = false;
        if let Some(cached) = cache.as_mut() {
            let mut prefix = Vec::with_capacity(COMMIT_PREFIX);
            (&mut file)
                .take(COMMIT_PREFIX as u64)
                .read_to_end(&mut prefix)
                .map_err(io_err(path))?;
            current = prefix == cached.prefix && self.replay_ops(cached)?;
            file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
        }
        if !current {
            *cache = None;
            let bytes = fsio::read_open_bounded(file, path, MAX_STATE_FILE)?;
            let mut loaded = self.parse_state(&bytes)?;
            self.replay_ops(&mut loaded)?;
            *cache = Some(loaded);
        }
        // safe: set just above, or current (which needs a cached state).
        Ok(cache.as_mut().expect("loaded state"))
    }

    /// Replays the op records past `loaded.ops_len`, checking each one's
    /// MAC and link. Returns false if the op log is shorter than what was
    /// replayed (not written by a vault: the caller reads everything
    /// again, and the audit log's generations show what was lost).
    fn replay_ops(&self, loaded: &mut Loaded) -> Result<bool, VaultError> {
        let path = &self.paths.ops;
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(loaded.ops_len == 0);
            }
            Err(e) => return Err(io_err(path)(e)),
        };
        let len = file.metadata().map_err(io_err(path))?.len();
        if len < loaded.ops_len {
            return Ok(false);
        }
        if len == loaded.ops_len || loaded.ops_stale {
            return Ok(true);
        }
        let mut reader = BufReader::new(file);
        reader
            .seek(SeekFrom::Start(loaded.ops_len))
            .map_err(io_err(path))?;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_STATE_FILE + 1)
                .read_until(b'\n', &mut line)
                .map_err(io_err(path))?;
            if n == 0 || line.last() != Some(&b'\n') {
                // The end, or a torn last record (never acknowledged): cut
                // off by the next append.
                return Ok(true);
            }
            let record: OpRecord = serde_json::from_slice(&line).map_err(|e| {
                corrupt(
                    path,
                    format!("byte {}: not an op record ({e})", loaded.ops_len),
                )
            })?;
            if record.snapshot != loaded.snapshot_commit {
                if loaded.ops_len == 0 {
                    // Records of the snapshot before this one: a
                    // compaction crashed before emptying the log.
                    loaded.ops_stale = true;
                    return Ok(true);
                }
                return Err(corrupt(
                    path,
                    "records of two snapshots: the file was altered",
                ));
            }
            let expected = op_mac(
                self.mac_key.as_ref(),
                &self.vault_id,
                &record,
                &loaded.ops_mac,
            )?;
            if !bool::from(expected.as_slice().ct_eq(&record.mac))
                || record.generation != loaded.generation + 1
            {
                return Err(corrupt(
                    path,
                    format!(
                        "the record at byte {} does not match its MAC or does not follow the one before: the file was altered",
                        loaded.ops_len
                    ),
                ));
            }
            if record.delta.audit_start.is_some() {
                // The log was rotated: what this process last saw of it is
                // in the segment now archived.
                loaded.tail = None;
            }
            loaded.state.apply(record.delta);
            loaded.generation = record.generation;
            loaded.audit_len = record.audit_len;
            loaded.committed_head = record.audit_head;
            loaded.ops_mac = record.mac;
            loaded.ops_len += n as u64;
        }
    }

    /// Appends the op record of a commit and fsyncs it: the commit point.
    fn append_op(
        &self,
        loaded: &mut Loaded,
        generation: u64,
        audit_len: u64,
        audit_head: &AuditHead,
        delta: Delta,
    ) -> Result<(), VaultError> {
        let path = &self.paths.ops;
        let mut file = fsio::create_private(path, false).map_err(io_err(path))?;
        if loaded.ops_stale {
            loaded.ops_len = 0;
        }
        let len = file.metadata().map_err(io_err(path))?.len();
        if len != loaded.ops_len {
            // A torn record, or the records of an older snapshot.
            file.set_len(loaded.ops_len).map_err(io_err(path))?;
            file.sync_all().map_err(io_err(path))?;
        }
        loaded.ops_stale = false;
        let mut record = OpRecord {
            snapshot: loaded.snapshot_commit.clone(),
            generation,
            audit_len,
            audit_head: audit_head.clone(),
            delta,
            mac: Vec::new(),
        };
        record.mac = op_mac(
            self.mac_key.as_ref(),
            &self.vault_id,
            &record,
            &loaded.ops_mac,
        )?
        .to_vec();
        let mut bytes = serde_json::to_vec(&record).map_err(|e| VaultError::InvalidArgument {
            reason: format!("an op record cannot be serialized: {e}"),
        })?;
        bytes.push(b'\n');
        fsio::append_durable(&mut file, &bytes, path, "ops")?;
        loaded.generation = generation;
        loaded.audit_len = audit_len;
        loaded.committed_head = record.audit_head;
        loaded.ops_mac = record.mac;
        loaded.ops_len += bytes.len() as u64;
        Ok(())
    }

    /// Writes the state as a new snapshot, then empties the op log. A
    /// crash between the two leaves records of the old snapshot, which the
    /// new one's commit id marks stale.
    fn compact_loaded(&self, loaded: &mut Loaded) -> Result<(), VaultError> {
        // The state in memory carries the live audit head (reads since the
        // commit); the snapshot records the committed one, at `audit_len`.
        let live = core::mem::replace(&mut loaded.state.audit_head, loaded.committed_head.clone());
        let sealed = seal_state(
            &self.vault_id,
            self.mac_key.as_ref(),
            loaded.generation,
            loaded.audit_len,
            &loaded.state,
        );
        loaded.state.audit_head = live;
        let sealed = sealed?;
        fsio::replace_durable(&self.paths.dir, super::STATE_FILE, &sealed.bytes)?;
        crash_point("compact:before-truncate");
        let path = &self.paths.ops;
        let file = fsio::create_private(path, false).map_err(io_err(path))?;
        file.set_len(0).map_err(io_err(path))?;
        file.sync_all().map_err(io_err(path))?;
        crash_point("compact:done");
        loaded.prefix = sealed.prefix;
        loaded.snapshot_commit = sealed.commit;
        loaded.snapshot_mac = sealed.mac.clone();
        loaded.snapshot_len = sealed.bytes.len() as u64;
        loaded.ops_len = 0;
        loaded.ops_mac = sealed.mac;
        loaded.ops_stale = false;
        Ok(())
    }

    /// Refuses a state or witness file (`what`) of another format version
    /// than this build's or of another vault, before its MAC is checked:
    /// the error is why.
    fn check_file_of_ours(
        &self,
        what: &str,
        format: u32,
        ours: u32,
        vault_id: &[u8],
    ) -> Result<(), String> {
        if format != ours {
            return Err(format!(
                "{what} format version {format}; this build reads version {ours}"
            ));
        }
        if vault_id != self.vault_id.as_slice() {
            return Err(format!("{what} file of another vault (vault id differs)"));
        }
        Ok(())
    }

    fn parse_state(&self, bytes: &[u8]) -> Result<Loaded, VaultError> {
        let path = &self.paths.state;
        let mut file: StateFile = serde_json::from_slice(bytes).map_err(|e| {
            // Look closer only when it does not parse, so that another
            // format version or a foreign file gets its own message.
            match serde_json::from_slice::<Probe>(bytes) {
                Err(_) => corrupt(path, format!("not a vault state file ({e})")),
                Ok(probe) => match probe.format.as_ref().and_then(serde_json::Value::as_u64) {
                    None => corrupt(path, "not a vault state file (no format version)"),
                    Some(v) if v != u64::from(STATE_FILE_FORMAT) => corrupt(
                        path,
                        format!(
                            "state format version {v}; this build reads version {STATE_FILE_FORMAT}"
                        ),
                    ),
                    Some(_) => corrupt(path, format!("malformed: {e}")),
                },
            }
        })?;
        self.check_file_of_ours("state", file.format, STATE_FILE_FORMAT, &file.vault_id)
            .map_err(|reason| corrupt(path, reason))?;
        let expected = state_mac(
            self.mac_key.as_ref(),
            &file.commit,
            &file.vault_id,
            file.generation,
            file.audit_len,
            &file.state,
        )?;
        if !bool::from(expected.as_slice().ct_eq(&file.mac)) {
            return Err(corrupt(
                path,
                "its contents do not match their MAC: the file was altered",
            ));
        }
        if !(OLDEST_STATE_FORMAT..=STATE_FORMAT).contains(&file.state.format) {
            return Err(corrupt(
                path,
                format!(
                    "vault state version {}; this build reads versions {OLDEST_STATE_FORMAT} to {STATE_FORMAT}",
                    file.state.format
                ),
            ));
        }
        // An older state reads as this version's (nothing it lacks is in
        // it); the next snapshot is written as this version.
        file.state.format = STATE_FORMAT;
        Ok(Loaded {
            prefix: bytes[..bytes.len().min(COMMIT_PREFIX)].to_vec(),
            snapshot_commit: file.commit,
            snapshot_mac: file.mac.clone(),
            snapshot_len: bytes.len() as u64,
            ops_len: 0,
            ops_mac: file.mac,
            ops_stale: false,
            generation: file.generation,
            audit_len: file.audit_len,
            committed_head: file.state.audit_head.clone(),
            state: file.state,
            tail: None,
        })
    }

    /// Finds the audit log's end and head, from where this process last
    /// saw them (or the committed end the state records), and repairs what
    /// a crash left: cuts off a torn last line (never acknowledged), and
    /// takes over the complete entries past that point that continue the
    /// chain, MAC included: reads (which append an entry but commit no
    /// state), and the entries of a transaction that crashed before its
    /// commit. Entries that do not continue the chain (someone else's)
    /// are skipped, never adopted; verification reports them. Returns the
    /// log, its end, the head to chain new entries from, and whether an
    /// entry is one commit ahead of the state (a crashed commit, which the
    /// caller then makes).
    ///
    /// Reads only what was appended since this process last looked, so a
    /// call's cost does not grow with the log; a process's first call reads
    /// the entries since the last commit.
    fn recover_audit(&self, loaded: &Loaded) -> Result<(File, u64, AuditHead, bool), VaultError> {
        let path = &self.audit_path(loaded);
        let mut log = fsio::create_private(path, false).map_err(io_err(path))?;
        let len = log.metadata().map_err(io_err(path))?.len();
        let (start, mut head) = match &loaded.tail {
            Some((end, head)) if *end <= len => (*end, head.clone()),
            _ => (loaded.audit_len, loaded.committed_head.clone()),
        };
        if len <= start {
            // Nothing past it; or the log was cut: leave it as it is for
            // verify to report, and chain on.
            return Ok((log, len, head, false));
        }
        let mut newest = 0;
        log.seek(SeekFrom::Start(start)).map_err(io_err(path))?;
        let mut reader = BufReader::new((&mut log).take(len - start));
        let mut end = start;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_AUDIT_LINE + 1)
                .read_until(b'\n', &mut line)
                .map_err(io_err(path))?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                if n as u64 > MAX_AUDIT_LINE {
                    // Not ours (we write short lines): leave it for
                    // verify to report.
                    return Err(corrupt(
                        path,
                        format!("a line is longer than {MAX_AUDIT_LINE} bytes"),
                    ));
                }
                break;
            }
            end += n as u64;
            let Ok(entry) = serde_json::from_slice::<AuditEntry>(&line) else {
                continue;
            };
            // Only what the vault itself wrote: the MAC proves it. A line
            // someone appended without the key stays out of the chain, and
            // verification reports it.
            if !entry.follows(&head, self.mac_key.as_ref())? {
                continue;
            }
            // The vault wrote it, at a generation the state has not
            // reached: one commit ahead is what a crash between the audit
            // append and the commit leaves (taken over, and the commit
            // made); more is an older state put back under a newer log.
            newest = newest.max(entry.generation);
            head = entry.head();
        }
        drop(reader);
        if newest > loaded.generation + 1 {
            return Err(VaultError::RolledBack {
                found: loaded.generation,
                last_seen: newest,
            });
        }
        let crashed_commit = newest > loaded.generation;
        if end < len {
            log.set_len(end).map_err(io_err(path))?;
            log.sync_all().map_err(io_err(path))?;
            crash_point("recover:after-truncate");
        }
        Ok((log, end, head, crashed_commit))
    }
}

/// The version of the witness file.
const WITNESS_FORMAT: u32 = 1;
/// Longest witness read, from a file or a token object (it is a few
/// hundred bytes).
pub(crate) const MAX_WITNESS_FILE: u64 = 64 * 1024;

/// A place outside the vault directory that keeps the newest generation
/// and audit head the vault reached: the bytes of a [`WitnessFile`]. The
/// store parses, authenticates and compares them; a witness only stores
/// them. Every call is made under the directory's lock.
pub(crate) trait Witness: Send + Sync {
    /// The witness's bytes (at most [`MAX_WITNESS_FILE`]), or `None` when
    /// there is none yet.
    fn read(&self) -> Result<Option<Vec<u8>>, VaultError>;
    /// Replaces the witness's bytes, or creates it: all of them or, after
    /// a crash or an error, the old ones.
    fn write(&self, bytes: &[u8]) -> Result<(), VaultError>;
    /// The error for a witness whose bytes are not this vault's valid
    /// witness; `reason` says why.
    fn corrupt(&self, reason: String) -> VaultError;
}

/// A witness kept in a file ([`FileVaultOptions::witness`]): replaced by a
/// temporary file, fsynced, renamed over it.
///
/// [`FileVaultOptions::witness`]: crate::FileVaultOptions::witness
pub(crate) struct FileWitness(pub(crate) PathBuf);

impl Witness for FileWitness {
    fn read(&self) -> Result<Option<Vec<u8>>, VaultError> {
        fsio::read_bounded(&self.0, MAX_WITNESS_FILE)
    }

    fn write(&self, bytes: &[u8]) -> Result<(), VaultError> {
        let path = &self.0;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let name = path
            .file_name()
            .ok_or_else(|| VaultError::InvalidArgument {
                reason: format!("witness path {} names no file", path.display()),
            })?;
        fsio::replace_durable(
            dir.unwrap_or(Path::new(".")),
            &name.to_string_lossy(),
            bytes,
        )
    }

    fn corrupt(&self, reason: String) -> VaultError {
        corrupt(&self.0, reason)
    }
}

/// The contents of the witness file: the newest generation and audit head
/// this vault reached, MACed under its key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WitnessFile {
    format: u32,
    #[serde(with = "hex_bytes")]
    vault_id: Vec<u8>,
    generation: u64,
    audit_head: AuditHead,
    #[serde(with = "hex_bytes")]
    mac: Vec<u8>,
}

/// The witness bytes known to be authentic (see `DirStore::witness_known`).
fn lock_known(known: &Mutex<Option<Vec<u8>>>) -> MutexGuard<'_, Option<Vec<u8>>> {
    // A panic mid-check leaves nothing half-done that matters: forget.
    known.lock().unwrap_or_else(|poisoned| {
        let mut guard = poisoned.into_inner();
        *guard = None;
        guard
    })
}

/// HMAC-SHA256 of a witness's contents.
fn witness_mac(
    key: &dyn StateMacKey,
    vault_id: &[u8],
    generation: u64,
    head: &AuditHead,
) -> Result<[u8; 32], VaultError> {
    let mut message = Vec::with_capacity(160);
    for field in [
        b"strongroom-keyvault witness v1".as_slice(),
        vault_id,
        &generation.to_be_bytes(),
        &head.seq.to_be_bytes(),
        &head.mac,
    ] {
        message.extend_from_slice(&(field.len() as u64).to_be_bytes());
        message.extend_from_slice(field);
    }
    key.hmac_sha256(&message)
}

/// HMAC-SHA256 of a state file's contents, each field length-prefixed.
fn state_mac(
    key: &dyn StateMacKey,
    commit: &[u8],
    vault_id: &[u8],
    generation: u64,
    audit_len: u64,
    state: &State,
) -> Result<[u8; 32], VaultError> {
    // Over the state's canonical serialization (struct fields in order,
    // maps sorted), so the MAC does not depend on the file's whitespace.
    let state_bytes = serde_json::to_vec(state).map_err(|e| VaultError::InvalidArgument {
        reason: format!("the vault state cannot be serialized: {e}"),
    })?;
    let mut message = Vec::with_capacity(state_bytes.len() + vault_id.len() + 128);
    for field in [
        b"strongroom-keyvault state v1".as_slice(),
        commit,
        vault_id,
        &generation.to_be_bytes(),
        &audit_len.to_be_bytes(),
        &state_bytes,
    ] {
        message.extend_from_slice(&(field.len() as u64).to_be_bytes());
        message.extend_from_slice(field);
    }
    key.hmac_sha256(&message)
}

/// A state file made by [`seal_state`].
struct Sealed {
    bytes: Vec<u8>,
    prefix: Vec<u8>,
    commit: Vec<u8>,
    mac: Vec<u8>,
}

/// The bytes of `state.json` for `state`, with their commit id, prefix and
/// MAC.
fn seal_state(
    vault_id: &[u8],
    mac_key: &dyn StateMacKey,
    generation: u64,
    audit_len: u64,
    state: &State,
) -> Result<Sealed, VaultError> {
    let mut commit = vec![0; 16];
    getrandom::fill(&mut commit).map_err(|_| VaultError::RandomnessUnavailable)?;
    let mac = state_mac(mac_key, &commit, vault_id, generation, audit_len, state)?.to_vec();
    let file = StateFileRef {
        commit: &commit,
        format: STATE_FILE_FORMAT,
        vault_id,
        generation,
        audit_len,
        state,
        mac: &mac,
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| VaultError::InvalidArgument {
        reason: format!("the vault state cannot be serialized: {e}"),
    })?;
    let prefix = bytes[..bytes.len().min(COMMIT_PREFIX)].to_vec();
    Ok(Sealed {
        bytes,
        prefix,
        commit,
        mac,
    })
}

/// One line of `ops.log`: what one commit changed, bound to the snapshot it
/// extends and to the record before it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpRecord {
    /// The commit id of the `state.json` it extends.
    #[serde(with = "hex_bytes")]
    snapshot: Vec<u8>,
    /// One more than the record before (or the snapshot).
    generation: u64,
    /// Bytes of `audit.log` up to the head below.
    audit_len: u64,
    /// The newest audit entry at this commit.
    audit_head: AuditHead,
    /// What changed.
    delta: Delta,
    /// HMAC-SHA256 of all of the above and the previous record's MAC (or
    /// the snapshot's).
    #[serde(with = "hex_bytes")]
    mac: Vec<u8>,
}

/// HMAC-SHA256 of an op record, linked to `prev`.
fn op_mac(
    key: &dyn StateMacKey,
    vault_id: &[u8],
    record: &OpRecord,
    prev: &[u8],
) -> Result<[u8; 32], VaultError> {
    let delta = serde_json::to_vec(&record.delta).map_err(|e| VaultError::InvalidArgument {
        reason: format!("an op record cannot be serialized: {e}"),
    })?;
    let mut message = Vec::with_capacity(delta.len() + 256);
    for field in [
        b"strongroom-keyvault op v1".as_slice(),
        vault_id,
        &record.snapshot,
        &record.generation.to_be_bytes(),
        &record.audit_len.to_be_bytes(),
        &record.audit_head.seq.to_be_bytes(),
        &record.audit_head.mac,
        &delta,
        prev,
    ] {
        message.extend_from_slice(&(field.len() as u64).to_be_bytes());
        message.extend_from_slice(field);
    }
    key.hmac_sha256(&message)
}

/// [`StateFile`] by reference, for writing without copying the state.
#[derive(Serialize)]
struct StateFileRef<'a> {
    #[serde(with = "hex_bytes")]
    commit: &'a [u8],
    format: u32,
    #[serde(with = "hex_bytes")]
    vault_id: &'a [u8],
    generation: u64,
    audit_len: u64,
    state: &'a State,
    #[serde(with = "hex_bytes")]
    mac: &'a [u8],
}

impl StateStore for DirStore {
    fn transact(
        &self,
        f: &mut dyn FnMut(&mut State) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        let mut cache = self.guard();
        let _lock = DirLock::acquire(&self.lock_file, &self.paths)?;
        let result = self.transact_locked(&mut cache, f);
        if result.is_err() {
            // After a failure of the store part-way (I/O) the disk is in
            // the old or the new state; which one is read again next time.
            *cache = None;
        }
        result?
    }

    fn audit_log(&self) -> Result<AuditLog, VaultError> {
        let mut cache = self.guard();
        let _lock = DirLock::acquire(&self.lock_file, &self.paths)?;
        let loaded = self.load(&mut cache)?;
        // The newest entry this process knows was written: the state's, or
        // a later one it appended or read since.
        let head = match &loaded.tail {
            Some((_, tail)) if tail.seq > loaded.committed_head.seq => tail.clone(),
            _ => loaded.committed_head.clone(),
        };
        let (log, end, log_head, _) = self.recover_audit(loaded)?;
        self.check_witness(loaded.generation, &log_head)?;
        let entries = self.read_log(&self.audit_path(loaded), log, end)?;
        Ok(AuditLog {
            entries,
            start: loaded.state.audit_start.clone(),
            head,
        })
    }

    fn audit_key(&self) -> &dyn StateMacKey {
        self.mac_key.as_ref()
    }

    fn rotate_audit(
        &self,
        record: &mut dyn FnMut(&AuditHead, &AuditHead) -> crate::audit::AuditRecord,
    ) -> Result<Option<crate::AuditSegment>, VaultError> {
        self.rotate_audit_locked(record)
    }

    fn compact(&self) -> Result<(), VaultError> {
        let mut cache = self.guard();
        let _lock = DirLock::acquire(&self.lock_file, &self.paths)?;
        let result = (|| {
            let loaded = self.load(&mut cache)?;
            let (_, _, head, _) = self.recover_audit(loaded)?;
            self.check_witness(loaded.generation, &head)?;
            self.compact_loaded(loaded)
        })();
        if result.is_err() {
            *cache = None;
        }
        result
    }
}

impl DirStore {
    /// One transaction under the lock. The outer error is the store's, the
    /// inner one `f`'s (its audit entries are kept all the same).
    fn transact_locked(
        &self,
        cache: &mut Option<Loaded>,
        f: &mut dyn FnMut(&mut State) -> Result<(), VaultError>,
    ) -> Result<Result<(), VaultError>, VaultError> {
        let loaded = self.load(cache)?;
        let (mut log, log_end, head) = self.prepare(loaded)?;
        loaded.state.audit_head = head;
        let outcome = run_transaction(
            &mut loaded.state,
            loaded.generation,
            self.mac_key.as_ref(),
            f,
        )?;
        let changed = outcome.changed();
        let mut audit_end = log_end;
        if !outcome.audit.is_empty() {
            let mut bytes = Vec::new();
            for entry in &outcome.audit {
                serde_json::to_writer(&mut bytes, entry).map_err(|e| {
                    VaultError::InvalidArgument {
                        reason: format!("an audit entry cannot be serialized: {e}"),
                    }
                })?;
                bytes.push(b'\n');
            }
            fsio::append_durable(&mut log, &bytes, &self.audit_path(loaded), "audit")?;
            audit_end += bytes.len() as u64;
        }
        let new_head = loaded.state.audit_head.clone();
        loaded.tail = Some((audit_end, new_head.clone()));
        if changed {
            // What changed, not the whole state: the commit's cost follows
            // the change. The snapshot is rewritten once the op log
            // outgrows it, so that costs O(1) per commit, amortized.
            self.append_op(
                loaded,
                loaded.generation + 1,
                audit_end,
                &new_head,
                outcome.delta,
            )?;
            if loaded.ops_len > loaded.snapshot_len.max(MIN_COMPACT) {
                self.compact_loaded(loaded)?;
            }
        }
        if changed || !outcome.audit.is_empty() {
            self.write_witness(loaded.generation, &new_head)?;
        }
        Ok(outcome.result)
    }

    /// The live audit log segment of `loaded`.
    fn audit_path(&self, loaded: &Loaded) -> PathBuf {
        self.paths.audit_segment(loaded.state.audit_start.seq)
    }

    /// What every transaction does first, under the lock: repairs the
    /// audit log, checks the witness, and makes the commit a crash left
    /// unmade. Returns the live segment, its end and its head.
    fn prepare(&self, loaded: &mut Loaded) -> Result<(File, u64, AuditHead), VaultError> {
        let (log, log_end, head, crashed_commit) = self.recover_audit(loaded)?;
        self.check_witness(loaded.generation, &head)?;
        if crashed_commit {
            // A crashed commit's entries claim the next generation: commit
            // the state as it is, so that it reaches them again.
            self.append_op(
                loaded,
                loaded.generation + 1,
                log_end,
                &head,
                Delta::default(),
            )?;
        }
        Ok((log, log_end, head))
    }

    /// Refuses a state from before a rotation of the audit log: the
    /// segment the rotation began (named after the entry past `head`)
    /// exists and starts with an entry the vault wrote after `head`.
    /// Costs one failed `open` when there is no such segment.
    fn check_no_later_segment(&self, loaded: &Loaded, head: &AuditHead) -> Result<(), VaultError> {
        let path = self.paths.audit_segment(head.seq);
        if head.seq == loaded.state.audit_start.seq {
            // The live segment is empty: the one after it is itself.
            return Ok(());
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut line = Vec::new();
        BufReader::new(file.take(MAX_AUDIT_LINE))
            .read_until(b'\n', &mut line)
            .map_err(io_err(&path))?;
        if let Ok(entry) = serde_json::from_slice::<AuditEntry>(&line)
            && entry.follows(head, self.mac_key.as_ref())?
        {
            return Err(VaultError::RolledBack {
                found: loaded.generation,
                last_seen: entry.generation,
            });
        }
        Ok(())
    }

    /// Closes the live audit log segment and starts the next one, whose
    /// first entry is `record` (the rotation itself). The closed segment
    /// must verify first: a tampered log is never archived as if sound.
    /// Returns the closed segment's path and its first and last sequence
    /// numbers, or `None` when the live segment holds no entry.
    fn rotate_audit_locked(
        &self,
        record: &mut dyn FnMut(&AuditHead, &AuditHead) -> crate::audit::AuditRecord,
    ) -> Result<Option<crate::AuditSegment>, VaultError> {
        let mut cache = self.guard();
        let _lock = DirLock::acquire(&self.lock_file, &self.paths)?;
        let result = (|| {
            let loaded = self.load(&mut cache)?;
            let (log, end, head) = self.prepare(loaded)?;
            let start = loaded.state.audit_start.clone();
            if head.seq == start.seq {
                return Ok(None);
            }
            let closed = self.audit_path(loaded);
            let entries = self.read_log(&closed, log, end)?;
            crate::audit::verify_chain(&entries, &start, &head, self.mac_key.as_ref())?;
            // The commit point: from here the next segment is the live one.
            self.append_op(
                loaded,
                loaded.generation + 1,
                0,
                &head,
                Delta {
                    audit_start: Some(head.clone()),
                    ..Delta::default()
                },
            )?;
            loaded.state.apply(Delta {
                audit_start: Some(head.clone()),
                ..Delta::default()
            });
            crash_point("rotate:committed");
            let (mut entry, _) = AuditEntry::chain(&head, record(&start, &head));
            let new_head = crate::audit::seal(
                core::slice::from_mut(&mut entry),
                &head,
                loaded.generation,
                self.mac_key.as_ref(),
            )?;
            let mut bytes =
                serde_json::to_vec(&entry).map_err(|e| VaultError::InvalidArgument {
                    reason: format!("an audit entry cannot be serialized: {e}"),
                })?;
            bytes.push(b'\n');
            let live = self.audit_path(loaded);
            let mut file = fsio::create_private(&live, false).map_err(io_err(&live))?;
            // No vault wrote there before the commit that made it the live
            // segment: whatever is there is not part of the log.
            file.set_len(0).map_err(io_err(&live))?;
            fsio::append_durable(&mut file, &bytes, &live, "audit")?;
            loaded.tail = Some((bytes.len() as u64, new_head.clone()));
            self.write_witness(loaded.generation, &new_head)?;
            Ok(Some(crate::AuditSegment {
                path: closed,
                first_seq: start.seq + 1,
                last_seq: head.seq,
            }))
        })();
        if result.is_err() {
            *cache = None;
        }
        result
    }

    /// Refuses a state older than the witness has seen, and an audit log
    /// shorter than it has seen. A missing witness is made at open.
    fn check_witness(&self, generation: u64, head: &AuditHead) -> Result<(), VaultError> {
        let Some(place) = &self.witness else {
            return Ok(());
        };
        let mut known = lock_known(&self.witness_known);
        let read = place.read();
        let Some(bytes) = read.inspect_err(|_| *known = None)? else {
            *known = None;
            return Ok(());
        };
        if known.as_ref() != Some(&bytes) {
            *known = None;
        }
        let witness: WitnessFile = serde_json::from_slice(&bytes)
            .map_err(|e| place.corrupt(format!("not a vault witness file ({e})")))?;
        if known.is_none() {
            self.check_file_of_ours("witness", witness.format, WITNESS_FORMAT, &witness.vault_id)
                .map_err(|reason| place.corrupt(reason))?;
            let expected = witness_mac(
                self.mac_key.as_ref(),
                &self.vault_id,
                witness.generation,
                &witness.audit_head,
            )?;
            if !bool::from(expected.as_slice().ct_eq(&witness.mac)) {
                return Err(place.corrupt(
                    "its contents do not match their MAC: the file was altered".to_owned(),
                ));
            }
            *known = Some(bytes);
        }
        if generation < witness.generation {
            return Err(VaultError::RolledBack {
                found: generation,
                last_seen: witness.generation,
            });
        }
        if head.seq < witness.audit_head.seq {
            return Err(VaultError::AuditRolledBack {
                found: head.seq,
                last_seen: witness.audit_head.seq,
            });
        }
        Ok(())
    }

    /// Records `generation` and `head` in the witness. Made after the
    /// commit, so a crash leaves the witness behind (one commit
    /// undetected), never ahead (a false alarm).
    fn write_witness(&self, generation: u64, head: &AuditHead) -> Result<(), VaultError> {
        let Some(place) = &self.witness else {
            return Ok(());
        };
        let mac = witness_mac(self.mac_key.as_ref(), &self.vault_id, generation, head)?;
        let file = WitnessFile {
            format: WITNESS_FORMAT,
            vault_id: self.vault_id.clone(),
            generation,
            audit_head: head.clone(),
            mac: mac.to_vec(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| VaultError::InvalidArgument {
            reason: format!("the witness cannot be serialized: {e}"),
        })?;
        let mut known = lock_known(&self.witness_known);
        // Every write follows a check under the same lock: these bytes
        // are the ones there (a reopen of an unchanged vault).
        if known.as_ref() == Some(&bytes) {
            return Ok(());
        }
        *known = None;
        place.write(&bytes)?;
        *known = Some(bytes);
        Ok(())
    }

    /// Every entry of the log segment at `path` up to `end`, each line
    /// bounded.
    fn read_log(
        &self,
        path: &Path,
        mut log: File,
        end: u64,
    ) -> Result<Vec<AuditEntry>, VaultError> {
        log.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
        read_entries(path, BufReader::new(log.take(end)))
    }
}

/// Every entry of an archived audit log segment (a whole file).
///
/// # Errors
/// [`VaultError::Io`]; [`VaultError::Corrupt`] for a line that is not an
/// entry, too long, or incomplete.
pub(crate) fn read_audit_segment(path: &Path) -> Result<Vec<AuditEntry>, VaultError> {
    let file = File::open(path).map_err(io_err(path))?;
    read_entries(path, BufReader::new(file))
}

/// Every entry of archived segments, in the order given.
///
/// # Errors
/// As [`read_audit_segment`].
pub(crate) fn read_audit_segments(
    segments: &[impl AsRef<Path>],
) -> Result<Vec<AuditEntry>, VaultError> {
    let mut entries = Vec::new();
    for segment in segments {
        entries.extend(read_audit_segment(segment.as_ref())?);
    }
    Ok(entries)
}

/// The entries of the audit log lines `reader` gives, each line bounded.
fn read_entries(path: &Path, mut reader: impl BufRead) -> Result<Vec<AuditEntry>, VaultError> {
    let mut entries = Vec::new();
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let n = (&mut reader)
            .take(MAX_AUDIT_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            return Err(corrupt(
                path,
                if n as u64 > MAX_AUDIT_LINE {
                    format!("line {number} is longer than {MAX_AUDIT_LINE} bytes")
                } else {
                    format!("line {number} is incomplete")
                },
            ));
        }
        let entry = serde_json::from_slice(&line)
            .map_err(|e| corrupt(path, format!("line {number} is not an audit entry: {e}")))?;
        entries.push(entry);
    }
    Ok(entries)
}
