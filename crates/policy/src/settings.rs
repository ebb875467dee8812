//! The vault's encryption settings (DESIGN.md R11, R12, R14, R16) and their
//! JSON form.
//!
//! # JSON form
//!
//! ```json
//! {"key":"platform_managed","infrastructure_encryption":false}
//! {"key":{"customer_managed":{"key_vault":"contoso-kv","key_name":"cmk",
//!   "key_version":null,"identity":"system_assigned"}},"infrastructure_encryption":true}
//! ```
//!
//! `identity` is `"system_assigned"` or `{"user_assigned":"<name>"}`;
//! `key_version` and `infrastructure_encryption` may be left out (versionless,
//! off). Unknown fields are refused at every level. [`EncryptionSettings::from_json`]
//! refuses more than [`MAX_SETTINGS_JSON_BYTES`] before parsing and checks
//! every name against the limits below.
//!
//! | field                          | accepted                                                  | source          |
//! |--------------------------------|-----------------------------------------------------------|-----------------|
//! | `key_vault`                    | 1–255 bytes of UTF-8, no control characters               | the key vault (`VaultProperties::name`), a key reference |
//! | `key_name`                     | 1–127 characters of `0-9A-Za-z-`                          | Azure Key Vault |
//! | `key_version`                  | 1–127 characters of `0-9A-Za-z-`                          | ours (a vault's versions are 32 hex digits) |
//! | `identity.user_assigned`       | 3–128 characters of `0-9A-Za-z-_`, starting with a letter or digit | Azure managed identities |

use core::fmt;

use serde::{Deserialize, Serialize};

/// The most bytes [`EncryptionSettings::from_json`] reads: the largest valid
/// settings are well under 1 KiB.
pub const MAX_SETTINGS_JSON_BYTES: usize = 64 * 1024;

/// Who the recovery vault acts as towards the key vault: one of its managed
/// identities.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Identity {
    /// The vault's system-assigned identity (lives and dies with the vault).
    SystemAssigned,
    /// A user-assigned identity attached to the vault, by name.
    UserAssigned(String),
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SystemAssigned => f.write_str("system-assigned identity"),
            Self::UserAssigned(name) => write!(f, "user-assigned identity {name}"),
        }
    }
}

/// A customer-managed key reference (R12–R14).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerKey {
    /// The key vault's name (its `VaultProperties::name`).
    pub key_vault: String,
    /// The key's name in that vault.
    pub key_name: String,
    /// A version (manual rotation), or `None`: versionless, follow the
    /// latest enabled version (R14).
    #[serde(default)]
    pub key_version: Option<String>,
    /// The identity the recovery vault uses to reach the key.
    pub identity: Identity,
}

impl CustomerKey {
    /// A versionless reference to `key_name` in `key_vault`, reached as the
    /// system-assigned identity.
    pub fn new(key_vault: impl Into<String>, key_name: impl Into<String>) -> Self {
        Self {
            key_vault: key_vault.into(),
            key_name: key_name.into(),
            key_version: None,
            identity: Identity::SystemAssigned,
        }
    }

    /// The same reference pinned to `version` (manual rotation).
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.key_version = Some(version.into());
        self
    }

    /// The same reference reached as `identity`.
    #[must_use]
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// Checks every name against the limits of the [module
    /// table](crate::settings).
    ///
    /// # Errors
    /// [`InvalidField`] naming the first field out of bounds.
    pub fn validate(&self) -> Result<(), InvalidField> {
        let invalid = |field, rule| Err(InvalidField { field, rule });
        if !valid_vault_name(&self.key_vault) {
            return invalid(SettingsField::KeyVault, VAULT_NAME_RULE);
        }
        if !valid_key_name(&self.key_name) {
            return invalid(SettingsField::KeyName, KEY_NAME_RULE);
        }
        if let Some(version) = &self.key_version
            && !valid_key_name(version)
        {
            return invalid(SettingsField::KeyVersion, KEY_VERSION_RULE);
        }
        if let Identity::UserAssigned(name) = &self.identity
            && !valid_identity_name(name)
        {
            return invalid(SettingsField::IdentityName, IDENTITY_NAME_RULE);
        }
        Ok(())
    }
}

impl fmt::Display for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.key_vault, self.key_name)?;
        match &self.key_version {
            Some(version) => write!(f, "/{version}"),
            None => f.write_str(" (versionless)"),
        }
    }
}

/// Where the key-encryption key comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeySource {
    /// A platform-managed key: the default, nothing to set up (R11).
    PlatformManaged,
    /// The customer's own RSA key in a key vault (R12–R14).
    CustomerManaged(CustomerKey),
}

