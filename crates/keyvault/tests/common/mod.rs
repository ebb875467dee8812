//! The conformance suite every key vault backend passes.
//!
//! A backend's test file says
//!
//! ```ignore
//! mod common;
//! keyvault_conformance!(make);                                  // RSA-OAEP-256
//! keyvault_conformance!(make, rsa = WrapAlgorithm::RsaOaep);    // a SHA-1-only token
//! ```
//!
//! where `make: fn(Arc<ManualClock>) -> Box<dyn KeyVault>` builds a FRESH
//! vault named [`VAULT`], with 7 days of soft-delete retention and purge
//! protection off, reading time from the clock it is given. The macro
//! expands to one `#[test]` per behaviour; each body is a function here.
//!
//! RSA keys are 2048 bits throughout, to keep the suite fast.
#![allow(dead_code, unreachable_pub)]

mod secrets;
#[allow(unused_imports)]
pub use secrets::*;

use std::collections::BTreeMap;
use std::sync::Arc;

use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    AttributeUpdate, AuditEntry, AuditHead, AuditOutcome, KeyImport, KeyOperation, KeyOptions,
    KeyType, KeyVault, KeyVersionInfo, ManualClock, Permission, Permissions, Principal, VaultError,
};

/// The name every conformance vault has.
pub const VAULT: &str = "conformance";
/// Where the suite's clock starts (2025-01-01T00:00:00Z).
pub const T0: u64 = 1_735_689_600;
/// The soft-delete retention the suite's vaults have, in seconds.
pub const RETENTION: u64 = 7 * 86_400;

/// Builds a fresh vault for a test.
pub type Make<'a> = &'a dyn Fn(Arc<ManualClock>) -> Box<dyn KeyVault>;

/// Expands to one `#[test]` per behaviour of the suite for the backend
/// that `$make` builds. `rsa = ...` chooses the RSA wrap algorithm (default
/// RSA-OAEP-256).
#[macro_export]
macro_rules! keyvault_conformance {
    ($make:expr) => {
        $crate::keyvault_conformance!(
            $make,
            rsa = ::strongroom_envelope::WrapAlgorithm::RsaOaep256
        );
    };
    ($make:expr, rsa = $alg:expr) => {
        $crate::keyvault_conformance!(@tests $make, $alg;
            new_vault_is_empty_and_named,
            create_get_list,
            create_refuses_taken_names,
            key_names_follow_the_azure_rule,
            wrap_unwrap_round_trip_rsa,
            wrap_unwrap_round_trip_aes,
            dek_must_be_32_bytes,
            wrong_key_type_for_the_algorithm,
            tampered_wrapped_key_is_decryption_failed,
            every_missing_permission_is_denied,
            principal_without_policy_is_denied_everything,
            revoked_permission_refuses_the_very_next_call,
            disabled_version_does_nothing_but_get,
            expired_version_only_unwraps,
            not_yet_valid_version_only_unwraps,
            operations_not_permitted_are_refused,
            update_attributes,
            rotation_and_versionless_references,
            unknown_version_is_not_found,
            soft_delete_and_recover,
            purge_without_protection,
            purge_protection_refuses_until_retention_ends,
            deleted_keys_are_purged_when_retention_ends,
            import_pkcs8_der_and_pem,
            import_jwk_rsa_and_oct,
            import_refuses_bad_material,
            get_and_list_never_show_private_material,
            audit_records_allowed_denied_and_failed_calls,
            audit_verification_detects_tampering,
            concurrent_wrap_unwrap,
            caller_input_is_bounded,
            key_names_are_case_insensitive,
            secrets_set_get_list,
            secret_attributes_and_disabled_versions,
            secret_soft_delete_recover_and_purge,
            secret_purge_protection,
            secret_input_is_bounded,
            every_missing_secret_permission_is_denied,
            secret_backup_restores_every_version,
            key_backup_restores_every_version,
            key_backup_restores_into_any_vault_of_the_owner,
            tampered_backups_are_refused,
        );
    };
    (@tests $make:expr, $alg:expr; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                common::$name(&$make, $alg);
            }
        )+
    };
}

// ---------------------------------------------------------------- helpers

/// A fresh vault and its clock.
pub fn fresh(make: Make<'_>) -> (Box<dyn KeyVault>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let vault = make(Arc::clone(&clock));
    (vault, clock)
}

/// The administrator every test grants every permission.
pub fn admin() -> Principal {
    Principal::new("admin@contoso")
}

/// A fresh vault with an all-powerful administrator.
pub fn with_admin(make: Make<'_>) -> (Box<dyn KeyVault>, Arc<ManualClock>, Principal) {
    let (vault, clock) = fresh(make);
    let admin = admin();
    vault
        .set_access_policy(&admin, Permissions::all())
        .expect("set policy");
    (vault, clock, admin)
}

pub fn create(
    vault: &dyn KeyVault,
    who: &Principal,
    name: &str,
    key_type: KeyType,
) -> KeyVersionInfo {
    vault
        .create_key(who, name, key_type, KeyOptions::default())
        .unwrap_or_else(|e| panic!("create {name}: {e}"))
}

/// The wrap algorithm for a key type.
pub fn alg_for(key_type: KeyType, rsa: WrapAlgorithm) -> WrapAlgorithm {
    if key_type.is_rsa() {
        rsa
    } else {
        WrapAlgorithm::A256Kw
    }
}

pub fn dek(byte: u8) -> [u8; 32] {
    [byte; 32]
}

/// Asserts `result` is `AccessDenied` naming exactly this principal,
/// permission and key, and that its message names them too.
#[track_caller]
pub fn assert_denied<T: core::fmt::Debug>(
    result: Result<T, VaultError>,
    who: &Principal,
    permission: Permission,
    key: Option<&str>,
) {
    match result {
        Err(err @ VaultError::AccessDenied { .. }) => {
            let message = err.to_string();
            let VaultError::AccessDenied {
                principal,
                permission: p,
                key: k,
            } = err
            else {
                unreachable!()
            };
            assert_eq!(&principal, who);
            assert_eq!(p, permission);
            assert_eq!(k.as_deref(), key);
            assert!(message.contains(who.id()), "{message}");
            assert!(message.contains(permission.name()), "{message}");
            if let Some(key) = key {
                assert!(message.contains(key), "{message}");
            }
        }
        other => panic!("expected AccessDenied({permission}), got {other:?}"),
    }
}

/// An RSA private key made outside the vault, for import tests.
pub fn outside_rsa_key(bits: usize) -> rsa::PrivateKey {
    rsa::PrivateKey::new(&mut getrandom::SysRng, bits).expect("generate RSA key")
}

fn b64(bytes: &[u8]) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    Base64UrlUnpadded::encode_string(bytes)
}

fn be(value: &rsa::BoxedUint) -> Vec<u8> {
    value.to_be_bytes_trimmed_vartime().into_vec()
}

/// The JWK (RFC 7518 section 6.3) of an RSA private key.
pub fn rsa_jwk(key: &rsa::PrivateKey) -> String {
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let primes = key.primes();
    serde_json::json!({
        "kty": "RSA",
        "n": b64(&key.n_bytes()),
        "e": b64(&key.e_bytes()),
        "d": b64(&be(key.d())),
        "p": b64(&be(primes[0].as_ref())),
        "q": b64(&be(primes[1].as_ref())),
        "dp": b64(&be(key.dp().expect("dp"))),
        "dq": b64(&be(key.dq().expect("dq"))),
        "qi": b64(&be(&key.crt_coefficient().expect("qi"))),
    })
    .to_string()
}

/// Wraps `dek` with the public key `get` shows, outside the vault, as a
/// client holding only the public key would.
pub fn wrap_outside(info: &KeyVersionInfo, alg: WrapAlgorithm, dek: &[u8]) -> Vec<u8> {
    let public = info
        .public
        .as_ref()
        .expect("RSA key has a public part")
        .to_rsa()
        .expect("valid public key");
    match alg {
        WrapAlgorithm::RsaOaep256 => public.oaep_encrypt::<sha2::Sha256>(dek),
        WrapAlgorithm::RsaOaep => public.oaep_encrypt::<sha1::Sha1>(dek),
        _ => panic!("not an RSA algorithm"),
    }
    .expect("encrypt")
}

/// The audit head a log ends at (what the vault records).
pub fn head_of(log: &[AuditEntry]) -> AuditHead {
    log.last().map_or_else(AuditHead::genesis, |e| AuditHead {
        seq: e.seq,
        mac: e.mac.clone(),
    })
}

/// The index of the first bad entry a verification error names; panics on
/// any other error.
pub fn tampered_at(result: Result<(), VaultError>, what: &str) -> usize {
    match result {
        Err(VaultError::AuditTampered(err)) => {
            assert!(err.to_string().contains("tampered"), "{what}: {err}");
            err.index
        }
        other => panic!("{what}: expected AuditTampered, got {other:?}"),
    }
}

// ---------------------------------------------------------------- tests

pub fn new_vault_is_empty_and_named(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let properties = vault.properties().unwrap();
    assert_eq!(properties.name, VAULT);
    assert_eq!(properties.soft_delete_retention_days, 7);
    assert!(!properties.purge_protection);
    assert!(vault.list_keys(&admin).unwrap().is_empty());
    assert!(vault.list_deleted_keys(&admin).unwrap().is_empty());
    assert_eq!(vault.access_policy(&admin).unwrap(), Permissions::all());
    assert_eq!(
        vault.access_policy(&Principal::new("nobody")).unwrap(),
        Permissions::NONE
    );
    vault.verify_audit_log().unwrap();
}

