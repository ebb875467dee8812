//! What a vault stores, and the two seams every backend fills: where the
//! state lives ([`StateStore`]) and where key material lives and is used
//! ([`KeyCrypto`]).
//!
//! The vault logic (`vault.rs`) is written once over these seams, so access
//! checks, key states, versions and the audit log behave the same on every
//! backend.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strongroom_envelope::WrapAlgorithm;
use zeroize::Zeroizing;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::audit::{AuditEntry, AuditHead};
use crate::{
    KeyAttributes, KeyType, Permissions, RsaPublicParts, UnixTime, VaultError, VaultProperties,
};

/// The version of the state's serialized form.
pub(crate) const STATE_FORMAT: u32 = 1;

/// Everything a vault knows except its audit log entries. Holds no plaintext
/// secret: key material is sealed (software backends) or a token handle
/// (PKCS#11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    /// [`STATE_FORMAT`].
    pub format: u32,
    pub properties: VaultProperties,
    /// Active keys by name.
    pub keys: BTreeMap<String, KeyRecord>,
    /// Soft-deleted keys by name.
    pub deleted: BTreeMap<String, DeletedRecord>,
    /// Purged keys by name, with the time they were purged, so that the
    /// API can say plainly that a key is gone for good (R15).
    pub purged: BTreeMap<String, UnixTime>,
    /// Access policies by principal id.
    pub access: BTreeMap<String, Permissions>,
    /// The last audit entry written; the log must reach it.
    pub audit_head: AuditHead,
    /// Audit entries made by the current transaction, not yet in the log.
    /// Never serialized: the store appends them to the log.
    #[serde(skip)]
    pub pending_audit: Vec<AuditEntry>,
}

impl State {
    /// The state of a new, empty vault.
    pub(crate) fn new(properties: VaultProperties) -> Self {
        Self {
            format: STATE_FORMAT,
            properties,
            keys: BTreeMap::new(),
            deleted: BTreeMap::new(),
            purged: BTreeMap::new(),
            access: BTreeMap::new(),
            audit_head: AuditHead::genesis(),
            pending_audit: Vec::new(),
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

/// What a transaction leaves behind: the state to keep, whether it differs
/// from the one read, the sealed audit entries to append, and `f`'s result.
pub(crate) struct Outcome {
    pub state: State,
    pub changed: bool,
    pub audit: Vec<AuditEntry>,
    pub result: Result<(), VaultError>,
}

/// The transaction semantics every store shares. `f` works on a copy; on
/// error only its audit entries and the audit head survive. The audit
/// entries are sealed under `key`, chained from `current.audit_head`, and
/// carry the generation the state has once the transaction committed
/// (`generation`, the one read, plus one if the state changed).
///
/// # Errors
/// The key's (a token error); `f`'s error is in [`Outcome::result`].
pub(crate) fn run_transaction(
    current: &State,
    generation: u64,
    key: &dyn StateMacKey,
    f: &mut dyn FnMut(&mut State) -> Result<(), VaultError>,
) -> Result<Outcome, VaultError> {
    let mut work = current.clone();
    work.pending_audit.clear();
    let result = f(&mut work);
    let mut audit = core::mem::take(&mut work.pending_audit);
    let mut state = if result.is_ok() {
        work
    } else {
        let mut kept = current.clone();
        kept.pending_audit.clear();
        kept
    };
    state.audit_head = current.audit_head.clone();
    let changed = &state != current;
    state.audit_head = crate::audit::seal(
        &mut audit,
        &current.audit_head,
        generation + u64::from(changed),
        key,
    )?;
    Ok(Outcome {
        state,
        changed,
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

    /// Destroys the key material for good (purge).
    ///
    /// # Errors
    /// Token failures.
    fn destroy(&self, material: &Material) -> Result<(), VaultError>;
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
