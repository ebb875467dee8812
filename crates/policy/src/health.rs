//! Which key versions recovery points still need (DESIGN.md R14): an old
//! version stays required until every point wrapped under it is rewrapped.

use std::collections::{BTreeMap, BTreeSet};

use strongroom_envelope::KeyRef;

/// One recovery point and the key references of its wrapped DEK copies (the
/// header's [`KeyRef`]s, any one of which opens it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointKeys {
    /// The recovery point's identifier.
    pub point: String,
    /// The key reference of each wrapped copy of its DEK.
    pub keys: Vec<KeyRef>,
}

/// How much each key version is still needed, over a set of recovery
/// points. Build it with [`key_health`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyHealth {
    versions: Vec<VersionHealth>,
}

/// How much one key version is still needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionHealth {
    /// The key vault's name.
    pub vault: String,
    /// The key's name.
    pub name: String,
    /// The version.
    pub version: String,
    /// How many points have a copy wrapped under this version: while it is
    /// more than zero, the version is still needed (rewrap those points to
    /// retire it).
    pub points: usize,
    /// The points, in order, for which this version holds the only copy:
    /// disabling, deleting or purging it makes them unrestorable.
    pub sole_copy_points: Vec<String>,
}

impl VersionHealth {
    /// Whether disabling (or deleting, or purging) this version alone
    /// leaves every point restorable: no point has its only copy under it.
    ///
    /// One version at a time: two versions that are each safe to disable
    /// may not be safe together, when some point has its two copies under
    /// exactly those two. Disable one, then compute the health again
    /// without the copies it opened.
    #[must_use]
    pub fn safe_to_disable(&self) -> bool {
        self.sole_copy_points.is_empty()
    }
}

impl KeyHealth {
    /// Every key version some point uses, sorted by vault, key name and
    /// version.
    #[must_use]
    pub fn versions(&self) -> &[VersionHealth] {
        &self.versions
    }

    /// One version's health, or `None` when no point uses it (it is not
    /// needed by these points).
    #[must_use]
    pub fn version(&self, vault: &str, name: &str, version: &str) -> Option<&VersionHealth> {
        self.versions
            .binary_search_by(|v| {
                (v.vault.as_str(), v.name.as_str(), v.version.as_str()).cmp(&(vault, name, version))
            })
            .ok()
            .map(|i| &self.versions[i])
    }
}

/// Which key versions `points` need, and which of them hold some point's
/// only copy.
///
/// Key versions are told apart by vault, key name and version, compared
/// exactly (as the envelope matches a key reference); the wrap algorithm
/// does not matter. Entries with the same point identifier are one point
/// with all their copies; copies of one point under the same version count
/// once.
///
/// ```
/// use strongroom_envelope::{KeyRef, WrapAlgorithm};
/// use strongroom_policy::{key_health, PointKeys};
///
/// let v1 = KeyRef::new("kv", "cmk", "v1", WrapAlgorithm::RsaOaep256);
/// let v2 = KeyRef::new("kv", "cmk", "v2", WrapAlgorithm::RsaOaep256);
/// let points = [
///     PointKeys { point: "rp-1".into(), keys: vec![v1.clone()] },
///     PointKeys { point: "rp-2".into(), keys: vec![v1, v2] }, // rewrapped, old copy kept
/// ];
/// let health = key_health(&points);
/// let old = health.version("kv", "cmk", "v1").unwrap();
/// assert_eq!(old.points, 2);
/// assert_eq!(old.sole_copy_points, ["rp-1"]); // rewrap rp-1 before disabling v1
/// assert!(!old.safe_to_disable());
/// assert!(health.version("kv", "cmk", "v2").unwrap().safe_to_disable());
/// ```
pub fn key_health<'a>(points: impl IntoIterator<Item = &'a PointKeys>) -> KeyHealth {
    type Version<'a> = (&'a str, &'a str, &'a str);

    let mut by_point: BTreeMap<&'a str, BTreeSet<Version<'a>>> = BTreeMap::new();
    for point in points {
        let versions = by_point.entry(point.point.as_str()).or_default();
        for key in &point.keys {
            versions.insert((&key.vault, &key.name, &key.version));
        }
    }

    let mut by_version: BTreeMap<Version<'a>, (usize, Vec<String>)> = BTreeMap::new();
    for (point, versions) in &by_point {
        let sole = versions.len() == 1;
        for version in versions {
            let (count, sole_copy_points) = by_version.entry(*version).or_default();
            *count += 1;
            if sole {
                sole_copy_points.push((*point).to_owned());
            }
        }
    }

    KeyHealth {
        versions: by_version
            .into_iter()
            .map(
                |((vault, name, version), (points, sole_copy_points))| VersionHealth {
                    vault: vault.to_owned(),
                    name: name.to_owned(),
                    version: version.to_owned(),
                    points,
                    sole_copy_points,
                },
            )
            .collect(),
    }
}