impl KeySource {
    /// The customer key, if this is one.
    #[must_use]
    pub fn customer_key(&self) -> Option<&CustomerKey> {
        match self {
            Self::PlatformManaged => None,
            Self::CustomerManaged(key) => Some(key),
        }
    }
}

/// The vault's encryption settings.
///
/// Any combination can be built; whether a vault may take it is
/// [`VaultEncryption::check`](crate::VaultEncryption::check)'s question
/// (e.g. infrastructure encryption with a platform-managed key is built
/// fine and refused there).
///
/// ```
/// use strongroom_policy::{CustomerKey, EncryptionSettings};
///
/// let settings = EncryptionSettings::customer_managed(CustomerKey::new("contoso-kv", "cmk"))
///     .with_infrastructure_encryption();
/// let json = settings.to_json();
/// assert_eq!(EncryptionSettings::from_json(&json)?, settings);
/// assert_eq!(EncryptionSettings::default(), EncryptionSettings::platform_managed());
/// # Ok::<(), strongroom_policy::SettingsParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawSettings")]
pub struct EncryptionSettings {
    /// Where the key-encryption key comes from.
    pub key: KeySource,
    /// A second, independent platform-key layer (R16).
    pub infrastructure_encryption: bool,
}

/// What the JSON holds before the names are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    key: KeySource,
    #[serde(default)]
    infrastructure_encryption: bool,
}

impl RawSettings {
    fn validate(self) -> Result<EncryptionSettings, InvalidField> {
        if let KeySource::CustomerManaged(key) = &self.key {
            key.validate()?;
        }
        Ok(EncryptionSettings {
            key: self.key,
            infrastructure_encryption: self.infrastructure_encryption,
        })
    }
}

impl TryFrom<RawSettings> for EncryptionSettings {
    type Error = InvalidField;

    fn try_from(raw: RawSettings) -> Result<Self, Self::Error> {
        raw.validate()
    }
}

impl Default for EncryptionSettings {
    fn default() -> Self {
        Self::platform_managed()
    }
}

impl EncryptionSettings {
    /// Platform-managed key, no infrastructure encryption: the default
    /// (R11).
    #[must_use]
    pub fn platform_managed() -> Self {
        Self {
            key: KeySource::PlatformManaged,
            infrastructure_encryption: false,
        }
    }

    /// The customer's key, no infrastructure encryption.
    #[must_use]
    pub fn customer_managed(key: CustomerKey) -> Self {
        Self {
            key: KeySource::CustomerManaged(key),
            infrastructure_encryption: false,
        }
    }

    /// The same settings with infrastructure encryption on (R16: a vault
    /// accepts it only with a customer key, and only when that key is
    /// first enabled).
    #[must_use]
    pub fn with_infrastructure_encryption(mut self) -> Self {
        self.infrastructure_encryption = true;
        self
    }

    /// Whether the key is customer-managed.
    #[must_use]
    pub fn is_customer_managed(&self) -> bool {
        matches!(self.key, KeySource::CustomerManaged(_))
    }

    /// Checks every name of a customer key (see the [module
    /// table](crate::settings)); platform-managed settings have none.
    ///
    /// # Errors
    /// [`InvalidField`] naming the first field out of bounds.
    pub fn validate(&self) -> Result<(), InvalidField> {
        self.key
            .customer_key()
            .map_or(Ok(()), CustomerKey::validate)
    }

    /// The settings as compact JSON (the [module's](crate::settings) form).
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        // safe: strings, booleans and enums only; serde_json cannot fail on
        // them (no maps with non-string keys, no I/O).
        serde_json::to_vec(self).expect("settings always serialize")
    }

    /// Parses the JSON form, bounded: more than [`MAX_SETTINGS_JSON_BYTES`]
    /// is refused before parsing, unknown fields are refused, and every
    /// name is checked.
    ///
    /// # Errors
    /// [`SettingsParseError::TooLarge`]; [`SettingsParseError::Malformed`]
    /// for anything that is not the JSON form (syntax, a missing or unknown
    /// field, a wrong type); [`SettingsParseError::InvalidField`] naming a
    /// field out of bounds.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SettingsParseError> {
        if bytes.len() > MAX_SETTINGS_JSON_BYTES {
            return Err(SettingsParseError::TooLarge {
                size: bytes.len(),
                limit: MAX_SETTINGS_JSON_BYTES,
            });
        }
        let raw: RawSettings =
            serde_json::from_slice(bytes).map_err(|e| SettingsParseError::Malformed {
                reason: bounded_reason(&e.to_string()),
            })?;
        raw.validate().map_err(SettingsParseError::InvalidField)
    }
}

