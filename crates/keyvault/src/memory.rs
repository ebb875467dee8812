//! The in-memory vault: for tests and examples; everything is lost when it
//! is dropped.

use std::sync::{Arc, Mutex, MutexGuard};

use strongroom_aes::Aes256Key;

use zeroize::Zeroizing;

use crate::audit::{AuditEntry, AuditHead};
use crate::clock::{Clock, SystemClock};
use crate::software::SoftwareCrypto;
use crate::state::{AuditLog, LocalMacKey, State, StateMacKey, StateStore, run_transaction};
use crate::vault::{AsVault, Vault};
use crate::{VaultError, VaultProperties};

/// A state store in memory: the state and the audit log behind one mutex.
pub(crate) struct MemoryStore {
    inner: Mutex<Inner>,
    /// Random per vault: MACs the audit entries.
    audit_key: LocalMacKey,
}

struct Inner {
    state: State,
    /// One more for every transaction that changed the state.
    generation: u64,
    log: Vec<AuditEntry>,
}

impl MemoryStore {
    /// An empty vault with these properties.
    #[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
    pub(crate) fn new(properties: VaultProperties) -> Self {
        // safe: the OS generator fails only where no vault can work (the
        // PKCS#11 vault, the one caller, needs it for its session too).
        Self::try_new(properties).expect("the OS random generator")
    }

    /// An empty vault with these properties and a random audit key.
    pub(crate) fn try_new(properties: VaultProperties) -> Result<Self, VaultError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut_slice()).map_err(|_| VaultError::RandomnessUnavailable)?;
        Ok(Self {
            inner: Mutex::new(Inner {
                state: State::new(properties),
                generation: 0,
                log: Vec::new(),
            }),
            audit_key: LocalMacKey(key),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in another thread mid-transaction leaves its changes
        // half made (the state is changed in place): undone here.
        self.inner.lock().unwrap_or_else(|poisoned| {
            let mut inner = poisoned.into_inner();
            inner.state.abort();
            inner
        })
    }

    /// Lets a test edit the raw audit log, to show verification catches it.
    #[cfg(feature = "testing")]
    pub(crate) fn tamper_audit_log(&self, f: &mut dyn FnMut(&mut Vec<AuditEntry>)) {
        f(&mut self.lock().log);
    }
}

impl StateStore for MemoryStore {
    fn transact(
        &self,
        f: &mut dyn FnMut(&mut State) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let outcome = run_transaction(&mut inner.state, inner.generation, &self.audit_key, f)?;
        inner.generation += u64::from(outcome.changed());
        inner.log.extend(outcome.audit);
        outcome.result
    }

    fn audit_log(&self) -> Result<AuditLog, VaultError> {
        let inner = self.lock();
        Ok(AuditLog {
            entries: inner.log.clone(),
            start: AuditHead::genesis(),
            head: inner.state.audit_head.clone(),
        })
    }

    fn audit_key(&self) -> &dyn StateMacKey {
        &self.audit_key
    }
}

/// A key vault held in memory, with keys sealed under a random root key
/// made when it is created. For tests and examples: nothing survives a
/// drop. Implements [`KeyVault`](crate::KeyVault).
///
/// ```
/// use strongroom_envelope::WrapAlgorithm;
/// use strongroom_keyvault::{
///     KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permissions, Principal, VaultProperties,
/// };
///
/// let vault = MemoryKeyVault::new(VaultProperties::new("kv-test"))?;
/// let admin = Principal::new("admin");
/// vault.set_access_policy(&admin, Permissions::all())?;
/// vault.create_key(&admin, "platform", KeyType::Aes256, KeyOptions::default())?;
///
/// let dek = [7u8; 32];
/// let wrapped = vault.wrap_key(&admin, "platform", None, WrapAlgorithm::A256Kw, &dek)?;
/// let back = vault.unwrap_key(&admin, "platform", &wrapped.version, WrapAlgorithm::A256Kw, &wrapped.wrapped)?;
/// assert_eq!(back.as_slice(), dek);
/// # Ok::<(), strongroom_keyvault::VaultError>(())
/// ```
pub struct MemoryKeyVault {
    inner: Vault,
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    store: Arc<MemoryStore>,
}

/// Shares one [`MemoryStore`] between the vault logic and the test hook.
struct SharedStore(Arc<MemoryStore>);

impl StateStore for SharedStore {
    fn transact(
        &self,
        f: &mut dyn FnMut(&mut State) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        self.0.transact(f)
    }

    fn audit_log(&self) -> Result<AuditLog, VaultError> {
        self.0.audit_log()
    }

    fn audit_key(&self) -> &dyn StateMacKey {
        self.0.audit_key()
    }
}

impl MemoryKeyVault {
    /// An empty vault on the system clock.
    ///
    /// # Errors
    /// [`VaultError::InvalidArgument`] for an empty name or a retention
    /// outside 7 to 90 days; [`VaultError::RandomnessUnavailable`].
    pub fn new(properties: VaultProperties) -> Result<Self, VaultError> {
        Self::with_clock(properties, Arc::new(SystemClock))
    }

    /// An empty vault reading time from `clock` (e.g. a
    /// [`ManualClock`](crate::ManualClock) in tests of expiry and retention).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_clock(
        properties: VaultProperties,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        crate::vault::validate_properties(&properties)?;
        let root = Aes256Key::generate().map_err(|_| VaultError::RandomnessUnavailable)?;
        let store = Arc::new(MemoryStore::try_new(properties)?);
        let inner = Vault::new(
            Box::new(SharedStore(Arc::clone(&store))),
            Box::new(SoftwareCrypto::new(root)),
            clock,
        )?;
        Ok(Self { inner, store })
    }

    /// Test hook (feature `testing`): edits the raw audit log in place, so
    /// that tests can show
    /// [`verify_audit_log`](crate::KeyVault::verify_audit_log) catches it.
    #[cfg(feature = "testing")]
    pub fn tamper_audit_log_for_tests(&self, mut f: impl FnMut(&mut Vec<AuditEntry>)) {
        self.store.tamper_audit_log(&mut f);
    }
}

impl AsVault for MemoryKeyVault {
    fn vault(&self) -> &Vault {
        &self.inner
    }
}

impl core::fmt::Debug for MemoryKeyVault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryKeyVault").finish_non_exhaustive()
    }
}
