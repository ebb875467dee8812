//! Where the vault's recovery points are kept: `DIR/store` (the local
//! filesystem) by default, or the store `init --store URL` named
//! (`az://container/prefix`, `s3://bucket/prefix`, `file:///path`),
//! recorded in `DIR/store.json` so that every later run finds it. The
//! platform key vault stays in `DIR` either way.
//!
//! Credentials come from the environment (`AZURE_STORAGE_*`, `AWS_*`), as
//! object_store reads them; nothing secret is recorded.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use strongroom::{Store, StoreOptions};

use crate::exit::{Class, Failure};

/// What the command line said about the store.
#[derive(Debug, Default)]
pub(crate) struct StoreChoice {
    /// `--store URL`.
    pub(crate) url: Option<String>,
    /// `--allow-http-loopback`.
    pub(crate) allow_http_loopback: bool,
}

static CHOICE: OnceLock<StoreChoice> = OnceLock::new();

/// Records the command line's choice for this run.
pub(crate) fn choose(choice: StoreChoice) {
    let _ = CHOICE.set(choice);
}

fn choice() -> &'static StoreChoice {
    CHOICE.get_or_init(StoreChoice::default)
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Recorded {
    url: String,
}

fn path(dir: &Path) -> PathBuf {
    dir.join("store.json")
}

/// The store URL recorded in `dir`, if any.
pub(crate) fn recorded(dir: &Path) -> Result<Option<String>, Failure> {
    let path = path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::io(&format!("cannot read {}", path.display()), &e)),
    };
    if bytes.len() > 16 * 1024 {
        return Err(Failure::new(
            Class::Integrity,
            format!("{} is larger than any store record", path.display()),
        ));
    }
    let recorded: Recorded = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::new(
            Class::Integrity,
            format!("{} is not a store record: {e}", path.display()),
        )
        .next("fix it (a JSON object {\"url\": \"s3://bucket/prefix\"}) or restore the vault directory from a copy")
    })?;
    Ok(Some(recorded.url))
}

fn open_url(url: &str) -> Result<Store, Failure> {
    Ok(StoreOptions::default()
        .allow_http_loopback(choice().allow_http_loopback)
        .open(url)?)
}

/// The store `init` makes the vault in: `--store`'s, or `None` for
/// `DIR/store`.
pub(crate) fn for_init() -> Result<Option<Store>, Failure> {
    choice().url.as_deref().map(open_url).transpose()
}

/// Records `init --store`'s URL in `dir` (written whole, fsynced, then
/// renamed into place).
pub(crate) fn record(dir: &Path) -> Result<(), Failure> {
    let Some(url) = &choice().url else {
        return Ok(());
    };
    // safe: a struct of one string always serializes.
    let bytes = serde_json::to_vec_pretty(&Recorded { url: url.clone() }).unwrap_or_default();
    crate::identities::write_durably(&path(dir), &bytes)
}

/// The store of the vault in `dir`: the recorded one, or `None` for
/// `DIR/store`. A `--store` that names another is refused.
pub(crate) fn for_vault(dir: &Path) -> Result<Option<Store>, Failure> {
    let recorded = recorded(dir)?;
    match (&choice().url, &recorded) {
        (Some(given), Some(url)) if given != url => Err(Failure::usage(format!(
            "the vault in {} keeps its recovery points in {url}, not {given}",
            dir.display()
        ))
        .next(
            "leave --store out (the vault remembers its store), or name another vault with --vault",
        )),
        (Some(given), None) => Err(Failure::usage(format!(
            "the vault in {} keeps its recovery points in {}, not {given}",
            dir.display(),
            dir.join("store").display()
        ))
        .next("--store is given to `strongroom init`, which records it")),
        _ => recorded.as_deref().map(open_url).transpose(),
    }
}