pub fn create_get_list(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let rsa = create(&*vault, &admin, "cmk-rsa", KeyType::Rsa2048);
    assert_eq!(rsa.vault, VAULT);
    assert_eq!(rsa.name, "cmk-rsa");
    assert_eq!(rsa.key_type, KeyType::Rsa2048);
    assert_eq!(rsa.version.len(), 32);
    assert!(
        rsa.version
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let public = rsa.public.as_ref().expect("RSA public part");
    assert_eq!(public.n.len(), 256);
    assert_ne!(public.n[0], 0, "no leading zeros");
    assert_eq!(public.e, [1, 0, 1]);
    assert!(rsa.attributes.enabled);
    assert_eq!(rsa.attributes.created, T0);
    assert_eq!(rsa.attributes.updated, T0);
    assert_eq!(rsa.attributes.not_before, None);
    assert_eq!(rsa.attributes.expires, None);
    assert_eq!(
        rsa.attributes.operations,
        [KeyOperation::WrapKey, KeyOperation::UnwrapKey]
    );

    let aes = create(&*vault, &admin, "pmk-aes", KeyType::Aes256);
    assert_eq!(aes.key_type, KeyType::Aes256);
    assert!(aes.public.is_none());
    assert_ne!(aes.version, rsa.version);

    assert_eq!(vault.get_key(&admin, "cmk-rsa", None).unwrap(), rsa);
    assert_eq!(
        vault
            .get_key(&admin, "cmk-rsa", Some(&rsa.version))
            .unwrap(),
        rsa
    );
    assert_eq!(vault.get_key(&admin, "pmk-aes", None).unwrap(), aes);
    let listed = vault.list_keys(&admin).unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&rsa) && listed.contains(&aes));
    assert_eq!(vault.list_versions(&admin, "cmk-rsa").unwrap(), [rsa]);
    assert!(matches!(
        vault.get_key(&admin, "absent", None),
        Err(VaultError::KeyNotFound { name, version: None }) if name == "absent"
    ));
}

pub fn create_refuses_taken_names(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    create(&*vault, &admin, "k", KeyType::Aes256);
    assert!(matches!(
        vault.create_key(&admin, "k", KeyType::Aes256, KeyOptions::default()),
        Err(VaultError::KeyExists { name, deleted: false }) if name == "k"
    ));
    vault.delete_key(&admin, "k").unwrap();
    let err = vault
        .create_key(&admin, "k", KeyType::Aes256, KeyOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, VaultError::KeyExists { name, deleted: true } if name == "k"),
        "{err:?}"
    );
    assert!(err.to_string().contains("recover or purge"), "{err}");
}

pub fn key_names_follow_the_azure_rule(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let longest = "a".repeat(127);
    create(&*vault, &admin, &longest, KeyType::Aes256);
    create(&*vault, &admin, "Key-0-9-az-AZ", KeyType::Aes256);
    for bad in [
        "",
        "under_score",
        "dot.ted",
        "spa ce",
        "slash/",
        "é",
        &"a".repeat(128),
    ] {
        assert!(
            matches!(
                vault.create_key(&admin, bad, KeyType::Aes256, KeyOptions::default()),
                Err(VaultError::InvalidArgument { .. })
            ),
            "{bad:?} accepted"
        );
        assert!(matches!(
            vault.get_key(&admin, bad, None),
            Err(VaultError::InvalidArgument { .. })
        ));
    }
    assert_eq!(vault.list_keys(&admin).unwrap().len(), 2);
}

pub fn wrap_unwrap_round_trip_rsa(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let info = create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    let a = vault.wrap_key(&admin, "cmk", None, rsa, &dek(1)).unwrap();
    let b = vault
        .wrap_key(&admin, "cmk", Some(&info.version), rsa, &dek(1))
        .unwrap();
    assert_eq!(a.version, info.version);
    assert_eq!(b.version, info.version);
    assert_eq!(a.wrapped.len(), 256);
    assert_ne!(a.wrapped, b.wrapped, "OAEP is randomized");
    for w in [&a, &b] {
        let back = vault
            .unwrap_key(&admin, "cmk", &w.version, rsa, &w.wrapped)
            .unwrap();
        assert_eq!(back.as_slice(), dek(1));
    }
    // A client with only the public key wraps; the vault unwraps.
    let outside = wrap_outside(&info, rsa, &dek(9));
    let back = vault
        .unwrap_key(&admin, "cmk", &info.version, rsa, &outside)
        .unwrap();
    assert_eq!(back.as_slice(), dek(9));
}

pub fn wrap_unwrap_round_trip_aes(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let info = create(&*vault, &admin, "pmk", KeyType::Aes256);
    let w = vault
        .wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &dek(2))
        .unwrap();
    assert_eq!(w.version, info.version);
    assert_eq!(w.wrapped.len(), 40, "RFC 3394 adds 8 bytes");
    let back = vault
        .unwrap_key(&admin, "pmk", &w.version, WrapAlgorithm::A256Kw, &w.wrapped)
        .unwrap();
    assert_eq!(back.as_slice(), dek(2));
}

pub fn dek_must_be_32_bytes(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    create(&*vault, &admin, "pmk", KeyType::Aes256);
    for len in [0, 16, 31, 33, 64] {
        let short = vec![5u8; len];
        for (name, alg) in [("cmk", rsa), ("pmk", WrapAlgorithm::A256Kw)] {
            assert!(
                matches!(
                    vault.wrap_key(&admin, name, None, alg, &short),
                    Err(VaultError::InvalidArgument { .. })
                ),
                "{name} wrapped a {len}-byte DEK"
            );
        }
    }
}

pub fn wrong_key_type_for_the_algorithm(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let cmk = create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    let pmk = create(&*vault, &admin, "pmk", KeyType::Aes256);
    let rsa_wrapped = vault.wrap_key(&admin, "cmk", None, rsa, &dek(3)).unwrap();
    let aes_wrapped = vault
        .wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &dek(3))
        .unwrap();
    let mismatch = |r: Result<_, VaultError>, name: &str, key_type, algorithm| match r {
        Err(VaultError::AlgorithmMismatch {
            name: n,
            key_type: t,
            algorithm: a,
        }) => {
            assert_eq!(n, name);
            assert_eq!(t, key_type);
            assert_eq!(a, algorithm);
        }
        other => panic!("expected AlgorithmMismatch, got {other:?}"),
    };
    mismatch(
        vault
            .wrap_key(&admin, "cmk", None, WrapAlgorithm::A256Kw, &dek(3))
            .map(|_| ()),
        "cmk",
        KeyType::Rsa2048,
        WrapAlgorithm::A256Kw,
    );
    mismatch(
        vault
            .unwrap_key(
                &admin,
                "cmk",
                &cmk.version,
                WrapAlgorithm::A256Kw,
                &aes_wrapped.wrapped,
            )
            .map(|_| ()),
        "cmk",
        KeyType::Rsa2048,
        WrapAlgorithm::A256Kw,
    );
    for alg in [WrapAlgorithm::RsaOaep256, WrapAlgorithm::RsaOaep] {
        mismatch(
            vault
                .wrap_key(&admin, "pmk", None, alg, &dek(3))
                .map(|_| ()),
            "pmk",
            KeyType::Aes256,
            alg,
        );
        mismatch(
            vault
                .unwrap_key(&admin, "pmk", &pmk.version, alg, &rsa_wrapped.wrapped)
                .map(|_| ()),
            "pmk",
            KeyType::Aes256,
            alg,
        );
    }
}

pub fn tampered_wrapped_key_is_decryption_failed(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let cmk = create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    let other = create(&*vault, &admin, "other", KeyType::Rsa2048);
    let pmk = create(&*vault, &admin, "pmk", KeyType::Aes256);
    let w_rsa = vault.wrap_key(&admin, "cmk", None, rsa, &dek(4)).unwrap();
    let w_aes = vault
        .wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &dek(4))
        .unwrap();

    let cases = |wrapped: &[u8]| {
        let mut out = Vec::new();
        for i in [0, wrapped.len() / 2, wrapped.len() - 1] {
            let mut flipped = wrapped.to_vec();
            flipped[i] ^= 0x01;
            out.push(flipped);
        }
        out.push(wrapped[..wrapped.len() - 1].to_vec());
        let mut longer = wrapped.to_vec();
        longer.push(0);
        out.push(longer);
        out.push(Vec::new());
        out.push(vec![0xff; wrapped.len()]);
        out
    };
    for bad in cases(&w_rsa.wrapped) {
        let err = vault
            .unwrap_key(&admin, "cmk", &cmk.version, rsa, &bad)
            .unwrap_err();
        assert!(matches!(err, VaultError::DecryptionFailed), "{err:?}");
    }
    for bad in cases(&w_aes.wrapped) {
        let err = vault
            .unwrap_key(&admin, "pmk", &pmk.version, WrapAlgorithm::A256Kw, &bad)
            .unwrap_err();
        assert!(matches!(err, VaultError::DecryptionFailed), "{err:?}");
    }
    // Made under another key.
    let err = vault
        .unwrap_key(&admin, "other", &other.version, rsa, &w_rsa.wrapped)
        .unwrap_err();
    assert!(matches!(err, VaultError::DecryptionFailed), "{err:?}");
    // The one error says nothing more.
    assert_eq!(
        err.to_string(),
        "the wrapped key did not unwrap: it was made under another key, or altered"
    );
    // The genuine ones still unwrap.
    assert_eq!(
        vault
            .unwrap_key(&admin, "cmk", &cmk.version, rsa, &w_rsa.wrapped)
            .unwrap()
            .as_slice(),
        dek(4)
    );
}

