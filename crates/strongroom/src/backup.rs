//! Backing up: a byte source in, a committed recovery point out.
//!
//! The header is written first, then the body as a multipart upload of
//! sealed parts, and last the manifest, with a create-only put: that put is
//! the commit. A failure anywhere before it leaves no manifest (nothing
//! visible) and the vault removes what it wrote; a crash leaves objects
//! that [`RecoveryVault::gc`] removes.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use futures::future::BoxFuture;
use object_store::{ObjectStoreExt, PutPayload};
use strongroom_envelope::{BodySealer, Dek, Header, HeaderOptions, KeyWrapper, SealingHeader};
use tokio::io::{AsyncRead, AsyncReadExt};
use zeroize::Zeroizing;

use crate::error::envelope_error;
use crate::layout::{
    self, LAYER_INFRASTRUCTURE, METADATA_ITEM, METADATA_LAYER, METADATA_LAYERS, METADATA_POINT,
    METADATA_SOURCE_ENCRYPTION, METADATA_VAULT, Manifest,
};
use crate::settings::Wrappers;
use crate::source::{DiskKeys, KEY_BACKUPS_LABEL};
use crate::vault::{Item, RecoveryPoint, RecoveryVault, blocking, now_millis, now_secs};
use crate::{Error, store};

/// The plaintext bytes of one uploaded part (rounded up to whole chunks):
/// above S3's 5 MiB minimum part, small enough that a few in flight stay
/// within the memory bound.
const PART_TARGET: usize = 8 * 1024 * 1024;

/// How far a backup, restore or verify has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of data done.
    pub done: u64,
    /// All the bytes, when known (a restore always knows; a backup when
    /// given [`BackupOptions::size_hint`]).
    pub total: Option<u64>,
}

/// A progress callback: called after each part, from the task running
/// the operation. Keep it quick.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Options for one backup.
#[derive(Clone)]
pub struct BackupOptions {
    pub(crate) size_hint: Option<u64>,
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) chunk_size: Option<usize>,
    pub(crate) parts_in_flight: usize,
    pub(crate) source_encryption: Option<crate::SourceEncryption>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            size_hint: None,
            progress: None,
            chunk_size: None,
            parts_in_flight: 2,
            source_encryption: None,
        }
    }
}

impl core::fmt::Debug for BackupOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BackupOptions")
            .field("size_hint", &self.size_hint)
            .field("progress", &self.progress.is_some())
            .field("chunk_size", &self.chunk_size)
            .field("parts_in_flight", &self.parts_in_flight)
            .field("source_encryption", &self.source_encryption)
            .finish()
    }
}

impl BackupOptions {
    /// The source's size, when known: progress then reports a total.
    #[must_use]
    pub fn size_hint(mut self, bytes: u64) -> Self {
        self.size_hint = Some(bytes);
        self
    }

