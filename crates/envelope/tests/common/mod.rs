//! Shared by the envelope's integration tests: the fixed key material under
//! `tests/data/`, the plaintext generator, and encrypt / decrypt helpers that
//! report exactly what plaintext came out before an error.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{Read, Write};
use std::path::PathBuf;

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use strongroom_aes::kw::Aes256Kw;
use strongroom_aes::{Aes256Gcm, Aes256Key};
use strongroom_envelope::format::FIXED_LEN;
use strongroom_envelope::rsa::PrivateKey;
use strongroom_envelope::rsa::pkcs8::DecodePrivateKey;
use strongroom_envelope::{
    AesKeyWrapper, Decryptor, Dek, Encryptor, Error, Header, HeaderOptions, KeyRef, KeyWrapper,
    OpenedHeader, RsaOaepWrapper, SealingHeader, WrapAlgorithm,
};

/// `tests/data/`.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Reads `tests/data/<name>`.
pub fn read_data(name: &str) -> Vec<u8> {
    let path = data_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Parses lowercase or uppercase hex, ignoring surrounding whitespace.
pub fn hex(text: &str) -> Vec<u8> {
    let text = text.trim();
    assert!(text.len().is_multiple_of(2), "odd-length hex");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// The deterministic plaintext of every golden file and property test:
/// byte `i` is `i mod 251` (251 is prime, so chunk boundaries never line up
/// with the pattern and swapped chunks differ).
pub fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The key reference of the golden AES key-encryption key.
pub fn aes_ref() -> KeyRef {
    KeyRef::new("golden-vault", "platform-key", "v1", WrapAlgorithm::A256Kw)
}

/// The key reference of the golden RSA key-encryption key.
pub fn rsa_ref() -> KeyRef {
    KeyRef::new("customer-vault", "cmk-rsa", "7", WrapAlgorithm::RsaOaep256)
}

/// The golden AES-256 KEK bytes, from `tests/data/kek_a256kw.hex`.
pub fn aes_kek_bytes() -> [u8; 32] {
    let bytes = hex(&String::from_utf8(read_data("kek_a256kw.hex")).expect("UTF-8"));
    bytes.try_into().expect("a 32-byte KEK")
}

/// The golden AES key wrapper (`aes_ref()`, `kek_a256kw.hex`).
pub fn aes_wrapper() -> AesKeyWrapper {
    AesKeyWrapper::new(aes_ref(), &Aes256Key::from_bytes(aes_kek_bytes()))
}

/// An AES key wrapper under `key_ref` with a key made from one byte.
pub fn aes_wrapper_with(key_ref: KeyRef, byte: u8) -> AesKeyWrapper {
    AesKeyWrapper::new(key_ref, &Aes256Key::from_bytes([byte; 32]))
}

/// The golden RSA-2048 private key, from `tests/data/rsa2048_pkcs8.pem`.
pub fn rsa_private_key() -> PrivateKey {
    let pem = String::from_utf8(read_data("rsa2048_pkcs8.pem")).expect("UTF-8");
    PrivateKey::from_pkcs8_pem(&pem).expect("a PKCS#8 RSA key")
}

/// The golden RSA wrapper, able to unwrap.
pub fn rsa_wrapper() -> RsaOaepWrapper {
    RsaOaepWrapper::from_private_key(rsa_ref(), rsa_private_key()).expect("RSA-2048")
}

/// The keys a reader of the golden files may hold, each under one key
/// reference (tests/data/README.md lists them; `third_party_decrypt.py`
/// holds the same ones under the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoldenKey {
    /// The golden AES KEK as `aes_ref()`.
    Aes,
    /// The golden RSA private key as `rsa_ref()`.
    Rsa,
    /// Only the public half of the golden RSA key, as `rsa_ref()`: it
    /// matches, but cannot unwrap (key unavailable).
    RsaPublic,
    /// The golden AES KEK with an empty key version.
    AesUnversioned,
    /// The golden AES KEK under another key name, `other-key`.
    AesOtherName,
    /// Another AES KEK (32 bytes of `5a`) under `aes_ref()`.
    AesWrongBytes,
}

impl GoldenKey {
    /// Every golden key.
    pub const ALL: [Self; 6] = [
        Self::Aes,
        Self::Rsa,
        Self::RsaPublic,
        Self::AesUnversioned,
        Self::AesOtherName,
        Self::AesWrongBytes,
    ];

    /// Its name in tests/data/README.md and `errors.tsv`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes => "aes",
            Self::Rsa => "rsa",
            Self::RsaPublic => "rsa-public",
            Self::AesUnversioned => "aes-unversioned",
            Self::AesOtherName => "aes-other-name",
            Self::AesWrongBytes => "aes-wrong-bytes",
        }
    }

    /// What it is, for tests/data/README.md.
    pub fn about(self) -> &'static str {
        match self {
            Self::Aes => "`kek_a256kw.hex` as `golden-vault/platform-key/v1`, A256KW",
            Self::Rsa => "`rsa2048_pkcs8.pem` as `customer-vault/cmk-rsa/7`, RSA-OAEP-256",
            Self::RsaPublic => {
                "the public half of `rsa2048_pkcs8.pem` only, as `customer-vault/cmk-rsa/7`, \
                 RSA-OAEP-256: it matches records but cannot unwrap (the key is unavailable)"
            }
            Self::AesUnversioned => {
                "`kek_a256kw.hex` as `golden-vault/platform-key/` (empty version), A256KW"
            }
            Self::AesOtherName => "`kek_a256kw.hex` as `golden-vault/other-key/v1`, A256KW",
            Self::AesWrongBytes => {
                "32 bytes of `5a` (not the golden KEK) as `golden-vault/platform-key/v1`, A256KW"
            }
        }
    }

    /// A wrapper holding it.
    pub fn wrapper(self) -> Box<dyn KeyWrapper> {
        let golden = || Aes256Key::from_bytes(aes_kek_bytes());
        let aes_as = |version: &str, name: &str| {
            let key_ref = KeyRef::new("golden-vault", name, version, WrapAlgorithm::A256Kw);
            Box::new(AesKeyWrapper::new(key_ref, &golden())) as Box<dyn KeyWrapper>
        };
        match self {
            Self::Aes => Box::new(aes_wrapper()),
            Self::Rsa => Box::new(rsa_wrapper()),
            Self::RsaPublic => Box::new(
                RsaOaepWrapper::from_public_key(rsa_ref(), rsa_private_key().to_public_key())
                    .expect("RSA-2048"),
            ),
            Self::AesUnversioned => aes_as("", "platform-key"),
            Self::AesOtherName => aes_as("v1", "other-key"),
            Self::AesWrongBytes => Box::new(aes_wrapper_with(aes_ref(), 0x5a)),
        }
    }

    /// `+`-joined names of a set of keys held together.
    pub fn names(keys: &[Self]) -> String {
        keys.iter().map(|k| k.name()).collect::<Vec<_>>().join("+")
    }
}

