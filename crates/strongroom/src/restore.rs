//! Restoring and verifying recovery points, whole or a byte range.
//!
//! A point's body is read in parts with ranged reads (the next one in
//! flight while the current one opens), each part opened on the vault's
//! threads: no byte of a part reaches the sink before every chunk of the
//! part authenticated. Only the last part, which holds the final chunk,
//! proves the point whole: a restore that fails returns an error after
//! writing the verified parts before it, which the caller discards (the
//! `strongroom` command writes to a temporary file and renames it only on
//! success).

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;

use futures::future::BoxFuture;
use object_store::ObjectStore;
use object_store::path::Path;
use strongroom_envelope::{BodyOpener, Header, KeyWrapper, OpenedHeader, SeekableDecryptor};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::error::envelope_error;
use crate::layout::{
    self, LAYER_INFRASTRUCTURE, METADATA_ITEM, METADATA_LAYER, METADATA_LAYERS, METADATA_POINT,
    METADATA_VAULT,
};
use crate::vault::{RecoveryPoint, RecoveryVault, blocking};
use crate::{Error, Progress, ProgressFn, store};

/// Body bytes read per part when restoring (rounded to whole chunks).
const PART_TARGET: u64 = 8 * 1024 * 1024;

/// Body parts a restore reads ahead of the one it opens.
const READ_AHEAD: usize = 2;

/// Where restored bytes go.
pub(crate) trait Sink: Send {
    /// Writes all of `bytes`.
    fn write_all<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;
    /// Flushes what was written.
    fn flush(&mut self) -> BoxFuture<'_, io::Result<()>>;
}

/// An async writer as a sink.
pub(crate) struct AsyncSink<W>(pub W);

impl<W: AsyncWrite + Unpin + Send> Sink for AsyncSink<W> {
    fn write_all<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(self.0.write_all(bytes))
    }
    fn flush(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(self.0.flush())
    }
}

/// A sink that keeps nothing (verify).
struct Discard;

