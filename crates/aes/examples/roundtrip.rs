//! Seals a message with AES-256-GCM, wraps its key with AES key wrap, and
//! opens it again, printing what a reader stores and checks at each step.
//!
//! Run with `cargo run -p strongroom-aes --example roundtrip -- "some text"`.

use strongroom_aes::{
    Aes256Gcm, Aes256Key, NONCE_LEN, key_commitment, kw::Aes256Kw, verify_key_commitment,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let message = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "a recovery point's first chunk".to_owned());

    // A fresh data-encryption key, and the key-encryption key that protects it.
    let dek = Aes256Key::generate()?;
    let kek = Aes256Kw::new(&Aes256Key::generate()?);

    // Seal. The nonce is fixed here because this DEK seals exactly one
    // message; reusing a nonce under one key would be fatal.
    let nonce = [0u8; NONCE_LEN];
    let mut buffer = message.clone().into_bytes();
    let tag =
        Aes256Gcm::with_key(&dek).seal_in_place_detached(&nonce, b"header v1", &mut buffer)?;

    // What is stored: the wrapped DEK, its commitment, ciphertext and tag.
    let wrapped = kek.wrap(dek.expose_secret())?;
    let commitment = key_commitment(&dek);
    drop(dek);
    println!("wrapped DEK  {}", hex(&wrapped));
    println!("commitment   {}", hex(&commitment));
    println!("ciphertext   {}", hex(&buffer));
    println!("tag          {}", hex(&tag));

    // Open: unwrap, check the commitment first, then the tag.
    let dek = Aes256Key::try_from_slice(&kek.unwrap(&wrapped)?)?;
    if !verify_key_commitment(&dek, &commitment) {
        return Err("the unwrapped key does not match the commitment".into());
    }
    let ciphertext = buffer.clone();
    Aes256Gcm::with_key(&dek).open_in_place_detached(&nonce, b"header v1", &mut buffer, &tag)?;
    println!("opened       {}", String::from_utf8(buffer)?);

    // A flipped bit anywhere is refused, and the buffer is left as it was.
    let mut forged = tag;
    forged[0] ^= 1;
    let mut sealed = ciphertext.clone();
    let refused = Aes256Gcm::with_key(&dek)
        .open_in_place_detached(&nonce, b"header v1", &mut sealed, &forged)
        .is_err();
    println!(
        "forged tag   refused: {refused}, buffer unchanged: {}",
        sealed == ciphertext
    );
    Ok(())
}
