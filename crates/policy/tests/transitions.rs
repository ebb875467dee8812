//! The vault's encryption state machine (R11, R12, R16): one test per
//! refusal with its message, and a property test over random histories.

use proptest::prelude::*;
use strongroom_policy::{
    CustomerKey, EncryptionSettings, Identity, InvalidField, SettingsField, TransitionError,
    VaultEncryption,
};

fn cmk(name: &str) -> EncryptionSettings {
    EncryptionSettings::customer_managed(CustomerKey::new("contoso-kv", name))
}

#[test]
fn a_new_vault_is_platform_managed_and_unprotected() {
    let vault = VaultEncryption::new();
    assert_eq!(vault.settings(), &EncryptionSettings::platform_managed());
    assert_eq!(vault.settings(), &EncryptionSettings::default());
    assert!(!vault.protection_attempted());
    assert_eq!(VaultEncryption::default(), vault);
}

#[test]
fn platform_to_platform_is_a_no_op() {
    let mut vault = VaultEncryption::new();
    vault.record_protection_attempt();
    vault.set(EncryptionSettings::platform_managed()).unwrap();
    assert_eq!(vault.settings(), &EncryptionSettings::platform_managed());
}

#[test]
fn a_customer_key_after_a_protection_attempt_is_refused() {
    let mut vault = VaultEncryption::new();
    vault.record_protection_attempt();
    let err = vault.set(cmk("cmk")).unwrap_err();
    assert_eq!(err, TransitionError::ItemsAlreadyProtected);
    assert_eq!(
        err.to_string(),
        "customer-managed keys can be enabled only before the first item is protected; this vault has had a protection attempt: create a new vault to use a customer key"
    );
    assert_eq!(vault.settings(), &EncryptionSettings::platform_managed());
}

#[test]
fn there_is_no_way_back_to_platform_managed() {
    let mut vault = VaultEncryption::new();
    vault.set(cmk("cmk")).unwrap();
    let err = vault
        .set(EncryptionSettings::platform_managed())
        .unwrap_err();
    assert_eq!(err, TransitionError::NoWayBackToPlatformManaged);
    assert_eq!(
        err.to_string(),
        "a vault that uses a customer-managed key cannot go back to platform-managed keys: change to another customer key instead"
    );
    // Not even with nothing protected yet.
    assert!(!vault.protection_attempted());
    assert_eq!(vault.settings(), &cmk("cmk"));
}

#[test]
fn infrastructure_encryption_needs_a_customer_key() {
    let mut vault = VaultEncryption::new();
    let err = vault
        .set(EncryptionSettings::platform_managed().with_infrastructure_encryption())
        .unwrap_err();
    assert_eq!(
        err,
        TransitionError::InfrastructureEncryptionNeedsCustomerKey
    );
    assert_eq!(
        err.to_string(),
        "infrastructure encryption needs a customer-managed key: turn it on together with a customer key, or leave it off"
    );
}

#[test]
fn infrastructure_encryption_cannot_be_turned_off() {
    let mut vault = VaultEncryption::new();
    vault
        .set(cmk("cmk").with_infrastructure_encryption())
        .unwrap();
    let err = vault.set(cmk("cmk-2")).unwrap_err();
    assert_eq!(
        err,
        TransitionError::InfrastructureEncryptionIsFixed { enabled: true }
    );
    assert_eq!(
        err.to_string(),
        "infrastructure encryption was turned on with the vault's first customer key and cannot be turned off: keep it on in the new settings"
    );
    vault
        .set(cmk("cmk-2").with_infrastructure_encryption())
        .unwrap();
}

#[test]
fn infrastructure_encryption_cannot_be_turned_on_later() {
    let mut vault = VaultEncryption::new();
    vault.set(cmk("cmk")).unwrap();
    let err = vault
        .set(cmk("cmk").with_infrastructure_encryption())
        .unwrap_err();
    assert_eq!(
        err,
        TransitionError::InfrastructureEncryptionIsFixed { enabled: false }
    );
    assert_eq!(
        err.to_string(),
        "infrastructure encryption can only be turned on with the vault's first customer key, and this vault's was enabled without it: leave it off, or create a new vault to use it"
    );
}

