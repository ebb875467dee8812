//! The recovery vault's managed identities and who each one is towards
//! the key vault.

use std::collections::BTreeMap;

use strongroom_keyvault::Principal;

use crate::Identity;

/// The vault's managed identities and the key-vault principal each one is.
///
/// ```
/// use strongroom_keyvault::Principal;
/// use strongroom_policy::{Identity, VaultIdentities};
///
/// let identities = VaultIdentities::new()
///     .with_system(Principal::new("backup-vault-7/system"))
///     .with_user_assigned("uami-backup", Principal::new("uami-backup"));
/// assert_eq!(
///     identities.resolve(&Identity::UserAssigned("uami-backup".into())),
///     Some(&Principal::new("uami-backup"))
/// );
/// assert_eq!(identities.resolve(&Identity::UserAssigned("other".into())), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultIdentities {
    system: Option<Principal>,
    user_assigned: BTreeMap<String, Principal>,
}

impl VaultIdentities {
    /// No identity at all (a vault whose system-assigned identity is off
    /// and that has no user-assigned one).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The same identities with the system-assigned one as `principal`
    /// (replacing any earlier one).
    #[must_use]
    pub fn with_system(mut self, principal: Principal) -> Self {
        self.system = Some(principal);
        self
    }

    /// The same identities with user-assigned identity `name` as
    /// `principal` (replacing any earlier one of that name). Names are
    /// compared exactly.
    #[must_use]
    pub fn with_user_assigned(mut self, name: impl Into<String>, principal: Principal) -> Self {
        self.user_assigned.insert(name.into(), principal);
        self
    }

    /// The principal `identity` is, or `None` when the vault has no such
    /// identity.
    #[must_use]
    pub fn resolve(&self, identity: &Identity) -> Option<&Principal> {
        match identity {
            Identity::SystemAssigned => self.system.as_ref(),
            Identity::UserAssigned(name) => self.user_assigned.get(name),
        }
    }

    /// The system-assigned identity's principal, if it is on.
    #[must_use]
    pub fn system(&self) -> Option<&Principal> {
        self.system.as_ref()
    }

    /// The user-assigned identities by name, in name order.
    pub fn user_assigned(&self) -> impl Iterator<Item = (&str, &Principal)> {
        self.user_assigned.iter().map(|(n, p)| (n.as_str(), p))
    }
}
