//! What a vault stores, and the two seams every backend fills: where the
//! state lives ([`StateStore`]) and where key material lives and is used
//! ([`KeyCrypto`]).
//!
//! The vault logic (`vault.rs`) is written once over these seams, so access
//! checks, key states, versions and the audit log behave the same on every
//! backend.

use std::collections::BTreeMap;
use std::ops::Deref;

use serde::{Deserialize, Serialize};
use strongroom_envelope::WrapAlgorithm;
use zeroize::Zeroizing;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::audit::{AuditEntry, AuditHead};
use crate::{
    KeyAttributes, KeyType, Permissions, RsaPublicParts, SecretAttributes, UnixTime, VaultError,
    VaultProperties,
};

/// The version of the state's serialized form: 2 added secrets and the
/// owner (a version-1 state reads as one with neither). A build that reads
/// only version 1 refuses a version-2 state rather than drop its secrets.
pub(crate) const STATE_FORMAT: u32 = 2;

/// The oldest state version this build reads.
pub(crate) const OLDEST_STATE_FORMAT: u32 = 1;

/// Everything a vault knows except its audit log entries. Holds no plaintext
/// secret: key material is sealed (software backends) or a token handle
/// (PKCS#11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    /// [`STATE_FORMAT`].
    pub format: u32,
    pub properties: VaultProperties,
    /// Active keys by name.
    pub keys: Tracked<KeyRecord>,
    /// Soft-deleted keys by name.
    pub deleted: Tracked<DeletedRecord>,
    /// Purged keys by name, with the time they were purged, so that the
    /// API can say plainly that a key is gone for good (R15).
    pub purged: Tracked<UnixTime>,
    /// Access policies by principal id.
    pub access: Tracked<Permissions>,
    /// Active secrets by name. This and the other secret maps are left out
    /// of the serialization while empty, so that a vault without secrets
    /// serializes (and MACs) as it did before secrets existed.
    #[serde(default, skip_serializing_if = "Tracked::is_empty_map")]
    pub secrets: Tracked<SecretRecord>,
    /// Soft-deleted secrets by name.
    #[serde(default, skip_serializing_if = "Tracked::is_empty_map")]
    pub deleted_secrets: Tracked<DeletedSecretRecord>,
    /// Purged secrets by name, with the time they were purged.
    #[serde(default, skip_serializing_if = "Tracked::is_empty_map")]
    pub purged_secrets: Tracked<UnixTime>,
    /// The owner key that key and secret backups are encrypted under,
    /// sealed as a secret is; made on first use unless the owner set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerRecord>,
    /// The last audit entry written; the log must reach it.
    pub audit_head: AuditHead,
    /// What the live audit log segment's first entry follows: the genesis
    /// head until the log is first rotated, then the last entry of the
    /// segment archived before it. Left out of the serialization while it
    /// is the genesis head, so a state never rotated reads and MACs as
    /// before it existed.
    #[serde(
        default = "AuditHead::genesis",
        skip_serializing_if = "AuditHead::is_genesis"
    )]
    pub audit_start: AuditHead,
    /// Audit entries made by the current transaction, not yet in the log.
    /// Never serialized: the store appends them to the log.
    #[serde(skip)]
    pub pending_audit: Vec<AuditEntry>,
    /// When the next soft-deleted key is due for purging, derived from
    /// `deleted` and cached; never serialized.
    #[serde(skip)]
    pub purge_memo: PurgeMemo,
    /// The same for the soft-deleted secrets.
    #[serde(skip)]
    pub secret_purge_memo: PurgeMemo,
}

/// The earliest scheduled purge among the soft-deleted keys, as of a
/// change count of the `deleted` map: so a call finds whether a purge is
/// due without walking the deleted keys, which it does again only after
/// they changed.
#[derive(Debug, Clone, Default)]
pub(crate) struct PurgeMemo {
    /// `(deleted.changes(), earliest scheduled purge)` when last derived.
    known: Option<(u64, Option<UnixTime>)>,
}

