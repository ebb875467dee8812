//! The recovery vault for synchronous programs: the same operations,
//! taking `std::io::Read` and `Write`, on a runtime the vault owns (as
//! `reqwest::blocking` does). Do not call it from inside an async runtime.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! use strongroom::BackupOptions;
//! use strongroom::blocking::RecoveryVault;
//!
//! let vault = RecoveryVault::open_or_create(tmp.path().join("vault"))?;
//! let item = vault.protect("db/pg-main")?;
//! let point = vault.backup(&item, &b"WAL segment"[..], BackupOptions::default())?;
//! let mut out = Vec::new();
//! vault.restore(&point, &mut out)?;
//! assert_eq!(out, b"WAL segment");
//! # Ok(())
//! # }
//! ```

use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use strongroom_keyvault::{KeyVault, Principal};
use strongroom_policy::{CustomerKey, EncryptionSettings, KeyHealth, Problem, VaultEncryption};

use crate::backup::Source;
use crate::restore::Sink;
use crate::{BackupOptions, Error, Item, RecoveryPoint, VaultConfig};

/// A [`crate::RecoveryVault`] with a blocking API.
pub struct RecoveryVault {
    runtime: tokio::runtime::Runtime,
    inner: crate::RecoveryVault,
}

impl core::fmt::Debug for RecoveryVault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.inner.fmt(f)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("strongroom")
        .enable_all()
        .build()
        .map_err(Error::Io)
}

/// A reader as a backup source: read on the calling thread.
struct ReadSource<R>(R);

impl<R: Read + Send> Source for ReadSource<R> {
    fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<usize>> {
        let result = self.0.read(buf);
        Box::pin(async move { result })
    }
}

/// A writer as a restore sink: written on the calling thread.
struct WriteSink<W>(W);

impl<W: Write + Send> Sink for WriteSink<W> {
    fn write_all<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        let result = self.0.write_all(bytes);
        Box::pin(async move { result })
    }
    fn flush(&mut self) -> BoxFuture<'_, io::Result<()>> {
        let result = self.0.flush();
        Box::pin(async move { result })
    }
}

impl RecoveryVault {
    fn wrap(
        make: impl FnOnce(&tokio::runtime::Runtime) -> Result<crate::RecoveryVault, Error>,
    ) -> Result<Self, Error> {
        let runtime = runtime()?;
        let inner = make(&runtime)?;
        Ok(Self { runtime, inner })
    }

