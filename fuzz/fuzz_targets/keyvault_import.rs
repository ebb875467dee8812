//! Key import on arbitrary input, through the public API
//! (`KeyVault::import_key` of a `MemoryKeyVault`).
//!
//! Every input is imported as `KeyImport::Pkcs8Der` and, when it is UTF-8,
//! as `KeyImport::Pkcs8Pem` and `KeyImport::Jwk`, under a free key name by
//! a principal holding every permission. For every input: no panic; a
//! refusal is `InvalidKeyMaterial`, or `LimitExceeded` exactly when the
//! input is over `MAX_IMPORT_BYTES`; and its message quotes none of the key
//! (import.rs: "a reason that never quotes the key"): see
//! [`assert_not_quoted`]. When an import succeeds, the key is of the type
//! its material says, wraps a 32-byte DEK and unwraps it again, and is then
//! deleted and purged, so the next input finds the name free.
//!
//! Seed the corpus with real keys for speed, e.g.
//! `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -outform DER`
//! (and `-outform PEM`), and an `oct` JWK with a 43-character `k`.

#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::limits::MAX_IMPORT_BYTES;
use strongroom_keyvault::{
    KeyImport, KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permissions, Principal, VaultError,
    VaultProperties,
};

/// The key name every import uses (free again after each success).
const NAME: &str = "fuzz";

/// A memory vault keeps its whole audit log in memory, one entry per call:
/// it is replaced by a fresh one after this many inputs.
const INPUTS_PER_VAULT: u32 = 4096;

struct Fixture {
    vault: MemoryKeyVault,
    admin: Principal,
    inputs: u32,
}

static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);

fn fresh() -> Fixture {
    let vault = MemoryKeyVault::new(VaultProperties::new("fuzz")).expect("a memory vault");
    let admin = Principal::new("fuzz-admin");
    vault
        .set_access_policy(&admin, Permissions::all())
        .expect("an access policy");
    Fixture {
        vault,
        admin,
        inputs: 0,
    }
}

/// Asserts that `message` (an error's `Display`) quotes nothing of `input`
/// that looks like key material.
///
/// Sound because the vault's refusals of an import are built from fixed
/// printable-ASCII text, numbers and the key name (import.rs drops the
/// parsers' own messages), and none of that holds a control or non-ASCII
/// byte, `{` or `"`, or a run of 17 or more base64 / base64url characters:
/// - an input of more than 16 bytes with such a byte (binary DER, PEM's
///   line breaks, a JSON object) can only be in the message if it was
///   quoted;
/// - neither can any run of 17 or more base64 / base64url characters in the
///   input (a JWK member, a line of a PEM body).
fn assert_not_quoted(message: &str, input: &[u8]) {
    let message = message.as_bytes();
    let marked = input
        .iter()
        .any(|&b| !(0x20..=0x7e).contains(&b) || b == b'{' || b == b'"');
    if input.len() > 16 && marked {
        assert!(
            !contains(message, input),
            "an import error quotes its input: {}",
            String::from_utf8_lossy(message)
        );
    }
    let base64 = |b: &u8| b.is_ascii_alphanumeric() || b"+/=_-".contains(b);
    for run in input.split(|b| !base64(b)).filter(|run| run.len() >= 17) {
        assert!(
            !contains(message, run),
            "an import error quotes a run of the input: {}",
            String::from_utf8_lossy(message)
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn import(fixture: &Fixture, key: KeyImport<'_>, input: &[u8]) {
    let Fixture { vault, admin, .. } = fixture;
    let info = match vault.import_key(admin, NAME, key, KeyOptions::default()) {
        Ok(info) => info,
        Err(err) => {
            match &err {
                VaultError::InvalidKeyMaterial { .. } => {
                    assert!(input.len() <= MAX_IMPORT_BYTES, "{err}");
                }
                VaultError::LimitExceeded { limit, found, .. } => {
                    assert!(input.len() > MAX_IMPORT_BYTES, "{err}");
                    assert_eq!((*found, *limit), (input.len(), MAX_IMPORT_BYTES));
                }
                other => panic!("{key:?} refused with an unexpected error: {other:?}"),
            }
            assert_not_quoted(&err.to_string(), input);
            return;
        }
    };

    // A key that imported does what its type says.
    assert_eq!(info.name, NAME);
    let algorithm = match info.key_type {
        KeyType::Aes256 => {
            assert!(info.public.is_none(), "an AES key has no public part");
            WrapAlgorithm::A256Kw
        }
        rsa => {
            let bits = rsa.rsa_bits().expect("an RSA key type");
            let public = info.public.as_ref().expect("an RSA key's public part");
            assert!(public.to_rsa().is_ok(), "the public part is an RSA key");
            // Big-endian without leading zeros: exactly `bits` wide.
            assert_eq!(public.n.len() * 8, bits, "the modulus has the type's size");
            assert!(public.n[0] & 0x80 != 0, "the modulus has the type's size");
            WrapAlgorithm::RsaOaep256
        }
    };
    let dek = [0x5a; 32];
    let wrapped = vault
        .wrap_key(admin, NAME, None, algorithm, &dek)
        .expect("an imported key wraps");
    assert_eq!(wrapped.version, info.version);
    let back = vault
        .unwrap_wrapped(admin, NAME, algorithm, &wrapped)
        .expect("an imported key unwraps what it wrapped");
    assert_eq!(back.as_slice(), dek);
    let got = vault.get_key(admin, NAME, None).expect("get");
    assert_eq!(got, info);

    vault.delete_key(admin, NAME).expect("delete");
    vault.purge_key(admin, NAME).expect("purge");
}

fuzz_target!(|data: &[u8]| {
    let mut guard = FIXTURE.lock().unwrap_or_else(|e| e.into_inner());
    if guard.as_ref().is_none_or(|f| f.inputs >= INPUTS_PER_VAULT) {
        *guard = Some(fresh());
    }
    let Some(fixture) = guard.as_mut() else {
        return;
    };
    fixture.inputs += 1;
    let fixture = &*fixture;

    import(fixture, KeyImport::Pkcs8Der(data), data);
    if let Ok(text) = std::str::from_utf8(data) {
        import(fixture, KeyImport::Pkcs8Pem(text), data);
        import(fixture, KeyImport::Jwk(text), data);
    }
});