impl Sink for Discard {
    fn write_all<'a>(&'a mut self, _: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async { Ok(()) })
    }
    fn flush(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

impl RecoveryVault {
    /// Restores all of `point` into `sink`; returns the bytes written.
    ///
    /// Each part is written once all its chunks authenticated; the last
    /// part proves the point whole. On an error, discard what the sink
    /// received.
    ///
    /// # Errors
    /// [`Error::Key`] / [`Error::KeyPurged`] / [`Error::NoKey`] when no key
    /// can open the point (disabled, revoked, purged, not attached);
    /// [`Error::Integrity`] when the header or body was altered or cut;
    /// [`Error::NotFound`] for a deleted point; [`Error::Io`] when the
    /// sink fails; [`Error::Store`].
    pub async fn restore<W: AsyncWrite + Unpin + Send>(
        &self,
        point: &RecoveryPoint,
        sink: W,
    ) -> Result<u64, Error> {
        self.restore_to(point, &mut AsyncSink(sink), None).await
    }

    /// As [`restore`](Self::restore), calling `progress` after each part.
    ///
    /// # Errors
    /// As [`restore`](Self::restore).
    pub async fn restore_with_progress<W: AsyncWrite + Unpin + Send>(
        &self,
        point: &RecoveryPoint,
        sink: W,
        progress: impl Fn(Progress) + Send + Sync + 'static,
    ) -> Result<u64, Error> {
        let progress: ProgressFn = Arc::new(progress);
        self.restore_to(point, &mut AsyncSink(sink), Some(progress))
            .await
    }

    /// Authenticates every chunk of `point` and writes nothing; returns the
    /// bytes of data it holds.
    ///
    /// # Errors
    /// As [`restore`](Self::restore), less the sink's.
    pub async fn verify(&self, point: &RecoveryPoint) -> Result<u64, Error> {
        self.restore_to(point, &mut Discard, None).await
    }

    /// Whether `point` can still be opened: a key this vault reaches
    /// unwraps its DEK and its header is its own. Reads no body and writes
    /// nothing, so it is cheap enough to run over every listed point; the
    /// error is the one a restore would give: [`Error::KeyPurged`] for a
    /// point lost for good, [`Error::Key`] for a key disabled, deleted or
    /// revoked (which can be fixed), [`Error::NoKey`] when its key vault is
    /// not attached.
    ///
    /// # Errors
    /// As said; and [`Error::Integrity`], [`Error::NotFound`],
    /// [`Error::Store`] as for [`restore`](Self::restore).
    pub async fn check_keys(&self, point: &RecoveryPoint) -> Result<(), Error> {
        self.open_layers(point).await.map(drop)
    }

    /// One of the point's headers, read and parsed (not opened).
    pub(crate) async fn read_header(
        &self,
        point: &RecoveryPoint,
        layer: Layer,
    ) -> Result<Header, Error> {
        let layout = &self.inner.layout;
        let path = match layer {
            Layer::Data => layout.header(&point.item, &point.id),
            Layer::Infrastructure => layout.outer_header(&point.item, &point.id),
        };
        let bytes = store::get_small(self.inner.store.as_ref(), &path, layout::MAX_HEADER)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("recovery point {} of item {:?}", point.id, point.item),
            })?;
        Header::from_bytes(&bytes).map_err(|e| envelope_error(&point.id, e))
    }

    /// Opens one of the point's headers with the keys that can, and checks
    /// that it is this point's ([`check_header_is`](Self::check_header_is)).
    pub(crate) async fn open_header(
        &self,
        point: &RecoveryPoint,
        layer: Layer,
    ) -> Result<OpenedHeader, Error> {
        let header = self.read_header(point, layer).await?;
        let keys: Vec<_> = header.key_refs().cloned().collect();
        let wrappers = self.unwrappers(&keys).await?;
        let id = point.id.clone();
        let opened = blocking(move || {
            let refs: Vec<&dyn KeyWrapper> = wrappers.iter().map(|w| w.as_ref()).collect();
            header.open(&refs).map_err(|e| envelope_error(&id, e))
        })
        .await??;
        self.check_header_is(point, &opened, layer)?;
        Ok(opened)
    }

    /// Opens the point's headers: the data layer's, and the outer layer's
    /// when it has infrastructure encryption.
    pub(crate) async fn open_layers(&self, point: &RecoveryPoint) -> Result<Layers, Error> {
        let inner = self.open_header(point, Layer::Data).await?;
        let outer = if point.infrastructure_encrypted() {
            Some(self.open_header(point, Layer::Infrastructure).await?)
        } else {
            None
        };
        Ok(Layers { inner, outer })
    }

    /// Refuses an opened header whose authenticated metadata names another
    /// vault, item or point (a header moved or swapped in the store), or
    /// another layer: the data layer's header says whether the point has
    /// an infrastructure layer, so that it cannot be stripped, and the
    /// outer header says it is one.
    pub(crate) fn check_header_is(
        &self,
        point: &RecoveryPoint,
        opened: &OpenedHeader,
        layer: Layer,
    ) -> Result<(), Error> {
        let metadata = opened.header().metadata();
        let integrity = |reason: &str| Error::Integrity {
            point: point.id.clone(),
            reason: reason.into(),
        };
        let ours = metadata.get(METADATA_VAULT).map(String::as_str) == Some(self.id())
            && metadata.get(METADATA_ITEM) == Some(&point.item)
            && metadata.get(METADATA_POINT) == Some(&point.id);
        if !ours {
            return Err(integrity(
                "its header belongs to another recovery point (moved or swapped)",
            ));
        }
        let (layers, which) = (
            metadata.get(METADATA_LAYERS).map(String::as_str),
            metadata.get(METADATA_LAYER).map(String::as_str),
        );
        let right = match layer {
            Layer::Data if point.infrastructure_encrypted() => {
                layers == Some("2") && which.is_none()
            }
            Layer::Data => layers.is_none() && which.is_none(),
            Layer::Infrastructure => layers.is_none() && which == Some(LAYER_INFRASTRUCTURE),
        };
        if !right {
            return Err(integrity(match layer {
                Layer::Data if point.infrastructure_encrypted() => {
                    "its data header does not say it has an infrastructure layer, but the manifest does"
                }
                Layer::Data => {
                    "its data header says it has an infrastructure layer, but the manifest does not (the outer layer was stripped)"
                }
                Layer::Infrastructure => {
                    "its infrastructure header is not an infrastructure layer's (headers swapped)"
                }
            }));
        }
        Ok(())
    }

    /// The body's length, checked against the manifest: its body size,
    /// and the data size that body holds under the opened header. The
    /// manifest is not authenticated; a point whose manifest and objects
    /// disagree is refused before any byte is read.
    async fn checked_body_len(&self, point: &RecoveryPoint, layers: &Layers) -> Result<u64, Error> {
        let path = self.inner.layout.body(&point.item, &point.id);
        let integrity = |reason: String| Error::Integrity {
            point: point.id.clone(),
            reason,
        };
        let body_len = store::head(self.inner.store.as_ref(), &path)
            .await?
            .ok_or_else(|| integrity("its body is missing".into()))?
            .size;
        if body_len != point.body_size {
            return Err(integrity(format!(
                "its body is {body_len} bytes, the manifest says {}",
                point.body_size
            )));
        }
        let inner_len = match &layers.outer {
            Some(outer) => outer
                .plaintext_len(body_len)
                .map_err(|e| envelope_error(&point.id, e))?,
            None => body_len,
        };
        let holds = layers
            .inner
            .plaintext_len(inner_len)
            .map_err(|e| envelope_error(&point.id, e))?;
        if holds != point.size {
            return Err(integrity(format!(
                "its body holds {holds} bytes of data, the manifest says {}",
                point.size
            )));
        }
        Ok(body_len)
    }

    pub(crate) async fn restore_to(
        &self,
        point: &RecoveryPoint,
        sink: &mut dyn Sink,
        progress: Option<ProgressFn>,
    ) -> Result<u64, Error> {
        let layers = self.open_layers(point).await?;
        let store = Arc::clone(&self.inner.store);
        let path = self.inner.layout.body(&point.item, &point.id);
        let body_len = self.checked_body_len(point, &layers).await?;
        // The stored body is the outer layer's, when there is one.
        let outermost = layers.outer.as_ref().unwrap_or(&layers.inner);
        let stride = outermost.chunk_size() as u64 + 16;
        let part = stride * PART_TARGET.div_ceil(stride).max(1);
        let total = point.size;
        let threads = self.inner.threads;
        let id = point.id.clone();
        let mut opener = blocking(move || LayeredOpener::new(&id, &layers, threads)).await??;
        let fetch = |range: Range<u64>| {
            let store = Arc::clone(&store);
            let path = path.clone();
            tokio::spawn(async move { store::get_range(store.as_ref(), &path, range).await })
        };
        // Two parts in flight while one is opened and written: the opening
        // (on the vault's threads) and the transfer overlap. The plaintext
        // goes into one buffer, reused part after part and wiped once at
        // the end (a fresh buffer per part cost page faults and a wipe
        // each).
        let mut requested = 0u64;
        let mut in_flight = VecDeque::new();
        let mut request = |in_flight: &mut VecDeque<_>| {
            while in_flight.len() < READ_AHEAD && requested < body_len {
                let end = (requested + part).min(body_len);
                in_flight.push_back(fetch(requested..end));
                requested = end;
            }
        };
        request(&mut in_flight);
        let mut at = 0u64;
        let mut done = 0u64;
        let mut plain = Zeroizing::new(Vec::new());
        while let Some(current) = in_flight.pop_front() {
            let bytes = current
                .await
                .map_err(|e| Error::Io(io::Error::other(format!("a read task failed: {e}"))))??;
            let end = at + bytes.len() as u64;
            let last = end >= body_len;
            request(&mut in_flight);
            let (back, buffer, opened) = blocking(move || {
                let opened = opener.open(&bytes, last, &mut plain);
                (opener, plain, opened)
            })
            .await?;
            opener = back;
            plain = buffer;
            let n = opened?;
            sink.write_all(&plain[..n]).await?;
            done += n as u64;
            at = end;
            if let Some(progress) = &progress {
                progress(Progress {
                    done,
                    total: Some(total),
                });
            }
        }
        sink.flush().await?;
        Ok(done)
    }

    /// Restores bytes `range` of `point` into `sink`, reading only the
    /// chunks that hold them (each authenticated before any of its bytes
    /// is written). Returns the bytes written.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a range past the end; otherwise as
    /// [`restore`](Self::restore).
    pub async fn restore_range<W: AsyncWrite + Unpin + Send>(
        &self,
        point: &RecoveryPoint,
        range: Range<u64>,
        sink: W,
    ) -> Result<u64, Error> {
        self.restore_range_to(point, range, &mut AsyncSink(sink))
            .await
    }

    pub(crate) async fn restore_range_to(
        &self,
        point: &RecoveryPoint,
        range: Range<u64>,
        sink: &mut dyn Sink,
    ) -> Result<u64, Error> {
        if range.start > range.end || range.end > point.size {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "range {}..{} is not within the point's {} bytes",
                    range.start, range.end, point.size
                ),
            });
        }
        let layers = self.open_layers(point).await?;
        let body_len = self.checked_body_len(point, &layers).await?;
        let reader = StoreReader {
            store: Arc::clone(&self.inner.store),
            path: self.inner.layout.body(&point.item, &point.id),
            len: body_len,
            pos: 0,
            runtime: tokio::runtime::Handle::current(),
        };
        let id = point.id.clone();
        let mut decryptor = blocking(move || {
            // With an infrastructure layer, the inner body is read through
            // the outer layer's random-access reader: each outer chunk
            // verified before the inner layer sees a byte of it, and both
            // final chunks verified before any range is served.
            let inner_body: Box<dyn ReadSeek> = match &layers.outer {
                Some(outer) => Box::new(SeekableDecryptor::body(reader, outer)?),
                None => Box::new(reader),
            };
            SeekableDecryptor::body(inner_body, &layers.inner)
        })
        .await?
        .map_err(|e| envelope_error(&id, e))?;
        let step = PART_TARGET;
        let mut at = range.start;
        while at < range.end {
            let len = (range.end - at).min(step) as usize;
            let id = point.id.clone();
            let (back, bytes) = blocking(move || {
                let bytes = decryptor
                    .read_range(at, len)
                    .map(Zeroizing::new)
                    .map_err(|e| envelope_error(&id, e));
                (decryptor, bytes)
            })
            .await?;
            decryptor = back;
            sink.write_all(&bytes?).await?;
            at += len as u64;
        }
        sink.flush().await?;
        Ok(range.end - range.start)
    }
}

