//! What the recovery vault benches share: where their vaults go, their
//! input, a sink into a pre-touched buffer, and a customer key vault.
//! (Each bench binary uses a part of it.)

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongroom::keyvault::{
    FileKeyVault, KeyOptions, KeyType, KeyVault, Permissions, Principal, RootKeySource,
    VaultProperties,
};
use strongroom::object_store::path::Path as StorePath;
use strongroom::object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// `VAULT_BENCH_DIR`, or the system temporary directory.
pub fn base_dir() -> PathBuf {
    std::env::var_os("VAULT_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

/// Deterministic, incompressible-looking input (xorshift64*).
pub fn input(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        data.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    data.truncate(len);
    data
}

/// A writer into a pre-touched buffer (no page faults, no growth).
pub struct Into<'a> {
    pub buf: &'a mut [u8],
    pub at: usize,
}

impl tokio::io::AsyncWrite for Into<'_> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let at = self.at;
        self.buf[at..at + data.len()].copy_from_slice(data);
        self.at += data.len();
        std::task::Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A customer's `FileKeyVault` named `name` in `dir` (purge protection on)
/// holding an RSA-3072 key `cmk`, and its admin.
pub fn customer_key_vault(dir: &Path, name: &str) -> (Arc<dyn KeyVault>, Principal) {
    std::fs::create_dir_all(dir).expect("key vault dir");
    let key_file = dir.join(format!("{name}.key"));
    FileKeyVault::generate_key_file(&key_file).expect("key file");
    let kv: Arc<dyn KeyVault> = Arc::new(
        FileKeyVault::create(
            dir.join(name),
            VaultProperties::new(name),
            RootKeySource::KeyFile(key_file),
        )
        .expect("key vault"),
    );
    let admin = Principal::new("admin");
    kv.set_access_policy(&admin, Permissions::all())
        .expect("admin");
    kv.enable_purge_protection().expect("purge protection");
    kv.create_key(&admin, "cmk", KeyType::Rsa3072, KeyOptions::default())
        .expect("key");
    (kv, admin)
}

/// `data` uploaded unencrypted at `path`, as the vault uploads: an 8 MiB
/// part multipart upload with 2 parts in flight (the plain peer of the
/// backup benches).
pub async fn plain_upload(store: &Arc<dyn ObjectStore>, path: &StorePath, data: &[u8]) {
    let mut upload = store.put_multipart(path).await.expect("multipart");
    let mut in_flight: VecDeque<tokio::task::JoinHandle<strongroom::object_store::Result<()>>> =
        VecDeque::new();
    for part in data.chunks(8 << 20) {
        if in_flight.len() >= 2 {
            let task = in_flight.pop_front().expect("a part");
            task.await.expect("join").expect("part");
        }
        let payload = PutPayload::from(bytes::Bytes::copy_from_slice(part));
        in_flight.push_back(tokio::spawn(upload.put_part(payload)));
    }
    for task in in_flight {
        task.await.expect("join").expect("part");
    }
    upload.complete().await.expect("complete");
}
