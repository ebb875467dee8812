//! Key references: which key-encryption key wrapped a DEK (DESIGN.md R7).

use core::fmt;

/// How a DEK was wrapped. The byte value is the format's `wrap algorithm`
/// field (docs/FORMAT.md section 2.2). An unknown byte makes the header
/// malformed: a new algorithm comes with a new format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WrapAlgorithm {
    /// AES-256 Key Wrap, RFC 3394 (platform-managed keys). Byte `0x01`.
    A256Kw,
    /// RSA-OAEP with SHA-256 for both the hash and MGF1, empty label
    /// ("RSA-OAEP-256"; customer-managed keys). Byte `0x02`.
    RsaOaep256,
    /// RSA-OAEP with SHA-1, empty label ("RSA-OAEP"), for HSMs that lack
    /// SHA-256 OAEP. Byte `0x03`.
    RsaOaep,
}

impl WrapAlgorithm {
    /// The format byte.
    #[must_use]
    pub fn to_byte(self) -> u8 {
        match self {
            Self::A256Kw => 0x01,
            Self::RsaOaep256 => 0x02,
            Self::RsaOaep => 0x03,
        }
    }

    /// Parses the format byte.
    #[must_use]
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(Self::A256Kw),
            0x02 => Some(Self::RsaOaep256),
            0x03 => Some(Self::RsaOaep),
            _ => None,
        }
    }

    /// The JOSE / Azure Key Vault name: `A256KW`, `RSA-OAEP-256`, `RSA-OAEP`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::A256Kw => "A256KW",
            Self::RsaOaep256 => "RSA-OAEP-256",
            Self::RsaOaep => "RSA-OAEP",
        }
    }
}

impl fmt::Display for WrapAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A versioned reference to a key-encryption key: the key vault, the key's
/// name and version, and the wrap algorithm. Every wrapped copy of a DEK in
/// a header carries one, so a reader knows which key opens it and an
/// operator knows which key versions are still needed (R14).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRef {
    /// The key vault's name or URI (at most 255 bytes of UTF-8).
    pub vault: String,
    /// The key's name in the vault (at most 255 bytes of UTF-8).
    pub name: String,
    /// The key version that wrapped the DEK (at most 255 bytes of UTF-8).
    pub version: String,
    /// How the DEK was wrapped.
    pub algorithm: WrapAlgorithm,
}

impl KeyRef {
    /// Builds a key reference.
    pub fn new(
        vault: impl Into<String>,
        name: impl Into<String>,
        version: impl Into<String>,
        algorithm: WrapAlgorithm,
    ) -> Self {
        Self {
            vault: vault.into(),
            name: name.into(),
            version: version.into(),
            algorithm,
        }
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} ({})",
            self.vault, self.name, self.version, self.algorithm
        )
    }
}