impl PurgeMemo {
    /// The earliest scheduled purge in `deleted`.
    pub(crate) fn earliest<R: Scheduled + Clone + PartialEq + Serialize>(
        &mut self,
        deleted: &Tracked<R>,
    ) -> Option<UnixTime> {
        match self.known {
            Some((changes, earliest)) if changes == deleted.changes() => earliest,
            _ => {
                let earliest = deleted.values().map(Scheduled::scheduled_purge).min();
                self.known = Some((deleted.changes(), earliest));
                earliest
            }
        }
    }
}

/// A soft-deleted record, with the time it is due to be purged.
pub(crate) trait Scheduled {
    /// When the vault purges it by itself.
    fn scheduled_purge(&self) -> UnixTime;
}

impl Scheduled for DeletedRecord {
    fn scheduled_purge(&self) -> UnixTime {
        self.scheduled_purge
    }
}

impl Scheduled for DeletedSecretRecord {
    fn scheduled_purge(&self) -> UnixTime {
        self.scheduled_purge
    }
}

/// A cache: states equal whatever it holds.
impl PartialEq for PurgeMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for PurgeMemo {}

impl State {
    /// The state of a new, empty vault.
    pub(crate) fn new(properties: VaultProperties) -> Self {
        Self {
            format: STATE_FORMAT,
            properties,
            keys: Tracked::default(),
            deleted: Tracked::default(),
            purged: Tracked::default(),
            access: Tracked::default(),
            secrets: Tracked::default(),
            deleted_secrets: Tracked::default(),
            purged_secrets: Tracked::default(),
            owner: None,
            audit_head: AuditHead::genesis(),
            audit_start: AuditHead::genesis(),
            pending_audit: Vec::new(),
            purge_memo: PurgeMemo::default(),
            secret_purge_memo: PurgeMemo::default(),
        }
    }
}

/// A map of the state that records, during a transaction, the value each
/// entry had before the transaction first changed it. So a transaction runs
/// on the state in place (no copy of the whole vault), is undone entry by
/// entry when it fails, and yields what it changed (a [`Delta`]) for the
/// store to write: a call's cost follows what it touches, not the vault's
/// size. Reads go through `Deref` to the map.
///
/// Two things are kept beside the map so that no call has to walk it: an
/// index of the keys folded to lowercase (names compare case-insensitively,
/// as in Azure Key Vault), and the size of the map's JSON serialization
/// (the state's size limit), brought up to date entry by entry.
#[derive(Debug, Clone)]
pub(crate) struct Tracked<V> {
    map: BTreeMap<String, V>,
    /// Before-values of the entries changed since [`Tracked::begin`].
    undo: BTreeMap<String, Option<V>>,
    /// Each key folded to ASCII lowercase, to the key as stored.
    folded: BTreeMap<String, String>,
    /// The serialized size of the entries as they were before the ones in
    /// `undo` changed (see [`Tracked::entry_bytes`]).
    bytes: usize,
    /// Counts the changes to the map: lets the state cache what it derives
    /// from one (the next purge time) and know when to derive it again.
    changes: u64,
}

impl<V> Default for Tracked<V> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            undo: BTreeMap::new(),
            folded: BTreeMap::new(),
            bytes: 0,
            changes: 0,
        }
    }
}

impl<V: PartialEq> PartialEq for Tracked<V> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<V: Eq> Eq for Tracked<V> {}

impl<V> Tracked<V> {
    /// Whether the map is empty (for `skip_serializing_if`).
    pub(crate) fn is_empty_map(&self) -> bool {
        self.map.is_empty()
    }
}

impl<V> Deref for Tracked<V> {
    type Target = BTreeMap<String, V>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<V: Serialize> Serialize for Tracked<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(s)
    }
}

impl<'de, V: Deserialize<'de> + Serialize> Deserialize<'de> for Tracked<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map: BTreeMap<String, V> = BTreeMap::deserialize(d)?;
        let folded = map
            .keys()
            .map(|k| (k.to_ascii_lowercase(), k.clone()))
            .collect();
        let bytes = map.iter().map(|(k, v)| entry_bytes(k, v)).sum();
        Ok(Self {
            map,
            undo: BTreeMap::new(),
            folded,
            bytes,
            changes: 0,
        })
    }
}

