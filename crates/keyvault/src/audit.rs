//! The tamper-evident audit log: every operation, allowed or denied, as a
//! SHA-256 hash chain.
//!
//! Entry `n` carries the hash of entry `n - 1`; its own hash covers its
//! sequence number, time, principal, operation, key, version, outcome and
//! that previous hash. Editing, removing or reordering any entry breaks the
//! chain at that point; cutting entries off the end is caught because the
//! vault's state records the newest entry (the [`AuditHead`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::UnixTime;
use crate::state::hex_bytes;

/// The newest audit entry's sequence number and hash (sequence 0 and 32
/// zero bytes before the first entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Sequence number of the newest entry (entries count from 1).
    pub seq: u64,
    /// Its hash.
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
}

impl AuditHead {
    /// The head of an empty log.
    #[must_use]
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: vec![0; 32],
        }
    }
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
pub struct AuditEntry {
    /// 1, 2, 3, ... with no gap.
    pub seq: u64,
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
    /// The previous entry's hash.
    #[serde(with = "hex_bytes")]
    pub prev: Vec<u8>,
    /// This entry's hash.
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
}

/// The fields of an entry that the vault fills in; [`AuditEntry::chain`]
/// adds the sequence number and hashes.
#[derive(Debug, Clone)]
pub(crate) struct AuditRecord {
    pub time: UnixTime,
    pub principal: String,
    pub operation: String,
    pub key: Option<String>,
    pub version: Option<String>,
    pub outcome: AuditOutcome,
}

impl AuditEntry {
    /// The entry following `head`, and the new head.
    pub(crate) fn chain(head: &AuditHead, record: AuditRecord) -> (Self, AuditHead) {
        let mut entry = Self {
            seq: head.seq + 1,
            time: record.time,
            principal: record.principal,
            operation: record.operation,
            key: record.key,
            version: record.version,
            outcome: record.outcome,
            prev: head.hash.clone(),
            hash: Vec::new(),
        };
        entry.hash = entry.compute_hash();
        let next = AuditHead {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
        (entry, next)
    }

    /// SHA-256 over a domain label and every field, each length-prefixed
    /// so that no two different entries hash the same input.
    fn compute_hash(&self) -> Vec<u8> {
        fn field(h: &mut Sha256, bytes: &[u8]) {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
        fn optional(h: &mut Sha256, value: Option<&String>) {
            match value {
                None => h.update([0]),
                Some(v) => {
                    h.update([1]);
                    field(h, v.as_bytes());
                }
            }
        }
        let mut h = Sha256::new();
        field(&mut h, b"strongroom audit entry v1");
        h.update(self.seq.to_be_bytes());
        h.update(self.time.to_be_bytes());
        field(&mut h, self.principal.as_bytes());
        field(&mut h, self.operation.as_bytes());
        optional(&mut h, self.key.as_ref());
        optional(&mut h, self.version.as_ref());
        match &self.outcome {
            AuditOutcome::Allowed => h.update([0]),
            AuditOutcome::Denied(why) => {
                h.update([1]);
                field(&mut h, why.as_bytes());
            }
            AuditOutcome::Failed(why) => {
                h.update([2]);
                field(&mut h, why.as_bytes());
            }
        }
        field(&mut h, &self.prev);
        h.finalize().to_vec()
    }
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

/// Checks a whole log against the head the vault recorded: every entry's
/// hash, the links between entries, the sequence numbers, and that the log
/// reaches the head.
///
/// # Errors
/// [`AuditError`] at the first entry that was edited, removed, inserted or
/// reordered, or when entries are missing at the end.
pub fn verify_chain(entries: &[AuditEntry], head: &AuditHead) -> Result<(), AuditError> {
    let mut prev = AuditHead::genesis();
    for (index, entry) in entries.iter().enumerate() {
        if entry.seq != prev.seq + 1 {
            return Err(AuditError {
                index,
                reason: "sequence number out of order (an entry was removed, inserted or moved)",
            });
        }
        if entry.prev != prev.hash {
            return Err(AuditError {
                index,
                reason: "does not link to the entry before it",
            });
        }
        if entry.compute_hash() != entry.hash {
            return Err(AuditError {
                index,
                reason: "its contents do not match its hash (edited)",
            });
        }
        prev = AuditHead {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
    }
    // A crash between appending entries and recording the new head leaves
    // the log ahead of the head; a log behind the head lost entries.
    match entries.get(head.seq.wrapping_sub(1) as usize) {
        _ if head.seq == 0 => Ok(()),
        Some(at_head) if at_head.hash == head.hash => Ok(()),
        Some(_) => Err(AuditError {
            index: (head.seq - 1) as usize,
            reason: "does not match the newest entry the vault recorded",
        }),
        None => Err(AuditError {
            index: entries.len(),
            reason: "entries are missing at the end of the log",
        }),
    }
}
