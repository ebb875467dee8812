//! Token-specific tests of `Pkcs11KeyVault`, shared by
//! `tests/pkcs11_softhsm.rs` and `tests/pkcs11_kryoptic.rs`: they look into
//! the token itself (through `cryptoki`) to show that key material is made
//! and kept there, sensitive and not extractable, and goes on purge.
//!
//! A test file says `pkcs11_token_tests!(TokenKind::SoftHsm2, rsa = ...)`;
//! the macro expands to one `#[test]` per function listed in it. Each test
//! starts from the process's token (`strongroom_test_tokens`), which fails
//! the test if the token cannot be started.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    KeyImport, KeyOptions, KeyType, KeyVault, KeyVersionInfo, ManualClock, Permissions,
    Pkcs11Config, Pkcs11KeyVault, Pkcs11Pin, Principal, VaultError, VaultProperties,
};
use strongroom_test_tokens::cryptoki::error::{Error as CkError, RvError};
use strongroom_test_tokens::cryptoki::mechanism::Mechanism;
use strongroom_test_tokens::cryptoki::mechanism::MechanismType;
use strongroom_test_tokens::cryptoki::mechanism::rsa::{
    PkcsMgfType, PkcsOaepParams, PkcsOaepSource,
};
use strongroom_test_tokens::cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle,
};
use strongroom_test_tokens::cryptoki::session::Session;
use strongroom_test_tokens::{TestToken, TokenKind, token};

/// Expands to one `#[test]` per token-specific behaviour, for the token
/// `$kind`, whose RSA wrap algorithm is `$rsa`.
#[macro_export]
macro_rules! pkcs11_token_tests {
    ($kind:expr, rsa = $rsa:expr) => {
        $crate::pkcs11_token_tests!(@tests $kind, $rsa;
            backend_is_named_and_the_pin_never_shown,
            generated_key_material_is_not_extractable,
            generated_keys_live_on_the_token_across_sessions,
            byok_rsa_import_unwraps_what_was_wrapped_locally,
            byok_aes_import_unwraps_what_was_wrapped_locally,
            tampered_wrapped_keys_are_decryption_failed,
            purge_destroys_the_token_objects,
            rsa_3072_and_4096,
            key_objects_removed_behind_the_vaults_back,
            unknown_token_label_is_refused,
            dir_state_survives_a_reopen,
            dir_state_tampering_is_corrupt,
            dir_state_needs_its_token_and_mac_key,
            a_process_without_the_pin_cannot_use_or_break_keys,
            several_or_mismatched_key_objects_are_refused,
            a_crash_between_purge_commit_and_destroy_leaves_no_objects,
            a_lost_create_race_leaves_no_objects,
            a_rolled_back_directory_is_refused_by_the_token_witness,
            the_token_witness_is_private_and_stays_put,
            the_pin_holder_can_delete_or_duplicate_the_witness,
            a_torn_witness_replacement_is_settled,
            the_audit_log_rotates_under_the_token_mac,
            secret_values_are_private_data_objects,
            orphaned_secret_objects_are_swept,
        );
        /// Not a test: the child process the tests above start (a process
        /// that never logs in, or one killed mid-purge). Does nothing
        /// unless started as a child.
        #[test]
        fn pkcs11_child_process() {
            pkcs11_support::child_main();
        }
    };
    (@tests $kind:expr, $rsa:expr; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                pkcs11_support::$name($kind, $rsa);
            }
        )+
    };
}

/// The time the tests' clock starts at.
pub const T0: u64 = 1_750_000_000;

/// The properties of the tests' vaults (7 days of retention).
pub fn props() -> VaultProperties {
    let mut p = VaultProperties::new("kv-hsm");
    p.soft_delete_retention_days = 7;
    p
}

/// A fresh vault on the process's token of `kind`, with an administrator
/// holding every permission.
pub fn vault(kind: TokenKind) -> (Pkcs11KeyVault, Arc<ManualClock>, Principal) {
    let clock = Arc::new(ManualClock::new(T0));
    let vault = Pkcs11KeyVault::open_with_clock(token(kind).config(), props(), clock.clone())
        .unwrap_or_else(|e| panic!("open a vault on {kind:?}: {e}"));
    let admin = Principal::new("admin");
    vault
        .set_access_policy(&admin, Permissions::all())
        .expect("set policy");
    (vault, clock, admin)
}

/// The token objects carrying `id`, by class.
pub fn objects(session: &Session, id: &[u8]) -> Vec<(ObjectClass, ObjectHandle)> {
    session
        .find_objects(&[Attribute::Id(id.to_vec())])
        .expect("C_FindObjects")
        .into_iter()
        .map(|h| {
            let class = session
                .get_attributes(h, &[AttributeType::Class])
                .expect("class")
                .into_iter()
                .find_map(|a| match a {
                    Attribute::Class(c) => Some(c),
                    _ => None,
                })
                .expect("every object has a class");
            (class, h)
        })
        .collect()
}

/// The one object of `class` carrying `id`.
pub fn object(session: &Session, id: &[u8], class: ObjectClass) -> ObjectHandle {
    let found: Vec<_> = objects(session, id)
        .into_iter()
        .filter(|(c, _)| *c == class)
        .map(|(_, h)| h)
        .collect();
    assert_eq!(found.len(), 1, "one {class} with this CKA_ID: {found:?}");
    found[0]
}

fn bool_attr(session: &Session, h: ObjectHandle, t: AttributeType) -> bool {
    let attrs = session
        .get_attributes(h, &[t])
        .expect("C_GetAttributeValue");
    match attrs.as_slice() {
        [
            Attribute::Token(b)
            | Attribute::Sensitive(b)
            | Attribute::Extractable(b)
            | Attribute::NeverExtractable(b)
            | Attribute::AlwaysSensitive(b)
            | Attribute::Private(b),
        ] => *b,
        other => panic!("{t:?}: {other:?}"),
    }
}

/// Asserts the object is a sensitive, non-extractable token object whose
/// `secret` attributes cannot be read.
#[track_caller]
pub fn assert_locked_in(session: &Session, h: ObjectHandle, secret: &[AttributeType]) {
    assert!(
        bool_attr(session, h, AttributeType::Token),
        "a token object"
    );
    assert!(bool_attr(session, h, AttributeType::Private), "private");
    assert!(bool_attr(session, h, AttributeType::Sensitive), "sensitive");
    assert!(
        !bool_attr(session, h, AttributeType::Extractable),
        "not extractable"
    );
    for t in secret {
        let info = session
            .get_attribute_info(h, &[*t])
            .expect("C_GetAttributeValue (size)");
        assert!(
            matches!(info.as_slice(), [AttributeInfo::Sensitive]),
            "{t:?} must not be readable, got {info:?}"
        );
        let read = session
            .get_attributes(h, &[*t])
            .expect("C_GetAttributeValue");
        assert!(
            read.is_empty(),
            "{t:?} came out of the token: {}",
            read.len()
        );
    }
}

/// Asserts the token refuses to wrap `h` out under a session key we know,
/// with every wrapping mechanism it has of AES key wrap (padded and not)
/// and AES-CBC-PAD: at least one must refuse the key
/// (`CKR_KEY_UNEXTRACTABLE`, or Kryoptic's `CKR_KEY_FUNCTION_NOT_PERMITTED`
/// for private keys), the others may say the token lacks the mechanism;
/// none may give bytes. The same session key does wrap an extractable key,
/// so the refusal is about the key, not the wrapping key.
#[track_caller]
pub fn assert_unwrappable(session: &Session, h: ObjectHandle) {
    let kek = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(CkKeyType::AES),
            Attribute::Token(false),
            Attribute::Value(vec![0x42; 32]),
            Attribute::Wrap(true),
        ])
        .expect("a session AES key");
    let mut refused = 0;
    for mechanism in [
        Mechanism::AesKeyWrapPad,
        Mechanism::AesKeyWrap,
        Mechanism::AesCbcPad([0; 16]),
    ] {
        match session.wrap_key(&mechanism, kek, h) {
            Err(CkError::Pkcs11(
                RvError::KeyUnextractable | RvError::KeyFunctionNotPermitted,
                _,
            )) => refused += 1,
            Err(CkError::Pkcs11(RvError::MechanismInvalid, _)) => {}
            other => panic!(
                "{mechanism:?}: expected CKR_KEY_UNEXTRACTABLE, got {:?}",
                other.map(|v| v.len())
            ),
        }
    }
    let control = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(CkKeyType::AES),
            Attribute::Token(false),
            Attribute::Value(vec![0x24; 32]),
            Attribute::Extractable(true),
        ])
        .expect("an extractable session AES key");
    let wrapped = session.wrap_key(&Mechanism::AesKeyWrap, kek, control);
    session
        .destroy_object(control)
        .expect("destroy the control key");
    session
        .destroy_object(kek)
        .expect("destroy the session key");
    assert_eq!(wrapped.expect("the control key wraps").len(), 40);
    assert!(refused > 0, "no wrap mechanism was tried");
}

/// RSA-OAEP parameters for `alg`.
pub fn oaep(alg: WrapAlgorithm) -> Mechanism<'static> {
    let (hash, mgf) = match alg {
        WrapAlgorithm::RsaOaep => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
        _ => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
    };
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()))
}

/// Wraps `dek` outside the vault with the public key it shows.
pub fn wrap_locally(info: &KeyVersionInfo, alg: WrapAlgorithm, dek: &[u8]) -> Vec<u8> {
    let public = info.public.as_ref().expect("RSA").to_rsa().expect("valid");
    match alg {
        WrapAlgorithm::RsaOaep => public.oaep_encrypt::<sha1::Sha1>(dek),
        _ => public.oaep_encrypt::<sha2::Sha256>(dek),
    }
    .expect("encrypt")
}