/// Counts the bytes written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length of `value` serialized as compact JSON (0 for a value that
/// does not serialize, which the store then refuses anyway).
pub(crate) fn json_len<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut count = ByteCount(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => 0,
    }
}

/// What one entry adds to its map's JSON: `"key":value` and a comma.
fn entry_bytes<V: Serialize>(key: &str, value: &V) -> usize {
    json_len(key) + 1 + json_len(value) + 1
}

/// What one transaction changed in one map: each key's new value (`None`:
/// removed).
pub(crate) type Changes<V> = BTreeMap<String, Option<V>>;

impl<V: Clone + PartialEq + Serialize> Tracked<V> {
    fn touch(&mut self, key: &str) {
        self.changes += 1;
        if !self.undo.contains_key(key) {
            self.undo.insert(key.to_owned(), self.map.get(key).cloned());
        }
    }

    /// Keeps the lowercase index right for `key` after its entry changed.
    fn refold(&mut self, key: &str) {
        let folded = key.to_ascii_lowercase();
        if self.map.contains_key(key) {
            self.folded.insert(folded, key.to_owned());
        } else if self.folded.get(&folded).is_some_and(|k| k == key) {
            self.folded.remove(&folded);
        }
    }

    /// The key as stored that equals `key` but for ASCII case.
    pub(crate) fn find_ignore_case(&self, key: &str) -> Option<&String> {
        self.folded.get(&key.to_ascii_lowercase())
    }

    /// The value at `key`, to change.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.touch(key);
        self.map.get_mut(key)
    }

    /// Sets `key`.
    pub(crate) fn insert(&mut self, key: String, value: V) -> Option<V> {
        self.touch(&key);
        let old = self.map.insert(key.clone(), value);
        self.refold(&key);
        old
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: &str) -> Option<V> {
        self.touch(key);
        let old = self.map.remove(key);
        self.refold(key);
        old
    }

    /// How many changes the map has had (any change counts, undone or not).
    pub(crate) fn changes(&self) -> u64 {
        self.changes
    }

    /// The size of the map serialized as JSON, as it is now: the settled
    /// size, corrected for the entries changed since [`begin`](Self::begin).
    /// Costs what those entries take to serialize, whatever the map's size.
    pub(crate) fn json_bytes(&self) -> usize {
        let mut bytes = self.bytes;
        for (key, old) in &self.undo {
            if let Some(old) = old {
                bytes = bytes.saturating_sub(entry_bytes(key, old));
            }
            if let Some(new) = self.map.get(key) {
                bytes += entry_bytes(key, new);
            }
        }
        // The braces, less the last entry's comma.
        2 + bytes - usize::from(!self.map.is_empty())
    }

    /// Takes the entries changed since the last settle into `bytes`; the
    /// before-values are dropped.
    fn settle(&mut self) -> BTreeMap<String, Option<V>> {
        let undo = core::mem::take(&mut self.undo);
        for (key, old) in &undo {
            if let Some(old) = old {
                self.bytes = self.bytes.saturating_sub(entry_bytes(key, old));
            }
            if let Some(new) = self.map.get(key) {
                self.bytes += entry_bytes(key, new);
            }
        }
        undo
    }

    fn begin(&mut self) {
        // Changes made outside a transaction (a new state being filled)
        // are kept.
        self.settle();
    }

    /// Puts back every entry changed since [`begin`](Self::begin).
    fn rollback(&mut self) {
        self.changes += 1;
        for (key, old) in core::mem::take(&mut self.undo) {
            match old {
                Some(value) => self.map.insert(key.clone(), value),
                None => self.map.remove(&key),
            };
            self.refold(&key);
        }
    }

    /// What changed since [`begin`](Self::begin) (entries set back to
    /// their old value are left out).
    fn take_changes(&mut self) -> Changes<V> {
        let mut changes = BTreeMap::new();
        for (key, old) in self.settle() {
            let new = self.map.get(&key).cloned();
            if new != old {
                changes.insert(key, new);
            }
        }
        changes
    }

    /// Applies changes read back from the store.
    fn apply(&mut self, changes: Changes<V>) {
        self.settle();
        self.changes += 1;
        for (key, new) in changes {
            if let Some(old) = self.map.get(&key) {
                self.bytes = self.bytes.saturating_sub(entry_bytes(&key, old));
            }
            match new {
                Some(value) => {
                    self.bytes += entry_bytes(&key, &value);
                    self.map.insert(key.clone(), value);
                }
                None => {
                    self.map.remove(&key);
                }
            }
            self.refold(&key);
        }
    }
}

