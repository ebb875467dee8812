//! The in-memory vault: for tests and examples; everything is lost when it
//! is dropped.

use std::sync::{Arc, Mutex, MutexGuard};

use strongroom_aes::Aes256Key;

use crate::audit::{AuditEntry, AuditHead};
use crate::clock::{Clock, SystemClock};
use crate::software::SoftwareCrypto;
use crate::state::{State, StateStore, run_transaction};
use crate::vault::{AsVault, Vault};
use crate::{VaultError, VaultProperties};

/// A state store in memory: the state and the audit log behind one mutex.
pub(crate) struct MemoryStore {
    inner: Mutex<Inner>,
}

struct Inner {
    state: State,
    log: Vec<AuditEntry>,
}

impl MemoryStore {
    /// An empty vault with these properties.
    pub(crate) fn new(properties: VaultProperties) -> Self {
        Self {
            inner: Mutex::new(Inner {
                state: State::new(properties),
                log: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in another thread mid-transaction cannot leave a mix:
        // the state is replaced whole, after `f` returned.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets a test edit the raw audit log, to show verification catches it.
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
        let outcome = run_transaction(&inner.state, f);
        inner.log.extend(outcome.audit);
        if outcome.changed {
            inner.state = outcome.state;
        }
        outcome.result
    }

    fn audit_log(&self) -> Result<(Vec<AuditEntry>, AuditHead), VaultError> {
        let inner = self.lock();
        Ok((inner.log.clone(), inner.state.audit_head.clone()))
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

    fn audit_log(&self) -> Result<(Vec<AuditEntry>, AuditHead), VaultError> {
        self.0.audit_log()
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
        let store = Arc::new(MemoryStore::new(properties));
        let inner = Vault::new(
            Box::new(SharedStore(Arc::clone(&store))),
            Box::new(SoftwareCrypto::new(root)),
            clock,
        )?;
        Ok(Self { inner, store })
    }

    /// Test hook: edits the raw audit log in place, so that tests can show
    /// [`verify_audit_log`](crate::KeyVault::verify_audit_log) catches it.
    #[doc(hidden)]
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
