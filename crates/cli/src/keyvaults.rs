//! Customer key vaults the command keeps beside a recovery vault: each a
//! `FileKeyVault` in `DIR/keyvaults/<name>/`, its root key either a key
//! file `DIR/keyvaults/<name>.key` (mode 0600; refused when readable by
//! every user) or a passphrase (Argon2id), which comes from `--passphrase-file`,
//! the environment variable `STRONGROOM_KEYVAULT_PASSPHRASE`, or a prompt
//! at the terminal without echo; never from the command line.
//!
//! The command acts in them as their administrator, principal
//! [`ADMIN`], which gets every permission when it creates one.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongroom::keyvault::{
    FileKeyVault, KeyVault, Passphrase, Permissions, Principal, RootKeySource, VaultError,
    VaultProperties,
};

use crate::exit::{Class, Failure};

/// The principal the command acts as in the key vaults it manages.
pub(crate) const ADMIN: &str = "strongroom-cli/admin";

/// The environment variable a key vault's passphrase may come from.
pub(crate) const PASSPHRASE_ENV: &str = "STRONGROOM_KEYVAULT_PASSPHRASE";

pub(crate) fn admin() -> Principal {
    Principal::new(ADMIN)
}

/// Where a passphrase comes from, when one is needed.
#[derive(Debug, Clone, Default)]
pub(crate) struct PassphraseSource {
    /// `--passphrase-file`.
    pub(crate) file: Option<PathBuf>,
}

impl PassphraseSource {
    /// The passphrase: given (as [`get`](Self::get)), or typed at the
    /// terminal without echo (twice when `confirm`); `None` when neither
    /// (stdin is not a terminal).
    fn get_or_prompt(&self, name: &str, confirm: bool) -> Result<Option<Passphrase>, Failure> {
        if let Some(given) = self.get()? {
            return Ok(Some(given));
        }
        if !std::io::stdin().is_terminal() {
            return Ok(None);
        }
        let read = |prompt: &str| {
            rpassword::prompt_password(prompt)
                .map_err(|e| Failure::io("cannot read the passphrase from the terminal", &e))
        };
        let first = read(&format!("passphrase of key vault {name}: "))?;
        if confirm && read("again: ")? != first {
            return Err(Failure::usage("the two passphrases differ"));
        }
        Ok(Some(Passphrase::new(first)))
    }

    /// The passphrase, if one was given (the file first, then the
    /// environment).
    fn get(&self) -> Result<Option<Passphrase>, Failure> {
        if let Some(path) = &self.file {
            check_private(path)?;
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::io(
                    &format!("cannot read the passphrase file {}", path.display()),
                    &e,
                )
            })?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            return Ok(Some(Passphrase::new(text.to_owned())));
        }
        Ok(std::env::var(PASSPHRASE_ENV).ok().map(Passphrase::new))
    }
}

/// `DIR/keyvaults`.
fn root(vault_dir: &Path) -> PathBuf {
    vault_dir.join("keyvaults")
}

fn key_file(vault_dir: &Path, name: &str) -> PathBuf {
    root(vault_dir).join(format!("{name}.key"))
}

/// Refuses a secret file that every user may read.
fn check_private(path: &Path) -> Result<(), Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| Failure::io(&format!("cannot read {}", path.display()), &e))?
            .permissions()
            .mode();
        if mode & 0o004 != 0 {
            return Err(Failure::new(
                Class::Key,
                format!(
                    "{} holds a secret and every user may read it (mode {:o})",
                    path.display(),
                    mode & 0o777
                ),
            )
            .next(format!("make it private: chmod 600 {}", path.display())));
        }
    }
    Ok(())
}

/// A key vault error about key vault `name`.
pub(crate) fn failure(name: &str, e: VaultError) -> Failure {
    let class = match &e {
        VaultError::AccessDenied { .. }
        | VaultError::WrongRootKey
        | VaultError::KeyDisabled { .. }
        | VaultError::KeyExpired { .. }
        | VaultError::KeyNotYetValid { .. }
        | VaultError::KeyPurged { .. }
        | VaultError::PurgeProtected { .. }
        | VaultError::OperationNotPermitted { .. } => Class::Key,
        VaultError::KeyNotFound { .. } | VaultError::KeyDeleted { .. } => Class::NotFound,
        VaultError::KeyExists { .. }
        | VaultError::InvalidArgument { .. }
        | VaultError::InvalidKeyMaterial { .. }
        | VaultError::AlgorithmUnsupported { .. }
        | VaultError::LimitExceeded { .. } => Class::Usage,
        VaultError::Corrupt { .. }
        | VaultError::AuditTampered(_)
        | VaultError::RolledBack { .. }
        | VaultError::AuditRolledBack { .. } => Class::Integrity,
        VaultError::Io { .. } => Class::Storage,
        _ => Class::Other,
    };
    let failure = Failure::new(class, format!("key vault {name:?}: {e}"));
    match e {
        VaultError::WrongRootKey => failure.next(format!(
            "give its passphrase in {PASSPHRASE_ENV} or with --passphrase-file"
        )),
        _ => failure,
    }
}