// ------------------------------------------------------------------ tests

pub fn backend_is_named_and_the_pin_never_shown(kind: TokenKind, _rsa: WrapAlgorithm) {
    let (vault, _, _) = vault(kind);
    assert_eq!(vault.backend(), kind.backend_name());
    let t = token(kind);
    let config = t.config();
    let shown = format!("{config:?} {vault:?}");
    assert!(!shown.contains(t.user_pin()), "{shown}");
    assert!(shown.contains("Pkcs11Pin(..)"), "{shown}");
}

pub fn generated_key_material_is_not_extractable(kind: TokenKind, _rsa: WrapAlgorithm) {
    let (vault, _, admin) = vault(kind);
    let rsa = vault
        .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let aes = vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let session = token(kind).session();

    let id = vault.token_object_id("cmk", &rsa.version).unwrap();
    assert_eq!(id.len(), 16);
    let classes: Vec<_> = objects(&session, &id).into_iter().map(|(c, _)| c).collect();
    assert_eq!(classes.len(), 2, "a key pair: {classes:?}");
    let private = object(&session, &id, ObjectClass::PRIVATE_KEY);
    assert_locked_in(
        &session,
        private,
        &[
            AttributeType::PrivateExponent,
            AttributeType::Prime1,
            AttributeType::Prime2,
            AttributeType::Exponent1,
            AttributeType::Exponent2,
            AttributeType::Coefficient,
        ],
    );
    assert!(bool_attr(
        &session,
        private,
        AttributeType::NeverExtractable
    ));
    assert!(bool_attr(&session, private, AttributeType::AlwaysSensitive));
    assert_unwrappable(&session, private);
    // The public key the vault shows is the token's.
    let public = object(&session, &id, ObjectClass::PUBLIC_KEY);
    let n = session
        .get_attributes(public, &[AttributeType::Modulus])
        .unwrap();
    let [Attribute::Modulus(n)] = n.as_slice() else {
        panic!("modulus: {n:?}")
    };
    assert_eq!(n, &rsa.public.as_ref().unwrap().n);

    let id = vault.token_object_id("pmk", &aes.version).unwrap();
    let secret = object(&session, &id, ObjectClass::SECRET_KEY);
    assert_eq!(objects(&session, &id).len(), 1);
    assert_locked_in(&session, secret, &[AttributeType::Value]);
    assert!(bool_attr(&session, secret, AttributeType::NeverExtractable));
    assert!(bool_attr(&session, secret, AttributeType::AlwaysSensitive));
    assert_unwrappable(&session, secret);
}

pub fn generated_keys_live_on_the_token_across_sessions(kind: TokenKind, rsa: WrapAlgorithm) {
    let (vault, _, admin) = vault(kind);
    let cmk = vault
        .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let pmk = vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let dek = [0x5a; 32];
    let w_rsa = vault.wrap_key(&admin, "cmk", None, rsa, &dek).unwrap();
    let w_aes = vault
        .wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &dek)
        .unwrap();
    let rsa_id = vault.token_object_id("cmk", &cmk.version).unwrap();
    let aes_id = vault.token_object_id("pmk", &pmk.version).unwrap();
    // The vault, and with it every session it had, is gone.
    drop(vault);

    // A new session finds the keys on the token and they still work.
    let session = token(kind).session();
    let private = object(&session, &rsa_id, ObjectClass::PRIVATE_KEY);
    let plain = session
        .decrypt(&oaep(rsa), private, &w_rsa.wrapped)
        .expect("the token's private key decrypts what the vault wrapped");
    assert_eq!(plain, dek);
    let secret = object(&session, &aes_id, ObjectClass::SECRET_KEY);
    let unwrapped = session
        .unwrap_key(
            &Mechanism::AesKeyWrap,
            secret,
            &w_aes.wrapped,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(CkKeyType::GENERIC_SECRET),
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )
        .expect("the token's AES key unwraps what the vault wrapped");
    let value = session
        .get_attributes(unwrapped, &[AttributeType::Value])
        .unwrap();
    session.destroy_object(unwrapped).unwrap();
    assert!(matches!(value.as_slice(), [Attribute::Value(v)] if v == &dek));

    // A second vault on the token opens and works alongside.
    let (again, _, admin) = self::vault(kind);
    again
        .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let w = again.wrap_key(&admin, "cmk", None, rsa, &dek).unwrap();
    let back = again
        .unwrap_key(&admin, "cmk", &w.version, rsa, &w.wrapped)
        .unwrap();
    assert_eq!(back.as_slice(), dek);
}

pub fn byok_rsa_import_unwraps_what_was_wrapped_locally(kind: TokenKind, rsa: WrapAlgorithm) {
    use rsa::pkcs8::EncodePrivateKey;
    use rsa::traits::PublicKeyParts;
    let (vault, _, admin) = vault(kind);
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("RSA key");
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
    assert_eq!(info.public.as_ref().unwrap().n, key.n_bytes().as_ref());

    // Wrapped here with the key we kept, unwrapped inside the token.
    for byte in [1u8, 2, 3] {
        let dek = [byte; 32];
        let wrapped = wrap_locally(&info, rsa, &dek);
        let back = vault
            .unwrap_key(&admin, "byok", &info.version, rsa, &wrapped)
            .unwrap();
        assert_eq!(back.as_slice(), dek);
    }
    // Wrapped by the token, unwrapped here.
    let w = vault.wrap_key(&admin, "byok", None, rsa, &[9; 32]).unwrap();
    let plain = match rsa {
        WrapAlgorithm::RsaOaep => key.oaep_decrypt::<sha1::Sha1>(&w.wrapped),
        _ => key.oaep_decrypt::<sha2::Sha256>(&w.wrapped),
    }
    .unwrap();
    assert_eq!(plain, [9; 32]);

    // The imported private key is now as locked in as a generated one
    // (only "never extractable" and "always sensitive" differ: it was
    // known outside once).
    let session = token(kind).session();
    let id = vault.token_object_id("byok", &info.version).unwrap();
    let private = object(&session, &id, ObjectClass::PRIVATE_KEY);
    assert_locked_in(
        &session,
        private,
        &[
            AttributeType::PrivateExponent,
            AttributeType::Prime1,
            AttributeType::Prime2,
        ],
    );
    assert_unwrappable(&session, private);
    object(&session, &id, ObjectClass::PUBLIC_KEY);
}

pub fn byok_aes_import_unwraps_what_was_wrapped_locally(kind: TokenKind, _rsa: WrapAlgorithm) {
    use base64ct::{Base64UrlUnpadded, Encoding};
    use strongroom_aes::Aes256Key;
    use strongroom_aes::kw::Aes256Kw;
    let (vault, _, admin) = vault(kind);
    let key = Aes256Key::generate().unwrap();
    let jwk = format!(
        r#"{{"kty":"oct","k":"{}"}}"#,
        Base64UrlUnpadded::encode_string(key.expose_secret())
    );
    let info = vault
        .import_key(
            &admin,
            "byok-aes",
            KeyImport::Jwk(&jwk),
            KeyOptions::default(),
        )
        .unwrap();
    assert_eq!(info.key_type, KeyType::Aes256);
    let kw = Aes256Kw::new(&key);
    let dek = [0x33; 32];
    let wrapped = kw.wrap(&dek).unwrap();
    let back = vault
        .unwrap_key(
            &admin,
            "byok-aes",
            &info.version,
            WrapAlgorithm::A256Kw,
            &wrapped,
        )
        .unwrap();
    assert_eq!(back.as_slice(), dek);
    let w = vault
        .wrap_key(&admin, "byok-aes", None, WrapAlgorithm::A256Kw, &dek)
        .unwrap();
    assert_eq!(
        w.wrapped, wrapped,
        "AES key wrap is deterministic: same bytes as RFC 3394 here"
    );
    assert_eq!(kw.unwrap(&w.wrapped).unwrap().as_slice(), dek);

    let session = token(kind).session();
    let id = vault.token_object_id("byok-aes", &info.version).unwrap();
    let secret = object(&session, &id, ObjectClass::SECRET_KEY);
    assert_locked_in(&session, secret, &[AttributeType::Value]);
    assert_unwrappable(&session, secret);
}

pub fn tampered_wrapped_keys_are_decryption_failed(kind: TokenKind, rsa: WrapAlgorithm) {
    let (vault, _, admin) = vault(kind);
    let cmk = vault
        .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let pmk = vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let pmk2 = vault
        .rotate_key(&admin, "pmk", KeyOptions::default())
        .unwrap();
    let dek = [0x77; 32];
    let w_aes = vault
        .wrap_key(
            &admin,
            "pmk",
            Some(&pmk.version),
            WrapAlgorithm::A256Kw,
            &dek,
        )
        .unwrap();
    let w_rsa = vault.wrap_key(&admin, "cmk", None, rsa, &dek).unwrap();

    let failed = |name: &str, version: &str, alg: WrapAlgorithm, bytes: &[u8]| match vault
        .unwrap_key(&admin, name, version, alg, bytes)
    {
        Err(VaultError::DecryptionFailed) => {}
        other => panic!(
            "expected DecryptionFailed, got {:?}",
            other.map(|d| d.len())
        ),
    };
    // Every byte of an AES key wrap, every bit position once.
    for i in 0..w_aes.wrapped.len() {
        let mut bad = w_aes.wrapped.clone();
        bad[i] ^= 1 << (i % 8);
        failed("pmk", &pmk.version, WrapAlgorithm::A256Kw, &bad);
    }
    // Another version of the same key.
    failed("pmk", &pmk2.version, WrapAlgorithm::A256Kw, &w_aes.wrapped);
    // Lengths no RFC 3394 output has.
    for len in [0, 8, 16, 39, 41, 48] {
        failed("pmk", &pmk.version, WrapAlgorithm::A256Kw, &vec![0xa6; len]);
    }
    // RSA-OAEP: flips spread over the block, and wrong lengths.
    for i in (0..w_rsa.wrapped.len()).step_by(17) {
        let mut bad = w_rsa.wrapped.clone();
        bad[i] ^= 0x80;
        failed("cmk", &cmk.version, rsa, &bad);
    }
    for len in [0, 255, 257, 512] {
        failed("cmk", &cmk.version, rsa, &vec![0x01; len]);
    }
    // The untouched ones still unwrap.
    let back = vault
        .unwrap_key(&admin, "cmk", &cmk.version, rsa, &w_rsa.wrapped)
        .unwrap();
    assert_eq!(back.as_slice(), dek);
}