/// Decrypts a whole stream on `threads` threads holding `keys`, as
/// [`decrypt`] does.
pub fn decrypt_with(
    stream: &[u8],
    keys: &[GoldenKey],
    threads: usize,
) -> (Vec<u8>, Result<(), Error>) {
    let wrappers: Vec<Box<dyn KeyWrapper>> = keys.iter().map(|k| k.wrapper()).collect();
    let wrappers: Vec<&dyn KeyWrapper> = wrappers.iter().map(Box::as_ref).collect();
    decrypt(stream, &wrappers, threads)
}

/// The DEK of a golden stream, unwrapped from its first record under
/// `aes_ref()` with the bare RFC 3394 unwrap and the golden KEK.
pub fn golden_dek(stream: &[u8]) -> [u8; 32] {
    let header = Header::from_bytes(&stream[..header_len(stream)]).expect("a header");
    let record = header
        .wrapped_keys()
        .iter()
        .find(|r| r.key_ref == aes_ref())
        .expect("a record under the golden AES KEK");
    let kek = Aes256Kw::new(&Aes256Key::from_bytes(aes_kek_bytes()));
    let dek = kek
        .unwrap(&record.wrapped)
        .expect("the golden KEK unwraps it");
    dek.as_slice().try_into().expect("a 32-byte DEK")
}