/// What one committed transaction changed in the state: what the file
/// vault's op log records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<VaultProperties>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: Changes<KeyRecord>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deleted: Changes<DeletedRecord>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub purged: Changes<UnixTime>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub access: Changes<Permissions>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: Changes<SecretRecord>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deleted_secrets: Changes<DeletedSecretRecord>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub purged_secrets: Changes<UnixTime>,
    /// The owner key, when it was set or made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerRecord>,
    /// A rotation of the audit log: where the new live segment starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_start: Option<AuditHead>,
}

impl Delta {
    /// Whether nothing changed.
    pub(crate) fn is_empty(&self) -> bool {
        self.properties.is_none()
            && self.keys.is_empty()
            && self.deleted.is_empty()
            && self.purged.is_empty()
            && self.access.is_empty()
            && self.secrets.is_empty()
            && self.deleted_secrets.is_empty()
            && self.purged_secrets.is_empty()
            && self.owner.is_none()
            && self.audit_start.is_none()
    }
}

impl State {
    /// Undoes the changes of a transaction that did not finish (a panic in
    /// another thread); the properties are one assignment, never half made.
    pub(crate) fn abort(&mut self) {
        self.keys.rollback();
        self.deleted.rollback();
        self.purged.rollback();
        self.access.rollback();
        self.secrets.rollback();
        self.deleted_secrets.rollback();
        self.purged_secrets.rollback();
        self.pending_audit.clear();
    }

    /// Applies a committed transaction's changes (read back from a log).
    pub(crate) fn apply(&mut self, delta: Delta) {
        if let Some(properties) = delta.properties {
            self.properties = properties;
        }
        self.keys.apply(delta.keys);
        self.deleted.apply(delta.deleted);
        self.purged.apply(delta.purged);
        self.access.apply(delta.access);
        self.secrets.apply(delta.secrets);
        self.deleted_secrets.apply(delta.deleted_secrets);
        self.purged_secrets.apply(delta.purged_secrets);
        if delta.owner.is_some() {
            self.owner = delta.owner;
        }
        if let Some(start) = delta.audit_start {
            self.audit_start = start;
        }
    }
}

/// A key: its type and its versions, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    pub name: String,
    pub key_type: KeyType,
    pub versions: Vec<VersionRecord>,
}

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    /// 32 lowercase hex digits, random (as Azure Key Vault's versions).
    pub version: String,
    pub attributes: KeyAttributes,
    pub material: Material,
}

/// A soft-deleted key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeletedRecord {
    pub key: KeyRecord,
    pub deleted: UnixTime,
    pub scheduled_purge: UnixTime,
}

/// A secret: its versions, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SecretRecord {
    pub name: String,
    pub versions: Vec<SecretVersionRecord>,
}

/// One version of a secret: its value is sealed in `material` (software:
/// `handle`; PKCS#11: a data object named by `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SecretVersionRecord {
    pub version: String,
    pub attributes: SecretAttributes,
    pub material: Material,
}

/// A soft-deleted secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeletedSecretRecord {
    pub secret: SecretRecord,
    pub deleted: UnixTime,
    pub scheduled_purge: UnixTime,
}

/// The vault's owner key, sealed as a secret value is, and its public id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OwnerRecord {
    /// [`OwnerKey::id`](crate::OwnerKey::id).
    pub id: String,
    pub material: Material,
}