pub fn purge_destroys_the_token_objects(kind: TokenKind, _rsa: WrapAlgorithm) {
    let (vault, _, admin) = vault(kind);
    let v1 = vault
        .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let v2 = vault
        .rotate_key(&admin, "cmk", KeyOptions::default())
        .unwrap();
    let aes = vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let ids = [
        vault.token_object_id("cmk", &v1.version).unwrap(),
        vault.token_object_id("cmk", &v2.version).unwrap(),
        vault.token_object_id("pmk", &aes.version).unwrap(),
    ];
    let session = token(kind).session();
    let counts = |ids: &[Vec<u8>]| {
        ids.iter()
            .map(|id| objects(&session, id).len())
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&ids), [2, 2, 1]);

    // Soft delete keeps the material: the key can be recovered.
    vault.delete_key(&admin, "cmk").unwrap();
    vault.delete_key(&admin, "pmk").unwrap();
    assert_eq!(counts(&ids), [2, 2, 1]);
    assert_eq!(
        vault.token_object_id("cmk", &v2.version).unwrap(),
        ids[1],
        "deleted keys still name their objects"
    );

    vault.purge_key(&admin, "cmk").unwrap();
    assert_eq!(counts(&ids), [0, 0, 1]);
    vault.purge_key(&admin, "pmk").unwrap();
    assert_eq!(counts(&ids), [0, 0, 0]);
    assert!(matches!(
        vault.token_object_id("cmk", &v1.version),
        Err(VaultError::KeyNotFound { .. })
    ));
}

pub fn rsa_3072_and_4096(kind: TokenKind, rsa: WrapAlgorithm) {
    let (vault, _, admin) = vault(kind);
    for (name, key_type, bytes) in [
        ("k3072", KeyType::Rsa3072, 384),
        ("k4096", KeyType::Rsa4096, 512),
    ] {
        let info = vault
            .create_key(&admin, name, key_type, KeyOptions::default())
            .unwrap();
        assert_eq!(info.key_type, key_type);
        let public = info.public.as_ref().unwrap();
        assert_eq!(public.n.len(), bytes, "{name}");
        assert_eq!(public.e, [1, 0, 1]);
        let w = vault
            .wrap_key(&admin, name, None, rsa, &[0x11; 32])
            .unwrap();
        assert_eq!(w.wrapped.len(), bytes);
        let back = vault
            .unwrap_key(&admin, name, &w.version, rsa, &w.wrapped)
            .unwrap();
        assert_eq!(back.as_slice(), [0x11; 32]);
        let outside = wrap_locally(&info, rsa, &[0x22; 32]);
        let back = vault
            .unwrap_key(&admin, name, &info.version, rsa, &outside)
            .unwrap();
        assert_eq!(back.as_slice(), [0x22; 32]);
    }
}

pub fn key_objects_removed_behind_the_vaults_back(kind: TokenKind, rsa: WrapAlgorithm) {
    let (vault, _, admin) = vault(kind);
    let info = vault
        .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let w = vault.wrap_key(&admin, "cmk", None, rsa, &[1; 32]).unwrap();
    let id = vault.token_object_id("cmk", &info.version).unwrap();
    let session = token(kind).session();
    for (_, h) in objects(&session, &id) {
        session.destroy_object(h).unwrap();
    }
    // Not a decryption failure: the token lost the key, and says so,
    // naming the key and version. Wrap is refused too (though RSA-OAEP
    // needs only the public key the state holds): a DEK wrapped now could
    // never be unwrapped.
    for result in [
        vault
            .wrap_key(&admin, "cmk", None, rsa, &[1; 32])
            .map(|_| ()),
        vault
            .unwrap_key(&admin, "cmk", &info.version, rsa, &w.wrapped)
            .map(|_| ()),
    ] {
        assert_missing(result, kind, "cmk", &info.version, "RSA private key");
    }
}

/// Asserts `result` is [`VaultError::KeyMaterialMissing`] for this key
/// version and object, saying so plainly.
#[track_caller]
pub fn assert_missing<T: std::fmt::Debug>(
    result: Result<T, VaultError>,
    kind: TokenKind,
    key: &str,
    key_version: &str,
    what: &str,
) {
    match result {
        Err(err) => {
            let VaultError::KeyMaterialMissing {
                name,
                version,
                object,
                backend,
            } = &err
            else {
                panic!("expected KeyMaterialMissing, got {err:?}");
            };
            let (object, backend) = (*object, *backend);
            assert_eq!((name.as_str(), version.as_str()), (key, key_version));
            assert_eq!((object, backend), (what, kind.backend_name()));
            let shown = err.to_string();
            assert!(
                shown.contains(key) && shown.contains(key_version) && shown.contains("destroyed"),
                "{shown}"
            );
        }
        Ok(other) => panic!("expected KeyMaterialMissing, got {other:?}"),
    }
}

/// Asserts `result` is [`VaultError::KeyMaterialCorrupt`] for this key
/// version, with `reason` in its text.
#[track_caller]
pub fn assert_material_corrupt<T: std::fmt::Debug>(
    result: Result<T, VaultError>,
    key: &str,
    key_version: &str,
    reason: &str,
) {
    match result {
        Err(VaultError::KeyMaterialCorrupt {
            name,
            version,
            reason: why,
        }) => {
            assert_eq!((name.as_str(), version.as_str()), (key, key_version));
            assert!(why.contains(reason), "{why}");
        }
        other => panic!("expected KeyMaterialCorrupt, got {other:?}"),
    }
}