    /// Calls `progress` as parts are done.
    #[must_use]
    pub fn progress(mut self, progress: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// Plaintext bytes per chunk, the unit a range restore reads: a power
    /// of two from 4 KiB to 16 MiB (default 1 MiB).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for any other size.
    pub fn chunk_size(mut self, bytes: usize) -> Result<Self, Error> {
        HeaderOptions::default()
            .chunk_size(bytes)
            .map_err(|_| Error::InvalidArgument {
                reason: format!(
                    "chunk size must be a power of two from 4 KiB to 16 MiB, not {bytes}"
                ),
            })?;
        self.chunk_size = Some(bytes);
        Ok(self)
    }

    /// The source encryption of the item's disks as it is now, for this
    /// point (default: what the item was protected with): e.g. the BEK's
    /// new version after a rotation in the guest, or the disk-encryption
    /// set's new key. The point records it (R17).
    #[must_use]
    pub fn source_encryption(mut self, source_encryption: crate::SourceEncryption) -> Self {
        self.source_encryption = Some(source_encryption);
        self
    }

    /// Parts uploading at once (default 2, at most 16). Memory is about
    /// `(parts_in_flight + 2) × 8 MiB` plus the sealing threads' chunks.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] outside 1 to 16.
    pub fn parts_in_flight(mut self, parts: usize) -> Result<Self, Error> {
        if !(1..=16).contains(&parts) {
            return Err(Error::InvalidArgument {
                reason: format!("parts in flight must be 1 to 16, not {parts}"),
            });
        }
        self.parts_in_flight = parts;
        Ok(self)
    }
}

/// Where a backup's bytes come from.
pub(crate) trait Source: Send {
    /// Reads some bytes into `buf`; 0 at the end.
    fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<usize>>;
}

/// An async reader as a source.
pub(crate) struct AsyncSource<R>(pub R);

impl<R: AsyncRead + Unpin + Send> Source for AsyncSource<R> {
    fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<usize>> {
        Box::pin(self.0.read(buf))
    }
}

/// Reads until `buf` is full or the source ends; returns the bytes read.
async fn fill(source: &mut dyn Source, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl RecoveryVault {
    /// Backs up `source` as a new recovery point of `item`, under a fresh
    /// data-encryption key wrapped by the vault's key (R2), sealing on the
    /// vault's threads while earlier parts upload.
    ///
    /// The point is committed by its manifest, written last with a
    /// create-only put: until then nothing is visible, and a failure
    /// (source error, store error, key refused) removes what was written.
    /// The key is used before any data moves, both ways (the fresh DEK is
    /// wrapped, then unwrapped again), so a key that is disabled, deleted,
    /// or that the vault's identity may not wrap or unwrap with fails the
    /// backup at once rather than leave a point nobody can restore.
    ///
    /// # Errors
    /// [`Error::Key`] / [`Error::KeyPurged`] when the vault's key cannot
    /// wrap; [`Error::NotFound`] for an item not protected in this vault;
    /// [`Error::Io`] when the source fails; [`Error::Store`].
    pub async fn backup<R: AsyncRead + Unpin + Send>(
        &self,
        item: &Item,
        source: R,
        options: BackupOptions,
    ) -> Result<RecoveryPoint, Error> {
        self.backup_from(item, &mut AsyncSource(source), options)
            .await
    }

    pub(crate) async fn backup_from(
        &self,
        item: &Item,
        source: &mut dyn Source,
        options: BackupOptions,
    ) -> Result<RecoveryPoint, Error> {
        // Protected here, in this vault (not a stale handle of another).
        let item = self.item(item.name()).await?;
        // Before any data moves (R17): an in-guest-encrypted item's disk
        // keys are backed up, every permission that needs checked first.
        let given = options
            .source_encryption
            .clone()
            .unwrap_or_else(|| item.source_encryption().clone());
        let DiskKeys {
            recorded: source_encryption,
            payload: key_backups,
        } = self.disk_keys(&given).await?;
        let point = layout::new_point_id(now_millis())?;
        let Wrappers {
            data: wrapper,
            infrastructure,
        } = self.current_wrappers().await?;
        let mut header_options = HeaderOptions::default()
            .metadata(METADATA_VAULT, self.id())
            .metadata(METADATA_ITEM, item.name())
            .metadata(METADATA_POINT, point.as_str());
        if let Some(bytes) = options.chunk_size {
            header_options = header_options
                .chunk_size(bytes)
                .map_err(|e| envelope_error(&point, e))?;
        }
        // With infrastructure encryption (R16) the outer layer's header
        // names the same point and says it is the outer layer; the inner
        // one says, under the customer key, that an outer layer is there.
        let outer_options = infrastructure.as_ref().map(|_| {
            header_options
                .clone()
                .metadata(METADATA_LAYER, LAYER_INFRASTRUCTURE)
        });
        if infrastructure.is_some() {
            header_options = header_options.metadata(METADATA_LAYERS, "2");
        }
        // What the point was taken with, authenticated in its data header.
        if !source_encryption.is_none() {
            header_options =
                header_options.metadata(METADATA_SOURCE_ENCRYPTION, source_encryption.to_json());
        }
        let (sealing, outer, key_backups) = {
            let point = point.clone();
            blocking(move || -> Result<_, Error> {
                let sealing = seal_header(&point, wrapper.as_ref(), &header_options)?;
                let outer = match (&infrastructure, &outer_options) {
                    (Some(platform), Some(options)) => {
                        Some(seal_header(&point, platform.as_ref(), options)?)
                    }
                    _ => None,
                };
                // The disk keys' backups, under the point's DEK like the
                // data (docs/FORMAT.md sections 3.3 and 9.5).
                let key_backups = key_backups
                    .map(|plain| sealing.seal_attachment(KEY_BACKUPS_LABEL, &plain))
                    .transpose()
                    .map_err(|e| envelope_error(&point, e))?;
                Ok((sealing, outer, key_backups))
            })
            .await??
        };
        let layout = &self.inner.layout;
        let store = self.inner.store.as_ref();
        let header_path = layout.header(item.name(), &point);
        let outer_path = layout.outer_header(item.name(), &point);
        let body_path = layout.body(item.name(), &point);
        let key_backups_path = layout.key_backups(item.name(), &point);
        let keys = sealing.header().key_refs().cloned().collect();
        let infrastructure_keys = outer
            .as_ref()
            .map(|outer| outer.header().key_refs().cloned().collect())
            .unwrap_or_default();
        let chunk_size = sealing.chunk_size() as u64;
        if !store::put_new_unique(store, &header_path, sealing.header().as_bytes().to_vec()).await?
        {
            return Err(Error::AlreadyExists {
                what: format!("recovery point {point}"),
            });
        }
        let uploaded = match &outer {
            Some(outer) => {
                store::put_new_unique(store, &outer_path, outer.header().as_bytes().to_vec())
                    .await
                    .and_then(|created| {
                        created.then_some(()).ok_or_else(|| Error::AlreadyExists {
                            what: format!("recovery point {point}"),
                        })
                    })
            }
            None => Ok(()),
        };
        let uploaded = match (uploaded, key_backups) {
            (Ok(()), Some(sealed)) => store::put_new_unique(store, &key_backups_path, sealed)
                .await
                .and_then(|created| {
                    created.then_some(()).ok_or_else(|| Error::AlreadyExists {
                        what: format!("recovery point {point}"),
                    })
                }),
            (uploaded, _) => uploaded,
        };
        let double = outer.is_some();
        let uploaded = match uploaded {
            Ok(()) => {
                self.upload_body(&body_path, sealing, outer, source, &options)
                    .await
            }
            Err(e) => Err(e),
        };
        let committed = match uploaded {
            Ok((size, body_size)) => {
                let manifest = Manifest {
                    format: layout::FORMAT,
                    vault_id: self.id().to_owned(),
                    item: item.name().to_owned(),
                    point: point.clone(),
                    created: now_secs(),
                    size,
                    body_size,
                    chunk_size,
                    infrastructure_encryption: double,
                };
                let path = layout.manifest(item.name(), &point);
                store::put_new_unique(store, &path, layout::to_json(&manifest))
                    .await
                    .and_then(|created| {
                        if created {
                            Ok(manifest)
                        } else {
                            Err(Error::AlreadyExists {
                                what: format!("recovery point {point}"),
                            })
                        }
                    })
            }
            Err(e) => Err(e),
        };
        // A `gc` with a grace shorter than this backup may have removed
        // its header while the body uploaded: then the point is not whole,
        // and the backup says so rather than report a point nobody can
        // restore (gc removes the rest).
        let committed = match committed {
            Ok(manifest) => match store::head(store, &header_path).await {
                Ok(Some(_)) => Ok(manifest),
                Ok(None) => {
                    let _ = store::delete(store, &layout.manifest(item.name(), &point)).await;
                    Err(Error::Conflict {
                        what: format!(
                            "recovery point {point}: a gc removed its header while the backup ran (give gc a grace longer than the longest backup)"
                        ),
                    })
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match committed {
            Ok(manifest) => Ok(RecoveryPoint {
                item: manifest.item,
                id: manifest.point,
                created: manifest.created,
                size: manifest.size,
                body_size: manifest.body_size,
                chunk_size: manifest.chunk_size,
                keys,
                infrastructure_keys,
                source_encryption,
            }),
            Err(e) => {
                // Nothing was committed; remove what was written (best
                // effort: gc removes what a failing store leaves).
                let _ = store::delete(store, &header_path).await;
                let _ = store::delete(store, &outer_path).await;
                let _ = store::delete(store, &key_backups_path).await;
                let _ = store::delete(store, &body_path).await;
                Err(e)
            }
        }
    }

    /// Seals `source` part by part into a multipart upload at `path`,
    /// under `sealing` and, with infrastructure encryption, again under
    /// `outer`. Returns the plaintext and body sizes.
    async fn upload_body(
        &self,
        path: &object_store::path::Path,
        sealing: SealingHeader,
        outer: Option<SealingHeader>,
        source: &mut dyn Source,
        options: &BackupOptions,
    ) -> Result<(u64, u64), Error> {
        let chunk = sealing.chunk_size();
        let part_plain = chunk * PART_TARGET.div_ceil(chunk).max(1);
        let threads = self.inner.threads;
        let (mut sealer, mut outer) = blocking(move || -> Result<_, _> {
            let outer = match outer {
                Some(outer) => Some(OuterSealer::new(outer, threads)?),
                None => None,
            };
            Ok::<_, strongroom_envelope::Error>((sealing.body_sealer(threads)?, outer))
        })
        .await?
        .map_err(|e| envelope_error("new", e))?;
        let mut upload = self
            .inner
            .store
            .put_multipart(path)
            .await
            .map_err(store::upload_error(path))?;
        let result: Result<(u64, u64), Error> = async {
            // One byte more than a part: a full read means another part
            // follows, so the part read is not the last.
            let mut plain = Zeroizing::new(vec![0u8; part_plain + 1]);
            let mut carried = 0;
            let mut in_flight = VecDeque::new();
            let (mut done, mut body_size) = (0u64, 0u64);
            loop {
                let n = carried + fill(source, &mut plain[carried..]).await?;
                let last = n <= part_plain;
                let take = n.min(part_plain);
                let (back, back_outer, buffer, body) = blocking(move || {
                    let result = match &mut outer {
                        Some(outer) => outer.seal(&mut sealer, &plain[..take], last),
                        None => seal_part(&mut sealer, &plain[..take], last),
                    };
                    (sealer, outer, plain, result)
                })
                .await?;
                sealer = back;
                outer = back_outer;
                plain = buffer;
                let body = body.map_err(|e| envelope_error("new", e))?;
                body_size += body.len() as u64;
                while in_flight.len() >= options.parts_in_flight {
                    finish_part(path, in_flight.pop_front()).await?;
                }
                // (The outer layer may hold a small part back whole.)
                if !body.is_empty() {
                    in_flight.push_back(tokio::spawn(upload.put_part(PutPayload::from(body))));
                }
                done += take as u64;
                if let Some(progress) = &options.progress {
                    progress(Progress {
                        done,
                        total: options.size_hint,
                    });
                }
                if last {
                    break;
                }
                plain[0] = plain[part_plain];
                carried = 1;
            }
            while let Some(part) = in_flight.pop_front() {
                finish_part(path, Some(part)).await?;
            }
            upload.complete().await.map_err(store::upload_error(path))?;
            Ok((done, body_size))
        }
        .await;
        if result.is_err() {
            let _ = upload.abort().await;
        }
        result
    }
}

/// Seals one part of a single layer: the body's last when `last`.
fn seal_part(
    sealer: &mut BodySealer,
    plain: &[u8],
    last: bool,
) -> Result<Vec<u8>, strongroom_envelope::Error> {
    let mut body;
    if last {
        body = vec![0u8; sealer.final_len(plain.len())?];
        sealer.finish(plain, &mut body)?;
    } else {
        body = vec![0u8; sealer.sealed_len(plain.len())?];
        sealer.seal(plain, &mut body)?;
    }
    Ok(body)
}

/// A header for a new point under `wrapper`, with a fresh DEK, proved
/// restorable before any data moves: the wrapped DEK must unwrap again (a
/// vault identity that may wrap but not unwrap would make points nobody
/// can restore).
fn seal_header(
    point: &str,
    wrapper: &dyn KeyWrapper,
    options: &HeaderOptions,
) -> Result<SealingHeader, Error> {
    let dek = Dek::generate()
        .map_err(|_| envelope_error(point, strongroom_envelope::Error::RandomnessUnavailable))?;
    let sealing = Header::create(dek, &[wrapper], options).map_err(|e| envelope_error(point, e))?;
    Header::from_bytes(sealing.header().as_bytes())
        .and_then(|header| header.open(&[wrapper]))
        .map_err(|e| envelope_error(point, e))?;
    Ok(sealing)
}

/// The outer layer of a point with infrastructure encryption (R16): takes
/// each part of the inner body (sealed into its own buffer, after what it
/// held back) as the plaintext of a second stream (docs/FORMAT.md section
/// 9). Whole outer chunks are sealed as they fill; at least one byte is
/// held back until the last part, whose final chunk must hold the stream's
/// last byte. What it holds back is inner ciphertext, never plaintext.
struct OuterSealer {
    sealer: BodySealer,
    chunk: usize,
    pending: Vec<u8>,
}

impl OuterSealer {
    fn new(sealing: SealingHeader, threads: usize) -> Result<Self, strongroom_envelope::Error> {
        let chunk = sealing.chunk_size();
        Ok(Self {
            sealer: sealing.body_sealer(threads)?,
            chunk,
            pending: Vec::new(),
        })
    }

    /// Seals `plain` with the inner layer's `sealer` (`last`: the end of
    /// the data) straight after what was held back, then what of that it
    /// can with the outer layer; returns the outer body part.
    fn seal(
        &mut self,
        sealer: &mut BodySealer,
        plain: &[u8],
        last: bool,
    ) -> Result<Vec<u8>, strongroom_envelope::Error> {
        let start = self.pending.len();
        let len = if last {
            sealer.final_len(plain.len())?
        } else {
            sealer.sealed_len(plain.len())?
        };
        // (Capacity is kept from part to part: no new pages.)
        self.pending.resize(start + len, 0);
        let sealed = if last {
            sealer.finish(plain, &mut self.pending[start..])
        } else {
            sealer.seal(plain, &mut self.pending[start..])
        };
        if let Err(e) = sealed {
            self.pending.truncate(start);
            return Err(e);
        }
        let mut body;
        if last {
            body = vec![0u8; self.sealer.final_len(self.pending.len())?];
            self.sealer.finish(&self.pending, &mut body)?;
            self.pending.clear();
        } else {
            let take = self.pending.len().saturating_sub(1) / self.chunk * self.chunk;
            body = vec![0u8; self.sealer.sealed_len(take)?];
            self.sealer.seal(&self.pending[..take], &mut body)?;
            self.pending.drain(..take);
        }
        Ok(body)
    }
}

/// Waits for one part's upload.
async fn finish_part(
    path: &object_store::path::Path,
    part: Option<tokio::task::JoinHandle<object_store::Result<()>>>,
) -> Result<(), Error> {
    let Some(part) = part else { return Ok(()) };
    part.await
        .map_err(|e| Error::Io(io::Error::other(format!("an upload task failed: {e}"))))?
        .map_err(store::upload_error(path))
}