/// Which of a point's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layer {
    /// `header`: the data's DEK, under the vault's key (the customer key
    /// with customer-managed keys).
    Data,
    /// `outer-header`: the infrastructure layer's DEK, under the platform
    /// key (R16).
    Infrastructure,
}

/// A point's opened headers.
pub(crate) struct Layers {
    pub(crate) inner: OpenedHeader,
    /// With infrastructure encryption.
    pub(crate) outer: Option<OpenedHeader>,
}

/// Opens a stored body part by part, through both layers when the point
/// has two: each part first through the outer layer (every outer chunk
/// verified), the inner body this gives kept until it holds whole inner
/// chunks, which then open (each verified before any plaintext of its part
/// is released).
struct LayeredOpener {
    point: String,
    inner: BodyOpener,
    outer: Option<OuterOpener>,
}

struct OuterOpener {
    opener: BodyOpener,
    /// The inner layer's sealed chunk length.
    inner_stride: usize,
    /// Inner body bytes not yet opened (ciphertext of the inner layer).
    pending: Vec<u8>,
}

impl LayeredOpener {
    fn new(point: &str, layers: &Layers, threads: usize) -> Result<Self, Error> {
        let error = |e| envelope_error(point, e);
        let outer = match &layers.outer {
            Some(outer) => Some(OuterOpener {
                opener: outer.body_opener(threads).map_err(error)?,
                inner_stride: layers.inner.chunk_size() + 16,
                pending: Vec::new(),
            }),
            None => None,
        };
        Ok(Self {
            point: point.to_owned(),
            inner: layers.inner.body_opener(threads).map_err(error)?,
            outer,
        })
    }