pub fn unknown_token_label_is_refused(kind: TokenKind, _rsa: WrapAlgorithm) {
    let t: &TestToken = token(kind);
    let err = Pkcs11KeyVault::open(
        Pkcs11Config {
            module: t.module().to_path_buf(),
            token_label: "no-such-token".to_owned(),
            pin: Pkcs11Pin::new(t.user_pin()),
        },
        props(),
    )
    .unwrap_err();
    match err {
        VaultError::InvalidArgument { reason } => {
            assert!(reason.contains("no-such-token"), "{reason}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    let err = Pkcs11KeyVault::open(
        Pkcs11Config {
            module: t.dir().join("no-such-module.so"),
            token_label: t.label().to_owned(),
            pin: Pkcs11Pin::new(t.user_pin()),
        },
        props(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::Token {
                operation: "load the PKCS#11 module",
                ..
            }
        ),
        "{err:?}"
    );
}

// ------------------------------------------- state kept in a directory

/// The other soft token: a token the vault was not created on.
fn other(kind: TokenKind) -> TokenKind {
    match kind {
        TokenKind::SoftHsm2 => TokenKind::Kryoptic,
        TokenKind::Kryoptic => TokenKind::SoftHsm2,
    }
}

/// Opens (or creates) the vault in `dir` on the token of `kind`.
fn in_dir(kind: TokenKind, dir: &std::path::Path, clock: &Arc<ManualClock>) -> Pkcs11KeyVault {
    Pkcs11KeyVault::open_in_dir_with_clock(token(kind).config(), dir, props(), clock.clone())
        .unwrap_or_else(|e| panic!("open the vault in {} on {kind:?}: {e}", dir.display()))
}

/// The state MAC key object of the vault `vault_id`, found by its label.
fn mac_key_objects(session: &Session, vault_id: &str) -> Vec<ObjectHandle> {
    session
        .find_objects(&[Attribute::Label(
            format!("strongroom-keyvault state-mac {vault_id}").into_bytes(),
        )])
        .expect("C_FindObjects")
}

pub fn dir_state_survives_a_reopen(kind: TokenKind, rsa: WrapAlgorithm) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let clock = Arc::new(ManualClock::new(T0));
    let admin = Principal::new("admin");
    let app = Principal::new("app");
    let dek = [0x6b; 32];

    let vault = in_dir(kind, &dir, &clock);
    assert_eq!(vault.dir(), Some(dir.as_path()));
    let vault_id = vault
        .vault_id()
        .expect("a directory vault has an id")
        .to_owned();
    assert_eq!(vault_id.len(), 32);
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    vault
        .set_access_policy(&app, Permissions::key_user())
        .unwrap();
    let cmk1 = vault
        .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let w_rsa = vault.wrap_key(&app, "cmk", None, rsa, &dek).unwrap();
    clock.advance(60);
    let cmk2 = vault
        .rotate_key(&admin, "cmk", KeyOptions::default())
        .unwrap();
    let pmk = vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let w_aes = vault
        .wrap_key(&app, "pmk", None, WrapAlgorithm::A256Kw, &dek)
        .unwrap();
    vault
        .create_key(&admin, "old", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let deleted = vault.delete_key(&admin, "old").unwrap();
    let ids = [
        vault.token_object_id("cmk", &cmk1.version).unwrap(),
        vault.token_object_id("cmk", &cmk2.version).unwrap(),
        vault.token_object_id("pmk", &pmk.version).unwrap(),
    ];
    let log_before = vault.audit_log().unwrap();
    vault.verify_audit_log().unwrap();
    // The key objects stay on the token, the state in the directory.
    drop(vault);
    for file in ["vault.json", "state.json", "audit.log", "lock"] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let state = std::fs::read_to_string(dir.join("state.json")).unwrap();
    assert!(state.contains(&vault_id), "state.json names its vault");

    // Reopened: other properties asked for are ignored, the disk's count.
    let mut asked = props();
    asked.soft_delete_retention_days = 30;
    let vault =
        Pkcs11KeyVault::open_in_dir_with_clock(token(kind).config(), &dir, asked, clock.clone())
            .unwrap();
    assert_eq!(vault.vault_id(), Some(vault_id.as_str()));
    assert_eq!(vault.properties().unwrap(), props());
    assert_eq!(vault.access_policy(&app).unwrap(), Permissions::key_user());
    assert_eq!(vault.access_policy(&admin).unwrap(), Permissions::all());
    let versions = vault.list_versions(&admin, "cmk").unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| v.version.as_str())
            .collect::<Vec<_>>(),
        [cmk1.version.as_str(), cmk2.version.as_str()]
    );
    assert_eq!(vault.get_key(&admin, "cmk", None).unwrap(), cmk2);
    assert_eq!(vault.get_key(&admin, "pmk", None).unwrap(), pmk);
    assert_eq!(vault.list_deleted_keys(&admin).unwrap(), [deleted]);
    for (id, (name, version)) in ids.iter().zip([
        ("cmk", &cmk1.version),
        ("cmk", &cmk2.version),
        ("pmk", &pmk.version),
    ]) {
        assert_eq!(&vault.token_object_id(name, version).unwrap(), id);
    }
    // DEKs wrapped before the reopen unwrap after it.
    let back = vault
        .unwrap_key(&app, "cmk", &cmk1.version, rsa, &w_rsa.wrapped)
        .unwrap();
    assert_eq!(back.as_slice(), dek);
    let back = vault
        .unwrap_key(
            &app,
            "pmk",
            &w_aes.version,
            WrapAlgorithm::A256Kw,
            &w_aes.wrapped,
        )
        .unwrap();
    assert_eq!(back.as_slice(), dek);
    // The newest version is cmk2, and it works too.
    let w2 = vault.wrap_key(&app, "cmk", None, rsa, &dek).unwrap();
    assert_eq!(w2.version, cmk2.version);
    // The deleted key can be recovered, with its token object.
    vault.recover_key(&admin, "old").unwrap();
    vault
        .wrap_key(&app, "old", None, WrapAlgorithm::A256Kw, &dek)
        .unwrap();

    // The audit log was kept and continued, and verifies.
    let log_after = vault.audit_log().unwrap();
    assert!(log_after.len() > log_before.len());
    assert!(log_after.starts_with(&log_before), "the log was kept");
    vault.verify_audit_log().unwrap();
    drop(vault);

    // A third opening sees the second's changes.
    let vault = in_dir(kind, &dir, &clock);
    assert!(vault.list_deleted_keys(&admin).unwrap().is_empty());
    assert!(vault.audit_log().unwrap().starts_with(&log_after));
    vault.verify_audit_log().unwrap();

    // Another name is refused, saying both.
    let err =
        Pkcs11KeyVault::open_in_dir(token(kind).config(), &dir, VaultProperties::new("kv-other"))
            .unwrap_err();
    match err {
        VaultError::InvalidArgument { reason } => {
            assert!(
                reason.contains("kv-hsm") && reason.contains("kv-other"),
                "{reason}"
            );
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }

    // The MAC key is in the token, locked in, and nothing secret is on
    // disk beside the state.
    let session = token(kind).session();
    let keys = mac_key_objects(&session, &vault_id);
    assert_eq!(keys.len(), 1);
    assert_locked_in(&session, keys[0], &[AttributeType::Value]);
    assert_unwrappable(&session, keys[0]);
}

pub fn dir_state_tampering_is_corrupt(kind: TokenKind, _rsa: WrapAlgorithm) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let clock = Arc::new(ManualClock::new(T0));
    let admin = Principal::new("admin");
    let vault = in_dir(kind, &dir, &clock);
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    drop(vault);
    let corrupt = |path: &std::path::Path, result: Result<(), VaultError>| match result {
        Err(VaultError::Corrupt { path: p, reason }) => {
            assert_eq!(p, path);
            assert!(reason.contains("MAC"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    };
    // Someone who can write the directory grants themselves access (the
    // change is in the op log, which holds the commits since the last
    // snapshot).
    let ops = dir.join("ops.log");
    let genuine_ops = std::fs::read_to_string(&ops).unwrap();
    let forged = genuine_ops.replacen("\"admin\"", "\"mallory\"", 1);
    assert_ne!(forged, genuine_ops);
    std::fs::write(&ops, &forged).unwrap();
    // The vault does not open.
    corrupt(
        &ops,
        Pkcs11KeyVault::open_in_dir(token(kind).config(), &dir, props()).map(|_| ()),
    );
    std::fs::write(&ops, &genuine_ops).unwrap();
    let path = dir.join("state.json");
    let genuine = std::fs::read_to_string(&path).unwrap();
    let corrupt = |result| corrupt(&path, result);
    // Every byte of the MAC matters.
    let mac_at = genuine.rfind("\"mac\":\"").unwrap() + 7;
    let mut bytes = genuine.clone().into_bytes();
    bytes[mac_at] = if bytes[mac_at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&path, &bytes).unwrap();
    corrupt(Pkcs11KeyVault::open_in_dir(token(kind).config(), &dir, props()).map(|_| ()));
    // Put back, it opens again.
    std::fs::write(&path, &genuine).unwrap();
    let vault = in_dir(kind, &dir, &clock);
    vault.get_key(&admin, "pmk", None).unwrap();
    vault.verify_audit_log().unwrap();
}

pub fn dir_state_needs_its_token_and_mac_key(kind: TokenKind, _rsa: WrapAlgorithm) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let clock = Arc::new(ManualClock::new(T0));
    let admin = Principal::new("admin");
    let vault = in_dir(kind, &dir, &clock);
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    let vault_id = vault.vault_id().unwrap().to_owned();
    drop(vault);

    // Another token holds no MAC key for this vault: refused, naming the
    // token it was created on.
    let err = Pkcs11KeyVault::open_in_dir(token(other(kind)).config(), &dir, props()).unwrap_err();
    match &err {
        VaultError::Token { source, .. } => {
            let text = source.to_string();
            assert!(text.contains("created on token"), "{text}");
            assert!(
                text.contains(kind.backend_name()) || text.contains(token(kind).label()),
                "{text}"
            );
        }
        other => panic!("expected a token error, got {other:?}"),
    }
    // The directory is untouched: the right token still opens it.
    let vault = in_dir(kind, &dir, &clock);
    assert_eq!(vault.access_policy(&admin).unwrap(), Permissions::all());

    // The MAC key object destroyed behind the vault's back: the open vault
    // fails on its next change, a new one does not open; neither panics.
    let session = token(kind).session();
    for h in mac_key_objects(&session, &vault_id) {
        session.destroy_object(h).unwrap();
    }
    match vault.create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default()) {
        Err(VaultError::Token { source, .. }) => {
            assert!(source.to_string().contains("state MAC key"), "{source}");
        }
        other => panic!("expected a token error, got {other:?}"),
    }
    drop(vault);
    let err = Pkcs11KeyVault::open_in_dir(token(kind).config(), &dir, props()).unwrap_err();
    match &err {
        VaultError::Token { source, .. } => {
            let text = source.to_string();
            assert!(text.contains("destroyed"), "{text}");
        }
        other => panic!("expected a token error, got {other:?}"),
    }

    // A FileKeyVault's directory is not taken for a PKCS#11 vault's.
    let file_dir = tmp.path().join("file-vault");
    let key_file = tmp.path().join("root.key");
    strongroom_keyvault::FileKeyVault::generate_key_file(&key_file).unwrap();
    strongroom_keyvault::FileKeyVault::create(
        &file_dir,
        props(),
        strongroom_keyvault::RootKeySource::KeyFile(key_file),
    )
    .unwrap();
    match Pkcs11KeyVault::open_in_dir(token(kind).config(), &file_dir, props()) {
        Err(VaultError::InvalidArgument { reason }) => {
            assert!(reason.contains("FileKeyVault"), "{reason}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

// ------------------------------------- the token is not trusted (issue 11)

/// Tells a re-run of this test binary that it is a child, and what to do.
const CHILD_ENV: &str = "STRONGROOM_PKCS11_CHILD";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child: {name} not set"))
}

/// Runs this test binary again as a child doing `mode`, on the token of
/// `kind` (the child's module finds the token through the variable
/// [`TestToken::child_env`] names), with `vars`.
fn run_child(kind: TokenKind, mode: &str, vars: &[(&str, String)]) -> std::process::Output {
    let t = token(kind);
    let mut command = std::process::Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args([
            "--exact",
            "pkcs11_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .env("P11_MODULE", t.module())
        .env("P11_LABEL", t.label());
    let (conf_var, conf) = t.child_env();
    command.env(conf_var, conf);
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("run the child")
}

/// The child side: nothing unless [`CHILD_ENV`] says what to do.
pub fn child_main() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    match mode.as_str() {
        "attack" => child_attack(),
        "purge-crash" => child_purge_crash(),
        "witness-attack" => child_witness_attack(),
        other => panic!("child: unknown mode {other}"),
    }
    std::process::exit(0);
}

/// A process that loads the module and opens a read-write session but
/// never logs in (it has no PIN), then tries, against the vault's key
/// objects `P11_IDS` (hex, comma-separated): to see them, to destroy
/// every object it can see, to add a public RSA key (`P11_N`, `P11_E`)
/// under each id with the vault's own label, and to add a private one.
/// Prints one `what=result` line per attempt.
fn child_attack() {
    use strongroom_test_tokens::cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    let ctx = Pkcs11::new(env("P11_MODULE")).expect("load the module");
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let label = env("P11_LABEL");
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == label)
        .expect("the token");
    let session = ctx.open_rw_session(slot).expect("C_OpenSession");
    let (n, e) = (unhex(&env("P11_N")), unhex(&env("P11_E")));
    let ids: Vec<Vec<u8>> = env("P11_IDS").split(',').map(unhex).collect();
    for id in &ids {
        let visible = session.find_objects(&[Attribute::Id(id.clone())]).unwrap();
        println!("ATTACK:visible={}", visible.len());
    }
    // Everything this process can see on the token, destroyed.
    let mut destroyed = 0;
    for h in session.find_objects(&[Attribute::Token(true)]).unwrap() {
        if session.destroy_object(h).is_ok() {
            destroyed += 1;
        }
    }
    println!("ATTACK:destroyed={destroyed}");
    for id in ids {
        let label = env("P11_OBJECT_LABEL").into_bytes();
        for private in [false, true] {
            let made = session.create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(CkKeyType::RSA),
                Attribute::Token(true),
                Attribute::Private(private),
                Attribute::Encrypt(true),
                Attribute::Wrap(true),
                Attribute::Id(id.clone()),
                Attribute::Label(label.clone()),
                Attribute::Modulus(n.clone()),
                Attribute::PublicExponent(e.clone()),
            ]);
            println!(
                "ATTACK:planted-{}={}",
                if private { "private" } else { "public" },
                if made.is_ok() { "yes" } else { "no" }
            );
        }
        let made = session.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(CkKeyType::AES),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Id(id.clone()),
            Attribute::Label(label.clone()),
            Attribute::Value(vec![0x66; 32]),
        ]);
        println!(
            "ATTACK:planted-aes={}",
            if made.is_ok() { "yes" } else { "no" }
        );
    }
}