/// One call that needs `permission` on key `k` (an RSA key with a wrapped
/// DEK `w` under version `v`; `gone` is soft-deleted).
fn call_needing(
    vault: &dyn KeyVault,
    who: &Principal,
    permission: Permission,
    rsa: WrapAlgorithm,
    v: &str,
    w: &[u8],
) -> Result<(), VaultError> {
    match permission {
        Permission::Get => vault.get_key(who, "k", None).map(drop),
        Permission::List => vault.list_versions(who, "k").map(drop),
        Permission::Create => vault
            .create_key(who, "k2", KeyType::Aes256, KeyOptions::default())
            .map(drop),
        Permission::Import => vault
            .import_key(
                who,
                "k3",
                KeyImport::Jwk(
                    r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
                ),
                KeyOptions::default(),
            )
            .map(drop),
        Permission::Update => vault
            .update_key(who, "k", v, AttributeUpdate::default())
            .map(drop),
        Permission::Delete => vault.delete_key(who, "k").map(drop),
        Permission::Recover => vault.recover_key(who, "gone").map(drop),
        Permission::Purge => vault.purge_key(who, "gone"),
        Permission::Rotate => vault.rotate_key(who, "k", KeyOptions::default()).map(drop),
        Permission::WrapKey => vault.wrap_key(who, "k", None, rsa, &dek(1)).map(drop),
        Permission::UnwrapKey => vault.unwrap_key(who, "k", v, rsa, w).map(drop),
        // The secret, backup and restore permissions: see
        // `every_missing_secret_permission_is_denied`.
        _ => Ok(()),
    }
}

const KEYED_CALLS: [(Permission, &str); 11] = [
    (Permission::Get, "k"),
    (Permission::List, "k"),
    (Permission::Create, "k2"),
    (Permission::Import, "k3"),
    (Permission::Update, "k"),
    (Permission::Delete, "k"),
    (Permission::Recover, "gone"),
    (Permission::Purge, "gone"),
    (Permission::Rotate, "k"),
    (Permission::WrapKey, "k"),
    (Permission::UnwrapKey, "k"),
];

pub fn every_missing_permission_is_denied(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let info = create(&*vault, &admin, "k", KeyType::Rsa2048);
    create(&*vault, &admin, "gone", KeyType::Aes256);
    vault.delete_key(&admin, "gone").unwrap();
    let w = vault.wrap_key(&admin, "k", None, rsa, &dek(1)).unwrap();

    for (permission, key) in KEYED_CALLS {
        let who = Principal::new(format!("lacks-{permission}"));
        vault
            .set_access_policy(&who, Permissions::all().without(permission))
            .unwrap();
        let before = vault.audit_log().unwrap().len();
        assert_denied(
            call_needing(&*vault, &who, permission, rsa, &info.version, &w.wrapped),
            &who,
            permission,
            Some(key),
        );
        // The denial is audited, naming the principal, call and key.
        let log = vault.audit_log().unwrap();
        assert_eq!(log.len(), before + 1, "{permission}");
        let entry = log.last().unwrap();
        assert_eq!(entry.principal, who.id());
        assert_eq!(entry.key.as_deref(), Some(key));
        assert!(
            matches!(&entry.outcome, AuditOutcome::Denied(why) if why.contains(permission.name())),
            "{entry:?}"
        );
    }
    // The list calls without a key.
    let who = Principal::new("lacks-list");
    assert_denied(vault.list_keys(&who), &who, Permission::List, None);
    assert_denied(vault.list_deleted_keys(&who), &who, Permission::List, None);
    // Nothing changed: the key is as it was, k2 / k3 were not made, gone is
    // still deleted.
    assert_eq!(vault.get_key(&admin, "k", None).unwrap(), info);
    assert_eq!(vault.list_keys(&admin).unwrap().len(), 1);
    assert_eq!(vault.list_deleted_keys(&admin).unwrap().len(), 1);
    // And with every permission granted, each of those calls goes through.
    for (permission, _) in KEYED_CALLS {
        let result = call_needing(&*vault, &admin, permission, rsa, &info.version, &w.wrapped);
        assert!(
            !matches!(result, Err(VaultError::AccessDenied { .. })),
            "{permission}: {result:?}"
        );
    }
}

pub fn principal_without_policy_is_denied_everything(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let info = create(&*vault, &admin, "k", KeyType::Rsa2048);
    create(&*vault, &admin, "gone", KeyType::Aes256);
    vault.delete_key(&admin, "gone").unwrap();
    let w = vault.wrap_key(&admin, "k", None, rsa, &dek(1)).unwrap();
    let stranger = Principal::new("stranger");
    for (permission, key) in KEYED_CALLS {
        assert_denied(
            call_needing(
                &*vault,
                &stranger,
                permission,
                rsa,
                &info.version,
                &w.wrapped,
            ),
            &stranger,
            permission,
            Some(key),
        );
    }
    // Permissions::NONE removes a policy.
    vault.set_access_policy(&admin, Permissions::NONE).unwrap();
    assert_denied(vault.list_keys(&admin), &admin, Permission::List, None);
}

pub fn revoked_permission_refuses_the_very_next_call(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let info = create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    let identity = Principal::new("backup-vault-7/system");
    vault
        .set_access_policy(&identity, Permissions::key_user())
        .unwrap();
    let w = vault
        .wrap_key(&identity, "cmk", None, rsa, &dek(6))
        .unwrap();
    assert_eq!(
        vault
            .unwrap_key(&identity, "cmk", &w.version, rsa, &w.wrapped)
            .unwrap()
            .as_slice(),
        dek(6)
    );

    vault
        .set_access_policy(
            &identity,
            Permissions::key_user().without(Permission::UnwrapKey),
        )
        .unwrap();
    assert_denied(
        vault.unwrap_key(&identity, "cmk", &w.version, rsa, &w.wrapped),
        &identity,
        Permission::UnwrapKey,
        Some("cmk"),
    );
    // Wrap is still allowed.
    vault
        .wrap_key(&identity, "cmk", None, rsa, &dek(6))
        .unwrap();

    vault
        .set_access_policy(
            &identity,
            Permissions::key_user().without(Permission::WrapKey),
        )
        .unwrap();
    assert_denied(
        vault.wrap_key(&identity, "cmk", None, rsa, &dek(6)),
        &identity,
        Permission::WrapKey,
        Some("cmk"),
    );

    // Restored: works again, with the same wrapped key.
    vault
        .set_access_policy(&identity, Permissions::key_user())
        .unwrap();
    assert_eq!(
        vault
            .unwrap_key(&identity, "cmk", &info.version, rsa, &w.wrapped)
            .unwrap()
            .as_slice(),
        dek(6)
    );
}

pub fn disabled_version_does_nothing_but_get(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    for (name, key_type) in [("cmk", KeyType::Rsa2048), ("pmk", KeyType::Aes256)] {
        let alg = alg_for(key_type, rsa);
        let info = create(&*vault, &admin, name, key_type);
        let w = vault.wrap_key(&admin, name, None, alg, &dek(7)).unwrap();
        let off = AttributeUpdate {
            enabled: Some(false),
            ..AttributeUpdate::default()
        };
        let updated = vault.update_key(&admin, name, &info.version, off).unwrap();
        assert!(!updated.attributes.enabled);

        let disabled = |r: Result<(), VaultError>| match r {
            Err(VaultError::KeyDisabled { name: n, version }) => {
                assert_eq!(n, name);
                assert_eq!(version, info.version);
            }
            other => panic!("expected KeyDisabled, got {other:?}"),
        };
        disabled(
            vault
                .wrap_key(&admin, name, Some(&info.version), alg, &dek(7))
                .map(drop),
        );
        // Versionless: no enabled version left.
        disabled(vault.wrap_key(&admin, name, None, alg, &dek(7)).map(drop));
        disabled(
            vault
                .unwrap_key(&admin, name, &info.version, alg, &w.wrapped)
                .map(drop),
        );
        // Get still shows it (as Azure Key Vault does).
        assert!(
            !vault
                .get_key(&admin, name, None)
                .unwrap()
                .attributes
                .enabled
        );

        let on = AttributeUpdate {
            enabled: Some(true),
            ..AttributeUpdate::default()
        };
        vault.update_key(&admin, name, &info.version, on).unwrap();
        assert_eq!(
            vault
                .unwrap_key(&admin, name, &info.version, alg, &w.wrapped)
                .unwrap()
                .as_slice(),
            dek(7)
        );
    }
}