/// A key version's material as the backend keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Material {
    /// Random, unique per version; software backends bind their sealing to
    /// it, the PKCS#11 backend uses it as the objects' `CKA_ID`.
    #[serde(with = "hex_bytes")]
    pub id: Vec<u8>,
    /// The public part of an RSA key.
    pub public: Option<RsaPublicParts>,
    /// Backend-defined: the sealed private or secret key (software), or
    /// nothing beyond the id (PKCS#11).
    #[serde(with = "hex_bytes")]
    pub handle: Vec<u8>,
}

/// The length of [`Material::id`].
pub(crate) const MATERIAL_ID_LEN: usize = 16;

/// `len` bytes from the OS generator (material ids, versions, vault ids).
pub(crate) fn random_bytes(len: usize) -> Result<Vec<u8>, VaultError> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|_| VaultError::RandomnessUnavailable)?;
    Ok(bytes)
}

/// A private or secret key brought into the vault (BYOK), parsed.
pub(crate) enum ImportedKey {
    /// An RSA private key of an accepted size.
    Rsa(Box<rsa::PrivateKey>),
    /// An AES-256 key.
    Aes256(strongroom_aes::Aes256Key),
}

/// Where the state lives. Implementations: memory, a directory.
pub(crate) trait StateStore: Send + Sync {
    /// Runs `f` on the current state with exclusive access: no other
    /// transaction of this process or any other runs meanwhile. Use
    /// [`run_transaction`] for the semantics: if `f` fails, its changes are
    /// dropped except the audit entries it made; the audit entries are
    /// appended to the log before the new state is made durable.
    ///
    /// # Errors
    /// `f`'s error, or the store's own (I/O, corrupt files).
    fn transact(
        &self,
        f: &mut dyn FnMut(&mut State) -> Result<(), VaultError>,
    ) -> Result<(), VaultError>;

    /// Every audit entry, oldest first, where the log starts and the head
    /// the state records.
    ///
    /// # Errors
    /// The store's own (I/O, corrupt files).
    fn audit_log(&self) -> Result<AuditLog, VaultError>;

    /// The key the audit entries are MACed under.
    fn audit_key(&self) -> &dyn StateMacKey;

    /// Folds whatever log of changes the store keeps into one snapshot.
    ///
    /// # Errors
    /// The store's own (I/O, corrupt files).
    fn compact(&self) -> Result<(), VaultError> {
        Ok(())
    }

    /// Closes the live audit log segment and starts a new one, whose first
    /// entry is the one `record` makes from the closed segment's start and
    /// end. `None` when the live segment is empty.
    ///
    /// # Errors
    /// [`VaultError::InvalidArgument`] for a store that keeps no log on
    /// disk; the store's own; [`VaultError::AuditTampered`] when the live
    /// segment does not verify.
    fn rotate_audit(
        &self,
        record: &mut dyn FnMut(&AuditHead, &AuditHead) -> crate::audit::AuditRecord,
    ) -> Result<Option<crate::AuditSegment>, VaultError> {
        let _ = record;
        Err(VaultError::InvalidArgument {
            reason: "this vault keeps its audit log in memory: there is no segment to rotate"
                .into(),
        })
    }
}

/// An audit log as a store holds it.
pub(crate) struct AuditLog {
    /// The entries, oldest first.
    pub entries: Vec<AuditEntry>,
    /// What the first entry follows: the genesis head, or the checkpoint
    /// an archived prefix left.
    pub start: AuditHead,
    /// The newest entry the state records.
    pub head: AuditHead,
}

/// The key that authenticates a vault's records (its state, op log,
/// witness and audit entries): HMAC-SHA256 over messages that each begin
/// with their own length-prefixed label, so that one key serves them all
/// without one kind of message passing for another.
/// [`FileKeyVault`](crate::FileKeyVault) holds it in memory
/// ([`LocalMacKey`], derived from its root key), the memory vault makes a
/// random one, and the PKCS#11 vault keeps it in its token and has the
/// token compute the MAC, so the key never leaves the token.
pub(crate) trait StateMacKey: Send + Sync {
    /// HMAC-SHA256 of `message` under the key.
    ///
    /// # Errors
    /// When the key cannot be used (a token error, a missing key object).
    fn hmac_sha256(&self, message: &[u8]) -> Result<[u8; 32], VaultError>;
}

