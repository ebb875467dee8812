//! The vault's user-assigned identities, as the command knows them:
//! `DIR/identities.json`, a JSON object of name to principal. The library
//! attaches identities to a vault handle (the settings name them); the
//! command records them here so that every run attaches them again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::exit::{Class, Failure};

fn path(dir: &Path) -> PathBuf {
    dir.join("identities.json")
}

/// The recorded identities (none when the file is not there).
pub(crate) fn load(dir: &Path) -> Result<BTreeMap<String, String>, Failure> {
    let path = path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Failure::io(&format!("cannot read {}", path.display()), &e)),
    };
    if bytes.len() > 64 * 1024 {
        return Err(Failure::new(
            Class::Integrity,
            format!("{} is larger than any identity list", path.display()),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        Failure::new(
            Class::Integrity,
            format!("{} is not an identity list: {e}", path.display()),
        )
        .next("fix it or remove it (a JSON object of name to principal)")
    })
}

/// Records identity `name` as `principal` (replacing an earlier one).
pub(crate) fn add(dir: &Path, name: &str, principal: &str) -> Result<(), Failure> {
    let mut all = load(dir)?;
    all.insert(name.to_owned(), principal.to_owned());
    // safe: a map of strings always serializes.
    let bytes = serde_json::to_vec_pretty(&all).unwrap_or_default();
    write_durably(&path(dir), &bytes)
}

/// Writes `bytes` to `path` whole or not at all: into `path.tmp`, fsynced,
/// then renamed into place.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let temp = path.with_extension("json.tmp");
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| Failure::io(&format!("cannot write {}", path.display()), &e))
}
