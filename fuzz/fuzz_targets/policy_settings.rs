//! The vault's encryption settings parser on arbitrary input
//! (`strongroom_policy::EncryptionSettings::from_json`).
//!
//! For every input: `from_json` must not panic, and refuses anything over
//! its 64 KiB limit unread. When the input parses, the settings' own JSON
//! parses back to the same settings, every name is within its bounds, and
//! the state machine answers about them without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_policy::{
    EncryptionSettings, MAX_SETTINGS_JSON_BYTES, SettingsParseError, VaultEncryption,
};

fuzz_target!(|data: &[u8]| {
    let settings = match EncryptionSettings::from_json(data) {
        Ok(settings) => settings,
        Err(SettingsParseError::TooLarge { size, limit }) => {
            assert!(data.len() > MAX_SETTINGS_JSON_BYTES);
            assert_eq!((size, limit), (data.len(), MAX_SETTINGS_JSON_BYTES));
            return;
        }
        Err(err) => {
            assert!(data.len() <= MAX_SETTINGS_JSON_BYTES);
            let _ = err.to_string();
            return;
        }
    };
    settings
        .validate()
        .expect("parsed settings are within bounds");
    let json = settings.to_json();
    assert!(json.len() <= MAX_SETTINGS_JSON_BYTES);
    let again = EncryptionSettings::from_json(&json).expect("the settings' own JSON parses");
    assert_eq!(again, settings);

    // The rules hold up on whatever parsed.
    let mut vault = VaultEncryption::new();
    if vault.set(settings.clone()).is_ok() {
        assert_eq!(vault.settings(), &settings);
    }
});