pub fn expired_version_only_unwraps(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    for (name, key_type) in [("cmk", KeyType::Rsa2048), ("pmk", KeyType::Aes256)] {
        let alg = alg_for(key_type, rsa);
        let expires = clock.now_for_tests() + 100;
        let info = vault
            .create_key(
                &admin,
                name,
                key_type,
                KeyOptions {
                    expires: Some(expires),
                    ..KeyOptions::default()
                },
            )
            .unwrap();
        assert_eq!(info.attributes.expires, Some(expires));
        let w = vault.wrap_key(&admin, name, None, alg, &dek(8)).unwrap();
        clock.set(expires - 1);
        vault.wrap_key(&admin, name, None, alg, &dek(8)).unwrap();
        clock.set(expires);
        match vault.wrap_key(&admin, name, None, alg, &dek(8)) {
            Err(VaultError::KeyExpired {
                name: n,
                version,
                expires: e,
            }) => {
                assert_eq!(
                    (n.as_str(), version.as_str(), e),
                    (name, info.version.as_str(), expires)
                );
            }
            other => panic!("expected KeyExpired, got {other:?}"),
        }
        // Unwrap still works after expiry.
        clock.advance(1_000_000);
        assert_eq!(
            vault
                .unwrap_key(&admin, name, &w.version, alg, &w.wrapped)
                .unwrap()
                .as_slice(),
            dek(8)
        );
    }
}

pub fn not_yet_valid_version_only_unwraps(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    for (name, key_type) in [("cmk", KeyType::Rsa2048), ("pmk", KeyType::Aes256)] {
        let alg = alg_for(key_type, rsa);
        let info = create(&*vault, &admin, name, key_type);
        let w = vault.wrap_key(&admin, name, None, alg, &dek(9)).unwrap();
        let not_before = clock.now_for_tests() + 500;
        vault
            .update_key(
                &admin,
                name,
                &info.version,
                AttributeUpdate {
                    not_before: Some(Some(not_before)),
                    ..AttributeUpdate::default()
                },
            )
            .unwrap();
        match vault.wrap_key(&admin, name, None, alg, &dek(9)) {
            Err(VaultError::KeyNotYetValid {
                name: n,
                version,
                not_before: nb,
            }) => assert_eq!(
                (n.as_str(), version.as_str(), nb),
                (name, info.version.as_str(), not_before)
            ),
            other => panic!("expected KeyNotYetValid, got {other:?}"),
        }
        assert_eq!(
            vault
                .unwrap_key(&admin, name, &info.version, alg, &w.wrapped)
                .unwrap()
                .as_slice(),
            dek(9)
        );
        clock.set(not_before);
        vault.wrap_key(&admin, name, None, alg, &dek(9)).unwrap();
    }
    // A key created with a future not-before.
    let later = clock.now_for_tests() + 60;
    vault
        .create_key(
            &admin,
            "later",
            KeyType::Aes256,
            KeyOptions {
                not_before: Some(later),
                ..KeyOptions::default()
            },
        )
        .unwrap();
    assert!(matches!(
        vault.wrap_key(&admin, "later", None, WrapAlgorithm::A256Kw, &dek(9)),
        Err(VaultError::KeyNotYetValid { .. })
    ));
}

pub fn operations_not_permitted_are_refused(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let info = vault
        .create_key(
            &admin,
            "wrap-only",
            KeyType::Rsa2048,
            KeyOptions {
                operations: vec![KeyOperation::WrapKey],
                ..KeyOptions::default()
            },
        )
        .unwrap();
    let w = vault
        .wrap_key(&admin, "wrap-only", None, rsa, &dek(1))
        .unwrap();
    match vault.unwrap_key(&admin, "wrap-only", &info.version, rsa, &w.wrapped) {
        Err(VaultError::OperationNotPermitted {
            name,
            version,
            operation,
        }) => {
            assert_eq!(name, "wrap-only");
            assert_eq!(version, info.version);
            assert_eq!(operation, KeyOperation::UnwrapKey);
        }
        other => panic!("expected OperationNotPermitted, got {other:?}"),
    }
    vault
        .update_key(
            &admin,
            "wrap-only",
            &info.version,
            AttributeUpdate {
                operations: Some(vec![KeyOperation::UnwrapKey]),
                ..AttributeUpdate::default()
            },
        )
        .unwrap();
    assert!(matches!(
        vault.wrap_key(&admin, "wrap-only", None, rsa, &dek(1)),
        Err(VaultError::OperationNotPermitted {
            operation: KeyOperation::WrapKey,
            ..
        })
    ));
    assert_eq!(
        vault
            .unwrap_key(&admin, "wrap-only", &info.version, rsa, &w.wrapped)
            .unwrap()
            .as_slice(),
        dek(1)
    );
}