/// `key` wrapped under the golden AES KEK with the bare RFC 3394 wrap
/// (any multiple of 8 bytes from 16).
pub fn golden_wrap(key: &[u8]) -> Vec<u8> {
    Aes256Kw::new(&Aes256Key::from_bytes(aes_kek_bytes()))
        .wrap(key)
        .expect("a length key wrap takes")
}

/// A wrapped-key record as docs/FORMAT.md section 2.2 lays it out, with
/// any algorithm byte and any strings: what a writer of test vectors needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub algorithm: u8,
    pub vault: Vec<u8>,
    pub name: Vec<u8>,
    pub version: Vec<u8>,
    pub wrapped: Vec<u8>,
}

impl RawRecord {
    /// The records of a parsed header, in order.
    pub fn all(header: &Header) -> Vec<Self> {
        header
            .wrapped_keys()
            .iter()
            .map(|r| Self {
                algorithm: r.key_ref.algorithm.to_byte(),
                vault: r.key_ref.vault.clone().into_bytes(),
                name: r.key_ref.name.clone().into_bytes(),
                version: r.key_ref.version.clone().into_bytes(),
                wrapped: r.wrapped.clone(),
            })
            .collect()
    }

    /// Its bytes in a header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.algorithm];
        for s in [&self.vault, &self.name, &self.version] {
            out.push(u8::try_from(s.len()).expect("at most 255 bytes"));
            out.extend_from_slice(s);
        }
        let len = u16::try_from(self.wrapped.len()).expect("a short wrapped key");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.wrapped);
        out
    }
}

/// The header MAC (docs/FORMAT.md section 3 step 4) of `bytes`, a header
/// without its MAC, for a stream whose DEK is `dek`.
pub fn header_mac(dek: &[u8; 32], bytes: &[u8]) -> [u8; 32] {
    let mut mac_key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&bytes[12..44]), dek)
        .expand(b"strongroom v1 header mac", &mut mac_key)
        .expect("32 bytes");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&mac_key).expect("any key length");
    mac.update(bytes);
    mac.finalize().into_bytes().into()
}

/// `stream` with its records replaced by what `change` makes of them and
/// the header MAC recomputed under the stream's DEK (unwrapped from the
/// golden AES record, as [`golden_dek`]); stable part and body unchanged.
/// What any holder of the DEK can do (docs/FORMAT.md section 7).
pub fn rewrite_records(stream: &[u8], change: impl FnOnce(&mut Vec<RawRecord>)) -> Vec<u8> {
    let dek = golden_dek(stream);
    let h = header_len(stream);
    let header = Header::from_bytes(&stream[..h]).expect("a header");
    let mut records = RawRecord::all(&header);
    change(&mut records);
    let mut out = stream[..stable_len(&header)].to_vec();
    out.push(u8::try_from(records.len()).expect("at most 255 records"));
    for record in &records {
        out.extend_from_slice(&record.to_bytes());
    }
    let mac = header_mac(&dek, &out);
    out.extend_from_slice(&mac);
    out.extend_from_slice(&stream[h..]);
    out
}

/// Header options with `chunk` bytes per chunk.
pub fn options(chunk: usize) -> HeaderOptions {
    HeaderOptions::default()
        .chunk_size(chunk)
        .expect("valid chunk size")
}

/// Encrypts `plain` (header and body) on `threads` threads.
pub fn encrypt(
    plain: &[u8],
    wrappers: &[&dyn KeyWrapper],
    options: &HeaderOptions,
    threads: usize,
) -> Vec<u8> {
    let mut enc = Encryptor::new(Vec::new(), wrappers, options)
        .expect("encryptor")
        .threads(threads)
        .expect("threads");
    enc.write_all(plain).expect("write");
    enc.finish().expect("finish")
}

/// The length of the header at the start of `stream`.
pub fn header_len(stream: &[u8]) -> usize {
    let mut input = stream;
    Header::read_from(&mut input)
        .expect("a well-formed header")
        .as_bytes()
        .len()
}

/// Decrypts a whole stream on `threads` threads. Returns every plaintext
/// byte that came out, and how the stream ended.
pub fn decrypt(
    stream: &[u8],
    wrappers: &[&dyn KeyWrapper],
    threads: usize,
) -> (Vec<u8>, Result<(), Error>) {
    let mut out = Vec::new();
    let decryptor = match Decryptor::new(stream, wrappers) {
        Ok(d) => d.threads(threads).expect("threads"),
        Err(e) => return (out, Err(e)),
    };
    let result = read_all(decryptor, &mut out);
    (out, result)
}

