//! Attachments (docs/FORMAT.md section 3.3): small messages sealed beside
//! a stream's body under a key derived from its DEK, checked against the
//! section's recipe with the bare primitives, and against what must be
//! refused.

mod common;

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use strongroom_aes::aead::{Aead, Payload};
use strongroom_aes::{Aes256Gcm, Aes256Key};
use strongroom_envelope::{Dek, Error, Header, HeaderOptions, MAX_ATTACHMENT_LABEL};

const DEK: [u8; 32] = [0x11; 32];

fn new_sealing() -> strongroom_envelope::SealingHeader {
    Header::create(
        Dek::from_key(Aes256Key::from_bytes(DEK)),
        &[&common::aes_wrapper()],
        &HeaderOptions::default(),
    )
    .unwrap()
}

#[test]
fn an_attachment_follows_the_recipe_of_the_format() {
    let sealing = new_sealing();
    let sealed = sealing
        .seal_attachment("key-backups", b"the point's key backups")
        .unwrap();
    let header = sealing.header().as_bytes();
    // Section 3.3 by hand: HKDF-SHA-256 (salt = the header's salt, IKM = the
    // DEK, info = "strongroom v1 attachment " || label) gives the key; the
    // AAD is SHA-256 of the stable part (no metadata: the first 78 bytes);
    // the attachment is nonce (12) || ciphertext || tag.
    let salt = &header[12..44];
    assert_eq!(&header[76..78], [0, 0], "no metadata");
    let aad: [u8; 32] = Sha256::digest(&header[..78]).into();
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), &DEK)
        .expand(b"strongroom v1 attachment key-backups", &mut key)
        .unwrap();
    let (nonce, body) = sealed.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().unwrap();
    let plain = Aes256Gcm::with_key(&Aes256Key::from_bytes(key))
        .decrypt(
            &nonce.into(),
            Payload {
                msg: body,
                aad: &aad,
            },
        )
        .unwrap();
    assert_eq!(plain, b"the point's key backups");
    assert_eq!(sealed.len(), 12 + plain.len() + 16);
}

#[test]
fn an_attachment_opens_where_its_stream_opens_and_after_a_rewrap() {
    let sealing = new_sealing();
    let sealed = sealing.seal_attachment("a", b"payload").unwrap();
    // Two seals never share a nonce.
    let again = sealing.seal_attachment("a", b"payload").unwrap();
    assert_ne!(sealed[..12], again[..12]);
    let stored = sealing.header().as_bytes().to_vec();
    let opened = Header::from_bytes(&stored)
        .unwrap()
        .open(&[&common::aes_wrapper()])
        .unwrap();
    assert_eq!(
        opened.open_attachment("a", &sealed).unwrap().as_slice(),
        b"payload"
    );
    // Rewrapped under another key: the same attachment still opens.
    let other = common::aes_wrapper_with(common::aes_ref(), 0x77);
    let rewrapped = opened.rewrap(&[&other]).unwrap();
    let reopened = Header::from_bytes(rewrapped.as_bytes())
        .unwrap()
        .open(&[&other])
        .unwrap();
    assert_eq!(
        reopened.open_attachment("a", &sealed).unwrap().as_slice(),
        b"payload"
    );
}

#[test]
fn an_altered_misplaced_or_mislabelled_attachment_is_refused() {
    let sealing = new_sealing();
    let sealed = sealing.seal_attachment("a", b"payload").unwrap();
    let refused = |label: &str, bytes: &[u8]| {
        assert!(matches!(
            sealing_open(&sealing, label, bytes),
            Err(Error::DecryptionFailed)
        ));
    };
    for at in 0..sealed.len() {
        let mut changed = sealed.clone();
        changed[at] ^= 0x80;
        refused("a", &changed);
    }
    refused("b", &sealed);
    refused("a", &sealed[..sealed.len() - 1]);
    refused("a", &sealed[..27]);
    refused("a", &[]);
    // Another stream under the very same DEK (another salt): refused.
    let other = new_sealing();
    assert!(matches!(
        sealing_open(&other, "a", &sealed),
        Err(Error::DecryptionFailed)
    ));
    // Labels are 1 to 255 bytes.
    for label in [String::new(), "x".repeat(MAX_ATTACHMENT_LABEL + 1)] {
        assert!(matches!(
            sealing.seal_attachment(&label, b""),
            Err(Error::InvalidArgument { .. })
        ));
    }
    sealing
        .seal_attachment(&"x".repeat(MAX_ATTACHMENT_LABEL), b"")
        .unwrap();
}

/// Opens an attachment of the stream `sealing` is the header of.
fn sealing_open(
    sealing: &strongroom_envelope::SealingHeader,
    label: &str,
    bytes: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    Header::from_bytes(sealing.header().as_bytes())
        .unwrap()
        .open(&[&common::aes_wrapper()])
        .unwrap()
        .open_attachment(label, bytes)
}