/// Opens the vault in `P11_DIR` with `P11_PIN`, arms the crash hook and
/// purges key `doomed`: the process aborts between the purge's commit and
/// the destruction of its objects.
fn child_purge_crash() {
    let config = Pkcs11Config {
        module: env("P11_MODULE").into(),
        token_label: env("P11_LABEL"),
        pin: Pkcs11Pin::new(env("P11_PIN")),
    };
    let clock = Arc::new(ManualClock::new(T0 + 60));
    let vault = Pkcs11KeyVault::open_in_dir_with_clock(config, env("P11_DIR"), props(), clock)
        .expect("child: open the vault");
    Pkcs11KeyVault::abort_after_purge_commit_for_tests(true);
    vault
        .purge_key(&Principal::new("admin"), "doomed")
        .expect("child: purge");
    panic!("child: the purge did not stop between commit and destroy");
}

/// Finding 5 of issue 11: a process that never logs in can neither see,
/// destroy nor replace the vault's key objects, and what it plants under
/// their ids is never used: DEKs stay wrapped under the vault's own keys.
pub fn a_process_without_the_pin_cannot_use_or_break_keys(kind: TokenKind, rsa: WrapAlgorithm) {
    let (vault, _, admin) = vault(kind);
    let cmk = vault
        .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let pmk = vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let rsa_id = vault.token_object_id("cmk", &cmk.version).unwrap();
    let aes_id = vault.token_object_id("pmk", &pmk.version).unwrap();
    let session = token(kind).session();
    let label_of = |id: &[u8]| {
        let attrs = session
            .get_attributes(
                object(&session, id, ObjectClass::PRIVATE_KEY),
                &[AttributeType::Label],
            )
            .unwrap();
        match attrs.as_slice() {
            [Attribute::Label(l)] => String::from_utf8(l.clone()).unwrap(),
            other => panic!("label: {other:?}"),
        }
    };
    // Every object the vault made is private.
    for id in [&rsa_id, &aes_id] {
        for (class, h) in objects(&session, id) {
            assert!(
                bool_attr(&session, h, AttributeType::Private),
                "{class} must be private"
            );
        }
    }

    // The attacker's own key pair.
    let attacker = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("RSA key");
    let (n, e) = {
        use rsa::traits::PublicKeyParts;
        (attacker.n_bytes().into_vec(), attacker.e_bytes().into_vec())
    };
    let out = run_child(
        kind,
        "attack",
        &[
            ("P11_IDS", format!("{},{}", hex(&rsa_id), hex(&aes_id))),
            ("P11_N", hex(&n)),
            ("P11_E", hex(&e)),
            ("P11_OBJECT_LABEL", label_of(&rsa_id)),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout
        .split("ATTACK:")
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    // Nothing of the vault's is visible, so nothing is destroyed, and no
    // private object can be made without the PIN. Public ones may be
    // (SoftHSM2 lets a public session make public token objects, Kryoptic
    // does not): either way the vault must not use them.
    let planted = |what: &str| {
        if kind == TokenKind::SoftHsm2 {
            format!("{what}=yes")
        } else {
            format!("{what}=no")
        }
    };
    let (public, aes) = (planted("planted-public"), planted("planted-aes"));
    assert_eq!(
        lines,
        [
            "visible=0",
            "visible=0",
            "destroyed=0",
            &public,
            "planted-private=no",
            &aes,
            &public,
            "planted-private=no",
            &aes,
        ],
        "{stdout}"
    );
    // The vault's objects are all still there.
    assert_eq!(
        objects(&session, &rsa_id)
            .iter()
            .filter(|(_, h)| bool_attr(&session, *h, AttributeType::Private))
            .count(),
        2
    );

    // Whatever was planted, the vault wraps under its own keys only: the
    // attacker cannot unwrap, the vault can.
    let dek = [0x3c; 32];
    for _ in 0..3 {
        let w = vault.wrap_key(&admin, "cmk", None, rsa, &dek).unwrap();
        assert!(
            match rsa {
                WrapAlgorithm::RsaOaep => attacker.oaep_decrypt::<sha1::Sha1>(&w.wrapped),
                _ => attacker.oaep_decrypt::<sha2::Sha256>(&w.wrapped),
            }
            .is_err(),
            "the DEK was wrapped under the attacker's key"
        );
        let back = vault
            .unwrap_key(&admin, "cmk", &w.version, rsa, &w.wrapped)
            .unwrap();
        assert_eq!(back.as_slice(), dek);
    }
    let w = vault
        .wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &dek)
        .unwrap();
    {
        use strongroom_aes::kw::Aes256Kw;
        let planted = strongroom_aes::Aes256Key::try_from_slice(&[0x66; 32]).unwrap();
        assert!(Aes256Kw::new(&planted).unwrap(&w.wrapped).is_err());
    }
    let back = vault
        .unwrap_key(&admin, "pmk", &w.version, WrapAlgorithm::A256Kw, &w.wrapped)
        .unwrap();
    assert_eq!(back.as_slice(), dek);
    // get_key still shows the vault's own public key.
    assert_eq!(vault.get_key(&admin, "cmk", None).unwrap(), cmk);
}

/// Objects the PIN holder adds or swaps behind the vault's back: several
/// private objects with a version's `CKA_ID`, or one whose modulus is not
/// the state's, are refused with a typed error naming the key and
/// version; the vault never picks one.
pub fn several_or_mismatched_key_objects_are_refused(kind: TokenKind, rsa: WrapAlgorithm) {
    let (vault, _, admin) = vault(kind);
    let cmk = vault
        .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let pmk = vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let w = vault.wrap_key(&admin, "cmk", None, rsa, &[5; 32]).unwrap();
    let rsa_id = vault.token_object_id("cmk", &cmk.version).unwrap();
    let aes_id = vault.token_object_id("pmk", &pmk.version).unwrap();
    let session = token(kind).session();

    // A second private AES key under the AES version's id.
    let extra = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(CkKeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Id(aes_id.clone()),
            Attribute::Value(vec![0x11; 32]),
        ])
        .unwrap();
    assert_material_corrupt(
        vault.wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &[5; 32]),
        "pmk",
        &pmk.version,
        "2 private AES key objects",
    );
    session.destroy_object(extra).unwrap();
    vault
        .wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &[5; 32])
        .expect("one object again: it works");

    // The RSA private key swapped for another one under the same id.
    let other = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("RSA key");
    let private = object(&session, &rsa_id, ObjectClass::PRIVATE_KEY);
    session.destroy_object(private).unwrap();
    {
        use rsa::traits::{PrivateKeyParts, PublicKeyParts};
        let big = |v: &rsa::BoxedUint| {
            let b = v.to_be_bytes().into_vec();
            b[b.iter().take_while(|&&x| x == 0).count()..].to_vec()
        };
        let [p, q] = other.primes() else {
            panic!("two primes")
        };
        session
            .create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(CkKeyType::RSA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Decrypt(true),
                Attribute::Unwrap(true),
                Attribute::Id(rsa_id.clone()),
                Attribute::Modulus(other.n_bytes().into_vec()),
                Attribute::PublicExponent(other.e_bytes().into_vec()),
                Attribute::PrivateExponent(big(other.d())),
                Attribute::Prime1(big(p.as_ref())),
                Attribute::Prime2(big(q.as_ref())),
                Attribute::Exponent1(big(other.dp().unwrap())),
                Attribute::Exponent2(big(other.dq().unwrap())),
                Attribute::Coefficient(big(&other.crt_coefficient().unwrap())),
            ])
            .unwrap();
    }
    assert_material_corrupt(
        vault.wrap_key(&admin, "cmk", None, rsa, &[5; 32]),
        "cmk",
        &cmk.version,
        "another modulus",
    );
    assert_material_corrupt(
        vault.unwrap_key(&admin, "cmk", &cmk.version, rsa, &w.wrapped),
        "cmk",
        &cmk.version,
        "another modulus",
    );
}

