//! Throw-away PKCS#11 tokens for the `strongroom-keyvault` tests and benches.
//!
//! [`softhsm2`] and [`kryoptic`] each start one fresh token per process, in
//! a new temporary directory, the first time they are called:
//!
//! - SoftHSM2 (Debian package `softhsm2`): a `softhsm2.conf` whose token
//!   directory is in the temporary directory, named by `SOFTHSM2_CONF`, and
//!   a token made by `softhsm2-util --init-token --free`.
//! - Kryoptic (the `strongroom-kryoptic-pkcs11` module of this workspace,
//!   built by `cargo build -p strongroom-kryoptic-pkcs11`): a `token.conf`
//!   with one sqlite slot in the temporary directory, named by
//!   `KRYOPTIC_CONF`, and the token initialised with `C_InitToken` through
//!   [`Pkcs11KeyVault::initialize_token`].
//!
//! One token per process, because a PKCS#11 module is initialised once per
//! process and both tokens read their configuration from the environment at
//! `C_Initialize`. Under `cargo nextest` every test is its own process and
//! so gets its own token; under `cargo test` the tests of one binary share
//! it (each vault's keys have their own random `CKA_ID`s, so they do not
//! meet).
//!
//! A missing module or tool panics with what to install or build: a test
//! that needs a token fails, it is never skipped.

// `std::env::set_var` is `unsafe` in edition 2024 (another thread may read
// the environment at the same moment). The one use is explained where it is.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use strongroom_keyvault::{Pkcs11Config, Pkcs11KeyVault, Pkcs11Pin, VaultError};
use tempfile::TempDir;

/// The `cryptoki` this crate uses, for tests that look into the token.
pub use cryptoki;

/// Where Debian's `softhsm2` package puts the module.
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The file name of the Kryoptic module this workspace builds.
pub const KRYOPTIC_MODULE_FILE: &str = "libstrongroom_kryoptic_pkcs11.so";
/// Overrides where [`kryoptic`] looks for the Kryoptic module.
pub const KRYOPTIC_MODULE_ENV: &str = "STRONGROOM_KRYOPTIC_MODULE";

/// Which soft token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// SoftHSM2 2.6 (OAEP with SHA-1 only).
    SoftHsm2,
    /// Kryoptic (OAEP with SHA-1 and SHA-256).
    Kryoptic,
}

impl TokenKind {
    /// The name `Pkcs11KeyVault` gives the token in errors.
    #[must_use]
    pub fn backend_name(self) -> &'static str {
        match self {
            Self::SoftHsm2 => "SoftHSM2",
            Self::Kryoptic => "Kryoptic",
        }
    }
}

/// A token started for this process; it lives until the process ends.
#[derive(Debug)]
pub struct TestToken {
    kind: TokenKind,
    module: PathBuf,
    label: String,
    user_pin: String,
    so_pin: String,
    dir: TempDir,
}

impl TestToken {
    /// Which token this is.
    #[must_use]
    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The PKCS#11 module.
    #[must_use]
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The token's label.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The user PIN (a test PIN, so it may be shown).
    #[must_use]
    pub fn user_pin(&self) -> &str {
        &self.user_pin
    }

    /// The security officer PIN.
    #[must_use]
    pub fn so_pin(&self) -> &str {
        &self.so_pin
    }

    /// The temporary directory holding the token's files.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new session on the token, logged in as the user, for a test to
    /// look at the token's objects without going through the vault.
    ///
    /// The module is the same one the vault uses, so it is initialised
    /// once per process: whichever of the two comes second gets
    /// `CKR_CRYPTOKI_ALREADY_INITIALIZED`, which both accept.
    ///
    /// # Panics
    /// When the token cannot be reached.
    #[must_use]
    pub fn session(&self) -> Session {
        static CONTEXTS: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());
        let ctx = {
            let mut contexts = CONTEXTS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, ctx)) = contexts.iter().find(|(m, _)| *m == self.module) {
                ctx.clone()
            } else {
                let ctx = Pkcs11::new(&self.module).expect("load the PKCS#11 module");
                match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
                    Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
                    Err(err) => panic!("C_Initialize: {err}"),
                }
                contexts.push((self.module.clone(), ctx.clone()));
                ctx
            }
        };
        let slot = ctx
            .get_slots_with_initialized_token()
            .expect("C_GetSlotList")
            .into_iter()
            .find(|slot| {
                ctx.get_token_info(*slot)
                    .is_ok_and(|info| info.label().trim_end() == self.label)
            })
            .expect("the test token's slot");
        let session = ctx.open_rw_session(slot).expect("C_OpenSession");
        match session.login(UserType::User, Some(&AuthPin::from(self.user_pin.as_str()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(err) => panic!("C_Login: {err}"),
        }
        session
    }

    /// A configuration that opens this token as the user.
    #[must_use]
    pub fn config(&self) -> Pkcs11Config {
        Pkcs11Config {
            module: self.module.clone(),
            token_label: self.label.clone(),
            pin: Pkcs11Pin::new(self.user_pin.clone()),
        }
    }
}

/// This process's SoftHSM2 token, started on first call.
///
/// # Panics
/// When SoftHSM2 is not installed (`apt-get install softhsm2`) or the
/// token cannot be made.
pub fn softhsm2() -> &'static TestToken {
    static TOKEN: OnceLock<TestToken> = OnceLock::new();
    TOKEN.get_or_init(|| start_softhsm2().unwrap_or_else(|err| panic!("SoftHSM2 token: {err}")))
}