/// A MAC key in memory.
pub(crate) struct LocalMacKey(pub(crate) Zeroizing<[u8; 32]>);

impl StateMacKey for LocalMacKey {
    fn hmac_sha256(&self, message: &[u8]) -> Result<[u8; 32], VaultError> {
        // safe: HMAC takes keys of any length.
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_slice()).expect("HMAC key");
        mac.update(message);
        Ok(mac.finalize().into_bytes().into())
    }
}

/// What a transaction leaves behind: what it changed, the sealed audit
/// entries to append, and `f`'s result. The state itself was changed in
/// place.
pub(crate) struct Outcome {
    pub delta: Delta,
    pub audit: Vec<AuditEntry>,
    pub result: Result<(), VaultError>,
}

impl Outcome {
    /// Whether the state changed.
    pub(crate) fn changed(&self) -> bool {
        !self.delta.is_empty()
    }
}

/// The transaction semantics every store shares. `f` works on `state` in
/// place; on error its changes are undone, and only its audit entries and
/// the audit head survive. The audit entries are sealed under `key`,
/// chained from the state's audit head, and carry the generation the state
/// has once the transaction committed (`generation`, the one read, plus one
/// if the state changed). The work is proportional to what `f` touches.
///
/// # Errors
/// The key's (a token error), after which the caller must drop `state`
/// (it may hold `f`'s changes); `f`'s error is in [`Outcome::result`].
pub(crate) fn run_transaction(
    state: &mut State,
    generation: u64,
    key: &dyn StateMacKey,
    f: &mut dyn FnMut(&mut State) -> Result<(), VaultError>,
) -> Result<Outcome, VaultError> {
    let head = state.audit_head.clone();
    let properties = state.properties.clone();
    let owner = state.owner.clone();
    state.keys.begin();
    state.deleted.begin();
    state.purged.begin();
    state.access.begin();
    state.secrets.begin();
    state.deleted_secrets.begin();
    state.purged_secrets.begin();
    state.pending_audit.clear();
    let result = f(state);
    let mut audit = core::mem::take(&mut state.pending_audit);
    let delta = if result.is_ok() {
        let changed_properties = state.properties != properties;
        Delta {
            properties: changed_properties.then(|| state.properties.clone()),
            keys: state.keys.take_changes(),
            deleted: state.deleted.take_changes(),
            purged: state.purged.take_changes(),
            access: state.access.take_changes(),
            secrets: state.secrets.take_changes(),
            deleted_secrets: state.deleted_secrets.take_changes(),
            purged_secrets: state.purged_secrets.take_changes(),
            owner: (state.owner != owner)
                .then(|| state.owner.clone())
                .flatten(),
            audit_start: None,
        }
    } else {
        state.properties = properties;
        state.owner = owner;
        state.keys.rollback();
        state.deleted.rollback();
        state.purged.rollback();
        state.access.rollback();
        state.secrets.rollback();
        state.deleted_secrets.rollback();
        state.purged_secrets.rollback();
        Delta::default()
    };
    state.audit_head = crate::audit::seal(
        &mut audit,
        &head,
        generation + u64::from(!delta.is_empty()),
        key,
    )?;
    Ok(Outcome {
        delta,
        audit,
        result,
    })
}

/// Where key material lives and is used. Implementations: software (keys
/// sealed under a root key) and PKCS#11 (keys inside the token).
pub(crate) trait KeyCrypto: Send + Sync {
    /// A short name for errors (`"software"`, `"SoftHSM2"`, ...).
    fn backend_name(&self) -> &'static str;

    /// Makes a new key of `key_type`.
    ///
    /// # Errors
    /// Randomness or token failures.
    fn generate(&self, key_type: KeyType) -> Result<Material, VaultError>;

    /// Takes in an imported key.
    ///
    /// # Errors
    /// Token failures.
    fn import(&self, key: ImportedKey) -> Result<Material, VaultError>;

