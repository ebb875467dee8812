//! The tamper-evident audit log: every operation, allowed or denied, as an
//! HMAC-SHA256 chain under a key only the vault holds.
//!
//! Entry `n` carries the MAC of entry `n - 1`; its own MAC covers its
//! sequence number, the state generation it was made at, time, principal,
//! operation, key, version, outcome and that previous MAC. The MAC key comes
//! from the vault's root key (file vault), is random per vault (memory
//! vault), or stays inside the token (PKCS#11 vault): so whoever can write
//! the log but lacks that key cannot append, insert, edit, remove or reorder
//! an entry without verification finding it. Cutting entries off the end is
//! caught because the vault's state records the newest entry it committed
//! (the [`AuditHead`]), and, across a rollback of every file at once, by
//! a witness kept outside the vault (see `FileKeyVault`).

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::state::{StateMacKey, hex_bytes};
use crate::{UnixTime, VaultError};

/// The newest audit entry's sequence number and MAC (sequence 0 and 32
/// zero bytes before the first entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Sequence number of the newest entry (entries count from 1).
    pub seq: u64,
    /// Its MAC.
    #[serde(with = "hex_bytes")]
    pub mac: Vec<u8>,
}

impl AuditHead {
    /// The head of an empty log.
    #[must_use]
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            mac: vec![0; 32],
        }
    }

    /// Whether this is the head of an empty log.
    #[must_use]
    pub fn is_genesis(&self) -> bool {
        *self == Self::genesis()
    }
}

/// An audit log segment closed by a rotation
/// ([`FileKeyVault::rotate_audit_log`](crate::FileKeyVault::rotate_audit_log)):
/// a file of the vault's directory that no call writes any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSegment {
    /// Where it is (it may be moved elsewhere: verification takes paths).
    pub path: std::path::PathBuf,
    /// The sequence number of its first entry.
    pub first_seq: u64,
    /// The sequence number of its last entry.
    pub last_seq: u64,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditOutcome {
    /// It was allowed and succeeded.
    Allowed,
    /// The access policy refused it (the missing permission).
    Denied(String),
    /// It was allowed but failed (the error, never any secret).
    Failed(String),
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allowed => f.write_str("allowed"),
            Self::Denied(why) => write!(f, "denied: {why}"),
            Self::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// 1, 2, 3, ... with no gap.
    pub seq: u64,
    /// The vault state's generation once the call was done: one more than
    /// the generation it read when the call changed the state. Lets a vault
    /// see that its state is older than its audit log (a rollback).
    pub generation: u64,
    /// When (Unix seconds).
    pub time: UnixTime,
    /// Who called.
    pub principal: String,
    /// What was called (`create`, `wrapKey`, `setAccessPolicy`, ...).
    pub operation: String,
    /// The key concerned, if any.
    pub key: Option<String>,
    /// The key version concerned, if known.
    pub version: Option<String>,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// The previous entry's MAC.
    #[serde(with = "hex_bytes")]
    pub prev: Vec<u8>,
    /// This entry's MAC (HMAC-SHA256 under the vault's audit key).
    #[serde(with = "hex_bytes")]
    pub mac: Vec<u8>,
}

/// The fields of an entry that the vault fills in; [`AuditEntry::chain`]
/// adds the sequence number, and the store the generation and MACs.
#[derive(Debug, Clone)]
pub(crate) struct AuditRecord {
    pub time: UnixTime,
    pub principal: String,
    pub operation: String,
    pub key: Option<String>,
    pub version: Option<String>,
    pub outcome: AuditOutcome,
}

/// The label every audit MAC input starts with. The state and op-log MACs
/// use other labels under the same key, so no MAC input of one kind can be
/// read as one of another.
const AUDIT_LABEL: &[u8] = b"strongroom-keyvault audit entry v2";

impl AuditEntry {
    /// The entry following `head`, not sealed yet (no MAC): the store
    /// seals it with [`seal`] when it appends it.
    pub(crate) fn chain(head: &AuditHead, record: AuditRecord) -> (Self, AuditHead) {
        let entry = Self {
            seq: head.seq + 1,
            generation: 0,
            time: record.time,
            principal: record.principal,
            operation: record.operation,
            key: record.key,
            version: record.version,
            outcome: record.outcome,
            prev: head.mac.clone(),
            mac: Vec::new(),
        };
        let next = AuditHead {
            seq: entry.seq,
            mac: Vec::new(),
        };
        (entry, next)
    }