/// A vault kept in a directory, killed between a purge's commit and the
/// destruction of the purged key's objects: the next open destroys them
/// (and what a crash left between making objects and committing them),
/// and says so in the audit log. Other vaults' objects are left alone.
pub fn a_crash_between_purge_commit_and_destroy_leaves_no_objects(
    kind: TokenKind,
    _rsa: WrapAlgorithm,
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let clock = Arc::new(ManualClock::new(T0));
    let admin = Principal::new("admin");
    let vault = in_dir(kind, &dir, &clock);
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    let doomed = vault
        .create_key(&admin, "doomed", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let kept = vault
        .create_key(&admin, "kept", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let doomed_id = vault.token_object_id("doomed", &doomed.version).unwrap();
    let kept_id = vault.token_object_id("kept", &kept.version).unwrap();
    vault.delete_key(&admin, "doomed").unwrap();
    let vault_id = vault.vault_id().unwrap().to_owned();
    drop(vault);

    let session = token(kind).session();
    let out = run_child(
        kind,
        "purge-crash",
        &[
            ("P11_DIR", dir.display().to_string()),
            ("P11_PIN", token(kind).user_pin().to_owned()),
        ],
    );
    assert!(
        !out.status.success(),
        "the child must abort: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Killed after the commit, before the destroy: the objects are there.
    assert_eq!(objects(&session, &doomed_id).len(), 2);
    // What a crash between making a key's objects and committing them
    // leaves: an object labelled as this vault's that its state does not
    // name. And another vault's object, which must stay.
    // Objects made outside the lock for a create or rotate that never
    // committed are labelled `new`, with the time they were made: one made
    // a minute ago may belong to a call still running in another process
    // and stays; one made more than a day ago is an orphan.
    let torn_id = vec![0xab; 16];
    let foreign_id = vec![0xcd; 16];
    let fresh_id = vec![0xef; 16];
    let stale_id = vec![0x5a; 16];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (id, label) in [
        (&torn_id, format!("key {vault_id} {}", hex(&torn_id))),
        (
            &foreign_id,
            format!("key {} {}", "00".repeat(16), hex(&foreign_id)),
        ),
        (
            &fresh_id,
            format!("new {vault_id} {} {}", hex(&fresh_id), now - 60),
        ),
        (
            &stale_id,
            format!("new {vault_id} {} {}", hex(&stale_id), now - 25 * 3600),
        ),
    ] {
        session
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(CkKeyType::AES),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Id(id.clone()),
                Attribute::Label(format!("strongroom-keyvault {label}").into_bytes()),
                Attribute::Value(vec![0x22; 32]),
            ])
            .unwrap();
    }

    assert_eq!(objects(&session, &torn_id).len(), 1);

    let vault = in_dir(kind, &dir, &clock);
    assert!(matches!(
        vault.get_key(&admin, "doomed", None),
        Err(VaultError::KeyPurged { .. })
    ));
    assert!(
        objects(&session, &doomed_id).is_empty(),
        "purged key's objects"
    );
    assert!(objects(&session, &torn_id).is_empty(), "torn objects");
    assert!(
        objects(&session, &stale_id).is_empty(),
        "a day-old new object"
    );
    assert_eq!(objects(&session, &kept_id).len(), 1, "a live key's object");
    assert_eq!(objects(&session, &foreign_id).len(), 1, "another vault's");
    assert_eq!(
        objects(&session, &fresh_id).len(),
        1,
        "a minute-old new object"
    );
    let log = vault.audit_log().unwrap();
    for id in [&doomed_id, &torn_id, &stale_id] {
        let entry = log
            .iter()
            .find(|e| e.operation.contains(&hex(id)))
            .unwrap_or_else(|| panic!("no audit entry for {}: {log:#?}", hex(id)));
        assert!(entry.operation.starts_with("destroyOrphanedTokenObjects"));
        assert_eq!(entry.principal, "(vault)");
    }
    vault.verify_audit_log().unwrap();
    vault
        .wrap_key(&admin, "kept", None, WrapAlgorithm::A256Kw, &[1; 32])
        .unwrap();
    // A second open finds nothing more to destroy.
    let before = vault.audit_log().unwrap().len();
    drop(vault);
    let vault = in_dir(kind, &dir, &clock);
    assert_eq!(vault.audit_log().unwrap().len(), before);
    for id in [&foreign_id, &fresh_id] {
        for (_, h) in objects(&session, id) {
            session.destroy_object(h).unwrap();
        }
    }
}

/// Key material is made before the state's lock is taken (RSA generation
/// takes seconds): two handles on one vault directory racing to create
/// the same RSA key name both make material (when both read the state
/// before either commits, as they usually do), one commits, and the
/// loser's objects are destroyed, so the token holds the winner's only
/// (and when one reads after the other's commit, it makes none). A create
/// the state already refuses makes nothing.
pub fn a_lost_create_race_leaves_no_objects(kind: TokenKind, _rsa: WrapAlgorithm) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let clock = Arc::new(ManualClock::new(T0));
    let admin = Principal::new("admin");
    let first = in_dir(kind, &dir, &clock);
    first.set_access_policy(&admin, Permissions::all()).unwrap();
    let second = in_dir(kind, &dir, &clock);
    let vault_id = first.vault_id().unwrap().to_owned();
    let session = token(kind).session();
    let ours = |session: &Session| -> usize {
        let prefix = format!("strongroom-keyvault key {vault_id} ");
        let new_prefix = format!("strongroom-keyvault new {vault_id} ");
        session
            .find_objects(&[Attribute::Token(true), Attribute::Private(true)])
            .unwrap()
            .into_iter()
            .filter(|h| {
                let attrs = session.get_attributes(*h, &[AttributeType::Label]).unwrap();
                attrs.iter().any(|a| match a {
                    Attribute::Label(l) => {
                        l.starts_with(prefix.as_bytes()) || l.starts_with(new_prefix.as_bytes())
                    }
                    _ => false,
                })
            })
            .count()
    };
    let results: Vec<_> = std::thread::scope(|scope| {
        [&first, &second]
            .map(|v| {
                let admin = &admin;
                scope.spawn(move || {
                    v.create_key(admin, "raced", KeyType::Rsa2048, KeyOptions::default())
                })
            })
            .map(|h| h.join().unwrap())
            .into_iter()
            .collect()
    });
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "exactly one create commits: {results:?}");
    for result in &results {
        if let Err(err) = result {
            assert!(matches!(err, VaultError::KeyExists { .. }), "{err:?}");
        }
    }
    let version = results.into_iter().find_map(Result::ok).unwrap().version;
    let id = first.token_object_id("raced", &version).unwrap();
    // The winner's private and public key objects, and nothing else of
    // this vault's (the state MAC key has its own label).
    assert_eq!(objects(&session, &id).len(), 2);
    assert_eq!(ours(&session), 2, "the loser's objects are destroyed");
    // Refused by the state before any material is made.
    assert!(matches!(
        second.create_key(&admin, "raced", KeyType::Rsa2048, KeyOptions::default()),
        Err(VaultError::KeyExists { .. })
    ));
    assert_eq!(ours(&session), 2);
    // Rotation adopts its early material under the lock: still only
    // committed objects.
    second
        .rotate_key(&admin, "raced", KeyOptions::default())
        .unwrap();
    assert_eq!(ours(&session), 4);
}

// ------------------------------------------ the rollback witness (issue 11)

/// The private data objects labelled `strongroom-keyvault <what>
/// <vault id>` (`what`: `witness`, or `witness-pending` for one a crash
/// mid-replace left).
fn witness_objects(session: &Session, what: &str, vault_id: &str) -> Vec<ObjectHandle> {
    session
        .find_objects(&[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Class(ObjectClass::DATA),
            Attribute::Label(format!("strongroom-keyvault {what} {vault_id}").into_bytes()),
        ])
        .expect("C_FindObjects")
}

/// The value of the vault's one witness object.
#[track_caller]
fn witness_value(session: &Session, vault_id: &str) -> Vec<u8> {
    let found = witness_objects(session, "witness", vault_id);
    assert_eq!(found.len(), 1, "one witness object");
    value_of(session, found[0])
}

fn value_of(session: &Session, h: ObjectHandle) -> Vec<u8> {
    match session
        .get_attributes(h, &[AttributeType::Value])
        .expect("C_GetAttributeValue")
        .as_slice()
    {
        [Attribute::Value(v)] => v.clone(),
        other => panic!("CKA_VALUE: {other:?}"),
    }
}

/// The generation a witness value records.
fn witness_generation(value: &[u8]) -> u64 {
    let json: serde_json::Value = serde_json::from_slice(value).expect("witness JSON");
    json["generation"].as_u64().expect("a generation")
}

/// Makes a witness object as the vault does (what the PIN holder can do).
fn make_witness_object(session: &Session, label: String, value: Vec<u8>) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Modifiable(true),
            Attribute::Application(b"strongroom-keyvault".to_vec()),
            Attribute::Label(label.into_bytes()),
            Attribute::Value(value),
        ])
        .expect("C_CreateObject")
}

