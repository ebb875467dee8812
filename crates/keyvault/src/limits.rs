//! The bounds on every caller-supplied field (DESIGN.md R9: "every
//! caller-supplied field is bounded; no input can make the vault unreadable
//! for others").
//!
//! Each is checked before anything is written; a call over a limit is
//! refused with [`VaultError::LimitExceeded`] naming the limit, and its
//! audit entry records the length, never the over-long value, so it stays
//! small. Where Azure Key Vault documents a limit we use it (key names,
//! tags); the others are ours, chosen so that the largest state every
//! limit allows still reads back (`state.json` is read up to 64 MiB, each
//! audit log line up to 1 MiB).
//!
//! | field                          | limit                                  | source          |
//! |--------------------------------|----------------------------------------|-----------------|
//! | key name                       | 1–127 characters of `0-9a-zA-Z-`       | Azure Key Vault |
//! | tags per key version           | [`MAX_TAGS`] (15)                      | Azure Key Vault |
//! | tag name                       | [`MAX_TAG_NAME_CHARS`] (512) characters| Azure Key Vault |
//! | tag value                      | [`MAX_TAG_VALUE_CHARS`] (256) characters | Azure Key Vault |
//! | principal id                   | [`MAX_PRINCIPAL_ID_BYTES`] (256) bytes | ours            |
//! | versions per key               | [`MAX_VERSIONS_PER_KEY`] (500)         | ours            |
//! | imported key (PKCS#8, PEM, JWK)| [`MAX_IMPORT_BYTES`] (64 KiB)          | ours            |
//! | secret name                    | 1–127 characters of `0-9a-zA-Z-`       | Azure Key Vault |
//! | secret value                   | [`MAX_SECRET_VALUE_BYTES`] (25 KiB)    | Azure Key Vault |
//! | secret content type            | [`MAX_CONTENT_TYPE_CHARS`] (255) characters | ours       |
//! | versions per secret            | [`MAX_VERSIONS_PER_SECRET`] (500)      | ours            |
//! | key or secret backup           | [`MAX_BACKUP_BYTES`] (32 MiB)          | ours            |
//! | the whole state, serialized    | [`MAX_STATE_BYTES`] (32 MiB)           | ours            |
//!
//! The last one is the backstop: however many keys, versions or access
//! policies callers add, a change that would make the state larger than
//! half of what a reader accepts is refused.

use std::collections::BTreeMap;

use crate::VaultError;
use crate::state::State;

/// The most tags one key version carries (Azure Key Vault: 15).
pub const MAX_TAGS: usize = 15;
/// The longest tag name, in characters (Azure Key Vault: 512).
pub const MAX_TAG_NAME_CHARS: usize = 512;
/// The longest tag value, in characters (Azure Key Vault: 256).
pub const MAX_TAG_VALUE_CHARS: usize = 256;
/// The longest principal id, in bytes of UTF-8 (an Azure object id is 36;
/// a managed identity's name well under 256).
pub const MAX_PRINCIPAL_ID_BYTES: usize = 256;
/// The most versions one key has.
pub const MAX_VERSIONS_PER_KEY: usize = 500;
/// The longest imported key (PKCS#8 DER or PEM, JWK), in bytes: an
/// RSA-4096 JWK is under 4 KiB.
pub const MAX_IMPORT_BYTES: usize = 64 * 1024;
/// The largest secret value, in bytes (Azure Key Vault: 25 KiB).
pub const MAX_SECRET_VALUE_BYTES: usize = 25 * 1024;
/// The longest secret content type, in characters.
pub const MAX_CONTENT_TYPE_CHARS: usize = 255;
/// The most versions one secret has.
pub const MAX_VERSIONS_PER_SECRET: usize = 500;
/// The largest key or secret backup `restore_key` / `restore_secret`
/// reads, in bytes: a secret with [`MAX_VERSIONS_PER_SECRET`] values of
/// [`MAX_SECRET_VALUE_BYTES`], hex-encoded, fits.
pub const MAX_BACKUP_BYTES: usize = 32 * 1024 * 1024;
/// The largest state, serialized, in bytes: half of the 64 MiB a
/// `FileKeyVault` reads, so the file's own fields never push it over.
pub const MAX_STATE_BYTES: usize = 32 * 1024 * 1024;

/// Refuses more than `limit` of `what`.
pub(crate) fn check(what: &'static str, found: usize, limit: usize) -> Result<(), VaultError> {
    if found > limit {
        Err(VaultError::LimitExceeded { what, limit, found })
    } else {
        Ok(())
    }
}