/// The fields of the settings that carry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SettingsField {
    /// `key.customer_managed.key_vault`.
    KeyVault,
    /// `key.customer_managed.key_name`.
    KeyName,
    /// `key.customer_managed.key_version`.
    KeyVersion,
    /// `key.customer_managed.identity.user_assigned`.
    IdentityName,
}

impl SettingsField {
    /// The field's path in the JSON form.
    #[must_use]
    pub fn path(self) -> &'static str {
        match self {
            Self::KeyVault => "key.customer_managed.key_vault",
            Self::KeyName => "key.customer_managed.key_name",
            Self::KeyVersion => "key.customer_managed.key_version",
            Self::IdentityName => "key.customer_managed.identity.user_assigned",
        }
    }
}

impl fmt::Display for SettingsField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// A name out of bounds: which field, and what it must be. Never echoes
/// the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvalidField {
    /// The field.
    pub field: SettingsField,
    /// What the field must be (e.g. "1 to 127 characters of 0-9, A-Z, a-z
    /// and -").
    pub rule: &'static str,
}

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is out of bounds: it must be {}; correct it",
            self.field, self.rule
        )
    }
}

impl std::error::Error for InvalidField {}

/// Why [`EncryptionSettings::from_json`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingsParseError {
    /// The input is larger than [`MAX_SETTINGS_JSON_BYTES`]; nothing of it
    /// was parsed.
    TooLarge {
        /// The input's length in bytes.
        size: usize,
        /// The most accepted.
        limit: usize,
    },
    /// The input is not the settings' JSON form: bad syntax, a missing,
    /// unknown or mistyped field.
    Malformed {
        /// The JSON parser's description with its line and column (control
        /// characters escaped, at most 256 characters).
        reason: String,
    },
    /// A name is out of bounds.
    InvalidField(InvalidField),
}

impl fmt::Display for SettingsParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size, limit } => write!(
                f,
                "encryption settings of {size} bytes refused unread: at most {limit} bytes are accepted; pass the settings' JSON only"
            ),
            Self::Malformed { reason } => write!(
                f,
                "malformed encryption settings: {reason}; write them in the documented JSON form"
            ),
            Self::InvalidField(field) => write!(f, "invalid encryption settings: {field}"),
        }
    }
}

impl std::error::Error for SettingsParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidField(field) => Some(field),
            _ => None,
        }
    }
}

const VAULT_NAME_RULE: &str = "1 to 255 bytes of UTF-8 without control characters";
const KEY_NAME_RULE: &str = "1 to 127 characters of 0-9, A-Z, a-z and -";
const KEY_VERSION_RULE: &str = "absent (versionless) or 1 to 127 characters of 0-9, A-Z, a-z and -";
const IDENTITY_NAME_RULE: &str =
    "3 to 128 characters of 0-9, A-Z, a-z, - and _, starting with a letter or digit";

/// A key vault's name: what a vault accepts and a key reference records,
/// minus control characters (they would reach logs and messages).
fn valid_vault_name(name: &str) -> bool {
    (1..=255).contains(&name.len()) && !name.chars().any(char::is_control)
}

/// An Azure Key Vault key name (and our bound on versions).
fn valid_key_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An Azure user-assigned managed identity's name.
fn valid_identity_name(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The parser's message made safe to log: control characters escaped, cut
/// to 256 characters (it may quote parts of the input).
fn bounded_reason(message: &str) -> String {
    const MAX: usize = 256;
    let mut out = String::new();
    for (count, c) in message.chars().flat_map(char::escape_debug).enumerate() {
        if count == MAX {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert!(valid_key_name("cmk-2024"));
        assert!(valid_key_name(&"a".repeat(127)));
        assert!(!valid_key_name(&"a".repeat(128)));
        assert!(!valid_key_name(""));
        assert!(!valid_key_name("cmk_1"));
        assert!(valid_vault_name("contoso-kv"));
        assert!(valid_vault_name(&"é".repeat(127)));
        assert!(!valid_vault_name(&"é".repeat(128)));
        assert!(!valid_vault_name("kv\n"));
        assert!(valid_identity_name("uami_backup-1"));
        assert!(!valid_identity_name("ab"));
        assert!(!valid_identity_name("-uami"));
        assert!(!valid_identity_name(&"u".repeat(129)));
    }

    #[test]
    fn reasons_are_bounded_and_escaped() {
        let reason = bounded_reason(&format!("unknown field `a\nb{}`", "x".repeat(500)));
        assert!(!reason.contains('\n'));
        assert!(reason.chars().count() <= 257);
    }
}