/// The generation of the state in a vault directory: the last op record's,
/// or the snapshot's when the op log is empty.
fn dir_generation(dir: &std::path::Path) -> u64 {
    let ops = std::fs::read_to_string(dir.join("ops.log")).unwrap_or_default();
    let line = ops.lines().last().map_or_else(
        || std::fs::read_to_string(dir.join("state.json")).unwrap(),
        str::to_owned,
    );
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    json["generation"].as_u64().expect("a generation")
}

/// Copies the files of a vault directory (it has no subdirectories).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Puts the copy `from` back as the vault directory `dir`, every file.
fn put_back(from: &std::path::Path, dir: &std::path::Path) {
    std::fs::remove_dir_all(dir).unwrap();
    copy_dir(from, dir);
}

/// Issue 11: a copy of the whole directory put back after more commits
/// (state, op log and audit log consistent with each other, so nothing
/// in the directory can tell) is refused by the witness in the token,
/// naming both generations. The newest directory put back opens again.
pub fn a_rolled_back_directory_is_refused_by_the_token_witness(
    kind: TokenKind,
    _rsa: WrapAlgorithm,
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let old = tmp.path().join("old");
    let newest = tmp.path().join("newest");
    let clock = Arc::new(ManualClock::new(T0));
    let admin = Principal::new("admin");
    let app = Principal::new("app");
    let vault = in_dir(kind, &dir, &clock);
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    vault
        .set_access_policy(&app, Permissions::key_user())
        .unwrap();
    drop(vault);
    copy_dir(&dir, &old);
    let old_generation = dir_generation(&old);

    // More commits: a key, and the app's access revoked.
    let vault = in_dir(kind, &dir, &clock);
    vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    vault.set_access_policy(&app, Permissions::NONE).unwrap();
    drop(vault);
    let new_generation = dir_generation(&dir);
    assert!(new_generation >= old_generation + 2, "two commits at least");
    copy_dir(&dir, &newest);

    put_back(&old, &dir);
    for _ in 0..2 {
        let err = Pkcs11KeyVault::open_in_dir(token(kind).config(), &dir, props()).unwrap_err();
        let text = err.to_string();
        match err {
            VaultError::RolledBack { found, last_seen } => {
                assert_eq!(found, old_generation);
                assert_eq!(last_seen, new_generation);
            }
            other => panic!("expected RolledBack, got {other:?}"),
        }
        assert!(
            text.contains(&format!("generation {old_generation}"))
                && text.contains(&format!("generation {new_generation}")),
            "{text}"
        );
    }
    // The refused opens left the witness alone: the newest state opens,
    // with the revocation in force.
    put_back(&newest, &dir);
    let vault = in_dir(kind, &dir, &clock);
    assert_eq!(vault.access_policy(&app).unwrap(), Permissions::NONE);
    vault.get_key(&admin, "pmk", None).unwrap();
    vault.verify_audit_log().unwrap();
}

/// The witness is one private data object: a process without the PIN
/// neither sees nor destroys it, and what it plants under the witness's
/// label (a public object, where the token lets it) is never read. An
/// untouched vault reopens any number of times (each open sweeps orphaned
/// objects; the witness is not one), and an unchanged witness is not
/// rewritten.
pub fn the_token_witness_is_private_and_stays_put(kind: TokenKind, _rsa: WrapAlgorithm) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let clock = Arc::new(ManualClock::new(T0));
    let admin = Principal::new("admin");
    let vault = in_dir(kind, &dir, &clock);
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let vault_id = vault.vault_id().unwrap().to_owned();
    drop(vault);

    let session = token(kind).session();
    let found = witness_objects(&session, "witness", &vault_id);
    assert_eq!(found.len(), 1, "one witness object");
    let h = found[0];
    assert!(
        bool_attr(&session, h, AttributeType::Token),
        "a token object"
    );
    assert!(bool_attr(&session, h, AttributeType::Private), "private");
    match session
        .get_attributes(h, &[AttributeType::Application])
        .unwrap()
        .as_slice()
    {
        [Attribute::Application(a)] => assert_eq!(a, b"strongroom-keyvault"),
        other => panic!("CKA_APPLICATION: {other:?}"),
    }
    let value = witness_value(&session, &vault_id);
    assert_eq!(witness_generation(&value), dir_generation(&dir));
    let json: serde_json::Value = serde_json::from_slice(&value).unwrap();
    assert_eq!(json["vault_id"], vault_id.as_str());
    assert!(witness_objects(&session, "witness-pending", &vault_id).is_empty());

    let label = format!("strongroom-keyvault witness {vault_id}");
    let out = run_child(
        kind,
        "witness-attack",
        &[("P11_WITNESS_LABEL", label.clone())],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout
        .split("ATTACK:")
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    // SoftHSM2 lets a public session make public token objects, Kryoptic
    // does not.
    let planted = if kind == TokenKind::SoftHsm2 {
        "planted-public=yes"
    } else {
        "planted-public=no"
    };
    assert_eq!(
        lines,
        ["visible=0", "destroyed=0", planted, "planted-private=no"],
        "{stdout}"
    );
    assert_eq!(witness_value(&session, &vault_id), value, "untouched");

    for _ in 0..5 {
        let vault = in_dir(kind, &dir, &clock);
        vault.get_key(&admin, "pmk", None).unwrap();
        drop(vault);
    }
    // Each get appended an audit entry, so the witness moved on (same
    // generation, newer audit head): still one object (rewritten in place,
    // or replaced where the token cannot), never swept or duplicated.
    assert_eq!(witness_objects(&session, "witness", &vault_id).len(), 1);
    assert!(witness_objects(&session, "witness-pending", &vault_id).is_empty());
    let after = witness_value(&session, &vault_id);
    assert_eq!(witness_generation(&after), witness_generation(&value));
    assert_ne!(after, value, "the audit head moved");
    // Opens that change nothing do not write it (on SoftHSM2 a write
    // would replace the object).
    let object = witness_objects(&session, "witness", &vault_id);
    for _ in 0..3 {
        drop(in_dir(kind, &dir, &clock));
    }
    assert_eq!(witness_objects(&session, "witness", &vault_id), object);
    assert_eq!(witness_value(&session, &vault_id), after);
    // What the child planted is still there, public, and was never read.
    let public: Vec<_> = session
        .find_objects(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Private(false),
            Attribute::Label(label.into_bytes()),
        ])
        .unwrap();
    assert_eq!(public.len(), usize::from(kind == TokenKind::SoftHsm2));
    for h in public {
        session.destroy_object(h).unwrap();
    }
}

/// A process that never logs in, against the witness labelled
/// `P11_WITNESS_LABEL`: tries to see it, to destroy what it sees, and to
/// plant a public and a private data object with its label. Prints one
/// `what=result` line per attempt.
fn child_witness_attack() {
    use strongroom_test_tokens::cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    let ctx = Pkcs11::new(env("P11_MODULE")).expect("load the module");
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let label = env("P11_LABEL");
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == label)
        .expect("the token");
    let session = ctx.open_rw_session(slot).expect("C_OpenSession");
    let witness = env("P11_WITNESS_LABEL").into_bytes();
    let visible = session
        .find_objects(&[Attribute::Label(witness.clone())])
        .unwrap();
    println!("ATTACK:visible={}", visible.len());
    let destroyed = visible
        .into_iter()
        .filter(|h| session.destroy_object(*h).is_ok())
        .count();
    println!("ATTACK:destroyed={destroyed}");
    for private in [false, true] {
        let made = session.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(private),
            Attribute::Label(witness.clone()),
            Attribute::Value(b"{\"generation\":0}".to_vec()),
        ]);
        println!(
            "ATTACK:planted-{}={}",
            if private { "private" } else { "public" },
            if made.is_ok() { "yes" } else { "no" }
        );
    }
}

/// The PIN holder is trusted for rollback: deleting the witness object
/// (then putting back an older directory) goes unnoticed, and the next
/// open makes the object again from the directory's state. Two witness
/// objects are refused, naming the label, not chosen from.
pub fn the_pin_holder_can_delete_or_duplicate_the_witness(kind: TokenKind, _rsa: WrapAlgorithm) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let old = tmp.path().join("old");
    let clock = Arc::new(ManualClock::new(T0));
    let admin = Principal::new("admin");
    let vault = in_dir(kind, &dir, &clock);
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    let vault_id = vault.vault_id().unwrap().to_owned();
    drop(vault);
    copy_dir(&dir, &old);
    let vault = in_dir(kind, &dir, &clock);
    vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    drop(vault);

    let session = token(kind).session();
    // A second witness object: the vault does not open, and says why.
    let copy = witness_value(&session, &vault_id);
    let extra = make_witness_object(
        &session,
        format!("strongroom-keyvault witness {vault_id}"),
        copy,
    );
    match Pkcs11KeyVault::open_in_dir(token(kind).config(), &dir, props()) {
        Err(VaultError::Token { source, .. }) => {
            let text = source.to_string();
            assert!(text.contains("2 private data objects"), "{text}");
            assert!(text.contains(&vault_id), "{text}");
        }
        other => panic!("expected a token error, got {other:?}"),
    }
    session.destroy_object(extra).unwrap();
    drop(in_dir(kind, &dir, &clock));

    // The witness deleted, an older directory put back: not detected.
    for h in witness_objects(&session, "witness", &vault_id) {
        session.destroy_object(h).unwrap();
    }
    put_back(&old, &dir);
    let vault = in_dir(kind, &dir, &clock);
    assert!(matches!(
        vault.get_key(&admin, "pmk", None),
        Err(VaultError::KeyNotFound { .. })
    ));
    drop(vault);
    // Made again at open, from the state found.
    let value = witness_value(&session, &vault_id);
    assert_eq!(witness_generation(&value), dir_generation(&dir));
}

