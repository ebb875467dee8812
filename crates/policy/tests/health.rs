//! Which key versions recovery points still need (R14).

use strongroom_envelope::{KeyRef, WrapAlgorithm};
use strongroom_policy::{KeyHealth, PointKeys, VersionHealth, key_health};

fn key(vault: &str, name: &str, version: &str) -> KeyRef {
    KeyRef::new(vault, name, version, WrapAlgorithm::RsaOaep256)
}

fn point(id: &str, keys: Vec<KeyRef>) -> PointKeys {
    PointKeys {
        point: id.into(),
        keys,
    }
}

#[test]
fn one_and_two_copies_under_two_versions() {
    let v1 = key("kv", "cmk", "v1");
    let v2 = key("kv", "cmk", "v2");
    let escrow = KeyRef::new("kv-escrow", "pmk", "e1", WrapAlgorithm::A256Kw);
    let points = [
        point("rp-1", vec![v1.clone()]),
        point("rp-2", vec![v1.clone()]),
        point("rp-3", vec![v1.clone(), v2.clone()]),
        point("rp-4", vec![v2.clone()]),
        point("rp-5", vec![v2.clone(), escrow.clone()]),
    ];
    let health = key_health(&points);
    assert_eq!(
        health.versions(),
        [
            VersionHealth {
                vault: "kv".into(),
                name: "cmk".into(),
                version: "v1".into(),
                points: 3,
                sole_copy_points: vec!["rp-1".into(), "rp-2".into()],
            },
            VersionHealth {
                vault: "kv".into(),
                name: "cmk".into(),
                version: "v2".into(),
                points: 3,
                sole_copy_points: vec!["rp-4".into()],
            },
            VersionHealth {
                vault: "kv-escrow".into(),
                name: "pmk".into(),
                version: "e1".into(),
                points: 1,
                sole_copy_points: vec![],
            },
        ]
    );
    assert!(!health.version("kv", "cmk", "v1").unwrap().safe_to_disable());
    assert!(
        health
            .version("kv-escrow", "pmk", "e1")
            .unwrap()
            .safe_to_disable()
    );
    assert_eq!(health.version("kv", "cmk", "v3"), None);
    assert_eq!(health.version("kv", "other", "v1"), None);
}

#[test]
fn after_rewrapping_the_old_version_is_no_longer_needed() {
    let v1 = key("kv", "cmk", "v1");
    let v2 = key("kv", "cmk", "v2");
    // Before: every point under v1.
    let before = [
        point("rp-1", vec![v1.clone()]),
        point("rp-2", vec![v1.clone()]),
    ];
    assert_eq!(
        key_health(&before)
            .version("kv", "cmk", "v1")
            .unwrap()
            .points,
        2
    );
    // rp-1 rewrapped (v1 copy replaced), rp-2 not yet: v1 still needed.
    let midway = [
        point("rp-1", vec![v2.clone()]),
        point("rp-2", vec![v1.clone()]),
    ];
    let health = key_health(&midway);
    assert_eq!(
        health.version("kv", "cmk", "v1").unwrap().sole_copy_points,
        ["rp-2"]
    );
    // Both rewrapped: v1 is not needed at all.
    let after = [point("rp-1", vec![v2.clone()]), point("rp-2", vec![v2])];
    assert_eq!(key_health(&after).version("kv", "cmk", "v1"), None);
}

#[test]
fn two_safe_versions_are_not_safe_together() {
    // Each of v1 and v2 is safe to disable alone; not both (documented:
    // one version at a time).
    let points = [point(
        "rp-1",
        vec![key("kv", "cmk", "v1"), key("kv", "cmk", "v2")],
    )];
    let health = key_health(&points);
    assert!(health.versions().iter().all(VersionHealth::safe_to_disable));
    // With v1 disabled, recompute without its copies: v2 is now the sole copy.
    let without_v1 = [point("rp-1", vec![key("kv", "cmk", "v2")])];
    assert!(
        !key_health(&without_v1)
            .version("kv", "cmk", "v2")
            .unwrap()
            .safe_to_disable()
    );
}

#[test]
fn duplicates_count_once_and_entries_of_one_point_merge() {
    let v1 = key("kv", "cmk", "v1");
    let v1_sha1 = KeyRef::new("kv", "cmk", "v1", WrapAlgorithm::RsaOaep);
    let v2 = key("kv", "cmk", "v2");
    let points = [
        // Two copies under the same version: still its only version.
        point("rp-1", vec![v1.clone(), v1_sha1]),
        // One point listed twice: one point with both copies.
        point("rp-2", vec![v1.clone()]),
        point("rp-2", vec![v2]),
        // A point without copies needs nothing.
        point("rp-3", vec![]),
    ];
    let health = key_health(&points);
    let v1 = health.version("kv", "cmk", "v1").unwrap();
    assert_eq!(v1.points, 2);
    assert_eq!(v1.sole_copy_points, ["rp-1"]);
    assert_eq!(health.version("kv", "cmk", "v2").unwrap().points, 1);
    assert_eq!(key_health([]), KeyHealth::default());
}

#[test]
fn versions_are_sorted_whatever_the_input_order() {
    let points = [
        point("b", vec![key("kv-b", "x", "2")]),
        point("a", vec![key("kv-a", "y", "1"), key("kv-a", "x", "9")]),
        point("c", vec![key("kv-b", "x", "1")]),
    ];
    let health = key_health(&points);
    let order: Vec<_> = health
        .versions()
        .iter()
        .map(|v| format!("{}/{}/{}", v.vault, v.name, v.version))
        .collect();
    assert_eq!(order, ["kv-a/x/9", "kv-a/y/1", "kv-b/x/1", "kv-b/x/2"]);
    for v in health.versions() {
        assert_eq!(health.version(&v.vault, &v.name, &v.version), Some(v));
    }
}
