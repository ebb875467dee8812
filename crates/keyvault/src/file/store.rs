//! `DirStore`: the vault state in `state.json` and the audit log in
//! `audit.log`, under an exclusive file lock for every transaction.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::fsio::{self, Paths, corrupt, crash_point, io_err};
use crate::VaultError;
use crate::audit::{AuditEntry, AuditHead};
use crate::state::{AuditLog, STATE_FORMAT, State, StateStore, hex_bytes, run_transaction};
pub(crate) use crate::state::{LocalMacKey, StateMacKey};

/// The version of `state.json`'s envelope.
const STATE_FILE_FORMAT: u32 = 1;
/// Longest `state.json` read: far beyond any real vault (a key version is a
/// few kilobytes), small enough to refuse a hostile file before parsing it.
pub(super) const MAX_STATE_FILE: u64 = 64 * 1024 * 1024;
/// Longest audit log line (an entry is a few hundred bytes).
const MAX_AUDIT_LINE: u64 = 1024 * 1024;
/// Most bytes read past the committed end of the audit log when repairing:
/// a crash leaves at most one transaction's entries there.
const MAX_AUDIT_SUFFIX: u64 = 16 * 1024 * 1024;
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
    /// The file's first [`COMMIT_PREFIX`] bytes.
    prefix: Vec<u8>,
    generation: u64,
    audit_len: u64,
    state: State,
}