/// This process's Kryoptic token, started on first call.
///
/// # Panics
/// When the Kryoptic module is not built (`cargo build -p
/// strongroom-kryoptic-pkcs11`) or the token cannot be made.
pub fn kryoptic() -> &'static TestToken {
    static TOKEN: OnceLock<TestToken> = OnceLock::new();
    TOKEN.get_or_init(|| start_kryoptic().unwrap_or_else(|err| panic!("Kryoptic token: {err}")))
}

/// The token of `kind` (see [`softhsm2`] and [`kryoptic`]).
///
/// # Panics
/// As those.
pub fn token(kind: TokenKind) -> &'static TestToken {
    match kind {
        TokenKind::SoftHsm2 => softhsm2(),
        TokenKind::Kryoptic => kryoptic(),
    }
}

const USER_PIN: &str = "4711-user";
const SO_PIN: &str = "0815-so";

fn start_softhsm2() -> Result<TestToken, String> {
    let module = PathBuf::from(SOFTHSM2_MODULE);
    if !module.is_file() {
        return Err(format!(
            "{SOFTHSM2_MODULE} not found: install the Debian package softhsm2 (.ci/run does)"
        ));
    }
    let dir = token_dir("softhsm2")?;
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).map_err(|e| format!("{}: {e}", tokens.display()))?;
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .map_err(|e| format!("{}: {e}", conf.display()))?;
    let label = "strongroom-test".to_owned();
    let output = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", &label])
        .args(["--so-pin", SO_PIN, "--pin", USER_PIN])
        .output()
        .map_err(|e| {
            format!("softhsm2-util: {e}: install the Debian package softhsm2 (.ci/run does)")
        })?;
    if !output.status.success() {
        return Err(format!(
            "softhsm2-util --init-token failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    set_env("SOFTHSM2_CONF", &conf);
    Ok(TestToken {
        kind: TokenKind::SoftHsm2,
        module,
        label,
        user_pin: USER_PIN.to_owned(),
        so_pin: SO_PIN.to_owned(),
        dir,
    })
}

fn start_kryoptic() -> Result<TestToken, String> {
    let module = kryoptic_module()?;
    let dir = token_dir("kryoptic")?;
    let db = dir.path().join("token.sql");
    let conf = dir.path().join("token.conf");
    std::fs::write(
        &conf,
        format!(
            "[[slots]]\nslot = 1\ndbtype = \"sqlite\"\ndbargs = \"{}\"\n",
            db.display()
        ),
    )
    .map_err(|e| format!("{}: {e}", conf.display()))?;
    set_env("KRYOPTIC_CONF", &conf);
    let label = "strongroom-test".to_owned();
    Pkcs11KeyVault::initialize_token(
        &module,
        &label,
        &Pkcs11Pin::new(SO_PIN),
        &Pkcs11Pin::new(USER_PIN),
    )
    .map_err(|e: VaultError| format!("C_InitToken on {}: {e}", module.display()))?;
    Ok(TestToken {
        kind: TokenKind::Kryoptic,
        module,
        label,
        user_pin: USER_PIN.to_owned(),
        so_pin: SO_PIN.to_owned(),
        dir,
    })
}

/// Finds the Kryoptic module: `$STRONGROOM_KRYOPTIC_MODULE`, else beside
/// the running test or bench binary's profile directory (`target/debug`
/// for `target/debug/deps/x`), else in `target/debug` (benches run from
/// `target/release`, CI builds the module in the dev profile).
fn kryoptic_module() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(KRYOPTIC_MODULE_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{KRYOPTIC_MODULE_ENV}={} is not a file",
                path.display()
            ))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut candidates = Vec::new();
    // target/<profile>/deps/<binary>
    if let Some(profile) = exe.parent().and_then(Path::parent) {
        candidates.push(profile.join(KRYOPTIC_MODULE_FILE));
        let debug = profile.with_file_name("debug").join(KRYOPTIC_MODULE_FILE);
        if !candidates.contains(&debug) {
            candidates.push(debug);
        }
    }
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "{KRYOPTIC_MODULE_FILE} not found (looked at {candidates:?}): build it first with \
                 `cargo build -p strongroom-kryoptic-pkcs11` (.ci/run does), or name it in \
                 {KRYOPTIC_MODULE_ENV}"
            )
        })
}

/// A new temporary directory for a token, under
/// `$TMPDIR/strongroom-test-tokens/`. Directories left by earlier processes
/// that have ended are removed first: a process-wide token is never
/// dropped, so its directory outlives the process.
fn token_dir(kind: &str) -> Result<TempDir, String> {
    let parent = std::env::temp_dir().join("strongroom-test-tokens");
    std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    remove_stale(&parent);
    tempfile::Builder::new()
        .prefix(&format!("{}-{kind}-", std::process::id()))
        .tempdir_in(&parent)
        .map_err(|e| format!("temporary directory in {}: {e}", parent.display()))
}

/// Removes token directories whose process (the number before the first
/// `-`) is gone. Linux only: elsewhere nothing is removed.
fn remove_stale(parent: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Sets a variable the token module reads at `C_Initialize`.
fn set_env(name: &str, value: &Path) {
    // Serialises our own writers; Rust's readers (`std::env::var`) take
    // std's environment lock.
    static ENV: Mutex<()> = Mutex::new(());
    let _guard = ENV
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // SAFETY: the race `set_var` is unsafe for is a C `getenv` in another
    // thread at the same moment. This runs once per token per process,
    // inside the token's `OnceLock` initialiser, before the module is
    // loaded: the only C code that reads this variable is the module, and
    // every caller that reaches the module waits on that `OnceLock`.
    // Rust's own readers are serialised with writers by std.
    unsafe { std::env::set_var(name, value) };
}
