//! The vault's encryption state and the changes it accepts (DESIGN.md R11,
//! R12, R16).

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::{EncryptionSettings, InvalidField, KeySource};

/// A recovery vault's encryption state: its settings, and whether it ever
/// tried to protect an item. Every change goes through [`set`](Self::set),
/// which enforces the rules:
///
/// | from            | to                       | accepted when                                          |
/// |-----------------|--------------------------|--------------------------------------------------------|
/// | platform        | platform                 | always (nothing changes)                               |
/// | platform        | customer key             | no protection was ever attempted (R12)                 |
/// | customer key    | another customer key     | always (other key, vault, version, identity), with the infrastructure flag unchanged (R12, R16) |
/// | customer key    | platform                 | never (R12)                                            |
///
/// Infrastructure encryption comes only with a customer key (R16), and is
/// chosen when the customer key is first enabled.
///
/// ```
/// use strongroom_policy::{CustomerKey, EncryptionSettings, TransitionError, VaultEncryption};
///
/// let mut vault = VaultEncryption::new();
/// let cmk = EncryptionSettings::customer_managed(CustomerKey::new("contoso-kv", "cmk"));
/// vault.set(cmk.clone())?;
/// vault.record_protection_attempt();
///
/// // Another key later: fine. Back to platform-managed: never.
/// vault.set(EncryptionSettings::customer_managed(CustomerKey::new("contoso-kv", "cmk-2")))?;
/// assert_eq!(
///     vault.set(EncryptionSettings::platform_managed()),
///     Err(TransitionError::NoWayBackToPlatformManaged)
/// );
/// # Ok::<(), TransitionError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawVaultEncryption")]
pub struct VaultEncryption {
    settings: EncryptionSettings,
    protection_attempted: bool,
}

/// The serialized form before the state's own consistency is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVaultEncryption {
    settings: EncryptionSettings,
    protection_attempted: bool,
}

impl TryFrom<RawVaultEncryption> for VaultEncryption {
    type Error = &'static str;

    fn try_from(raw: RawVaultEncryption) -> Result<Self, Self::Error> {
        // No sequence of `set` calls reaches this state; a stored one was
        // edited.
        if raw.settings.infrastructure_encryption && !raw.settings.is_customer_managed() {
            return Err("infrastructure encryption without a customer-managed key");
        }
        Ok(Self {
            settings: raw.settings,
            protection_attempted: raw.protection_attempted,
        })
    }
}

impl Default for VaultEncryption {
    fn default() -> Self {
        Self::new()
    }
}

impl VaultEncryption {
    /// A new vault: platform-managed key (R11), nothing protected.
    #[must_use]
    pub fn new() -> Self {
        Self {
            settings: EncryptionSettings::platform_managed(),
            protection_attempted: false,
        }
    }

    /// The current settings.
    #[must_use]
    pub fn settings(&self) -> &EncryptionSettings {
        &self.settings
    }

    /// Whether the vault ever tried to protect an item (successfully or
    /// not).
    #[must_use]
    pub fn protection_attempted(&self) -> bool {
        self.protection_attempted
    }

    /// Records that the vault tried to protect an item. Irreversible, and a
    /// failed attempt counts (R12): call it before the attempt, not after
    /// its success.
    pub fn record_protection_attempt(&mut self) {
        self.protection_attempted = true;
    }

