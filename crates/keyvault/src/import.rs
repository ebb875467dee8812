//! Bring your own key: PKCS#8 (DER or PEM) and JSON Web Keys.
//!
//! Every refusal is [`VaultError::InvalidKeyMaterial`] with a reason that
//! never quotes the key (parsers' own messages, which may, are dropped).

use base64ct::{Base64UrlUnpadded, Encoding};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BoxedUint, PrivateKey};
use serde::Deserialize;
use strongroom_aes::Aes256Key;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::state::ImportedKey;
use crate::vault::KeyImport;
use crate::{KeyType, VaultError};

fn refuse(reason: &str) -> VaultError {
    VaultError::InvalidKeyMaterial {
        reason: reason.to_owned(),
    }
}

impl ImportedKey {
    /// The key type of the parsed key.
    pub(crate) fn key_type(&self) -> KeyType {
        match self {
            // safe: `parse` only makes RSA keys of an accepted size; the
            // fallback is never reached.
            Self::Rsa(key) => rsa_key_type(key).unwrap_or(KeyType::Rsa2048),
            Self::Aes256(_) => KeyType::Aes256,
        }
    }
}

/// The key type of an RSA key whose modulus is exactly 2048, 3072 or 4096
/// bits.
fn rsa_key_type(key: &PrivateKey) -> Option<KeyType> {
    let bits = key.n().bit_width_vartime();
    KeyType::rsa_from_bits(usize::try_from(bits).ok()?)
}

/// Parses and checks imported key material.
///
/// # Errors
/// [`VaultError::InvalidKeyMaterial`]: not parseable, an inconsistent RSA
/// key, an RSA modulus other than 2048/3072/4096 bits, a secret key other
/// than 32 bytes, a key type we do not hold.
pub(crate) fn parse(import: KeyImport<'_>) -> Result<ImportedKey, VaultError> {
    match import {
        KeyImport::Pkcs8Der(der) => {
            let key = PrivateKey::from_pkcs8_der(der).map_err(|_| {
                refuse("not a valid RSA private key in PKCS#8 DER (malformed, another key type, or inconsistent numbers)")
            })?;
            rsa_checked(key)
        }
        KeyImport::Pkcs8Pem(pem) => {
            let key = PrivateKey::from_pkcs8_pem(pem).map_err(|_| {
                refuse("not a valid RSA private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----; malformed, another key type, or inconsistent numbers)")
            })?;
            rsa_checked(key)
        }
        KeyImport::Jwk(json) => parse_jwk(json),
    }
}

fn rsa_checked(key: PrivateKey) -> Result<ImportedKey, VaultError> {
    if rsa_key_type(&key).is_none() {
        return Err(refuse(
            "RSA keys must have a 2048, 3072 or 4096-bit modulus",
        ));
    }
    Ok(ImportedKey::Rsa(Box::new(key)))
}

/// The members of a JWK we read; the secret ones are zeroized on drop.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    n: Option<String>,
    e: Option<String>,
    d: Option<String>,
    p: Option<String>,
    q: Option<String>,
    dp: Option<String>,
    dq: Option<String>,
    qi: Option<String>,
    k: Option<String>,
    oth: Option<serde::de::IgnoredAny>,
}

impl Drop for Jwk {
    fn drop(&mut self) {
        for secret in [
            &mut self.d,
            &mut self.p,
            &mut self.q,
            &mut self.dp,
            &mut self.dq,
            &mut self.qi,
            &mut self.k,
        ] {
            secret.zeroize();
        }
    }
}

/// A base64url (no padding) JWK member, decoded into a zeroizing buffer.
fn member(value: Option<&String>, name: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let text = value.ok_or_else(|| VaultError::InvalidKeyMaterial {
        reason: format!("the JWK lacks the `{name}` member"),
    })?;
    Base64UrlUnpadded::decode_vec(text)
        .map(Zeroizing::new)
        .map_err(|_| VaultError::InvalidKeyMaterial {
            reason: format!("the JWK member `{name}` is not base64url without padding"),
        })
}

fn parse_jwk(json: &str) -> Result<ImportedKey, VaultError> {
    let jwk: Jwk = serde_json::from_str(json)
        .map_err(|_| refuse("not a JSON Web Key (malformed JSON or a member of the wrong type)"))?;
    match jwk.kty.as_str() {
        "oct" => {
            let k = member(jwk.k.as_ref(), "k")?;
            let key = Aes256Key::try_from_slice(&k)
                .map_err(|_| refuse("an `oct` JWK must hold a 32-byte (AES-256) key"))?;
            Ok(ImportedKey::Aes256(key))
        }
        "RSA" => {
            if jwk.oth.is_some() {
                return Err(refuse("multi-prime RSA keys (`oth`) are not supported"));
            }
            let n = member(jwk.n.as_ref(), "n")?;
            let e = member(jwk.e.as_ref(), "e")?;
            let d = member(jwk.d.as_ref(), "d")?;
            let p = member(jwk.p.as_ref(), "p")?;
            let q = member(jwk.q.as_ref(), "q")?;
            let dp = member(jwk.dp.as_ref(), "dp")?;
            let dq = member(jwk.dq.as_ref(), "dq")?;
            let qi = member(jwk.qi.as_ref(), "qi")?;
            // As the `rsa` crate decodes PKCS#1: every number at the
            // modulus' width, the exponent at its own.
            let bits =
                u32::try_from(n.len() * 8).map_err(|_| refuse("the RSA modulus is too large"))?;
            let e_bits = u32::try_from(e.len().max(1) * 8)
                .map_err(|_| refuse("the RSA public exponent is too large"))?;
            let number = |bytes: &[u8], bits: u32, name: &str| {
                BoxedUint::from_be_slice(bytes, bits).map_err(|_| VaultError::InvalidKeyMaterial {
                    reason: format!("the JWK member `{name}` is larger than the modulus"),
                })
            };
            let key = PrivateKey::from_components(
                number(&n, bits, "n")?,
                number(&e, e_bits, "e")?,
                number(&d, bits, "d")?,
                vec![number(&p, bits, "p")?, number(&q, bits, "q")?],
            )
            .map_err(|_| refuse("the RSA JWK's numbers do not form a valid RSA key"))?;
            // `rsa` recomputes the CRT values from p, q and d; the ones in
            // the JWK must match them, or the key is not what it claims.
            let consistent = key.dp().is_some_and(|v| same_number(&dp, v))
                & key.dq().is_some_and(|v| same_number(&dq, v))
                & key.crt_coefficient().is_some_and(|v| same_number(&qi, &v));
            if !consistent {
                return Err(refuse(
                    "the RSA JWK's dp, dq or qi do not match its primes and private exponent",
                ));
            }
            rsa_checked(key)
        }
        _ => Err(refuse(
            "only `RSA` and `oct` (AES-256) JSON Web Keys can be imported",
        )),
    }
}

/// Whether big-endian `bytes` and `value` are the same number, without
/// branching on the secret digits.
fn same_number(bytes: &[u8], value: &BoxedUint) -> bool {
    let expected = Zeroizing::new(value.to_be_bytes());
    let width = expected.len();
    let mut padded = Zeroizing::new(vec![0u8; width.max(bytes.len())]);
    let offset = padded.len() - bytes.len();
    padded[offset..].copy_from_slice(bytes);
    let mut wide_expected = Zeroizing::new(vec![0u8; padded.len()]);
    let offset = padded.len() - width;
    wide_expected[offset..].copy_from_slice(&expected);
    bool::from(padded.as_slice().ct_eq(wide_expected.as_slice()))
}
