//! Where a recovery vault keeps things in its store, and the JSON records
//! it writes there (each parsed with a size bound, unknown fields refused).
//!
//! ```text
//! <prefix>/vault.json                          the vault: id, name, platform key
//! <prefix>/settings/<seq, 20 digits>.json      the encryption settings log
//! <prefix>/items/<item>.json                   a protected item
//! <prefix>/points/<item>/<point>/header        the envelope header (wrapped DEKs)
//! <prefix>/points/<item>/<point>/outer-header  with infrastructure encryption: the
//!                                              outer layer's header (platform key)
//! <prefix>/points/<item>/<point>/body          the sealed chunks (with infrastructure
//!                                              encryption: the outer layer's, whose
//!                                              plaintext is the inner body)
//! <prefix>/points/<item>/<point>/key-backups  with in-guest encryption: the BEK and
//!                                              KEK backups, sealed under the point's DEK
//! <prefix>/points/<item>/<point>/manifest.json written last: the point exists
//! <prefix>/jobs/rewrap.json                    a rewrap job's checkpoint
//! ```
//!
//! Every record is written once with a create-only put, except the headers,
//! which a rewrap replaces (one atomic put each), and the job checkpoint.
//! docs/FORMAT.md section 9 describes the points for a reader of its own.

use object_store::path::{Path, PathPart};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Header metadata (authenticated): the vault, item and point a header
/// belongs to.
pub(crate) const METADATA_VAULT: &str = "strongroom.vault";
pub(crate) const METADATA_ITEM: &str = "strongroom.item";
pub(crate) const METADATA_POINT: &str = "strongroom.point";
/// In the inner header of a point with infrastructure encryption: `2`, the
/// number of layers (so the outer one cannot be stripped unnoticed).
pub(crate) const METADATA_LAYERS: &str = "strongroom.layers";
/// In the outer header: which layer it is.
pub(crate) const METADATA_LAYER: &str = "strongroom.layer";
pub(crate) const LAYER_INFRASTRUCTURE: &str = "infrastructure";
/// In the data header of a point of an item encrypted at the source
/// (R17): the source encryption the point was taken with, as JSON (the
/// exact BEK and KEK versions for in-guest encryption). Absent for none.
pub(crate) const METADATA_SOURCE_ENCRYPTION: &str = "strongroom.source-encryption";

/// The largest record read (a record is a few hundred bytes).
pub(crate) const MAX_RECORD: u64 = 64 * 1024;
/// The largest header read: 16 wrapped keys of RSA-4096 with their
/// references and 64 metadata entries stay far below it.
pub(crate) const MAX_HEADER: u64 = 1024 * 1024;

/// The `magic` of `vault.json`.
pub(crate) const VAULT_MAGIC: &str = "strongroom recovery vault";
/// The version of every record's format.
pub(crate) const FORMAT: u32 = 1;

/// The paths of one vault's objects.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    prefix: Path,
}

impl Layout {
    pub(crate) fn new(prefix: Path) -> Self {
        Self { prefix }
    }

    pub(crate) fn child(&self, parts: &[&str]) -> Path {
        let mut path = self.prefix.clone();
        for part in parts {
            path = path.clone().join(PathPart::from(*part));
        }
        path
    }

    pub(crate) fn vault(&self) -> Path {
        self.child(&["vault.json"])
    }

    pub(crate) fn settings_dir(&self) -> Path {
        self.child(&["settings"])
    }

    pub(crate) fn settings(&self, seq: u64) -> Path {
        self.child(&["settings", &format!("{seq:020}.json")])
    }

    pub(crate) fn items_dir(&self) -> Path {
        self.child(&["items"])
    }

    pub(crate) fn item(&self, item: &str) -> Path {
        self.child(&["items", &format!("{item}.json")])
    }

    pub(crate) fn points_dir(&self) -> Path {
        self.child(&["points"])
    }

    pub(crate) fn points_of(&self, item: &str) -> Path {
        self.child(&["points", item])
    }