    /// Whether [`set`](Self::set) would accept `proposed`, without changing
    /// anything.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn check(&self, proposed: &EncryptionSettings) -> Result<(), TransitionError> {
        proposed
            .validate()
            .map_err(TransitionError::InvalidSettings)?;
        match (&self.settings.key, &proposed.key) {
            (KeySource::PlatformManaged, KeySource::PlatformManaged) => {
                if proposed.infrastructure_encryption {
                    Err(TransitionError::InfrastructureEncryptionNeedsCustomerKey)
                } else {
                    Ok(())
                }
            }
            (KeySource::PlatformManaged, KeySource::CustomerManaged(_)) => {
                if self.protection_attempted {
                    Err(TransitionError::ItemsAlreadyProtected)
                } else {
                    Ok(())
                }
            }
            (KeySource::CustomerManaged(_), KeySource::PlatformManaged) => {
                Err(TransitionError::NoWayBackToPlatformManaged)
            }
            (KeySource::CustomerManaged(_), KeySource::CustomerManaged(_)) => {
                if proposed.infrastructure_encryption == self.settings.infrastructure_encryption {
                    Ok(())
                } else {
                    Err(TransitionError::InfrastructureEncryptionIsFixed {
                        enabled: self.settings.infrastructure_encryption,
                    })
                }
            }
        }
    }

    /// Changes the settings to `proposed` if the rules allow it; on an
    /// error nothing changes. Setting what is already set is accepted.
    ///
    /// This checks the rules only: run [`preflight`](crate::preflight) on a
    /// customer key first, so that the key is known to be usable.
    ///
    /// # Errors
    /// - [`TransitionError::InvalidSettings`] for a name out of bounds;
    /// - [`TransitionError::ItemsAlreadyProtected`] for a customer key after
    ///   a protection attempt;
    /// - [`TransitionError::NoWayBackToPlatformManaged`] for
    ///   platform-managed after a customer key;
    /// - [`TransitionError::InfrastructureEncryptionNeedsCustomerKey`] for
    ///   infrastructure encryption with a platform-managed key;
    /// - [`TransitionError::InfrastructureEncryptionIsFixed`] for another
    ///   infrastructure flag than the one chosen with the first customer
    ///   key.
    pub fn set(&mut self, proposed: EncryptionSettings) -> Result<(), TransitionError> {
        self.check(&proposed)?;
        self.settings = proposed;
        Ok(())
    }
}

/// Why [`VaultEncryption::set`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransitionError {
    /// R12: a customer-managed key can be enabled only while the vault
    /// never had an item protected (a failed attempt included).
    ItemsAlreadyProtected,
    /// R12: there is no way back from customer- to platform-managed keys.
    NoWayBackToPlatformManaged,
    /// R16: infrastructure encryption only with a customer-managed key.
    InfrastructureEncryptionNeedsCustomerKey,
    /// R16: chosen when a customer key is first enabled, never turned off,
    /// never turned on later.
    InfrastructureEncryptionIsFixed {
        /// Whether it is on (and stays on) or off (and stays off).
        enabled: bool,
    },
    /// A name in the proposed settings is out of bounds (settings a vault
    /// took could otherwise not be read back).
    InvalidSettings(InvalidField),
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ItemsAlreadyProtected => f.write_str(
                "customer-managed keys can be enabled only before the first item is protected; this vault has had a protection attempt: create a new vault to use a customer key",
            ),
            Self::NoWayBackToPlatformManaged => f.write_str(
                "a vault that uses a customer-managed key cannot go back to platform-managed keys: change to another customer key instead",
            ),
            Self::InfrastructureEncryptionNeedsCustomerKey => f.write_str(
                "infrastructure encryption needs a customer-managed key: turn it on together with a customer key, or leave it off",
            ),
            Self::InfrastructureEncryptionIsFixed { enabled: true } => f.write_str(
                "infrastructure encryption was turned on with the vault's first customer key and cannot be turned off: keep it on in the new settings",
            ),
            Self::InfrastructureEncryptionIsFixed { enabled: false } => f.write_str(
                "infrastructure encryption can only be turned on with the vault's first customer key, and this vault's was enabled without it: leave it off, or create a new vault to use it",
            ),
            Self::InvalidSettings(field) => write!(f, "invalid encryption settings: {field}"),
        }
    }
}

impl std::error::Error for TransitionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidSettings(field) => Some(field),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CustomerKey;

    fn cmk() -> EncryptionSettings {
        EncryptionSettings::customer_managed(CustomerKey::new("kv", "cmk"))
    }

    #[test]
    fn an_inconsistent_stored_state_is_refused() {
        let stored = br#"{"settings":{"key":"platform_managed","infrastructure_encryption":true},"protection_attempted":false}"#;
        assert!(serde_json::from_slice::<VaultEncryption>(stored).is_err());
        let mut state = VaultEncryption::new();
        state.set(cmk().with_infrastructure_encryption()).unwrap();
        state.record_protection_attempt();
        let json = serde_json::to_vec(&state).unwrap();
        assert_eq!(
            serde_json::from_slice::<VaultEncryption>(&json).unwrap(),
            state
        );
        let extra =
            br#"{"settings":{"key":"platform_managed"},"protection_attempted":false,"x":1}"#;
        assert!(serde_json::from_slice::<VaultEncryption>(extra).is_err());
    }
}