/// A token that cannot set a data object's value in place (SoftHSM2) gets
/// a replaced witness object: a new one labelled `witness-pending`, the
/// old one destroyed, the new one relabelled. What a crash leaves at each
/// step is settled: the old object and a pending one (the old value is in
/// force, the pending one is discarded by the next write), or the pending
/// one alone (it is the witness: an older directory is refused; the next
/// write makes it the witness object).
pub fn a_torn_witness_replacement_is_settled(kind: TokenKind, _rsa: WrapAlgorithm) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let old = tmp.path().join("old");
    let clock = Arc::new(ManualClock::new(T0));
    let admin = Principal::new("admin");
    let vault = in_dir(kind, &dir, &clock);
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    let vault_id = vault.vault_id().unwrap().to_owned();
    drop(vault);
    copy_dir(&dir, &old);
    let session = token(kind).session();
    let first = witness_value(&session, &vault_id);
    let vault = in_dir(kind, &dir, &clock);
    vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    drop(vault);
    let second = witness_value(&session, &vault_id);
    assert!(witness_generation(&second) > witness_generation(&first));
    let label = |what: &str| format!("strongroom-keyvault {what} {vault_id}");
    let replace = |current: Option<Vec<u8>>, pending: Option<Vec<u8>>| {
        for what in ["witness", "witness-pending"] {
            for h in witness_objects(&session, what, &vault_id) {
                session.destroy_object(h).unwrap();
            }
        }
        if let Some(v) = current {
            make_witness_object(&session, label("witness"), v);
        }
        if let Some(v) = pending {
            make_witness_object(&session, label("witness-pending"), v);
        }
    };

    // Crashed before the old object was destroyed: it is in force (one
    // step behind the directory, which is no rollback), and the open's
    // write settles both.
    replace(Some(first.clone()), Some(second.clone()));
    let vault = in_dir(kind, &dir, &clock);
    vault.get_key(&admin, "pmk", None).unwrap();
    drop(vault);
    assert!(witness_objects(&session, "witness-pending", &vault_id).is_empty());
    let settled = witness_value(&session, &vault_id);
    assert!(witness_generation(&settled) >= witness_generation(&second));

    // Crashed after: the pending object alone is the witness.
    replace(None, Some(settled.clone()));
    let current = tmp.path().join("current");
    copy_dir(&dir, &current);
    put_back(&old, &dir);
    match Pkcs11KeyVault::open_in_dir(token(kind).config(), &dir, props()) {
        Err(VaultError::RolledBack { found, last_seen }) => {
            assert_eq!(found, witness_generation(&first));
            assert_eq!(last_seen, witness_generation(&settled));
        }
        other => panic!("expected RolledBack, got {other:?}"),
    }
    put_back(&current, &dir);
    let vault = in_dir(kind, &dir, &clock);
    vault.get_key(&admin, "pmk", None).unwrap();
    drop(vault);
    assert!(witness_objects(&session, "witness-pending", &vault_id).is_empty());
    let last = witness_value(&session, &vault_id);
    assert_eq!(witness_generation(&last), dir_generation(&dir));
}

/// The audit log of a vault kept in a directory rotates as a file vault's
/// does, its MACs computed in the token: the live segment and the archived
/// one verify after a reopen; a memory-kept vault has no segments.
pub fn the_audit_log_rotates_under_the_token_mac(kind: TokenKind, _rsa: WrapAlgorithm) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let clock = Arc::new(ManualClock::new(T0));
    let admin = Principal::new("admin");
    let vault = in_dir(kind, &dir, &clock);
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    vault
        .create_key(&admin, "pmk", KeyType::Aes256, KeyOptions::default())
        .unwrap();
    let archived = vault.rotate_audit_log().unwrap().expect("entries");
    assert_eq!((archived.first_seq, archived.last_seq), (1, 2));
    vault
        .wrap_key(&admin, "pmk", None, WrapAlgorithm::A256Kw, &[5; 32])
        .unwrap();
    drop(vault);
    let vault = in_dir(kind, &dir, &clock);
    vault.verify_audit_log().unwrap();
    let live: Vec<u64> = vault.audit_log().unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(live, [3, 4]);
    assert_eq!(
        vault.verify_archived_audit_log(&[&archived.path]).unwrap(),
        1..=2
    );
    drop(vault);
    let memory = Pkcs11KeyVault::open(token(kind).config(), props()).unwrap();
    assert!(matches!(
        memory.rotate_audit_log(),
        Err(VaultError::InvalidArgument { .. })
    ));
}

/// The vault's secret data objects on the token (class DATA, application
/// `strongroom-keyvault`), with their values and whether they are private.
fn secret_objects(session: &Session) -> Vec<(ObjectHandle, Vec<u8>, bool)> {
    session
        .find_objects(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Application(b"strongroom-keyvault".to_vec()),
        ])
        .expect("C_FindObjects")
        .into_iter()
        .map(|h| {
            let (mut value, mut private) = (Vec::new(), false);
            for a in session
                .get_attributes(h, &[AttributeType::Value, AttributeType::Private])
                .expect("attributes")
            {
                match a {
                    Attribute::Value(v) => value = v,
                    Attribute::Private(p) => private = p,
                    _ => {}
                }
            }
            (h, value, private)
        })
        .collect()
}

/// How many of the token's secret data objects hold `value`.
fn holding(session: &Session, value: &[u8]) -> usize {
    secret_objects(session)
        .iter()
        .filter(|(_, v, _)| v == value)
        .count()
}

pub fn secret_values_are_private_data_objects(kind: TokenKind, _rsa: WrapAlgorithm) {
    let (vault, _, admin) = vault(kind);
    let value: Vec<u8> = strongroom_keyvault::OwnerKey::generate()
        .unwrap()
        .expose_secret()
        .to_vec();
    let v1 = vault
        .set_secret(
            &admin,
            "bek",
            &value,
            strongroom_keyvault::SecretOptions::default(),
        )
        .unwrap();
    let session = token(kind).session();
    // One private token object holds the value: the token keeps it (only a
    // session logged in with the user PIN can read a private object).
    let found: Vec<_> = secret_objects(&session)
        .into_iter()
        .filter(|(_, v, _)| *v == value)
        .collect();
    assert_eq!(found.len(), 1);
    assert!(found[0].2, "the data object is private");
    assert_eq!(
        vault
            .get_secret(&admin, "bek", Some(&v1.version))
            .unwrap()
            .value
            .expose_secret(),
        value
    );
    // Soft delete keeps it; purge destroys it.
    vault.delete_secret(&admin, "bek").unwrap();
    assert_eq!(holding(&session, &value), 1);
    vault.purge_secret(&admin, "bek").unwrap();
    assert_eq!(holding(&session, &value), 0);

    // Destroyed behind the vault's back: said plainly, naming the secret.
    let v = vault
        .set_secret(
            &admin,
            "gone",
            &value,
            strongroom_keyvault::SecretOptions::default(),
        )
        .unwrap();
    for (h, v, _) in secret_objects(&session) {
        if v == value {
            session.destroy_object(h).unwrap();
        }
    }
    let err = vault.get_secret(&admin, "gone", None).unwrap_err();
    assert!(
        matches!(&err, VaultError::SecretCorrupt { name, version, reason }
            if name == "gone" && *version == v.version && reason.contains("no longer holds")),
        "{err:?}"
    );
}

pub fn orphaned_secret_objects_are_swept(kind: TokenKind, _rsa: WrapAlgorithm) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let clock = Arc::new(ManualClock::new(T0));
    let admin = Principal::new("admin");
    let vault = in_dir(kind, &dir, &clock);
    let vault_id = vault.vault_id().unwrap().to_owned();
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    let kept = b"kept secret value".to_vec();
    vault
        .set_secret(
            &admin,
            "bek",
            &kept,
            strongroom_keyvault::SecretOptions::default(),
        )
        .unwrap();
    drop(vault);
    // A data object labelled as this vault's that its state does not name
    // (a crash between making it and committing it): swept at the next
    // open. Another vault's object, and one not labelled as a vault's, stay.
    let session = token(kind).session();
    let make = |label: String, value: &[u8]| {
        session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Application(b"strongroom-keyvault".to_vec()),
                Attribute::Label(label.into_bytes()),
                Attribute::Value(value.to_vec()),
            ])
            .unwrap()
    };
    let orphan = b"orphaned value".to_vec();
    let foreign = b"another vault's value".to_vec();
    make(
        format!("strongroom-keyvault secret {vault_id} {}", "ab".repeat(16)),
        &orphan,
    );
    make(
        format!(
            "strongroom-keyvault secret {} {}",
            "cd".repeat(16),
            "ab".repeat(16)
        ),
        &foreign,
    );
    let vault = in_dir(kind, &dir, &clock);
    assert_eq!(holding(&session, &orphan), 0, "the orphan is swept");
    assert_eq!(
        holding(&session, &foreign),
        1,
        "another vault's object stays"
    );
    assert_eq!(holding(&session, &kept), 1);
    assert_eq!(
        vault
            .get_secret(&admin, "bek", None)
            .unwrap()
            .value
            .expose_secret(),
        kept
    );
    let log = vault.audit_log().unwrap();
    assert!(
        log.iter()
            .any(|e| e.operation.starts_with("destroyOrphanedTokenObjects abab")),
        "the sweep is audited"
    );
    for (h, v, _) in secret_objects(&session) {
        if v == foreign {
            session.destroy_object(h).unwrap();
        }
    }
}