    /// Wraps `dek` (32 bytes) under the key. The caller has checked that
    /// `algorithm` fits `key_type`.
    ///
    /// # Errors
    /// [`VaultError::AlgorithmUnsupported`], token failures.
    fn wrap(
        &self,
        material: &Material,
        key_type: KeyType,
        algorithm: WrapAlgorithm,
        dek: &[u8],
    ) -> Result<Vec<u8>, VaultError>;

    /// Unwraps a DEK. Every failure to unwrap is
    /// [`VaultError::DecryptionFailed`].
    ///
    /// # Errors
    /// [`VaultError::DecryptionFailed`], [`VaultError::AlgorithmUnsupported`],
    /// token failures.
    fn unwrap(
        &self,
        material: &Material,
        key_type: KeyType,
        algorithm: WrapAlgorithm,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError>;

    /// Called inside the transaction that records `material` in the
    /// state (under the store's lock), before it commits: material made
    /// outside the lock becomes the vault's (PKCS#11 relabels its objects
    /// so that an open sweeping orphans may destroy them if the commit
    /// never happens). Nothing by default.
    ///
    /// # Errors
    /// Token failures.
    fn adopt(&self, _material: &Material) -> Result<(), VaultError> {
        Ok(())
    }

    /// Destroys the key material for good (purge).
    ///
    /// # Errors
    /// Token failures.
    fn destroy(&self, material: &Material) -> Result<(), VaultError>;

    /// Seals a secret value (a secret version's, or the owner key): the
    /// software backend encrypts it under the root key into
    /// [`Material::handle`], the PKCS#11 backend keeps it in a private data
    /// object of the token. Called inside the transaction that records it.
    ///
    /// # Errors
    /// Randomness or token failures.
    fn seal_secret(&self, value: &[u8]) -> Result<Material, VaultError>;

    /// The value [`seal_secret`](Self::seal_secret) sealed.
    ///
    /// # Errors
    /// [`VaultError::KeyMaterialCorrupt`] / [`VaultError::KeyMaterialMissing`]
    /// (the vault names the secret), token failures.
    fn open_secret(&self, material: &Material) -> Result<Zeroizing<Vec<u8>>, VaultError>;

    /// Destroys a sealed secret value for good (purge; a version that was
    /// sealed but never committed).
    ///
    /// # Errors
    /// Token failures.
    fn destroy_secret(&self, material: &Material) -> Result<(), VaultError>;

    /// The key material in the clear, for a key backup: the PKCS#8 DER
    /// `PrivateKeyInfo` of an RSA key, the 32 bytes of an AES key.
    ///
    /// # Errors
    /// [`VaultError::NotExportable`] (the vault names the key) where the
    /// material cannot leave the backend; material errors.
    fn export(
        &self,
        material: &Material,
        key_type: KeyType,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError>;
}

/// Serde helper: bytes as lowercase hex strings.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <&str>::deserialize(d)?;
        super::unhex(text)
            .ok_or_else(|| D::Error::custom("not an even-length lowercase hex string"))
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Parses lowercase hex.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::limits::state_json_bytes;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, u64),
        Remove(String),
        Change(String, u64),
        Commit,
        Rollback,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few names, in mixed case and with characters JSON escapes, so
        // that entries are replaced, removed and folded onto each other.
        let name = prop::sample::select(vec!["a", "A", "b-1", "B-1", "q\"\\", "é", "Ω\u{1}"])
            .prop_map(str::to_owned);
        prop_oneof![
            (name.clone(), any::<u64>()).prop_map(|(n, v)| Op::Insert(n, v)),
            name.clone().prop_map(Op::Remove),
            (name, any::<u64>()).prop_map(|(n, v)| Op::Change(n, v)),
            Just(Op::Commit),
            Just(Op::Rollback),
        ]
    }

    fn check(state: &State) {
        assert_eq!(
            state_json_bytes(state),
            serde_json::to_vec(state).unwrap().len(),
            "the tracked size is the serialized size"
        );
        for name in ["a", "A", "b-1", "B-1", "q\"\\", "é", "Ω\u{1}", "x"] {
            let scanned = state.purged.keys().find(|k| k.eq_ignore_ascii_case(name));
            assert_eq!(state.purged.find_ignore_case(name), scanned, "{name}");
        }
    }

    proptest! {
        /// The size each map keeps, and its lowercase index, stay what a
        /// full serialization and a scan give, through transactions that
        /// commit or roll back, and in a copy brought up to date by
        /// applying the committed changes (as the op log is replayed).
        #[test]
        fn tracked_size_and_index_follow_the_map(ops in prop::collection::vec(op(), 0..60)) {
            let mut state = State::new(VaultProperties::new("kv"));
            let mut replica = state.clone();
            state.purged.begin();
            for op in ops {
                match op {
                    Op::Insert(name, v) => {
                        // Names are unique but for case, as the vault keeps them.
                        let name = state.purged.find_ignore_case(&name).cloned().unwrap_or(name);
                        state.purged.insert(name, v);
                    }
                    Op::Remove(name) => {
                        state.purged.remove(&name);
                    }
                    Op::Change(name, v) => {
                        if let Some(value) = state.purged.get_mut(&name) {
                            *value = v;
                        }
                    }
                    Op::Commit => {
                        let changes = state.purged.take_changes();
                        replica.apply(Delta { purged: changes, ..Delta::default() });
                        state.purged.begin();
                        check(&replica);
                        prop_assert_eq!(&replica, &state);
                    }
                    Op::Rollback => {
                        state.purged.rollback();
                        state.purged.begin();
                    }
                }
                check(&state);
            }
            // Read back, the map gives the same size and index.
            let copy: State = serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap();
            check(&copy);
        }
    }

    #[test]
    fn the_tracked_size_counts_secrets_and_the_owner() {
        let mut state = State::new(VaultProperties::new("kv"));
        check(&state);
        let material = Material {
            id: vec![1; MATERIAL_ID_LEN],
            public: None,
            handle: vec![2; 60],
        };
        let attributes = SecretAttributes {
            enabled: true,
            not_before: None,
            expires: Some(9),
            content_type: Some("BEK \"quoted\"".into()),
            tags: BTreeMap::from([("t".into(), "v".into())]),
            created: 1,
            updated: 2,
        };
        let record = SecretRecord {
            name: "s".into(),
            versions: vec![SecretVersionRecord {
                version: "0".repeat(32),
                attributes,
                material: material.clone(),
            }],
        };
        state.secrets.insert("s".into(), record.clone());
        check(&state);
        state.deleted_secrets.insert(
            "d".into(),
            DeletedSecretRecord {
                secret: record,
                deleted: 3,
                scheduled_purge: 4,
            },
        );
        state.purged_secrets.insert("p".into(), 5);
        state.owner = Some(OwnerRecord {
            id: "ab".repeat(16),
            material,
        });
        check(&state);
        let copy: State = serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(copy, state);
        check(&copy);
    }

    #[test]
    fn the_next_purge_is_derived_again_after_a_change() {
        let mut state = State::new(VaultProperties::new("kv"));
        assert_eq!(state.purge_memo.earliest(&state.deleted), None);
        let record = |at| DeletedRecord {
            key: KeyRecord {
                name: "k".into(),
                key_type: KeyType::Aes256,
                versions: Vec::new(),
            },
            deleted: 0,
            scheduled_purge: at,
        };
        state.deleted.insert("k".into(), record(50));
        assert_eq!(state.purge_memo.earliest(&state.deleted), Some(50));
        state.deleted.insert("j".into(), record(20));
        assert_eq!(state.purge_memo.earliest(&state.deleted), Some(20));
        state.deleted.rollback();
        assert_eq!(state.purge_memo.earliest(&state.deleted), None);
        state.apply(Delta {
            deleted: BTreeMap::from([("k".to_owned(), Some(record(70)))]),
            ..Delta::default()
        });
        assert_eq!(state.purge_memo.earliest(&state.deleted), Some(70));
    }
}