    /// Opens the next part of the stored body (`last`: the part that ends
    /// it); returns the plaintext it releases.
    fn open(
        &mut self,
        body: &[u8],
        last: bool,
        out: &mut Zeroizing<Vec<u8>>,
    ) -> Result<usize, Error> {
        let Some(outer) = &mut self.outer else {
            return open_part(&mut self.inner, body, last, out)
                .map_err(|e| envelope_error(&self.point, e));
        };
        // The outer layer opens straight after the inner body bytes held
        // back (ciphertext of the inner layer: no plaintext is kept, and
        // the buffer keeps its capacity from part to part).
        outer
            .open(body, last)
            .map_err(|e| in_infrastructure_layer(envelope_error(&self.point, e)))?;
        let opened = if last {
            let rest = std::mem::take(&mut outer.pending);
            open_part(&mut self.inner, &rest, true, out)
        } else {
            // More of the inner body follows: its whole chunks here are
            // not its final one.
            let take = outer.pending.len() / outer.inner_stride * outer.inner_stride;
            let opened = open_part(&mut self.inner, &outer.pending[..take], false, out);
            outer.pending.drain(..take);
            opened
        };
        opened.map_err(|e| envelope_error(&self.point, e))
    }
}

impl OuterOpener {
    /// Opens `body` (the stored body's last part when `last`) onto the end
    /// of `pending`.
    fn open(&mut self, body: &[u8], last: bool) -> Result<(), strongroom_envelope::Error> {
        let start = self.pending.len();
        let len = if last {
            self.opener.final_opened_len(body.len())?
        } else {
            self.opener.opened_len(body.len())?
        };
        self.pending.resize(start + len, 0);
        let opened = if last {
            self.opener.finish(body, &mut self.pending[start..])
        } else {
            self.opener.open(body, &mut self.pending[start..])
        };
        if opened.is_err() {
            self.pending.truncate(start);
        }
        opened
    }
}

