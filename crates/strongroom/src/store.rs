//! The few store calls the vault makes, each mapped to [`Error::Store`]
//! with what it was doing and where.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::Error;

fn store_error(operation: &'static str, path: &Path) -> impl FnOnce(object_store::Error) -> Error {
    let path = path.to_string();
    move |source| {
        if crate::remote::unreachable(&source) {
            Error::StoreUnreachable {
                operation,
                path,
                source,
            }
        } else {
            Error::Store {
                operation,
                path,
                source,
            }
        }
    }
}

/// Writes `bytes` at `path` unless an object is there: `Ok(false)` then.
pub(crate) async fn put_new(
    store: &dyn ObjectStore,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<bool, Error> {
    match create(store, path, Bytes::from(bytes)).await? {
        Created::Yes => Ok(true),
        Created::Exists => Ok(false),
    }
}

/// As [`put_new`], for an object that holds fresh random bytes (a point's
/// id, a wrapped fresh DEK, a vault id), so that no other writer can ever
/// write the same bytes: finding exactly `bytes` there means this put
/// landed before, its answer lost, and the client's retry (which a 5xx or
/// a reset connection triggers) found it. That counts as created.
/// Without this, a commit that landed would be reported failed, and its
/// cleanup would remove the header of a committed point.
pub(crate) async fn put_new_unique(
    store: &dyn ObjectStore,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<bool, Error> {
    let payload = Bytes::from(bytes);
    match create(store, path, payload.clone()).await? {
        Created::Yes => Ok(true),
        Created::Exists => {
            let limit = payload.len() as u64;
            match get_small(store, path, limit).await {
                Ok(Some(there)) => Ok(there == payload),
                Ok(None) | Err(Error::Corrupt { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

enum Created {
    Yes,
    Exists,
}

async fn create(store: &dyn ObjectStore, path: &Path, bytes: Bytes) -> Result<Created, Error> {
    let options = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match store.put_opts(path, PutPayload::from(bytes), options).await {
        Ok(_) => Ok(Created::Yes),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::Exists),
        Err(e) => Err(store_error("create", path)(e)),
    }
}

/// Writes `bytes` at `path`, replacing what is there (one atomic put).
pub(crate) async fn put(store: &dyn ObjectStore, path: &Path, bytes: Vec<u8>) -> Result<(), Error> {
    store
        .put(path, PutPayload::from(bytes))
        .await
        .map(drop)
        .map_err(store_error("put", path))
}

/// The object at `path`, at most `limit` bytes; `None` when there is none.
pub(crate) async fn get_small(
    store: &dyn ObjectStore,
    path: &Path,
    limit: u64,
) -> Result<Option<Bytes>, Error> {
    let meta = match store.head(path).await {
        Ok(meta) => meta,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store_error("read", path)(e)),
    };
    if meta.size > limit {
        return Err(crate::layout::corrupt(
            path,
            format!(
                "{} bytes, more than the {limit} such an object holds",
                meta.size
            ),
        ));
    }
    match store.get(path).await {
        Ok(result) => result
            .bytes()
            .await
            .map(Some)
            .map_err(store_error("read", path)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_error("read", path)(e)),
    }
}

/// Bytes `range` of the object at `path`.
pub(crate) async fn get_range(
    store: &dyn ObjectStore,
    path: &Path,
    range: core::ops::Range<u64>,
) -> Result<Bytes, Error> {
    store
        .get_range(path, range)
        .await
        .map_err(store_error("read", path))
}

/// The object's size and time; `None` when there is none.
pub(crate) async fn head(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<ObjectMeta>, Error> {
    match store.head(path).await {
        Ok(meta) => Ok(Some(meta)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_error("read", path)(e)),
    }
}

/// Every object under `prefix`.
pub(crate) async fn list(store: &dyn ObjectStore, prefix: &Path) -> Result<Vec<ObjectMeta>, Error> {
    store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(store_error("list", prefix))
}

/// Deletes the object at `path`; one already gone is fine.
pub(crate) async fn delete(store: &dyn ObjectStore, path: &Path) -> Result<(), Error> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(store_error("delete", path)(e)),
    }
}

/// A failed multipart step's error.
pub(crate) fn upload_error(path: &Path) -> impl FnOnce(object_store::Error) -> Error {
    store_error("upload", path)
}