pub fn update_attributes(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    let info = create(&*vault, &admin, "k", KeyType::Aes256);
    clock.advance(42);
    let tags: BTreeMap<String, String> = [("owner".to_owned(), "backup".to_owned())].into();
    let updated = vault
        .update_key(
            &admin,
            "k",
            &info.version,
            AttributeUpdate {
                tags: Some(tags.clone()),
                expires: Some(Some(T0 + 10_000)),
                operations: Some(vec![
                    KeyOperation::UnwrapKey,
                    KeyOperation::WrapKey,
                    KeyOperation::WrapKey,
                ]),
                ..AttributeUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(updated.attributes.tags, tags);
    assert_eq!(updated.attributes.expires, Some(T0 + 10_000));
    assert_eq!(
        updated.attributes.operations,
        [KeyOperation::WrapKey, KeyOperation::UnwrapKey]
    );
    assert_eq!(updated.attributes.created, T0);
    assert_eq!(updated.attributes.updated, T0 + 42);
    assert_eq!(vault.get_key(&admin, "k", None).unwrap(), updated);
    // Clearing a field.
    let cleared = vault
        .update_key(
            &admin,
            "k",
            &info.version,
            AttributeUpdate {
                expires: Some(None),
                ..AttributeUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(cleared.attributes.expires, None);
    assert_eq!(cleared.attributes.tags, tags);
    // not-before must come before expires; a refused update changes nothing.
    let bad = AttributeUpdate {
        not_before: Some(Some(T0 + 100)),
        expires: Some(Some(T0 + 100)),
        ..AttributeUpdate::default()
    };
    assert!(matches!(
        vault.update_key(&admin, "k", &info.version, bad),
        Err(VaultError::InvalidArgument { .. })
    ));
    assert_eq!(vault.get_key(&admin, "k", None).unwrap(), cleared);
    let bad = KeyOptions {
        not_before: Some(T0 + 100),
        expires: Some(T0 + 50),
        ..KeyOptions::default()
    };
    assert!(matches!(
        vault.create_key(&admin, "k2", KeyType::Aes256, bad),
        Err(VaultError::InvalidArgument { .. })
    ));
}

pub fn rotation_and_versionless_references(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    let v1 = create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    let w1 = vault.wrap_key(&admin, "cmk", None, rsa, &dek(1)).unwrap();
    clock.advance(10);
    let v2 = vault
        .rotate_key(&admin, "cmk", KeyOptions::default())
        .unwrap();
    assert_ne!(v2.version, v1.version);
    assert_eq!(v2.key_type, KeyType::Rsa2048);
    assert_ne!(v2.public, v1.public, "a rotation makes a new key");
    assert_eq!(v2.attributes.created, T0 + 10);
    assert_eq!(vault.get_key(&admin, "cmk", None).unwrap(), v2);
    assert_eq!(
        vault.list_versions(&admin, "cmk").unwrap(),
        [v1.clone(), v2.clone()]
    );
    assert_eq!(vault.list_keys(&admin).unwrap(), std::slice::from_ref(&v2));

    // Versionless follows the latest enabled version.
    let w2 = vault.wrap_key(&admin, "cmk", None, rsa, &dek(2)).unwrap();
    assert_eq!(w2.version, v2.version);
    // The old version still unwraps what it wrapped; each version only its own.
    assert_eq!(
        vault
            .unwrap_key(&admin, "cmk", &v1.version, rsa, &w1.wrapped)
            .unwrap()
            .as_slice(),
        dek(1)
    );
    assert!(matches!(
        vault.unwrap_key(&admin, "cmk", &v2.version, rsa, &w1.wrapped),
        Err(VaultError::DecryptionFailed)
    ));
    // An explicit old version still wraps.
    let w1b = vault
        .wrap_key(&admin, "cmk", Some(&v1.version), rsa, &dek(3))
        .unwrap();
    assert_eq!(w1b.version, v1.version);

    // Disable the latest: versionless falls back to the latest enabled.
    vault
        .update_key(
            &admin,
            "cmk",
            &v2.version,
            AttributeUpdate {
                enabled: Some(false),
                ..AttributeUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(
        vault
            .wrap_key(&admin, "cmk", None, rsa, &dek(4))
            .unwrap()
            .version,
        v1.version
    );
    // A new version made disabled is not picked either.
    let v3 = vault
        .rotate_key(
            &admin,
            "cmk",
            KeyOptions {
                enabled: false,
                ..KeyOptions::default()
            },
        )
        .unwrap();
    assert!(!v3.attributes.enabled);
    assert_eq!(
        vault
            .wrap_key(&admin, "cmk", None, rsa, &dek(4))
            .unwrap()
            .version,
        v1.version
    );
    // AES rotation too.
    let a1 = create(&*vault, &admin, "pmk", KeyType::Aes256);
    let aw = vault
        .wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &dek(5))
        .unwrap();
    let a2 = vault
        .rotate_key(&admin, "pmk", KeyOptions::default())
        .unwrap();
    assert_eq!(a2.key_type, KeyType::Aes256);
    assert_eq!(
        vault
            .wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &dek(5))
            .unwrap()
            .version,
        a2.version
    );
    assert_eq!(
        vault
            .unwrap_key(
                &admin,
                "pmk",
                &a1.version,
                WrapAlgorithm::A256Kw,
                &aw.wrapped
            )
            .unwrap()
            .as_slice(),
        dek(5)
    );
    assert!(matches!(
        vault.unwrap_key(
            &admin,
            "pmk",
            &a2.version,
            WrapAlgorithm::A256Kw,
            &aw.wrapped
        ),
        Err(VaultError::DecryptionFailed)
    ));
}

pub fn unknown_version_is_not_found(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let info = create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    let w = vault.wrap_key(&admin, "cmk", None, rsa, &dek(1)).unwrap();
    let absent = "0123456789abcdef0123456789abcdef";
    assert_ne!(absent, info.version);
    assert!(matches!(
        vault.unwrap_key(&admin, "cmk", absent, rsa, &w.wrapped),
        Err(VaultError::KeyNotFound { version: Some(v), .. }) if v == absent
    ));
    assert!(matches!(
        vault.get_key(&admin, "cmk", Some(absent)),
        Err(VaultError::KeyNotFound {
            version: Some(_),
            ..
        })
    ));
    assert!(matches!(
        vault.wrap_key(&admin, "cmk", Some(absent), rsa, &dek(1)),
        Err(VaultError::KeyNotFound {
            version: Some(_),
            ..
        })
    ));
    for malformed in ["", "v1", "0123456789ABCDEF0123456789ABCDEF"] {
        assert!(matches!(
            vault.unwrap_key(&admin, "cmk", malformed, rsa, &w.wrapped),
            Err(VaultError::InvalidArgument { .. })
        ));
    }
}

pub fn soft_delete_and_recover(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    let info = create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    let w = vault.wrap_key(&admin, "cmk", None, rsa, &dek(1)).unwrap();
    clock.advance(5);
    let deleted = vault.delete_key(&admin, "cmk").unwrap();
    assert_eq!(deleted.name, "cmk");
    assert_eq!(deleted.deleted, T0 + 5);
    assert_eq!(deleted.scheduled_purge, T0 + 5 + RETENTION);
    assert_eq!(deleted.latest, info);
    assert_eq!(
        vault.list_deleted_keys(&admin).unwrap(),
        std::slice::from_ref(&deleted)
    );
    assert!(vault.list_keys(&admin).unwrap().is_empty());

    let is_deleted = |r: Result<(), VaultError>| match r {
        Err(VaultError::KeyDeleted {
            name,
            scheduled_purge,
        }) => {
            assert_eq!(name, "cmk");
            assert_eq!(scheduled_purge, T0 + 5 + RETENTION);
        }
        other => panic!("expected KeyDeleted, got {other:?}"),
    };
    is_deleted(vault.get_key(&admin, "cmk", None).map(drop));
    is_deleted(vault.list_versions(&admin, "cmk").map(drop));
    is_deleted(vault.wrap_key(&admin, "cmk", None, rsa, &dek(1)).map(drop));
    is_deleted(
        vault
            .unwrap_key(&admin, "cmk", &info.version, rsa, &w.wrapped)
            .map(drop),
    );
    is_deleted(
        vault
            .rotate_key(&admin, "cmk", KeyOptions::default())
            .map(drop),
    );
    is_deleted(vault.delete_key(&admin, "cmk").map(drop));
    is_deleted(
        vault
            .update_key(&admin, "cmk", &info.version, AttributeUpdate::default())
            .map(drop),
    );

    clock.advance(RETENTION - 10);
    let recovered = vault.recover_key(&admin, "cmk").unwrap();
    assert_eq!(recovered, info);
    assert!(vault.list_deleted_keys(&admin).unwrap().is_empty());
    assert_eq!(
        vault
            .unwrap_key(&admin, "cmk", &info.version, rsa, &w.wrapped)
            .unwrap()
            .as_slice(),
        dek(1)
    );
    // Recovering a key that is not deleted, or never existed.
    assert!(matches!(
        vault.recover_key(&admin, "cmk"),
        Err(VaultError::InvalidArgument { .. })
    ));
    assert!(matches!(
        vault.recover_key(&admin, "never"),
        Err(VaultError::KeyNotFound { .. })
    ));
    assert!(matches!(
        vault.delete_key(&admin, "never"),
        Err(VaultError::KeyNotFound { .. })
    ));
}

fn assert_purged<T: core::fmt::Debug>(result: Result<T, VaultError>, name: &str) {
    match result {
        Err(err @ VaultError::KeyPurged { .. }) => {
            let message = err.to_string();
            assert!(
                message.contains(name) && message.contains("purged"),
                "{message}"
            );
            assert!(message.contains("cannot be recovered"), "{message}");
        }
        other => panic!("expected KeyPurged, got {other:?}"),
    }
}

pub fn purge_without_protection(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    let info = create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    let w = vault.wrap_key(&admin, "cmk", None, rsa, &dek(1)).unwrap();
    // Purge needs a deleted key.
    assert!(matches!(
        vault.purge_key(&admin, "cmk"),
        Err(VaultError::InvalidArgument { .. })
    ));
    assert!(matches!(
        vault.purge_key(&admin, "never"),
        Err(VaultError::KeyNotFound { .. })
    ));
    vault.delete_key(&admin, "cmk").unwrap();
    clock.advance(1);
    // Without purge protection: at any time.
    vault.purge_key(&admin, "cmk").unwrap();
    assert!(vault.list_deleted_keys(&admin).unwrap().is_empty());
    assert_purged(vault.get_key(&admin, "cmk", None), "cmk");
    assert_purged(vault.wrap_key(&admin, "cmk", None, rsa, &dek(1)), "cmk");
    assert_purged(
        vault.unwrap_key(&admin, "cmk", &info.version, rsa, &w.wrapped),
        "cmk",
    );
    assert_purged(vault.recover_key(&admin, "cmk"), "cmk");
    assert_purged(vault.purge_key(&admin, "cmk"), "cmk");
    match vault.get_key(&admin, "cmk", None) {
        Err(VaultError::KeyPurged { purged, .. }) => assert_eq!(purged, T0 + 1),
        other => panic!("{other:?}"),
    }
    // The name is free again; the new key is a new key.
    let again = create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    assert_ne!(again.public, info.public);
    assert!(matches!(
        vault.unwrap_key(&admin, "cmk", &info.version, rsa, &w.wrapped),
        Err(VaultError::KeyNotFound { .. })
    ));
}

pub fn purge_protection_refuses_until_retention_ends(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    vault.enable_purge_protection().unwrap();
    assert!(vault.properties().unwrap().purge_protection);
    // Turning it on again is harmless; it never goes off.
    vault.enable_purge_protection().unwrap();
    assert!(vault.properties().unwrap().purge_protection);

    create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    let w = vault.wrap_key(&admin, "cmk", None, rsa, &dek(1)).unwrap();
    let deleted = vault.delete_key(&admin, "cmk").unwrap();
    for step in [0, 1, RETENTION - 2] {
        clock.set(deleted.deleted + step);
        match vault.purge_key(&admin, "cmk") {
            Err(err @ VaultError::PurgeProtected { .. }) => {
                assert!(err.to_string().contains("cmk"));
                let VaultError::PurgeProtected { name, until } = err else {
                    unreachable!()
                };
                assert_eq!(name, "cmk");
                assert_eq!(until, deleted.scheduled_purge);
            }
            other => panic!("expected PurgeProtected, got {other:?}"),
        }
    }
    // Still recoverable meanwhile.
    vault.recover_key(&admin, "cmk").unwrap();
    assert_eq!(
        vault
            .unwrap_key(&admin, "cmk", &w.version, rsa, &w.wrapped)
            .unwrap()
            .as_slice(),
        dek(1)
    );
    // Deleted again; once retention ended the vault purges it itself.
    let deleted = vault.delete_key(&admin, "cmk").unwrap();
    clock.set(deleted.scheduled_purge);
    assert_purged(vault.purge_key(&admin, "cmk"), "cmk");
    assert_purged(vault.get_key(&admin, "cmk", None), "cmk");
}

pub fn deleted_keys_are_purged_when_retention_ends(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    create(&*vault, &admin, "a", KeyType::Aes256);
    create(&*vault, &admin, "b", KeyType::Rsa2048);
    let keep = create(&*vault, &admin, "keep", KeyType::Aes256);
    let da = vault.delete_key(&admin, "a").unwrap();
    clock.advance(100);
    let db = vault.delete_key(&admin, "b").unwrap();

    clock.set(da.scheduled_purge - 1);
    assert_eq!(vault.list_deleted_keys(&admin).unwrap().len(), 2);
    clock.set(da.scheduled_purge);
    // The next call of any kind (here a denied one) triggers the purge.
    let stranger = Principal::new("stranger");
    assert!(vault.list_keys(&stranger).is_err());
    let deleted = vault.list_deleted_keys(&admin).unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].name, "b");
    assert_purged(vault.recover_key(&admin, "a"), "a");
    // The vault's own purge is in the audit log.
    let log = vault.audit_log().unwrap();
    assert!(log.iter().any(|e| e.principal == "(vault)"
        && e.key.as_deref() == Some("a")
        && e.operation.contains("purge")));
    clock.set(db.scheduled_purge);
    assert!(matches!(
        vault.wrap_key(&admin, "b", None, rsa, &dek(1)),
        Err(VaultError::KeyPurged { .. })
    ));
    assert_eq!(vault.list_keys(&admin).unwrap(), [keep]);
    vault.verify_audit_log().unwrap();
}

pub fn import_pkcs8_der_and_pem(make: Make<'_>, rsa: WrapAlgorithm) {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let (vault, _clock, admin) = with_admin(make);
    let key = outside_rsa_key(2048);
    let der = key.to_pkcs8_der().unwrap();
    let info = vault
        .import_key(
            &admin,
            "byok",
            KeyImport::Pkcs8Der(der.as_bytes()),
            KeyOptions::default(),
        )
        .unwrap();
    assert_eq!(info.key_type, KeyType::Rsa2048);
    let public = info.public.as_ref().unwrap();
    assert_eq!(public.n, key.n_bytes().as_ref());
    assert_eq!(public.e, key.e_bytes().as_ref());
    // Wrapped outside with the key we kept; unwrapped inside.
    let wrapped = wrap_outside(&info, rsa, &dek(3));
    assert_eq!(
        vault
            .unwrap_key(&admin, "byok", &info.version, rsa, &wrapped)
            .unwrap()
            .as_slice(),
        dek(3)
    );

    // PEM, as a second version of the same key.
    let other = outside_rsa_key(2048);
    let pem = other.to_pkcs8_pem(LineEnding::LF).unwrap();
    let v2 = vault
        .import_key(
            &admin,
            "byok",
            KeyImport::Pkcs8Pem(&pem),
            KeyOptions::default(),
        )
        .unwrap();
    assert_eq!(v2.name, "byok");
    assert_ne!(v2.version, info.version);
    assert_eq!(v2.public.as_ref().unwrap().n, other.n_bytes().as_ref());
    assert_eq!(vault.list_versions(&admin, "byok").unwrap().len(), 2);
    let w = vault.wrap_key(&admin, "byok", None, rsa, &dek(4)).unwrap();
    assert_eq!(w.version, v2.version);
    let plain = match rsa {
        WrapAlgorithm::RsaOaep256 => other.oaep_decrypt::<sha2::Sha256>(&w.wrapped),
        _ => other.oaep_decrypt::<sha1::Sha1>(&w.wrapped),
    }
    .unwrap();
    assert_eq!(plain, dek(4), "the vault wrapped under the imported key");
    // Rotating an imported key makes a vault-generated version.
    let v3 = vault
        .rotate_key(&admin, "byok", KeyOptions::default())
        .unwrap();
    assert_ne!(v3.public, v2.public);
}

pub fn import_jwk_rsa_and_oct(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let key = outside_rsa_key(2048);
    let jwk = rsa_jwk(&key);
    let info = vault
        .import_key(
            &admin,
            "jwk-rsa",
            KeyImport::Jwk(&jwk),
            KeyOptions::default(),
        )
        .unwrap();
    assert_eq!(info.key_type, KeyType::Rsa2048);
    let wrapped = wrap_outside(&info, rsa, &dek(5));
    assert_eq!(
        vault
            .unwrap_key(&admin, "jwk-rsa", &info.version, rsa, &wrapped)
            .unwrap()
            .as_slice(),
        dek(5)
    );

    let secret = [0x42u8; 32];
    let oct = serde_json::json!({"kty": "oct", "k": b64(&secret), "alg": "A256KW"}).to_string();
    let info = vault
        .import_key(
            &admin,
            "jwk-aes",
            KeyImport::Jwk(&oct),
            KeyOptions::default(),
        )
        .unwrap();
    assert_eq!(info.key_type, KeyType::Aes256);
    assert!(info.public.is_none());
    let w = vault
        .wrap_key(&admin, "jwk-aes", None, WrapAlgorithm::A256Kw, &dek(6))
        .unwrap();
    // The vault wrapped under exactly the imported key (RFC 3394).
    let local = strongroom_aes::kw::Aes256Kw::new(&strongroom_aes::Aes256Key::from_bytes(secret));
    assert_eq!(local.unwrap(&w.wrapped).unwrap().as_slice(), dek(6));
    let outside = local.wrap(&dek(7)).unwrap();
    assert_eq!(
        vault
            .unwrap_key(
                &admin,
                "jwk-aes",
                &w.version,
                WrapAlgorithm::A256Kw,
                &outside
            )
            .unwrap()
            .as_slice(),
        dek(7)
    );
    // Importing an AES key under an RSA key's name is refused.
    assert!(matches!(
        vault.import_key(
            &admin,
            "jwk-rsa",
            KeyImport::Jwk(&oct),
            KeyOptions::default()
        ),
        Err(VaultError::InvalidKeyMaterial { .. })
    ));
    // So is importing over a deleted key.
    vault.delete_key(&admin, "jwk-aes").unwrap();
    assert!(matches!(
        vault.import_key(
            &admin,
            "jwk-aes",
            KeyImport::Jwk(&oct),
            KeyOptions::default()
        ),
        Err(VaultError::KeyExists { deleted: true, .. })
    ));
}

pub fn import_refuses_bad_material(make: Make<'_>, _rsa: WrapAlgorithm) {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let (vault, _clock, admin) = with_admin(make);
    let small = outside_rsa_key(1024);
    let small_der = small.to_pkcs8_der().unwrap();
    let small_pem = small.to_pkcs8_pem(LineEnding::LF).unwrap();
    let small_jwk = rsa_jwk(&small);
    let good = outside_rsa_key(2048);
    let good_jwk: serde_json::Value = serde_json::from_str(&rsa_jwk(&good)).unwrap();
    let mut der = good.to_pkcs8_der().unwrap().as_bytes().to_vec();
    der[100] ^= 1; // inside the modulus: n is no longer p * q
    let mut wrong_dp = good_jwk.clone();
    wrong_dp["dp"] = serde_json::Value::String(b64(&[3u8; 128]));
    let mut wrong_d = good_jwk.clone();
    wrong_d["d"] = serde_json::Value::String(b64(&[5u8; 256]));
    let mut missing_q = good_jwk.clone();
    missing_q.as_object_mut().unwrap().remove("q");
    let mut padded = good_jwk.clone();
    padded["n"] = serde_json::Value::String(format!("{}=", good_jwk["n"].as_str().unwrap()));
    let wrong_dp = wrong_dp.to_string();
    let wrong_d = wrong_d.to_string();
    let missing_q = missing_q.to_string();
    let padded = padded.to_string();
    let short_oct = serde_json::json!({"kty": "oct", "k": b64(&[1u8; 16])}).to_string();
    let long_oct = serde_json::json!({"kty": "oct", "k": b64(&[1u8; 64])}).to_string();
    let ec = r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}"#;
    let secret_marker = "c2VjcmV0LWtleS1ieXRlcw"; // must never be echoed

    let cases: Vec<(&str, KeyImport<'_>)> = vec![
        ("1024-bit DER", KeyImport::Pkcs8Der(small_der.as_bytes())),
        ("1024-bit PEM", KeyImport::Pkcs8Pem(&small_pem)),
        ("1024-bit JWK", KeyImport::Jwk(&small_jwk)),
        ("garbage DER", KeyImport::Pkcs8Der(b"\x30\x03\x02\x01\x00")),
        ("empty DER", KeyImport::Pkcs8Der(b"")),
        ("altered DER", KeyImport::Pkcs8Der(&der)),
        (
            "garbage PEM",
            KeyImport::Pkcs8Pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        ),
        ("JWK wrong dp", KeyImport::Jwk(&wrong_dp)),
        ("JWK wrong d", KeyImport::Jwk(&wrong_d)),
        ("JWK missing q", KeyImport::Jwk(&missing_q)),
        ("JWK padded base64", KeyImport::Jwk(&padded)),
        ("16-byte oct", KeyImport::Jwk(&short_oct)),
        ("64-byte oct", KeyImport::Jwk(&long_oct)),
        ("EC JWK", KeyImport::Jwk(ec)),
        (
            "not JSON",
            KeyImport::Jwk("{\"kty\":\"oct\",\"k\":\"c2VjcmV0LWtleS1ieXRlcw\""),
        ),
        (
            "k not a string",
            KeyImport::Jwk("{\"kty\":\"oct\",\"k\":[\"c2VjcmV0LWtleS1ieXRlcw\"]}"),
        ),
    ];
    for (what, import) in cases {
        match vault.import_key(&admin, "byok", import, KeyOptions::default()) {
            Err(err @ VaultError::InvalidKeyMaterial { .. }) => {
                let message = err.to_string();
                assert!(!message.contains(secret_marker), "{what}: echoed {message}");
                assert!(!message.contains("AAAA"), "{what}: echoed {message}");
            }
            other => panic!("{what}: expected InvalidKeyMaterial, got {other:?}"),
        }
    }
    assert!(matches!(
        vault.get_key(&admin, "byok", None),
        Err(VaultError::KeyNotFound { .. })
    ));
    // Debug of an import never shows the bytes.
    assert_eq!(
        format!("{:?}", KeyImport::Jwk(&small_jwk)),
        "KeyImport::Jwk(..)"
    );
}

pub fn get_and_list_never_show_private_material(make: Make<'_>, rsa: WrapAlgorithm) {
    use rsa::traits::PrivateKeyParts;
    let (vault, _clock, admin) = with_admin(make);
    let key = outside_rsa_key(2048);
    let info = vault
        .import_key(
            &admin,
            "byok",
            KeyImport::Jwk(&rsa_jwk(&key)),
            KeyOptions::default(),
        )
        .unwrap();
    let secret = [0x5au8; 32];
    let oct = serde_json::json!({"kty": "oct", "k": b64(&secret)}).to_string();
    vault
        .import_key(&admin, "aes", KeyImport::Jwk(&oct), KeyOptions::default())
        .unwrap();
    vault.wrap_key(&admin, "byok", None, rsa, &dek(1)).unwrap();
    vault.delete_key(&admin, "aes").unwrap();

    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let d = be(key.d());
    let p = be(key.primes()[0].as_ref());
    let shown = format!(
        "{:?}{:?}{:?}{:?}{:?}",
        info,
        vault.get_key(&admin, "byok", None).unwrap(),
        vault.list_keys(&admin).unwrap(),
        vault.list_versions(&admin, "byok").unwrap(),
        vault.list_deleted_keys(&admin).unwrap(),
    ) + &format!("{:?}", vault.audit_log().unwrap());
    for secret_hex in [hex(&d[..16]), hex(&p[..16]), hex(&secret[..16])] {
        assert!(!shown.contains(&secret_hex), "private material shown");
    }
    // The decimal Debug form of the bytes, too.
    assert!(!shown.contains(&format!("{:?}", &secret[..8])));
}

pub fn audit_records_allowed_denied_and_failed_calls(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    let info = create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    clock.advance(7);
    let w = vault.wrap_key(&admin, "cmk", None, rsa, &dek(1)).unwrap();
    let stranger = Principal::new("stranger");
    assert!(
        vault
            .unwrap_key(&stranger, "cmk", &w.version, rsa, &w.wrapped)
            .is_err()
    );
    let mut bad = w.wrapped.clone();
    bad[3] ^= 1;
    assert!(
        vault
            .unwrap_key(&admin, "cmk", &w.version, rsa, &bad)
            .is_err()
    );
    vault
        .unwrap_key(&admin, "cmk", &w.version, rsa, &w.wrapped)
        .unwrap();

    let log = vault.audit_log().unwrap();
    // set policy, create, wrap, denied unwrap, failed unwrap, unwrap.
    assert_eq!(log.len(), 6, "{log:#?}");
    for (i, entry) in log.iter().enumerate() {
        assert_eq!(entry.seq, i as u64 + 1);
    }
    assert_eq!(log[0].principal, "(management)");
    assert!(log[0].operation.starts_with("setAccessPolicy"));
    assert!(log[0].operation.contains(admin.id()));
    assert_eq!(log[0].outcome, AuditOutcome::Allowed);

    assert_eq!(log[1].principal, admin.id());
    assert_eq!(log[1].operation, "create");
    assert_eq!(log[1].key.as_deref(), Some("cmk"));
    assert_eq!(log[1].version.as_deref(), Some(info.version.as_str()));
    assert_eq!(log[1].time, T0);

    assert_eq!(log[2].operation, "wrapKey");
    assert_eq!(log[2].version.as_deref(), Some(info.version.as_str()));
    assert_eq!(log[2].time, T0 + 7);
    assert_eq!(log[2].outcome, AuditOutcome::Allowed);

    assert_eq!(log[3].principal, "stranger");
    assert_eq!(log[3].operation, "unwrapKey");
    assert_eq!(log[3].key.as_deref(), Some("cmk"));
    assert!(matches!(&log[3].outcome, AuditOutcome::Denied(why) if why.contains("unwrapKey")));

    assert_eq!(log[4].operation, "unwrapKey");
    assert!(matches!(&log[4].outcome, AuditOutcome::Failed(why) if why.contains("did not unwrap")));
    assert_eq!(log[4].version.as_deref(), Some(info.version.as_str()));

    assert_eq!(log[5].outcome, AuditOutcome::Allowed);
    vault.verify_audit_log().unwrap();

    // Management calls are audited too.
    vault.enable_purge_protection().unwrap();
    let log = vault.audit_log().unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.principal, "(management)");
    assert_eq!(last.operation, "enablePurgeProtection");
    // Reading the log does not add to it.
    assert_eq!(vault.audit_log().unwrap().len(), log.len());
    vault.verify_audit_log().unwrap();
}