/// `read_to_end`, keeping what came out before an error.
pub fn read_all<R: Read>(mut reader: R, out: &mut Vec<u8>) -> Result<(), Error> {
    reader.read_to_end(out).map(drop).map_err(Error::from_io)
}

/// Splits a body (no header) into its chunks at stride `chunk + 16`.
pub fn chunks(body: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    body.chunks(chunk + 16).map(<[u8]>::to_vec).collect()
}

/// The bytes of [`known_dek`].
pub const KNOWN_DEK: [u8; 32] = [0x5a; 32];

/// A DEK whose bytes the test knows, so that [`reference_body`] can compute
/// what a header made with it must seal. Each header still draws its own
/// salt, so the bodies of two such headers share no key or nonce.
pub fn known_dek() -> Dek {
    Dek::from_key(Aes256Key::from_bytes(KNOWN_DEK))
}

/// A new header over [`known_dek`], under `wrappers`.
pub fn known_header(wrappers: &[&dyn KeyWrapper], options: &HeaderOptions) -> SealingHeader {
    Header::create(known_dek(), wrappers, options).expect("header")
}

/// Length of a header's stable part (docs/FORMAT.md 2.1).
pub fn stable_len(header: &Header) -> usize {
    FIXED_LEN
        + 2
        + header
            .metadata()
            .iter()
            .map(|(k, v)| 1 + k.len() + 2 + v.len())
            .sum::<usize>()
}

/// The body that `header` (made over [`known_dek`]) seals for `plain`,
/// computed from docs/FORMAT.md sections 3 and 4 with the bare primitives:
/// the reference every sealing path must match byte for byte.
pub fn reference_body(header: &Header, plain: &[u8]) -> Vec<u8> {
    let pieces: Vec<&[u8]> = if plain.is_empty() {
        vec![plain]
    } else {
        plain.chunks(header.chunk_size()).collect()
    };
    reference_chunks(header, &pieces)
}

/// Seals `pieces` as consecutive chunks 0, 1, ... of `header`'s body (made
/// over [`known_dek`]), the last one flagged as the final chunk, with the
/// bare primitives (docs/FORMAT.md sections 3 and 4). With pieces no writer
/// would make (an empty final piece after others), it builds bodies that
/// only a key holder can: what a reader must still refuse.
pub fn reference_chunks(header: &Header, pieces: &[&[u8]]) -> Vec<u8> {
    seal_chunks(&KNOWN_DEK, header, pieces)
}

/// [`reference_chunks`] for a header over any DEK whose bytes the test
/// knows, e.g. one unwrapped from a golden file with [`golden_dek`].
pub fn seal_chunks(dek: &[u8; 32], header: &Header, pieces: &[&[u8]]) -> Vec<u8> {
    let bytes = header.as_bytes();
    let hk = Hkdf::<Sha256>::new(Some(&bytes[12..44]), dek);
    let mut okm = [0u8; 39];
    hk.expand(b"strongroom v1 payload", &mut okm)
        .expect("39 bytes");
    let gcm = Aes256Gcm::with_key(&Aes256Key::try_from_slice(&okm[..32]).expect("32 bytes"));
    let aad: [u8; 32] = Sha256::digest(&bytes[..stable_len(header)]).into();
    let mut body = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let mut nonce = [0u8; 12];
        nonce[..7].copy_from_slice(&okm[32..]);
        nonce[7..11].copy_from_slice(&u32::try_from(i).expect("index").to_be_bytes());
        nonce[11] = u8::from(i + 1 == pieces.len());
        let mut sealed = piece.to_vec();
        let tag = gcm
            .seal_in_place_detached(&nonce, &aad, &mut sealed)
            .expect("seal");
        body.extend_from_slice(&sealed);
        body.extend_from_slice(&tag);
    }
    body
}

/// Opens a stored header with `wrappers`, as a reader of the stream would.
pub fn open_header(header: &Header, wrappers: &[&dyn KeyWrapper]) -> OpenedHeader {
    Header::from_bytes(header.as_bytes())
        .expect("a well-formed header")
        .open(wrappers)
        .expect("the header opens")
}