    pub(crate) fn header(&self, item: &str, point: &str) -> Path {
        self.child(&["points", item, point, "header"])
    }

    /// The infrastructure layer's header (R16), for a point that has one.
    pub(crate) fn outer_header(&self, item: &str, point: &str) -> Path {
        self.child(&["points", item, point, "outer-header"])
    }

    pub(crate) fn body(&self, item: &str, point: &str) -> Path {
        self.child(&["points", item, point, "body"])
    }

    /// The key backups an in-guest-encrypted item's point carries (R17).
    pub(crate) fn key_backups(&self, item: &str, point: &str) -> Path {
        self.child(&["points", item, point, "key-backups"])
    }

    pub(crate) fn manifest(&self, item: &str, point: &str) -> Path {
        self.child(&["points", item, point, "manifest.json"])
    }

    /// The item and point a path under `points/` belongs to, and the
    /// object's own name there.
    pub(crate) fn point_of(&self, path: &Path) -> Option<(String, String, String)> {
        let rest: Vec<_> = path.prefix_match(&self.points_dir())?.collect();
        match rest.as_slice() {
            [item, point, name] => Some((
                decode(item.as_ref()),
                decode(point.as_ref()),
                decode(name.as_ref()),
            )),
            _ => None,
        }
    }

    /// The item an `items/<item>.json` path names.
    pub(crate) fn item_of(&self, path: &Path) -> Option<String> {
        let rest: Vec<_> = path.prefix_match(&self.items_dir())?.collect();
        match rest.as_slice() {
            [file] => decode(file.as_ref())
                .strip_suffix(".json")
                .map(str::to_owned),
            _ => None,
        }
    }

    /// The sequence number of a `settings/<seq>.json` path.
    pub(crate) fn settings_seq(&self, path: &Path) -> Option<u64> {
        let rest: Vec<_> = path.prefix_match(&self.settings_dir())?.collect();
        match rest.as_slice() {
            [file] => file.as_ref().strip_suffix(".json")?.parse().ok(),
            _ => None,
        }
    }
}

/// A path part back to the string it encodes (parts are percent-encoded
/// where the store needs it).
fn decode(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_at = |j: usize| bytes.get(j).and_then(|b| (*b as char).to_digit(16));
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (hex_at(i + 1), hex_at(i + 2))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks an item name: 1 to 255 bytes of UTF-8, no control characters,
/// not `.` or `..`.
pub(crate) fn check_item_name(name: &str) -> Result<(), Error> {
    if name.is_empty()
        || name.len() > 255
        || name.chars().any(char::is_control)
        || name == "."
        || name == ".."
    {
        return Err(Error::InvalidArgument {
            reason: format!(
                "an item name is 1 to 255 bytes of UTF-8 without control characters, and not . or ..; got {} bytes",
                name.len()
            ),
        });
    }
    Ok(())
}

/// `vault.json`: what the vault is, written once at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VaultRecord {
    pub magic: String,
    pub format: u32,
    /// 16 random bytes, hex.
    pub id: String,
    pub name: String,
    /// Unix seconds.
    pub created: u64,
    /// The platform key: its key vault's name and the key's name there.
    pub platform_key_vault: String,
    pub platform_key: String,
    /// The platform key's version that wrapped `settings_key`, and whose
    /// tag witnesses the settings log's newest sequence number.
    pub platform_key_version: String,
    /// The key that authenticates the settings records (HMAC-SHA256),
    /// wrapped by the platform key (A256KW), hex.
    pub settings_key: String,
}

/// `items/<item>.json`: a protected item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemRecord {
    pub format: u32,
    pub vault_id: String,
    pub name: String,
    pub created: u64,
    /// How its disks are encrypted at the source (R17); left out for none.
    #[serde(default, skip_serializing_if = "crate::SourceEncryption::is_none")]
    pub source_encryption: crate::SourceEncryption,
}