#[test]
fn settings_with_names_out_of_bounds_are_refused() {
    let mut vault = VaultEncryption::new();
    let bad = EncryptionSettings::customer_managed(
        CustomerKey::new("contoso-kv", "cmk").with_identity(Identity::UserAssigned("x".into())),
    );
    let err = vault.set(bad).unwrap_err();
    assert!(matches!(
        err,
        TransitionError::InvalidSettings(InvalidField {
            field: SettingsField::IdentityName,
            ..
        })
    ));
    assert_eq!(
        err.to_string(),
        "invalid encryption settings: key.customer_managed.identity.user_assigned is out of bounds: it must be 3 to 128 characters of 0-9, A-Z, a-z, - and _, starting with a letter or digit; correct it"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn any_customer_key_may_follow_a_customer_key() {
    let mut vault = VaultEncryption::new();
    vault.set(cmk("cmk")).unwrap();
    vault.record_protection_attempt();
    let changes = [
        cmk("cmk-2"),
        EncryptionSettings::customer_managed(CustomerKey::new("fabrikam-kv", "cmk-2")),
        EncryptionSettings::customer_managed(
            CustomerKey::new("fabrikam-kv", "cmk-2")
                .with_version("0123456789abcdef0123456789abcdef"),
        ),
        EncryptionSettings::customer_managed(
            CustomerKey::new("fabrikam-kv", "cmk-2")
                .with_identity(Identity::UserAssigned("uami-backup".into())),
        ),
        cmk("cmk"),
    ];
    for change in changes {
        vault.check(&change).unwrap();
        vault.set(change.clone()).unwrap();
        assert_eq!(vault.settings(), &change);
    }
}

#[test]
fn check_changes_nothing() {
    let vault = VaultEncryption::new();
    vault.check(&cmk("cmk")).unwrap();
    assert_eq!(vault, VaultEncryption::new());
}

#[test]
fn the_state_round_trips_through_serde() {
    let mut vault = VaultEncryption::new();
    vault
        .set(cmk("cmk").with_infrastructure_encryption())
        .unwrap();
    vault.record_protection_attempt();
    let json = serde_json::to_string(&vault).unwrap();
    assert_eq!(
        serde_json::from_str::<VaultEncryption>(&json).unwrap(),
        vault
    );
}

#[derive(Debug, Clone)]
enum Step {
    Set(EncryptionSettings),
    Attempt,
}

fn settings() -> impl Strategy<Value = EncryptionSettings> {
    let key = (
        prop::sample::select(vec!["kv-a", "kv-b"]),
        prop::sample::select(vec!["cmk", "cmk-2"]),
        prop::option::of(Just("0123456789abcdef0123456789abcdef")),
        prop::option::of(Just("uami-backup")),
    )
        .prop_map(|(vault, name, version, uami)| {
            let mut key = CustomerKey::new(vault, name);
            key.key_version = version.map(str::to_owned);
            if let Some(uami) = uami {
                key.identity = Identity::UserAssigned(uami.to_owned());
            }
            EncryptionSettings::customer_managed(key)
        });
    let source = prop_oneof![Just(EncryptionSettings::platform_managed()), key];
    (source, any::<bool>()).prop_map(|(mut s, infra)| {
        s.infrastructure_encryption = infra;
        s
    })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![3 => settings().prop_map(Step::Set), 1 => Just(Step::Attempt)]
}

proptest! {
    #[test]
    fn invariants_hold_over_any_history(steps in prop::collection::vec(step(), 0..40)) {
        let mut vault = VaultEncryption::new();
        // When the first customer key was set: (attempted before?, infra flag).
        let mut first_cmk: Option<bool> = None;
        let mut ever_attempted = false;
        for step in steps {
            let before = vault.clone();
            match step {
                Step::Attempt => {
                    vault.record_protection_attempt();
                    ever_attempted = true;
                }
                Step::Set(proposed) => {
                    let checked = vault.check(&proposed);
                    let result = vault.set(proposed.clone());
                    prop_assert_eq!(&checked, &result);
                    match result {
                        Ok(()) => {
                            prop_assert_eq!(vault.settings(), &proposed);
                            if proposed.is_customer_managed() && first_cmk.is_none() {
                                // A customer key is enabled only with no attempt before.
                                prop_assert!(!ever_attempted);
                                first_cmk = Some(proposed.infrastructure_encryption);
                            }
                        }
                        Err(_) => prop_assert_eq!(&vault, &before),
                    }
                }
            }
            // An attempt is never forgotten.
            prop_assert_eq!(vault.protection_attempted(), ever_attempted);
            match first_cmk {
                // Once customer-managed, never platform-managed again, and
                // the infrastructure flag stays as the first key set it.
                Some(infra) => {
                    prop_assert!(vault.settings().is_customer_managed());
                    prop_assert_eq!(vault.settings().infrastructure_encryption, infra);
                }
                // Platform-managed never has infrastructure encryption.
                None => prop_assert_eq!(vault.settings(), &EncryptionSettings::platform_managed()),
            }
            // The state survives its serialized form.
            let json = serde_json::to_vec(&vault).unwrap();
            prop_assert_eq!(serde_json::from_slice::<VaultEncryption>(&json).unwrap(), vault.clone());
        }
    }

    #[test]
    fn a_refusal_is_exactly_what_the_rules_say(
        current in settings(), attempted in any::<bool>(), proposed in settings()
    ) {
        let mut vault = VaultEncryption::new();
        // Reach `current` if the rules allow it at all.
        if vault.set(current.clone()).is_err() {
            return Ok(());
        }
        if attempted {
            vault.record_protection_attempt();
        }
        let expected = match (current.is_customer_managed(), proposed.is_customer_managed()) {
            (false, false) if proposed.infrastructure_encryption => {
                Err(TransitionError::InfrastructureEncryptionNeedsCustomerKey)
            }
            (false, false) => Ok(()),
            (false, true) if attempted => Err(TransitionError::ItemsAlreadyProtected),
            (false, true) => Ok(()),
            (true, false) => Err(TransitionError::NoWayBackToPlatformManaged),
            (true, true) if current.infrastructure_encryption != proposed.infrastructure_encryption => {
                Err(TransitionError::InfrastructureEncryptionIsFixed {
                    enabled: current.infrastructure_encryption,
                })
            }
            (true, true) => Ok(()),
        };
        prop_assert_eq!(vault.check(&proposed), expected);
    }
}