    /// The MAC input: a domain label and every field but the MAC, each
    /// length-prefixed so that no two different entries give one input.
    fn mac_input(&self) -> Vec<u8> {
        fn field(m: &mut Vec<u8>, bytes: &[u8]) {
            m.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            m.extend_from_slice(bytes);
        }
        fn optional(m: &mut Vec<u8>, value: Option<&String>) {
            match value {
                None => m.push(0),
                Some(v) => {
                    m.push(1);
                    field(m, v.as_bytes());
                }
            }
        }
        let mut m = Vec::with_capacity(256);
        field(&mut m, AUDIT_LABEL);
        m.extend_from_slice(&self.seq.to_be_bytes());
        m.extend_from_slice(&self.generation.to_be_bytes());
        m.extend_from_slice(&self.time.to_be_bytes());
        field(&mut m, self.principal.as_bytes());
        field(&mut m, self.operation.as_bytes());
        optional(&mut m, self.key.as_ref());
        optional(&mut m, self.version.as_ref());
        match &self.outcome {
            AuditOutcome::Allowed => m.push(0),
            AuditOutcome::Denied(why) => {
                m.push(1);
                field(&mut m, why.as_bytes());
            }
            AuditOutcome::Failed(why) => {
                m.push(2);
                field(&mut m, why.as_bytes());
            }
        }
        field(&mut m, &self.prev);
        m
    }

    /// Whether this entry's MAC is right under `key` (constant time).
    pub(crate) fn mac_verifies(&self, key: &dyn StateMacKey) -> Result<bool, VaultError> {
        let expected = key.hmac_sha256(&self.mac_input())?;
        Ok(bool::from(expected.as_slice().ct_eq(&self.mac)))
    }

    /// Whether this entry follows `head`, MAC included: what crash
    /// recovery checks before taking over an entry it finds past the head.
    pub(crate) fn follows(
        &self,
        head: &AuditHead,
        key: &dyn StateMacKey,
    ) -> Result<bool, VaultError> {
        Ok(self.seq == head.seq + 1
            && bool::from(self.prev.as_slice().ct_eq(&head.mac))
            && self.mac_verifies(key)?)
    }

    /// The head this entry makes.
    pub(crate) fn head(&self) -> AuditHead {
        AuditHead {
            seq: self.seq,
            mac: self.mac.clone(),
        }
    }
}

/// Seals the entries a transaction made: numbers them after `head`, links
/// them, records `generation` in each and MACs them under `key`. Returns
/// the new head.
///
/// # Errors
/// When the key cannot be used (a token error).
pub(crate) fn seal(
    entries: &mut [AuditEntry],
    head: &AuditHead,
    generation: u64,
    key: &dyn StateMacKey,
) -> Result<AuditHead, VaultError> {
    let mut head = head.clone();
    for entry in entries {
        entry.seq = head.seq + 1;
        entry.prev = head.mac;
        entry.generation = generation;
        entry.mac = key.hmac_sha256(&entry.mac_input())?.to_vec();
        head = entry.head();
    }
    Ok(head)
}

/// Where and why an audit log failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditError {
    /// The position (0-based) in the log of the first bad entry, or the
    /// log's length when entries are missing at the end.
    pub index: usize,
    /// What is wrong there.
    pub reason: &'static str,
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the audit log was tampered with at entry {}: {}",
            self.index, self.reason
        )
    }
}

impl std::error::Error for AuditError {}

/// Checks a log against the head the vault recorded: every entry's MAC under
/// `key`, the links between entries, the sequence numbers, and that the log
/// reaches the head. `start` is where the log begins: the genesis head, or
/// the checkpoint an archived prefix left.
///
/// # Errors
/// [`VaultError::AuditTampered`] at the first entry that was forged,
/// edited, removed, inserted or reordered, or when entries are missing at
/// the end; the key's own errors.
pub(crate) fn verify_chain(
    entries: &[AuditEntry],
    start: &AuditHead,
    head: &AuditHead,
    key: &dyn StateMacKey,
) -> Result<(), VaultError> {
    let tampered = |index, reason| Err(VaultError::AuditTampered(AuditError { index, reason }));
    let mut prev = start.clone();
    for (index, entry) in entries.iter().enumerate() {
        if entry.seq != prev.seq + 1 {
            return tampered(
                index,
                "sequence number out of order (an entry was removed, inserted or moved)",
            );
        }
        if !bool::from(entry.prev.as_slice().ct_eq(&prev.mac)) {
            return tampered(index, "does not link to the entry before it");
        }
        if !entry.mac_verifies(key)? {
            return tampered(
                index,
                "its MAC does not verify under the vault's key (forged or edited)",
            );
        }
        prev = entry.head();
    }
    // A crash between appending entries and recording the new head leaves
    // the log ahead of the head; a log behind the head lost entries.
    if head.seq <= start.seq {
        return if head.seq == start.seq && head.mac != start.mac {
            tampered(0, "does not start where the vault's records say")
        } else {
            Ok(())
        };
    }
    let at = (head.seq - start.seq - 1) as usize;
    match entries.get(at) {
        Some(at_head) if at_head.mac == head.mac => Ok(()),
        Some(_) => tampered(at, "does not match the newest entry the vault recorded"),
        None => tampered(entries.len(), "entries are missing at the end of the log"),
    }
}