/// `settings/<seq>.json`: one version of the vault's encryption settings
/// and whether an item was ever protected. Each change writes the next
/// sequence number with a create-only put; the highest one is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsRecord {
    pub format: u32,
    pub vault_id: String,
    pub seq: u64,
    pub encryption: strongroom_policy::VaultEncryption,
    /// HMAC-SHA256 under the vault's settings key of this record with an
    /// empty `mac`, hex.
    pub mac: String,
}

/// `manifest.json`: a recovery point, written last (its presence commits
/// the point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub format: u32,
    pub vault_id: String,
    pub item: String,
    pub point: String,
    /// Unix seconds.
    pub created: u64,
    /// Bytes of plaintext.
    pub size: u64,
    /// Bytes of the body object.
    pub body_size: u64,
    /// Plaintext bytes per chunk.
    pub chunk_size: u64,
    /// Infrastructure (double) encryption (R16): the body is the outer
    /// layer, sealed under `outer-header`, and its plaintext is the inner
    /// body, sealed under `header`. Left out when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub infrastructure_encryption: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(value: &bool) -> bool {
    !*value
}

/// Parses a record of at most [`MAX_RECORD`] bytes, checking its format
/// version and vault.
pub(crate) fn parse<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, Error> {
    if bytes.len() as u64 > MAX_RECORD {
        return Err(corrupt(
            path,
            format!("{} bytes, more than a record holds", bytes.len()),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| corrupt(path, e.to_string()))
}

/// Serializes a record.
pub(crate) fn to_json<T: Serialize>(record: &T) -> Vec<u8> {
    // safe: the records are plain structs of strings and numbers.
    serde_json::to_vec_pretty(record).expect("records serialize")
}

pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Refuses a record of another format version or another vault.
pub(crate) fn check_ours(
    path: &Path,
    format: u32,
    vault_id: &str,
    ours: &str,
) -> Result<(), Error> {
    if format != FORMAT {
        return Err(corrupt(
            path,
            format!("format version {format}; this build reads version {FORMAT}"),
        ));
    }
    if vault_id != ours {
        return Err(corrupt(
            path,
            "a record of another vault (vault id differs)",
        ));
    }
    Ok(())
}

/// A new recovery point's id: the time in milliseconds (so ids sort by
/// time) and 8 random bytes.
pub(crate) fn new_point_id(now_ms: u64) -> Result<String, Error> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|_| Error::InvalidArgument {
        reason: "the operating system's random generator failed".into(),
    })?;
    Ok(format!("{now_ms:013}-{}", hex(&random)))
}

/// Hex digits back to bytes; `None` for anything else.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |b: u8| (b as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` has the form [`new_point_id`] gives.
pub(crate) fn valid_point_id(id: &str) -> bool {
    id.len() == 30
        && id.as_bytes()[13] == b'-'
        && id[..13].bytes().all(|b| b.is_ascii_digit())
        && id[14..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_hex() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert_eq!(unhex("0A0b").unwrap(), [10, 11]);
        for bad in ["0", "0g", "+1", "é0"] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
    }

    #[test]
    fn item_names_survive_the_path_encoding() {
        let layout = Layout::new(Path::from("vaults/v1"));
        for name in ["vm-42/disk-0", "a b", "100%", "é/ü", "x.json", "%2F"] {
            let path = layout.item(name);
            assert_eq!(layout.item_of(&path).as_deref(), Some(name), "{path}");
            let header = layout.header(name, "p");
            assert_eq!(
                layout.point_of(&header),
                Some((name.to_owned(), "p".to_owned(), "header".to_owned())),
                "{header}"
            );
        }
    }

    #[test]
    fn point_ids_sort_by_time_and_parse() {
        let a = new_point_id(1_700_000_000_000).unwrap();
        let b = new_point_id(1_700_000_000_001).unwrap();
        assert!(a < b);
        assert!(valid_point_id(&a), "{a}");
        assert!(!valid_point_id("../etc"));
    }
}
