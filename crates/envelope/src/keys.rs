//! The key schedule (docs/FORMAT.md section 3) and opening, creating and
//! rewrapping headers.

use std::collections::BTreeMap;
use std::sync::Arc;

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use strongroom_aes::{Aes256Gcm, Aes256Key, key_commitment, verify_key_commitment};
use zeroize::Zeroizing;

use crate::format::{self, Header, MAC_LEN, SALT_LEN, WrappedKey};
use crate::{Dek, Error, KeyWrapper, WrapError};

/// HKDF `info` for the payload key and nonce prefix.
const INFO_PAYLOAD: &[u8] = b"strongroom v1 payload";
/// HKDF `info` for the header MAC key.
const INFO_HEADER_MAC: &[u8] = b"strongroom v1 header mac";
/// Length of the nonce prefix.
pub(crate) const PREFIX_LEN: usize = 7;
/// HKDF `info` prefix of an attachment key; the label follows.
const INFO_ATTACHMENT: &[u8] = b"strongroom v1 attachment ";
/// The longest attachment label, in bytes.
pub const MAX_ATTACHMENT_LABEL: usize = 255;
/// The largest attachment, in plaintext bytes.
pub const MAX_ATTACHMENT: usize = 64 * 1024 * 1024;
/// Length of an attachment's nonce.
const ATTACHMENT_NONCE_LEN: usize = 12;
/// Length of an attachment's tag.
const ATTACHMENT_TAG_LEN: usize = 16;

/// What the body needs: the payload cipher, the nonce prefix, the AAD and
/// the chunk size. Shared by the threads that seal or open chunks.
pub(crate) struct StreamKeys {
    pub(crate) gcm: Aes256Gcm,
    pub(crate) prefix: [u8; PREFIX_LEN],
    pub(crate) aad: [u8; 32],
    pub(crate) chunk_log2: u8,
}

impl StreamKeys {
    pub(crate) fn chunk_size(&self) -> usize {
        1 << self.chunk_log2
    }
}

/// Derives the payload key, nonce prefix and header MAC key from the DEK
/// and the salt, and the AAD from the header's stable part.
fn schedule(dek: &Dek, header: &Header) -> (StreamKeys, Zeroizing<[u8; 32]>) {
    let hk = Hkdf::<Sha256>::new(Some(&header.salt), dek.key().expose_secret());
    let mut okm = Zeroizing::new([0u8; 32 + PREFIX_LEN]);
    let mut mac_key = Zeroizing::new([0u8; 32]);
    // safe: HKDF-SHA-256 can expand up to 8160 bytes; we ask for 39 and 32.
    hk.expand(INFO_PAYLOAD, okm.as_mut_slice())
        .expect("39 bytes is within HKDF-SHA-256's output limit");
    hk.expand(INFO_HEADER_MAC, mac_key.as_mut_slice())
        .expect("32 bytes is within HKDF-SHA-256's output limit");
    // The payload key goes from `okm` (zeroized on drop) straight into a
    // key that is zeroized on drop: no bare copy of it is left on the stack.
    // safe: `okm` is 39 bytes, so its first 32 are a key's length.
    let key = Aes256Key::try_from_slice(&okm[..32]).expect("32 bytes make an AES-256 key");
    let mut prefix = [0u8; PREFIX_LEN];
    prefix.copy_from_slice(&okm[32..]);
    let keys = StreamKeys {
        gcm: Aes256Gcm::with_key(&key),
        prefix,
        aad: Sha256::digest(&header.bytes[..header.stable_len]).into(),
        chunk_log2: header.chunk_log2,
    };
    (keys, mac_key)
}

fn header_mac(mac_key: &[u8; 32], bytes: &[u8]) -> Hmac<Sha256> {
    // safe: HMAC takes keys of any length.
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(mac_key).expect("HMAC accepts a 32-byte key");
    mac.update(bytes);
    mac
}

/// Options for a new stream's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderOptions {
    chunk_log2: u8,
    metadata: BTreeMap<String, String>,
}

impl Default for HeaderOptions {
    fn default() -> Self {
        Self {
            chunk_log2: format::DEFAULT_CHUNK_LOG2,
            metadata: BTreeMap::new(),
        }
    }
}