    /// As [`crate::RecoveryVault::open_or_create`].
    ///
    /// # Errors
    /// As there.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::wrap(|rt| rt.block_on(crate::RecoveryVault::open_or_create(dir)))
    }

    /// As [`crate::RecoveryVault::create_local`].
    ///
    /// # Errors
    /// As there.
    pub fn create_local(dir: impl AsRef<Path>, name: &str) -> Result<Self, Error> {
        Self::wrap(|rt| rt.block_on(crate::RecoveryVault::create_local(dir, name)))
    }

    /// As [`crate::RecoveryVault::open_local`].
    ///
    /// # Errors
    /// As there.
    pub fn open_local(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::wrap(|rt| rt.block_on(crate::RecoveryVault::open_local(dir)))
    }

    /// As [`crate::RecoveryVault::create_local_with_store`].
    ///
    /// # Errors
    /// As there.
    pub fn create_local_with_store(
        dir: impl AsRef<Path>,
        name: &str,
        store: crate::Store,
    ) -> Result<Self, Error> {
        Self::wrap(|rt| {
            rt.block_on(crate::RecoveryVault::create_local_with_store(
                dir, name, store,
            ))
        })
    }

    /// As [`crate::RecoveryVault::open_local_with_store`].
    ///
    /// # Errors
    /// As there.
    pub fn open_local_with_store(
        dir: impl AsRef<Path>,
        store: crate::Store,
    ) -> Result<Self, Error> {
        Self::wrap(|rt| rt.block_on(crate::RecoveryVault::open_local_with_store(dir, store)))
    }

    /// As [`crate::RecoveryVault::create`].
    ///
    /// # Errors
    /// As there.
    pub fn create(config: VaultConfig, name: &str) -> Result<Self, Error> {
        Self::wrap(|rt| rt.block_on(crate::RecoveryVault::create(config, name)))
    }

    /// As [`crate::RecoveryVault::open`].
    ///
    /// # Errors
    /// As there.
    pub fn open(config: VaultConfig) -> Result<Self, Error> {
        Self::wrap(|rt| rt.block_on(crate::RecoveryVault::open(config)))
    }

    /// The async vault this one drives.
    #[must_use]
    pub fn as_async(&self) -> &crate::RecoveryVault {
        &self.inner
    }

    /// The vault's id.
    #[must_use]
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// As [`crate::RecoveryVault::protect`].
    ///
    /// # Errors
    /// As there.
    pub fn protect(&self, name: &str) -> Result<Item, Error> {
        self.runtime.block_on(self.inner.protect(name))
    }

    /// As [`crate::RecoveryVault::protect_with`].
    ///
    /// # Errors
    /// As there.
    pub fn protect_with(
        &self,
        name: &str,
        source_encryption: crate::SourceEncryption,
    ) -> Result<Item, Error> {
        self.runtime
            .block_on(self.inner.protect_with(name, source_encryption))
    }

    /// As [`crate::RecoveryVault::item`].
    ///
    /// # Errors
    /// As there.
    pub fn item(&self, name: &str) -> Result<Item, Error> {
        self.runtime.block_on(self.inner.item(name))
    }

    /// As [`crate::RecoveryVault::items`].
    ///
    /// # Errors
    /// As there.
    pub fn items(&self) -> Result<Vec<Item>, Error> {
        self.runtime.block_on(self.inner.items())
    }

    /// As [`crate::RecoveryVault::attach_key_vault`].
    ///
    /// # Errors
    /// As there.
    pub fn attach_key_vault(&self, key_vault: Arc<dyn KeyVault>) -> Result<(), Error> {
        self.inner.attach_key_vault(key_vault)
    }

    /// As [`crate::RecoveryVault::encryption`].
    ///
    /// # Errors
    /// As there.
    pub fn encryption(&self) -> Result<VaultEncryption, Error> {
        self.runtime.block_on(self.inner.encryption())
    }

    /// As [`crate::RecoveryVault::set_encryption`].
    ///
    /// # Errors
    /// As there.
    pub fn set_encryption(&self, settings: EncryptionSettings) -> Result<(), Error> {
        self.runtime.block_on(self.inner.set_encryption(settings))
    }

    /// As [`crate::RecoveryVault::preflight`].
    ///
    /// # Errors
    /// As there.
    pub fn preflight(&self, key: &CustomerKey) -> Result<Vec<Problem>, Error> {
        self.runtime.block_on(self.inner.preflight(key))
    }

    /// As [`crate::RecoveryVault::system_identity`].
    #[must_use]
    pub fn system_identity(&self) -> Principal {
        self.inner.system_identity()
    }

    /// As [`crate::RecoveryVault::add_user_assigned_identity`].
    pub fn add_user_assigned_identity(&self, name: &str, principal: Principal) {
        self.inner.add_user_assigned_identity(name, principal);
    }

    /// As [`crate::RecoveryVault::key_health`].
    ///
    /// # Errors
    /// As there.
    pub fn key_health(&self) -> Result<KeyHealth, Error> {
        self.runtime.block_on(self.inner.key_health())
    }

    /// As [`crate::RecoveryVault::restore_disk_keys`].
    ///
    /// # Errors
    /// As there.
    pub fn restore_disk_keys(
        &self,
        point: &RecoveryPoint,
        into: Option<&str>,
    ) -> Result<crate::RestoredDiskKeys, Error> {
        self.runtime
            .block_on(self.inner.restore_disk_keys(point, into))
    }

    /// As [`crate::RecoveryVault::check_keys`].
    ///
    /// # Errors
    /// As there.
    pub fn check_keys(&self, point: &RecoveryPoint) -> Result<(), Error> {
        self.runtime.block_on(self.inner.check_keys(point))
    }

    /// As [`crate::RecoveryVault::backup`], reading `source` on the calling
    /// thread.
    ///
    /// # Errors
    /// As there.
    pub fn backup(
        &self,
        item: &Item,
        source: impl Read + Send,
        options: BackupOptions,
    ) -> Result<RecoveryPoint, Error> {
        self.runtime.block_on(
            self.inner
                .backup_from(item, &mut ReadSource(source), options),
        )
    }

    /// As [`crate::RecoveryVault::points`].
    ///
    /// # Errors
    /// As there.
    pub fn points(&self, item: &Item) -> Result<Vec<RecoveryPoint>, Error> {
        self.runtime.block_on(self.inner.points(item))
    }

    /// As [`crate::RecoveryVault::point`].
    ///
    /// # Errors
    /// As there.
    pub fn point(&self, item: &Item, id: &str) -> Result<RecoveryPoint, Error> {
        self.runtime.block_on(self.inner.point(item, id))
    }

    /// As [`crate::RecoveryVault::restore`], writing `sink` on the calling
    /// thread.
    ///
    /// # Errors
    /// As there.
    pub fn restore(&self, point: &RecoveryPoint, sink: impl Write + Send) -> Result<u64, Error> {
        self.runtime
            .block_on(self.inner.restore_to(point, &mut WriteSink(sink), None))
    }

    /// As [`crate::RecoveryVault::restore_range`].
    ///
    /// # Errors
    /// As there.
    pub fn restore_range(
        &self,
        point: &RecoveryPoint,
        range: Range<u64>,
        sink: impl Write + Send,
    ) -> Result<u64, Error> {
        self.runtime.block_on(
            self.inner
                .restore_range_to(point, range, &mut WriteSink(sink)),
        )
    }

    /// As [`crate::RecoveryVault::verify`].
    ///
    /// # Errors
    /// As there.
    pub fn verify(&self, point: &RecoveryPoint) -> Result<u64, Error> {
        self.runtime.block_on(self.inner.verify(point))
    }

    /// As [`crate::RecoveryVault::delete_point`].
    ///
    /// # Errors
    /// As there.
    pub fn delete_point(&self, point: &RecoveryPoint) -> Result<(), Error> {
        self.runtime.block_on(self.inner.delete_point(point))
    }

    /// As [`crate::RecoveryVault::gc`].
    ///
    /// # Errors
    /// As there.
    pub fn gc(&self, grace: Duration) -> Result<usize, Error> {
        self.runtime.block_on(self.inner.gc(grace))
    }
}