/// Opens one part with `opener` (the body's last when `last`) into the
/// front of `out`, which grows as needed and keeps its size; returns the
/// bytes opened.
fn open_part(
    opener: &mut BodyOpener,
    body: &[u8],
    last: bool,
    out: &mut Zeroizing<Vec<u8>>,
) -> Result<usize, strongroom_envelope::Error> {
    let len = if last {
        opener.final_opened_len(body.len())?
    } else {
        opener.opened_len(body.len())?
    };
    if out.len() < len {
        out.resize(len, 0);
    }
    if last {
        opener.finish(body, &mut out[..len])?;
    } else {
        opener.open(body, &mut out[..len])?;
    }
    Ok(len)
}

/// Says that an integrity failure is the infrastructure layer's.
fn in_infrastructure_layer(e: Error) -> Error {
    match e {
        Error::Integrity { point, reason } => Error::Integrity {
            point,
            reason: format!("{reason} (in the infrastructure layer)"),
        },
        other => other,
    }
}

/// What the inner layer's random-access reader reads through.
trait ReadSeek: Read + Seek + Send {}

impl<T: Read + Seek + Send> ReadSeek for T {}

/// A body object as `Read + Seek`, each read one ranged get: what the
/// envelope's random-access decryptor reads through. Runs on a blocking
/// thread, reaching the async store through the runtime's handle.
struct StoreReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    len: u64,
    pos: u64,
    runtime: tokio::runtime::Handle,
}

impl Read for StoreReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let end = (self.pos + buf.len() as u64).min(self.len);
        if self.pos >= end {
            return Ok(0);
        }
        let bytes = self
            .runtime
            .block_on(store::get_range(
                self.store.as_ref(),
                &self.path,
                self.pos..end,
            ))
            .map_err(io::Error::other)?;
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for StoreReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}