/// The vault state in a directory.
pub(crate) struct DirStore {
    paths: Paths,
    vault_id: Vec<u8>,
    mac_key: Box<dyn StateMacKey>,
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
    /// Opens the lock file of an existing vault directory.
    pub(super) fn open(
        paths: Paths,
        vault_id: Vec<u8>,
        mac_key: Box<dyn StateMacKey>,
    ) -> Result<Self, VaultError> {
        let lock_file = fsio::create_private(&paths.lock, false).map_err(io_err(&paths.lock))?;
        let store = Self {
            paths,
            vault_id,
            mac_key,
            lock_file,
            cache: Mutex::new(None),
        };
        // Read the state now so that a corrupt or foreign state.json is
        // reported by open(), not by the first call.
        {
            let mut cache = store.guard();
            let _lock = DirLock::acquire(&store.lock_file, &store.paths)?;
            store.load(&mut cache)?;
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
        let (bytes, _) = seal_state(vault_id, mac_key, 0, 0, state)?;
        fsio::replace_durable(&paths.dir, super::STATE_FILE, &bytes)
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
        if let Some(cached) = cache.as_ref() {
            let mut prefix = Vec::with_capacity(COMMIT_PREFIX);
            (&mut file)
                .take(COMMIT_PREFIX as u64)
                .read_to_end(&mut prefix)
                .map_err(io_err(path))?;
            if prefix == cached.prefix {
                // safe: checked just above that it is Some.
                return Ok(cache.as_mut().expect("cached state"));
            }
            file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
        }
        *cache = None;
        let bytes = fsio::read_open_bounded(file, path, MAX_STATE_FILE)?;
        let loaded = self.parse_state(&bytes)?;
        Ok(cache.insert(loaded))
    }

    fn parse_state(&self, bytes: &[u8]) -> Result<Loaded, VaultError> {
        let path = &self.paths.state;
        let file: StateFile = serde_json::from_slice(bytes).map_err(|e| {
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
        if file.format != STATE_FILE_FORMAT {
            return Err(corrupt(
                path,
                format!(
                    "state format version {}; this build reads version {STATE_FILE_FORMAT}",
                    file.format
                ),
            ));
        }
        if file.vault_id != self.vault_id {
            return Err(corrupt(path, "belongs to another vault (vault id differs)"));
        }
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
        if file.state.format != STATE_FORMAT {
            return Err(corrupt(
                path,
                format!(
                    "vault state version {}; this build reads version {STATE_FORMAT}",
                    file.state.format
                ),
            ));
        }
        Ok(Loaded {
            prefix: bytes[..bytes.len().min(COMMIT_PREFIX)].to_vec(),
            generation: file.generation,
            audit_len: file.audit_len,
            state: file.state,
        })
    }

    /// Brings `audit.log` in line with the committed state after a crash:
    /// cuts off a torn last line (never acknowledged), and takes over
    /// complete entries written after the committed end if they continue
    /// the chain from the state's head (their transaction appended them
    /// but crashed before recording the new head). Returns the log's end
    /// and the head to chain new entries from.
    fn recover_audit(&self, loaded: &Loaded) -> Result<(File, u64, AuditHead), VaultError> {
        let path = &self.paths.audit;
        let mut log = fsio::create_private(path, false).map_err(io_err(path))?;
        let len = log.metadata().map_err(io_err(path))?.len();
        let mut head = loaded.state.audit_head.clone();
        if len <= loaded.audit_len || len - loaded.audit_len > MAX_AUDIT_SUFFIX {
            // Nothing past the committed end; or the log was cut (or is
            // far past it): leave it as it is for verify to report, and
            // chain on.
            return Ok((log, len, head));
        }
        log.seek(SeekFrom::Start(loaded.audit_len))
            .map_err(io_err(path))?;
        let mut suffix = Vec::new();
        (&mut log)
            .take(len - loaded.audit_len)
            .read_to_end(&mut suffix)
            .map_err(io_err(path))?;
        let complete = suffix
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let end = loaded.audit_len + complete as u64;
        if complete < suffix.len() {
            log.set_len(end).map_err(io_err(path))?;
            log.sync_all().map_err(io_err(path))?;
            crash_point("recover:after-truncate");
        }
        for line in suffix[..complete].split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            let Ok(entry) = serde_json::from_slice::<AuditEntry>(line) else {
                break;
            };
            // Only what the vault itself wrote: the MAC proves it. A line
            // someone appended without the key stays out of the chain, and
            // verification reports it.
            if !entry.follows(&head, self.mac_key.as_ref())? {
                break;
            }
            head = entry.head();
        }
        Ok((log, end, head))
    }
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

/// The bytes of `state.json` for `state`, and their commit prefix.
fn seal_state(
    vault_id: &[u8],
    mac_key: &dyn StateMacKey,
    generation: u64,
    audit_len: u64,
    state: &State,
) -> Result<(Vec<u8>, Vec<u8>), VaultError> {
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
    Ok((bytes, prefix))
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
        let (log, end, _) = self.recover_audit(loaded)?;
        let head = loaded.state.audit_head.clone();
        let entries = self.read_log(log, end)?;
        Ok(AuditLog {
            entries,
            start: AuditHead::genesis(),
            head,
        })
    }

    fn audit_key(&self) -> &dyn StateMacKey {
        self.mac_key.as_ref()
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
        let (mut log, log_end, head) = self.recover_audit(loaded)?;
        let adopted = head != loaded.state.audit_head;
        if adopted {
            loaded.state.audit_head = head;
        }
        let outcome = run_transaction(
            &loaded.state,
            loaded.generation + u64::from(adopted),
            self.mac_key.as_ref(),
            f,
        )?;
        let mut audit_len = log_end;
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
            fsio::append_durable(&mut log, &bytes, &self.paths.audit)?;
            audit_len += bytes.len() as u64;
        }
        if outcome.changed || adopted || audit_len != loaded.audit_len {
            let generation = loaded.generation + 1;
            let (bytes, prefix) = seal_state(
                &self.vault_id,
                self.mac_key.as_ref(),
                generation,
                audit_len,
                &outcome.state,
            )?;
            // Drop the cache first: if the write fails half-way, the next
            // transaction reads whichever state the disk holds.
            *cache = None;
            fsio::replace_durable(&self.paths.dir, super::STATE_FILE, &bytes)?;
            *cache = Some(Loaded {
                prefix,
                generation,
                audit_len,
                state: outcome.state,
            });
        }
        Ok(outcome.result)
    }

    /// Every entry of the log up to `end`, each line bounded.
    fn read_log(&self, mut log: File, end: u64) -> Result<Vec<AuditEntry>, VaultError> {
        let path = &self.paths.audit;
        log.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
        let mut reader = BufReader::new(log.take(end));
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
}
