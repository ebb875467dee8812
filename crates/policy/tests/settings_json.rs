//! The settings' JSON form: round trips, bounds, unknown fields, names.

use proptest::prelude::*;
use strongroom_policy::{
    CustomerKey, EncryptionSettings, Identity, InvalidField, KeySource, MAX_SETTINGS_JSON_BYTES,
    SettingsField, SettingsParseError,
};

fn parse(json: &str) -> Result<EncryptionSettings, SettingsParseError> {
    EncryptionSettings::from_json(json.as_bytes())
}

fn field_of(json: &str) -> SettingsField {
    match parse(json) {
        Err(SettingsParseError::InvalidField(InvalidField { field, .. })) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[test]
fn the_documented_forms_parse() {
    assert_eq!(
        parse(r#"{"key":"platform_managed","infrastructure_encryption":false}"#).unwrap(),
        EncryptionSettings::platform_managed()
    );
    // Versionless and infrastructure encryption off may be left out.
    assert_eq!(
        parse(r#"{"key":"platform_managed"}"#).unwrap(),
        EncryptionSettings::platform_managed()
    );
    let settings = parse(
        r#"{"key":{"customer_managed":{"key_vault":"contoso-kv","key_name":"cmk",
            "key_version":null,"identity":{"user_assigned":"uami-backup"}}},
            "infrastructure_encryption":true}"#,
    )
    .unwrap();
    assert_eq!(
        settings,
        EncryptionSettings::customer_managed(
            CustomerKey::new("contoso-kv", "cmk")
                .with_identity(Identity::UserAssigned("uami-backup".into()))
        )
        .with_infrastructure_encryption()
    );
}

#[test]
fn the_json_form_is_stable() {
    let settings = EncryptionSettings::customer_managed(
        CustomerKey::new("contoso-kv", "cmk").with_version("0123456789abcdef0123456789abcdef"),
    );
    assert_eq!(
        String::from_utf8(settings.to_json()).unwrap(),
        r#"{"key":{"customer_managed":{"key_vault":"contoso-kv","key_name":"cmk","key_version":"0123456789abcdef0123456789abcdef","identity":"system_assigned"}},"infrastructure_encryption":false}"#
    );
    assert_eq!(
        EncryptionSettings::platform_managed().to_json(),
        br#"{"key":"platform_managed","infrastructure_encryption":false}"#
    );
}

#[test]
fn oversize_input_is_refused_before_parsing() {
    // Valid JSON padded with whitespace: refused for its size alone.
    let mut json = br#"{"key":"platform_managed"}"#.to_vec();
    json.resize(MAX_SETTINGS_JSON_BYTES, b' ');
    EncryptionSettings::from_json(&json).unwrap();
    json.push(b' ');
    let err = EncryptionSettings::from_json(&json).unwrap_err();
    assert_eq!(
        err,
        SettingsParseError::TooLarge {
            size: MAX_SETTINGS_JSON_BYTES + 1,
            limit: MAX_SETTINGS_JSON_BYTES
        }
    );
    // Not even looked at: garbage of that size says the same.
    let garbage = vec![0xff; MAX_SETTINGS_JSON_BYTES + 1];
    assert_eq!(EncryptionSettings::from_json(&garbage).unwrap_err(), err);
    assert_eq!(
        err.to_string(),
        "encryption settings of 65537 bytes refused unread: at most 65536 bytes are accepted; pass the settings' JSON only"
    );
}

#[test]
fn unknown_fields_are_refused_at_every_level() {
    for json in [
        r#"{"key":"platform_managed","extra":1}"#,
        r#"{"key":{"customer_managed":{"key_vault":"kv","key_name":"cmk","identity":"system_assigned","tags":{}}}}"#,
        r#"{"key":{"bring_your_own":{}}}"#,
        r#"{"key":{"customer_managed":{"key_vault":"kv","key_name":"cmk","identity":"managed"}}}"#,
    ] {
        match parse(json) {
            Err(SettingsParseError::Malformed { reason }) => {
                assert!(reason.contains("unknown"), "{json}: {reason}");
            }
            other => panic!("{json}: {other:?}"),
        }
    }
    // An enum's object takes exactly one key: a second is refused too.
    let json = r#"{"key":{"customer_managed":{"key_vault":"kv","key_name":"cmk","identity":{"user_assigned":"uami","x":1}}}}"#;
    assert!(matches!(
        parse(json),
        Err(SettingsParseError::Malformed { .. })
    ));
    let err = parse(r#"{"key":"platform_managed","extra":1}"#).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("malformed encryption settings: unknown field `extra`")
    );
}

#[test]
fn malformed_input_is_refused() {
    for json in [
        "",
        "null",
        "[]",
        r#"{"infrastructure_encryption":true}"#,
        r#"{"key":"platform_managed","infrastructure_encryption":"yes"}"#,
        r#"{"key":{"customer_managed":{"key_vault":"kv","identity":"system_assigned"}}}"#,
        r#"{"key":"platform_managed"} trailing"#,
        r#"{"key":"platform_managed","key":"platform_managed"}"#,
    ] {
        assert!(
            matches!(parse(json), Err(SettingsParseError::Malformed { .. })),
            "{json}"
        );
    }
}

#[test]
fn quoted_input_does_not_reach_the_message_raw() {
    let json = format!(
        r#"{{"key":"platform_managed","a\nb{}":1}}"#,
        "x".repeat(1000)
    );
    let Err(SettingsParseError::Malformed { reason }) = parse(&json) else {
        panic!("expected Malformed");
    };
    assert!(!reason.contains('\n'));
    assert!(reason.chars().count() <= 257);
}

fn cmk_json(vault: &str, name: &str, version: Option<&str>, identity: &str) -> String {
    let version = version.map_or("null".to_owned(), |v| format!("\"{v}\""));
    format!(
        r#"{{"key":{{"customer_managed":{{"key_vault":"{vault}","key_name":"{name}","key_version":{version},"identity":{identity}}}}}}}"#
    )
}

#[test]
fn bad_names_are_refused_with_the_field_named() {
    let system = r#""system_assigned""#;
    assert_eq!(
        field_of(&cmk_json("", "cmk", None, system)),
        SettingsField::KeyVault
    );
    let long_vault = "v".repeat(256);
    assert_eq!(
        field_of(&cmk_json(&long_vault, "cmk", None, system)),
        SettingsField::KeyVault
    );
    assert_eq!(
        field_of(&cmk_json("kv\\u0007", "cmk", None, system)),
        SettingsField::KeyVault
    );
    assert_eq!(
        field_of(&cmk_json("kv", "", None, system)),
        SettingsField::KeyName
    );
    assert_eq!(
        field_of(&cmk_json("kv", "cmk_1", None, system)),
        SettingsField::KeyName
    );
    assert_eq!(
        field_of(&cmk_json("kv", &"k".repeat(128), None, system)),
        SettingsField::KeyName
    );
    assert_eq!(
        field_of(&cmk_json("kv", "cmk", Some(""), system)),
        SettingsField::KeyVersion
    );
    assert_eq!(
        field_of(&cmk_json("kv", "cmk", Some("v/1"), system)),
        SettingsField::KeyVersion
    );
    for name in ["ab", "-uami", "uami backup", &"u".repeat(129)] {
        let identity = format!(r#"{{"user_assigned":"{name}"}}"#);
        assert_eq!(
            field_of(&cmk_json("kv", "cmk", None, &identity)),
            SettingsField::IdentityName
        );
    }
    // At the limits: accepted.
    let identity = format!(r#"{{"user_assigned":"{}"}}"#, "u".repeat(128));
    parse(&cmk_json(
        &"v".repeat(255),
        &"k".repeat(127),
        Some(&"0".repeat(127)),
        &identity,
    ))
    .unwrap();

    let err = parse(&cmk_json("kv", "cmk_1", None, system)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid encryption settings: key.customer_managed.key_name is out of bounds: it must be 1 to 127 characters of 0-9, A-Z, a-z and -; correct it"
    );
    assert!(!err.to_string().contains("cmk_1"));
}

#[test]
fn serde_deserialize_checks_the_names_too() {
    let json = cmk_json("kv", "cmk_1", None, r#""system_assigned""#);
    assert!(serde_json::from_str::<EncryptionSettings>(&json).is_err());
    let json = cmk_json("kv", "cmk", None, r#""system_assigned""#);
    assert!(serde_json::from_str::<EncryptionSettings>(&json).is_ok());
}

fn name(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[0-9A-Za-z-]{{1,{max}}}")).unwrap()
}

fn any_settings() -> impl Strategy<Value = EncryptionSettings> {
    let identity = prop_oneof![
        Just(Identity::SystemAssigned),
        "[0-9A-Za-z][0-9A-Za-z_-]{2,127}".prop_map(Identity::UserAssigned),
    ];
    let key = (
        "[^\\p{Cc}]{1,64}",
        name(127),
        prop::option::of(name(127)),
        identity,
    )
        .prop_map(|(key_vault, key_name, key_version, identity)| CustomerKey {
            key_vault,
            key_name,
            key_version,
            identity,
        });
    let source = prop_oneof![
        Just(KeySource::PlatformManaged),
        key.prop_map(KeySource::CustomerManaged)
    ];
    (source, any::<bool>()).prop_map(|(key, infrastructure_encryption)| EncryptionSettings {
        key,
        infrastructure_encryption,
    })
}

proptest! {
    #[test]
    fn any_valid_settings_round_trip(settings in any_settings()) {
        let json = settings.to_json();
        prop_assert!(json.len() <= MAX_SETTINGS_JSON_BYTES);
        prop_assert_eq!(EncryptionSettings::from_json(&json).unwrap(), settings);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(settings) = EncryptionSettings::from_json(&bytes) {
            prop_assert_eq!(EncryptionSettings::from_json(&settings.to_json()).unwrap(), settings);
        }
    }
}