pub fn audit_verification_detects_tampering(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    for i in 0..3 {
        vault.wrap_key(&admin, "cmk", None, rsa, &dek(i)).unwrap();
    }
    assert!(vault.get_key(&Principal::new("x"), "cmk", None).is_err());
    let log = vault.audit_log().unwrap();
    assert_eq!(log.len(), 6);
    vault.verify_audit_entries(&log).unwrap();
    vault.verify_audit_log().unwrap();

    let check = |tampered: Vec<AuditEntry>, at: usize, what: &str| {
        assert_eq!(
            tampered_at(vault.verify_audit_entries(&tampered), what),
            at,
            "{what}"
        );
    };
    // Edited: each field of an entry.
    let mut edited = log.clone();
    edited[2].principal = "someone-else".into();
    check(edited, 2, "principal edited");
    let mut edited = log.clone();
    edited[5].outcome = AuditOutcome::Allowed;
    check(edited, 5, "outcome edited");
    let mut edited = log.clone();
    edited[1].time += 1;
    check(edited, 1, "time edited");
    let mut edited = log.clone();
    edited[3].version = None;
    check(edited, 3, "version edited");
    let mut edited = log.clone();
    edited[3].key = Some("other".into());
    check(edited, 3, "key edited");
    let mut edited = log.clone();
    edited[3].operation = "get".into();
    check(edited, 3, "operation edited");
    // Removed.
    let mut removed = log.clone();
    removed.remove(2);
    check(removed, 2, "entry removed");
    let mut removed = log.clone();
    removed.remove(0);
    check(removed, 0, "first entry removed");
    // Reordered.
    let mut reordered = log.clone();
    reordered.swap(2, 3);
    check(reordered, 2, "entries swapped");
    // Inserted (a copy of an entry).
    let mut inserted = log.clone();
    inserted.insert(4, log[3].clone());
    check(inserted, 4, "entry duplicated");
    // Truncated: the head catches it.
    let mut truncated = log.clone();
    truncated.truncate(4);
    check(truncated, 4, "tail cut");
    check(Vec::new(), 0, "everything removed");
    // Forged: a well-formed entry appended, inserted or rewritten by
    // someone without the vault's key. It links and is numbered right; only
    // its MAC (any value: here the one of the entry it copies) gives it away.
    let mut forged = log.clone();
    let mut fake = log[5].clone();
    fake.seq = 7;
    fake.prev = log[5].mac.clone();
    fake.principal = "admin".into();
    fake.operation = "unwrapKey".into();
    fake.outcome = AuditOutcome::Allowed;
    forged.push(fake);
    check(forged, 6, "forged entry appended");
    let mut forged = log.clone();
    forged[5].outcome = AuditOutcome::Allowed;
    let relinked = forged[5].mac.clone();
    forged[5].mac = relinked.iter().map(|b| b ^ 1).collect();
    check(forged, 5, "entry rewritten with a new MAC");
    let mut forged = log.clone();
    let mut fake = log[2].clone();
    fake.principal = "mallory".into();
    forged.insert(3, fake);
    for (i, e) in forged.iter_mut().enumerate().skip(3) {
        e.seq = i as u64 + 1;
    }
    check(forged, 3, "forged entry inserted");
    // The export is the verified log, one JSON entry per line.
    let export = vault.export_audit_log().unwrap();
    let exported: Vec<AuditEntry> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported, vault.audit_log().unwrap());
}