/// Checks a principal id's length.
pub(crate) fn check_principal(id: &str) -> Result<(), VaultError> {
    check("bytes in a principal id", id.len(), MAX_PRINCIPAL_ID_BYTES)
}

/// What the audit log records for a principal id over the limit: its
/// length, not its bytes.
pub(crate) fn principal_note(id: &str) -> String {
    format!("(principal id of {} bytes, over the limit)", id.len())
}

/// Checks a key version's tags: how many, and each name's and value's
/// length in characters.
pub(crate) fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), VaultError> {
    check_tags_of("tags on a key version", tags)
}

/// Checks a version's tags, `what` naming the version's kind in the error.
pub(crate) fn check_tags_of(
    what: &'static str,
    tags: &BTreeMap<String, String>,
) -> Result<(), VaultError> {
    check(what, tags.len(), MAX_TAGS)?;
    for (name, value) in tags {
        check(
            "characters in a tag name",
            name.chars().count(),
            MAX_TAG_NAME_CHARS,
        )?;
        check(
            "characters in a tag value",
            value.chars().count(),
            MAX_TAG_VALUE_CHARS,
        )?;
    }
    Ok(())
}

/// Checks the size of the state a change would leave. Costs what the
/// changed entries take to serialize, not the whole state (each map keeps
/// its own serialized size up to date).
pub(crate) fn check_state(state: &State) -> Result<(), VaultError> {
    check(
        "bytes of vault state",
        state_json_bytes(state),
        MAX_STATE_BYTES,
    )
}

/// The length of `state` serialized as JSON (what `serde_json::to_vec`
/// gives), without serializing its maps.
pub(crate) fn state_json_bytes(state: &State) -> usize {
    /// [`State`]'s fields in their order, the maps left empty.
    #[derive(serde::Serialize)]
    struct Shell<'a> {
        format: u32,
        properties: &'a crate::VaultProperties,
        keys: Empty,
        deleted: Empty,
        purged: Empty,
        access: Empty,
        #[serde(skip_serializing_if = "Option::is_none")]
        secrets: Option<Empty>,
        #[serde(skip_serializing_if = "Option::is_none")]
        deleted_secrets: Option<Empty>,
        #[serde(skip_serializing_if = "Option::is_none")]
        purged_secrets: Option<Empty>,
        #[serde(skip_serializing_if = "no_owner")]
        owner: &'a Option<crate::state::OwnerRecord>,
        audit_head: &'a crate::AuditHead,
        #[serde(skip_serializing_if = "is_genesis")]
        audit_start: &'a crate::AuditHead,
    }
    #[derive(serde::Serialize)]
    struct Empty {}
    fn no_owner(owner: &&Option<crate::state::OwnerRecord>) -> bool {
        owner.is_none()
    }
    fn is_genesis(head: &&crate::AuditHead) -> bool {
        head.is_genesis()
    }
    let shell = crate::state::json_len(&Shell {
        format: state.format,
        properties: &state.properties,
        keys: Empty {},
        deleted: Empty {},
        purged: Empty {},
        access: Empty {},
        secrets: (!state.secrets.is_empty()).then_some(Empty {}),
        deleted_secrets: (!state.deleted_secrets.is_empty()).then_some(Empty {}),
        purged_secrets: (!state.purged_secrets.is_empty()).then_some(Empty {}),
        owner: &state.owner,
        audit_head: &state.audit_head,
        audit_start: &state.audit_start,
    });
    // Each map is "{}" in the shell, the secret maps only when not empty
    // (they are left out while they are).
    let optional = |empty: bool, bytes: usize| if empty { 0 } else { bytes - 2 };
    shell - 8
        + state.keys.json_bytes()
        + state.deleted.json_bytes()
        + state.purged.json_bytes()
        + state.access.json_bytes()
        + optional(state.secrets.is_empty(), state.secrets.json_bytes())
        + optional(
            state.deleted_secrets.is_empty(),
            state.deleted_secrets.json_bytes(),
        )
        + optional(
            state.purged_secrets.is_empty(),
            state.purged_secrets.json_bytes(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VaultProperties;

    #[test]
    fn a_state_over_the_budget_is_refused() {
        let mut state = State::new(VaultProperties::new("kv"));
        check_state(&state).unwrap();
        // However it grew (many keys, versions or policies), it is the
        // serialized size that counts.
        state
            .access
            .insert("p".repeat(MAX_STATE_BYTES), crate::Permissions::all());
        assert!(matches!(
            check_state(&state),
            Err(VaultError::LimitExceeded {
                what: "bytes of vault state",
                limit: MAX_STATE_BYTES,
                ..
            })
        ));
    }
}