/// The names of the key vaults beside the vault, sorted.
pub(crate) fn names(vault_dir: &Path) -> Result<Vec<String>, Failure> {
    let dir = root(vault_dir);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir)
        .map_err(|e| Failure::io(&format!("cannot list {}", dir.display()), &e))?
    {
        let entry =
            entry.map_err(|e| Failure::io(&format!("cannot list {}", dir.display()), &e))?;
        if entry.path().is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Whether key vault `name` is protected by a passphrase (no key file).
pub(crate) fn uses_passphrase(vault_dir: &Path, name: &str) -> bool {
    !key_file(vault_dir, name).exists()
}

/// Creates key vault `name` beside the vault: a key file, or with
/// `passphrase` a passphrase from `source`.
pub(crate) fn create(
    vault_dir: &Path,
    name: &str,
    passphrase: bool,
    source: &PassphraseSource,
    purge_protection: bool,
) -> Result<Arc<dyn KeyVault>, Failure> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Failure::usage(format!(
            "{name:?} is not a key vault name: use letters, digits, - and _"
        )));
    }
    let dir = root(vault_dir);
    if dir.join(name).exists() {
        return Err(Failure::usage(format!("key vault {name:?} exists already")));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::io(&format!("cannot create {}", dir.display()), &e))?;
    let root_key = if passphrase {
        let secret = source.get_or_prompt(name, true)?.ok_or_else(|| {
            Failure::usage("a passphrase key vault needs its passphrase").next(format!(
                "set {PASSPHRASE_ENV}, or give --passphrase-file FILE (never on the command line)"
            ))
        })?;
        RootKeySource::Passphrase(secret)
    } else {
        let path = key_file(vault_dir, name);
        FileKeyVault::generate_key_file(&path).map_err(|e| failure(name, e))?;
        RootKeySource::KeyFile(path)
    };
    let kv = FileKeyVault::create(dir.join(name), VaultProperties::new(name), root_key)
        .map_err(|e| failure(name, e))?;
    kv.set_access_policy(&admin(), Permissions::all())
        .map_err(|e| failure(name, e))?;
    if purge_protection {
        kv.enable_purge_protection().map_err(|e| failure(name, e))?;
    }
    Ok(Arc::new(kv))
}

/// Opens key vault `name`; `Ok(None)` when it needs a passphrase and none
/// was given.
pub(crate) fn open(
    vault_dir: &Path,
    name: &str,
    source: &PassphraseSource,
) -> Result<Option<Arc<dyn KeyVault>>, Failure> {
    open_with(vault_dir, name, || source.get())
}

/// Opens key vault `name`, which must open: a passphrase given, or typed
/// at the terminal.
pub(crate) fn open_required(
    vault_dir: &Path,
    name: &str,
    source: &PassphraseSource,
) -> Result<Arc<dyn KeyVault>, Failure> {
    open_with(vault_dir, name, || source.get_or_prompt(name, false))?.ok_or_else(|| {
        Failure::new(
            Class::Key,
            format!("key vault {name:?} is protected by a passphrase, and none was given"),
        )
        .next(format!(
            "set {PASSPHRASE_ENV}, give --passphrase-file FILE, or run it at a terminal to type it"
        ))
    })
}

fn open_with(
    vault_dir: &Path,
    name: &str,
    passphrase: impl FnOnce() -> Result<Option<Passphrase>, Failure>,
) -> Result<Option<Arc<dyn KeyVault>>, Failure> {
    let dir = root(vault_dir).join(name);
    if !dir.is_dir() {
        return Err(Failure::new(
            Class::NotFound,
            format!("no key vault {name:?} beside this vault"),
        )
        .next("create it with `strongroom key-vault create NAME`, or list them with `strongroom key-vault list`"));
    }
    let root_key = if uses_passphrase(vault_dir, name) {
        match passphrase()? {
            Some(secret) => RootKeySource::Passphrase(secret),
            None => return Ok(None),
        }
    } else {
        let path = key_file(vault_dir, name);
        check_private(&path)?;
        RootKeySource::KeyFile(path)
    };
    let kv = FileKeyVault::open(&dir, root_key).map_err(|e| failure(name, e))?;
    Ok(Some(Arc::new(kv)))
}