pub fn concurrent_wrap_unwrap(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    create(&*vault, &admin, "pmk", KeyType::Aes256);
    let vault: &dyn KeyVault = &*vault;
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let admin = admin.clone();
            s.spawn(move || {
                for i in 0..3u8 {
                    for (name, alg) in [("cmk", rsa), ("pmk", WrapAlgorithm::A256Kw)] {
                        let d = dek(t * 16 + i);
                        let w = vault.wrap_key(&admin, name, None, alg, &d).unwrap();
                        let back = vault
                            .unwrap_key(&admin, name, &w.version, alg, &w.wrapped)
                            .unwrap();
                        assert_eq!(back.as_slice(), d);
                    }
                }
            });
        }
    });
    let log = vault.audit_log().unwrap();
    assert_eq!(log.len(), 3 + 4 * 3 * 2 * 2);
    vault.verify_audit_log().unwrap();
}

/// Reads a [`ManualClock`] (the `Clock` trait, without importing it in
/// every test).
pub trait NowForTests {
    fn now_for_tests(&self) -> u64;
}

impl NowForTests for ManualClock {
    fn now_for_tests(&self) -> u64 {
        strongroom_keyvault::Clock::now(self)
    }
}

/// Asserts `result` is [`VaultError::LimitExceeded`] for `what`, with
/// `limit`.
#[track_caller]
pub fn assert_limit<T: core::fmt::Debug>(result: Result<T, VaultError>, what: &str, limit: usize) {
    match result {
        Err(VaultError::LimitExceeded {
            what: w,
            limit: l,
            found,
        }) => {
            assert_eq!((w, l), (what, limit));
            assert!(found > limit);
        }
        other => panic!("expected LimitExceeded for {what}, got {other:?}"),
    }
}