impl HeaderOptions {
    /// Plaintext bytes per chunk: a power of two from 4 KiB to 16 MiB
    /// (default 1 MiB). Smaller chunks make random access finer; larger ones
    /// amortize the 16-byte tag and per-chunk work.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for any other size.
    pub fn chunk_size(mut self, bytes: usize) -> Result<Self, Error> {
        let log2 = bytes.trailing_zeros();
        if !bytes.is_power_of_two()
            || !(u32::from(format::MIN_CHUNK_LOG2)..=u32::from(format::MAX_CHUNK_LOG2))
                .contains(&log2)
        {
            return Err(Error::InvalidArgument {
                reason: "chunk size must be a power of two from 4 KiB to 16 MiB",
            });
        }
        self.chunk_log2 = log2 as u8;
        Ok(self)
    }

    /// Adds an authenticated metadata entry (at most 64 entries; keys 1 to
    /// 255 bytes, values up to 4096 bytes, checked when the header is made).
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// An existing stream's header, opened: its DEK is known, so it can
/// decrypt the body and rewrap the DEK, and nothing else.
///
/// Made by [`Header::open`], or by
/// [`SealingHeader::encrypt_slice`] for the body it has just sealed. It
/// cannot seal: the body's nonces are fixed by the DEK and the header's
/// salt, and sealing other plaintext under them would reuse every one.
///
/// ```compile_fail,E0599
/// # use strongroom_aes::Aes256Key;
/// # use strongroom_envelope::{AesKeyWrapper, Header, KeyRef, WrapAlgorithm};
/// # let kek = AesKeyWrapper::new(
/// #     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
/// #     &Aes256Key::generate()?,
/// # );
/// # let existing_header: Vec<u8> = Vec::new();
/// let opened = Header::from_bytes(&existing_header)?.open(&[&kek])?;
/// let mut body = vec![0u8; 100];
/// opened.encrypt_slice(b"other plaintext", &mut body, 1)?; // no such method
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ```compile_fail,E0599
/// # use strongroom_aes::Aes256Key;
/// # use strongroom_envelope::{AesKeyWrapper, Header, KeyRef, WrapAlgorithm};
/// # let kek = AesKeyWrapper::new(
/// #     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
/// #     &Aes256Key::generate()?,
/// # );
/// # let existing_header: Vec<u8> = Vec::new();
/// let opened = Header::from_bytes(&existing_header)?.open(&[&kek])?;
/// let sealer = opened.body_sealer(1)?; // no such method
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ```compile_fail,E0308
/// # use strongroom_aes::Aes256Key;
/// # use strongroom_envelope::{AesKeyWrapper, Encryptor, Header, KeyRef, WrapAlgorithm};
/// # let kek = AesKeyWrapper::new(
/// #     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
/// #     &Aes256Key::generate()?,
/// # );
/// # let existing_header: Vec<u8> = Vec::new();
/// let opened = Header::from_bytes(&existing_header)?.open(&[&kek])?;
/// let encryptor = Encryptor::body(Vec::new(), opened)?; // expects a SealingHeader
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OpenedHeader {
    header: Header,
    dek: Dek,
    pub(crate) keys: Arc<StreamKeys>,
}

/// A new stream's header with its fresh DEK and salt: the one-time right to
/// seal the stream's body (docs/FORMAT.md section 4).
///
/// Made only by [`Header::create`]. Every way of sealing a body takes it by
/// value: [`Encryptor::body`](crate::Encryptor::body),
/// [`body_sealer`](Self::body_sealer) and
/// [`encrypt_slice`](Self::encrypt_slice). It is not `Clone`, so one DEK
/// and salt seal exactly one body, and nonce reuse does not compile
/// (DESIGN.md R3). Store [`header`](Self::header)'s bytes before handing
/// it over.
///
/// ```
/// use strongroom_aes::Aes256Key;
/// use strongroom_envelope::{AesKeyWrapper, Dek, Header, HeaderOptions, KeyRef, WrapAlgorithm};
///
/// let kek = AesKeyWrapper::new(
///     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
///     &Aes256Key::generate()?,
/// );
/// let sealing = Header::create(Dek::generate()?, &[&kek], &HeaderOptions::default())?;
/// let stored_header = sealing.header().as_bytes().to_vec();
/// let mut body = vec![0u8; sealing.body_len(11)? as usize];
/// let opened = sealing.encrypt_slice(b"hello vault", &mut body, 1)?;
/// # let _ = (stored_header, opened);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A second body under the same header does not compile, whichever path
/// seals it:
///
/// ```compile_fail,E0382
/// # use strongroom_aes::Aes256Key;
/// # use strongroom_envelope::{AesKeyWrapper, Dek, Header, HeaderOptions, KeyRef, WrapAlgorithm};
/// # let kek = AesKeyWrapper::new(
/// #     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
/// #     &Aes256Key::generate()?,
/// # );
/// let sealing = Header::create(Dek::generate()?, &[&kek], &HeaderOptions::default())?;
/// let mut body = vec![0u8; sealing.body_len(3)? as usize];
/// sealing.encrypt_slice(b"one", &mut body, 1)?;
/// sealing.encrypt_slice(b"two", &mut body, 1)?; // use of moved value
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ```compile_fail,E0382
/// # use strongroom_aes::Aes256Key;
/// # use strongroom_envelope::{AesKeyWrapper, Dek, Encryptor, Header, HeaderOptions, KeyRef, WrapAlgorithm};
/// # let kek = AesKeyWrapper::new(
/// #     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
/// #     &Aes256Key::generate()?,
/// # );
/// let sealing = Header::create(Dek::generate()?, &[&kek], &HeaderOptions::default())?;
/// let first = Encryptor::body(Vec::new(), sealing)?;
/// let second = Encryptor::body(Vec::new(), sealing)?; // use of moved value
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ```compile_fail,E0382
/// # use strongroom_aes::Aes256Key;
/// # use strongroom_envelope::{AesKeyWrapper, Dek, Header, HeaderOptions, KeyRef, WrapAlgorithm};
/// # let kek = AesKeyWrapper::new(
/// #     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
/// #     &Aes256Key::generate()?,
/// # );
/// let sealing = Header::create(Dek::generate()?, &[&kek], &HeaderOptions::default())?;
/// let first = sealing.body_sealer(1)?;
/// let second = sealing.body_sealer(1)?; // use of moved value
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ```compile_fail,E0599
/// # use strongroom_aes::Aes256Key;
/// # use strongroom_envelope::{AesKeyWrapper, Dek, Header, HeaderOptions, KeyRef, WrapAlgorithm};
/// # let kek = AesKeyWrapper::new(
/// #     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
/// #     &Aes256Key::generate()?,
/// # );
/// let sealing = Header::create(Dek::generate()?, &[&kek], &HeaderOptions::default())?;
/// let copy = sealing.clone(); // not Clone
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SealingHeader {
    opened: OpenedHeader,
}

impl core::fmt::Debug for OpenedHeader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenedHeader")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for SealingHeader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SealingHeader")
            .field("header", &self.opened.header)
            .finish_non_exhaustive()
    }
}

impl Header {
    /// Makes the header of a new stream: a fresh salt, the commitment to
    /// `dek`, one wrapped copy of `dek` per wrapper, and the header MAC.
    /// The [`SealingHeader`] it returns seals exactly one body.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no wrappers or more than 16, or
    /// metadata over the limits; [`Error::KeyUnavailable`] when a wrapper
    /// fails; [`Error::RandomnessUnavailable`].
    pub fn create(
        dek: Dek,
        wrappers: &[&dyn KeyWrapper],
        options: &HeaderOptions,
    ) -> Result<SealingHeader, Error> {
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let commitment = key_commitment(dek.key());
        let stable =
            format::write::stable_part(options.chunk_log2, &salt, &commitment, &options.metadata)?;
        let stable_len = stable.len();
        let header = Header {
            chunk_log2: options.chunk_log2,
            salt,
            commitment,
            metadata: options.metadata.clone(),
            records: Vec::new(),
            bytes: stable,
            stable_len,
        };
        let (keys, mac_key) = schedule(&dek, &header);
        let header = finish(header, &dek, &mac_key, wrappers)?;
        Ok(SealingHeader {
            opened: OpenedHeader {
                header,
                dek,
                keys: Arc::new(keys),
            },
        })
    }

    /// Finds a wrapped copy of the DEK that one of `wrappers` can unwrap,
    /// checks the key commitment, then the header MAC (docs/FORMAT.md
    /// section 3.2).
    ///
    /// Records are tried in header order, each with the wrappers whose
    /// [`can_unwrap`](KeyWrapper::can_unwrap) accepts it. A copy that fails
    /// to unwrap, unwraps to anything but 32 bytes (the wrappers refuse
    /// those) or fails the commitment is skipped, so one bad copy cannot
    /// deny access through the others; a wrapper that refuses is skipped
    /// too. A DEK that passes the commitment but not the MAC stops the
    /// search: the header was altered, and no other record can help.
    ///
    /// # Errors
    /// [`Error::NoMatchingKey`] (naming the recorded keys) when no wrapper
    /// fits any record; [`Error::KeyUnavailable`] when no copy opened and a
    /// fitting wrapper refused (e.g. access revoked; the first refusal);
    /// [`Error::DecryptionFailed`] when the MAC did not verify, or every
    /// fitting copy was skipped.
    pub fn open(self, wrappers: &[&dyn KeyWrapper]) -> Result<OpenedHeader, Error> {
        let mut refusal: Option<Error> = None;
        let mut tried = false;
        for record in &self.records {
            for wrapper in wrappers.iter().filter(|w| w.can_unwrap(&record.key_ref)) {
                tried = true;
                let dek = match wrapper.unwrap(&record.key_ref, &record.wrapped) {
                    Ok(dek) => dek,
                    Err(WrapError::DecryptionFailed) => continue,
                    Err(source) => {
                        refusal.get_or_insert(Error::KeyUnavailable {
                            key: Box::new(record.key_ref.clone()),
                            source: Box::new(source),
                        });
                        continue;
                    }
                };
                if !verify_key_commitment(dek.key(), &self.commitment) {
                    continue;
                }
                let (keys, mac_key) = schedule(&dek, &self);
                let body_len = self.bytes.len() - MAC_LEN;
                let mac = header_mac(&mac_key, &self.bytes[..body_len]);
                if mac.verify_slice(&self.bytes[body_len..]).is_err() {
                    // The DEK is right (it matches the commitment), so the
                    // header itself was altered: no other record can help.
                    return Err(Error::DecryptionFailed);
                }
                return Ok(OpenedHeader {
                    header: self,
                    dek,
                    keys: Arc::new(keys),
                });
            }
        }
        if !tried {
            return Err(Error::NoMatchingKey {
                recorded: self.key_refs().cloned().collect(),
            });
        }
        Err(refusal.unwrap_or(Error::DecryptionFailed))
    }
}

/// Appends the wrapped-key records for `wrappers` and the MAC.
fn finish(
    mut header: Header,
    dek: &Dek,
    mac_key: &[u8; 32],
    wrappers: &[&dyn KeyWrapper],
) -> Result<Header, Error> {
    let mut records = Vec::with_capacity(wrappers.len());
    for wrapper in wrappers {
        let wrapped = wrapper.wrap(dek).map_err(|source| Error::KeyUnavailable {
            key: Box::new(wrapper.key_ref().clone()),
            source: Box::new(source),
        })?;
        records.push(WrappedKey {
            key_ref: wrapper.key_ref().clone(),
            wrapped,
        });
    }
    header.bytes.truncate(header.stable_len);
    format::write::records(&mut header.bytes, &records)?;
    let tag = header_mac(mac_key, &header.bytes).finalize().into_bytes();
    header.bytes.extend_from_slice(&tag);
    header.records = records;
    Ok(header)
}

impl SealingHeader {
    /// The header to store (in front of the body, or as its own object).
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.opened.header
    }

    /// The size of this stream's chunks, in plaintext bytes.
    #[must_use]
    pub fn chunk_size(&self) -> usize {
        self.opened.chunk_size()
    }

    /// As [`OpenedHeader::seal_attachment`]: an attachment does not use
    /// the right to seal the body.
    ///
    /// # Errors
    /// As [`OpenedHeader::seal_attachment`].
    pub fn seal_attachment(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.opened.seal_attachment(label, plaintext)
    }

    /// The header and its keys, without giving up the right to seal.
    pub(crate) fn opened(&self) -> &OpenedHeader {
        &self.opened
    }

    /// Gives up the right to seal: what remains can decrypt and rewrap.
    pub(crate) fn into_opened(self) -> OpenedHeader {
        self.opened
    }
}

/// The AES-256-GCM key of attachment `label` of the stream whose DEK and
/// header these are (docs/FORMAT.md section 3.3).
fn attachment_cipher(dek: &Dek, header: &Header, label: &str) -> Result<Aes256Gcm, Error> {
    if label.is_empty() || label.len() > MAX_ATTACHMENT_LABEL {
        return Err(Error::InvalidArgument {
            reason: "an attachment label is 1 to 255 bytes",
        });
    }
    let hk = Hkdf::<Sha256>::new(Some(&header.salt), dek.key().expose_secret());
    let mut info = Vec::with_capacity(INFO_ATTACHMENT.len() + label.len());
    info.extend_from_slice(INFO_ATTACHMENT);
    info.extend_from_slice(label.as_bytes());
    let mut okm = Zeroizing::new([0u8; 32]);
    // safe: 32 bytes is within HKDF-SHA-256's output limit.
    hk.expand(&info, okm.as_mut_slice())
        .expect("32 bytes is within HKDF-SHA-256's output limit");
    Ok(Aes256Gcm::with_key(&Aes256Key::from_bytes(*okm)))
}

impl OpenedHeader {
    /// Seals `plaintext` as attachment `label` of this stream: a small
    /// message beside the body (e.g. the key backups a recovery point
    /// carries), under a key derived from the stream's DEK and salt for
    /// that label, bound to the header's stable part (docs/FORMAT.md
    /// section 3.3). It opens wherever the stream opens, and a rewrap
    /// keeps it opening. Each call draws a fresh random nonce.
    ///
    /// ```
    /// use strongroom_aes::Aes256Key;
    /// use strongroom_envelope::{AesKeyWrapper, Dek, Header, HeaderOptions, KeyRef, WrapAlgorithm};
    ///
    /// let kek = AesKeyWrapper::new(
    ///     KeyRef::new("vault", "platform-key", "1", WrapAlgorithm::A256Kw),
    ///     &Aes256Key::generate()?,
    /// );
    /// let sealing = Header::create(Dek::generate()?, &[&kek], &HeaderOptions::default())?;
    /// let sealed = sealing.seal_attachment("key-backups", b"what the point carries")?;
    /// let stored = sealing.header().as_bytes().to_vec();
    ///
    /// let opened = Header::from_bytes(&stored)?.open(&[&kek])?;
    /// let back = opened.open_attachment("key-backups", &sealed)?;
    /// assert_eq!(back.as_slice(), b"what the point carries");
    /// assert!(opened.open_attachment("another-label", &sealed).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a label outside 1 to 255 bytes or a
    /// plaintext over [`MAX_ATTACHMENT`]; [`Error::RandomnessUnavailable`].
    pub fn seal_attachment(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        use strongroom_aes::aead::{Aead, Payload};
        if plaintext.len() > MAX_ATTACHMENT {
            return Err(Error::InvalidArgument {
                reason: "an attachment is at most 64 MiB",
            });
        }
        let cipher = attachment_cipher(&self.dek, &self.header, label)?;
        let mut nonce = [0u8; ATTACHMENT_NONCE_LEN];
        fill_random(&mut nonce)?;
        let sealed = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad: &self.keys.aad,
                },
            )
            .map_err(|_| Error::InvalidArgument {
                reason: "an attachment is at most 64 MiB",
            })?;
        let mut out = Vec::with_capacity(ATTACHMENT_NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens attachment `label` sealed by
    /// [`seal_attachment`](Self::seal_attachment) for this stream.
    ///
    /// # Errors
    /// [`Error::DecryptionFailed`] when it was altered, cut, sealed under
    /// another label or for another stream; [`Error::InvalidArgument`] for
    /// a bad label.
    pub fn open_attachment(&self, label: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        use strongroom_aes::aead::{Aead, Payload};
        let cipher = attachment_cipher(&self.dek, &self.header, label)?;
        if sealed.len() < ATTACHMENT_NONCE_LEN + ATTACHMENT_TAG_LEN
            || sealed.len() > ATTACHMENT_NONCE_LEN + MAX_ATTACHMENT + ATTACHMENT_TAG_LEN
        {
            return Err(Error::DecryptionFailed);
        }
        let (nonce, body) = sealed.split_at(ATTACHMENT_NONCE_LEN);
        let nonce: [u8; ATTACHMENT_NONCE_LEN] =
            nonce.try_into().map_err(|_| Error::DecryptionFailed)?;
        cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: body,
                    aad: &self.keys.aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Error::DecryptionFailed)
    }

    /// The header (its metadata is authenticated).
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The size of this stream's chunks, in plaintext bytes.
    #[must_use]
    pub fn chunk_size(&self) -> usize {
        self.keys.chunk_size()
    }

    /// A new header for the same body with the DEK wrapped under
    /// `wrappers` instead (R8: key rotation rewrites only the header; the
    /// body, its AAD and its keys are unchanged). Store it in place of the
    /// old one atomically; until then the old one still opens the body.
    ///
    /// # Errors
    /// As [`Header::create`].
    pub fn rewrap(&self, wrappers: &[&dyn KeyWrapper]) -> Result<Header, Error> {
        let (_, mac_key) = schedule(&self.dek, &self.header);
        finish(self.header.clone(), &self.dek, &mac_key, wrappers)
    }
}

fn fill_random(out: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(out).map_err(|_| Error::RandomnessUnavailable)
}