/// Issue 11, finding 2: every caller-supplied field is bounded, refused
/// with a typed error naming the limit before anything is written, and
/// the audit log of the refusal stays small: a 2 MiB principal id (no
/// permissions at all) or a 65 MiB tag (a principal with only `update`)
/// leave the log and the state readable for everyone else.
pub fn caller_input_is_bounded(make: Make<'_>, _rsa: WrapAlgorithm) {
    use strongroom_keyvault::limits;
    let (vault, _, admin) = with_admin(make);
    let info = create(vault.as_ref(), &admin, "cmk", KeyType::Aes256);
    let updater = Principal::new("updater");
    vault
        .set_access_policy(&updater, Permissions::NONE.with(Permission::Update))
        .unwrap();

    // A caller with no permission and a 2 MiB principal id.
    let huge = Principal::new("p".repeat(2 << 20));
    assert_limit(
        vault.get_key(&huge, "cmk", None),
        "bytes in a principal id",
        limits::MAX_PRINCIPAL_ID_BYTES,
    );
    assert_limit(
        vault.set_access_policy(&huge, Permissions::all()),
        "bytes in a principal id",
        limits::MAX_PRINCIPAL_ID_BYTES,
    );
    assert_eq!(vault.access_policy(&huge).unwrap(), Permissions::NONE);
    // At the limit it is an ordinary caller (denied: no policy).
    let longest = Principal::new("q".repeat(limits::MAX_PRINCIPAL_ID_BYTES));
    assert_denied(
        vault.get_key(&longest, "cmk", None),
        &longest,
        Permission::Get,
        Some("cmk"),
    );

    // A principal with only `update` sets a 65 MiB tag, then 16 tags.
    let big: BTreeMap<String, String> = [("t".to_owned(), "v".repeat(65 << 20))].into();
    let update = |tags: BTreeMap<String, String>| {
        vault.update_key(
            &updater,
            "cmk",
            &info.version,
            AttributeUpdate {
                tags: Some(tags),
                ..AttributeUpdate::default()
            },
        )
    };
    assert_limit(
        update(big.clone()),
        "characters in a tag value",
        limits::MAX_TAG_VALUE_CHARS,
    );
    let too_many: BTreeMap<String, String> = (0..=limits::MAX_TAGS)
        .map(|i| (format!("t{i}"), "v".to_owned()))
        .collect();
    assert_limit(update(too_many), "tags on a key version", limits::MAX_TAGS);
    let long_name: BTreeMap<String, String> =
        [("n".repeat(limits::MAX_TAG_NAME_CHARS + 1), String::new())].into();
    assert_limit(
        update(long_name),
        "characters in a tag name",
        limits::MAX_TAG_NAME_CHARS,
    );
    // Limits are in characters (as Azure counts them), not bytes.
    let widest: BTreeMap<String, String> = (0..limits::MAX_TAGS)
        .map(|i| {
            (
                format!("{i:\u{e9}>width$}", width = limits::MAX_TAG_NAME_CHARS),
                "\u{1f511}".repeat(limits::MAX_TAG_VALUE_CHARS),
            )
        })
        .collect();
    let updated = update(widest.clone()).expect("tags at every limit are accepted");
    assert_eq!(updated.attributes.tags, widest);

    // The same through create, rotate and import.
    let options = KeyOptions {
        tags: big,
        ..KeyOptions::default()
    };
    for result in [
        vault.create_key(&admin, "other", KeyType::Aes256, options.clone()),
        vault.rotate_key(&admin, "cmk", options.clone()),
        vault.import_key(
            &admin,
            "imported",
            KeyImport::Jwk(r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#),
            options,
        ),
    ] {
        assert_limit(
            result,
            "characters in a tag value",
            limits::MAX_TAG_VALUE_CHARS,
        );
    }
    assert!(matches!(
        vault.get_key(&admin, "other", None),
        Err(VaultError::KeyNotFound { .. })
    ));
    assert_eq!(vault.list_versions(&admin, "cmk").unwrap().len(), 1);
    // An imported key far larger than any real one is refused unparsed.
    let junk = "x".repeat(limits::MAX_IMPORT_BYTES + 1);
    assert_limit(
        vault.import_key(
            &admin,
            "imported",
            KeyImport::Jwk(&junk),
            KeyOptions::default(),
        ),
        "bytes of imported key",
        limits::MAX_IMPORT_BYTES,
    );

    // Everyone else is unaffected: the log reads and verifies, every
    // entry is small, and the key works.
    let log = vault.audit_log().unwrap();
    vault.verify_audit_log().unwrap();
    for entry in &log {
        let size = serde_json::to_vec(entry).unwrap().len();
        assert!(size < 16 * 1024, "an audit entry of {size} bytes");
    }
    let refused = log
        .iter()
        .find(|e| e.principal.contains("principal id of 2097152 bytes"))
        .expect("the refused caller is audited, by length");
    assert!(matches!(refused.outcome, AuditOutcome::Failed(_)));
    assert!(
        log.iter().any(|e| e
            .operation
            .starts_with("setAccessPolicy (principal id of 2097152 bytes")),
        "{log:#?}"
    );
    vault
        .wrap_key(&admin, "cmk", None, WrapAlgorithm::A256Kw, &dek(1))
        .unwrap();
}

/// The number of versions of one key is bounded.
pub fn versions_per_key_are_bounded(make: Make<'_>) {
    use strongroom_keyvault::limits;
    let (vault, _, admin) = with_admin(make);
    create(vault.as_ref(), &admin, "many", KeyType::Aes256);
    for _ in 1..limits::MAX_VERSIONS_PER_KEY {
        vault
            .rotate_key(&admin, "many", KeyOptions::default())
            .unwrap();
    }
    assert_limit(
        vault.rotate_key(&admin, "many", KeyOptions::default()),
        "versions of a key",
        limits::MAX_VERSIONS_PER_KEY,
    );
    assert_limit(
        vault.import_key(
            &admin,
            "many",
            KeyImport::Jwk(r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#),
            KeyOptions::default(),
        ),
        "versions of a key",
        limits::MAX_VERSIONS_PER_KEY,
    );
    assert_eq!(
        vault.list_versions(&admin, "many").unwrap().len(),
        limits::MAX_VERSIONS_PER_KEY
    );
}

/// Key names compare case-insensitively, as in Azure Key Vault: "CMK"
/// cannot be created beside "cmk", "Cmk" finds "cmk", and the stored name
/// keeps the spelling it was created with.
pub fn key_names_are_case_insensitive(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _, admin) = with_admin(make);
    let info = create(vault.as_ref(), &admin, "cmk", KeyType::Rsa2048);
    match vault.create_key(&admin, "CMK", KeyType::Aes256, KeyOptions::default()) {
        Err(VaultError::KeyExists { deleted: false, .. }) => {}
        other => panic!("expected KeyExists, got {other:?}"),
    }
    let got = vault.get_key(&admin, "Cmk", None).unwrap();
    assert_eq!(got, info);
    assert_eq!(got.name, "cmk");
    let w = vault.wrap_key(&admin, "CMK", None, rsa, &dek(7)).unwrap();
    let back = vault
        .unwrap_key(&admin, "cMk", &w.version, rsa, &w.wrapped)
        .unwrap();
    assert_eq!(back.as_slice(), dek(7));
    // What wrap returned goes back to unwrap as it is.
    let back = vault.unwrap_wrapped(&admin, "cmk", rsa, &w).unwrap();
    assert_eq!(back.as_slice(), dek(7));
    vault
        .rotate_key(&admin, "CMK", KeyOptions::default())
        .unwrap();
    assert_eq!(vault.list_versions(&admin, "Cmk").unwrap().len(), 2);
    assert_eq!(
        vault
            .list_keys(&admin)
            .unwrap()
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>(),
        ["cmk"]
    );
    // Deleted, it is still the same name whatever the case.
    vault.delete_key(&admin, "CMK").unwrap();
    match vault.create_key(&admin, "Cmk", KeyType::Aes256, KeyOptions::default()) {
        Err(VaultError::KeyExists { deleted: true, .. }) => {}
        other => panic!("expected KeyExists (deleted), got {other:?}"),
    }
    assert!(matches!(
        vault.get_key(&admin, "CMK", None),
        Err(VaultError::KeyDeleted { .. })
    ));
    vault.recover_key(&admin, "cMK").unwrap();
    vault.delete_key(&admin, "cmk").unwrap();
    vault.purge_key(&admin, "CmK").unwrap();
    assert!(matches!(
        vault.get_key(&admin, "CMK", None),
        Err(VaultError::KeyPurged { .. })
    ));
    // A new key after the purge keeps its own spelling.
    let again = create(vault.as_ref(), &admin, "CMK", KeyType::Aes256);
    assert_eq!(again.name, "CMK");
    assert_eq!(vault.get_key(&admin, "cmk", None).unwrap().name, "CMK");
}
