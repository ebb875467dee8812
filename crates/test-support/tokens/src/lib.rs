//! Throw-away PKCS#11 tokens for the `strongroom-keyvault` tests and benches.
//!
//! [`softhsm2`] and [`kryoptic`] each start one fresh token per process, in
//! a new temporary directory (`$TMPDIR/strongroom-test-tokens/<pid>-<kind>`),
//! the first time they are called:
//!
//! - SoftHSM2 (Debian package `softhsm2`): a `softhsm2.conf` whose token
//!   directory is in the temporary directory, and a token made by
//!   `softhsm2-util --init-token --free`.
//! - Kryoptic (the `strongroom-kryoptic-pkcs11` module of this workspace,
//!   built by `cargo build -p strongroom-kryoptic-pkcs11`): a `token.conf`
//!   with one sqlite slot in the temporary directory, and the token
//!   initialised with `C_InitToken` through
//!   [`Pkcs11KeyVault::initialize_token`].
//!
//! One token per process, because a PKCS#11 module is initialised once per
//! process and reads its configuration at that first `C_Initialize`. Under
//! `cargo nextest` every test is its own process and so gets its own token;
//! under `cargo test` the tests of one binary share it (each vault's keys
//! have their own random `CKA_ID`s, so they do not meet).
//!
//! # Configuration without `set_var`
//!
//! Nothing here sets an environment variable: in a test process other
//! threads may read the environment at any moment (C code calls `getenv`
//! without Rust's lock), which is why `std::env::set_var` is `unsafe`.
//!
//! - Kryoptic takes its configuration in the `C_Initialize` arguments:
//!   [`kryoptic`] initialises the module first, with `pReserved` set to
//!   `kryoptic_conf=<its token.conf>`; the vaults' later `C_Initialize`
//!   calls get `CKR_CRYPTOKI_ALREADY_INITIALIZED`, which they accept.
//! - SoftHSM2 reads its configuration path only from the variable
//!   `SOFTHSM2_CONF`, so the variable is set before the process starts:
//!   the workspace's target runner (`.cargo/config.toml`, running
//!   `runner.sh` beside this crate's manifest), which cargo and
//!   cargo-nextest start test and bench binaries through, sets it to
//!   `$TMPDIR/strongroom-test-tokens/<pid>-softhsm2/softhsm2.conf`, the
//!   process's own path. [`softhsm2`] writes the file there, and fails,
//!   saying why, when the variable names any other path (a test binary run
//!   without cargo, say).
//!
//! A missing module, tool or runner panics with what to install, build or
//! run: a test that needs a token fails, it is never skipped.

#![deny(unsafe_code)]

use std::ffi::{CStr, CString, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr::NonNull;
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use strongroom_keyvault::{Pkcs11Config, Pkcs11KeyVault, Pkcs11Pin, VaultError};

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
    dir: PathBuf,
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
        &self.dir
    }

    /// The environment variable, and its value, through which another
    /// process finds this token when it loads the module: `SOFTHSM2_CONF`
    /// or `KRYOPTIC_CONF` naming the token's configuration file. For a child
    /// process a test starts (`Command::env`), never for this one.
    #[must_use]
    pub fn child_env(&self) -> (&'static str, PathBuf) {
        match self.kind {
            TokenKind::SoftHsm2 => ("SOFTHSM2_CONF", self.dir.join("softhsm2.conf")),
            TokenKind::Kryoptic => ("KRYOPTIC_CONF", self.dir.join("token.conf")),
        }
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
        let ctx = context(&self.module, None).unwrap_or_else(|err| panic!("{err}"));
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
    let conf = dir.join("softhsm2.conf");
    check_softhsm2_conf(&conf)?;
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).map_err(|e| format!("{}: {e}", tokens.display()))?;
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .map_err(|e| format!("{}: {e}", conf.display()))?;
    let label = "strongroom-test".to_owned();
    // The child gets the variable explicitly (it has it already, from this
    // process's environment, which names the same file).
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
    let db = dir.join("token.sql");
    let conf = dir.join("token.conf");
    std::fs::write(
        &conf,
        format!(
            "[[slots]]\nslot = 1\ndbtype = \"sqlite\"\ndbargs = \"{}\"\n",
            db.display()
        ),
    )
    .map_err(|e| format!("{}: {e}", conf.display()))?;
    // The first `C_Initialize` of the module in this process, so the one
    // whose configuration counts; the vault's comes second.
    context(&module, Some(&conf))?;
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

/// This process's directory for a token of `kind`:
/// `$TMPDIR/strongroom-test-tokens/<pid>-<kind>`, made empty. Directories
/// left by earlier processes that have ended are removed first: a
/// process-wide token is never dropped, so its directory outlives the
/// process. One of this process's own name can only be left by an earlier
/// process with the same id, since each kind starts once per process.
fn token_dir(kind: &str) -> Result<PathBuf, String> {
    let parent = std::env::temp_dir().join("strongroom-test-tokens");
    std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    remove_stale(&parent);
    let dir = parent.join(format!("{}-{kind}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Checks that `SOFTHSM2_CONF`, as this process started with it, names
/// `conf`, the configuration file of this process's SoftHSM2 token.
fn check_softhsm2_conf(conf: &Path) -> Result<(), String> {
    let runner = "the workspace's target runner (.cargo/config.toml, \
                  crates/test-support/tokens/runner.sh) sets it when cargo or cargo-nextest \
                  starts a test binary: run the tests through cargo";
    match std::env::var_os("SOFTHSM2_CONF") {
        Some(set) if Path::new(&set) == conf => Ok(()),
        Some(set) => Err(format!(
            "SOFTHSM2_CONF is {}, not this process's own {}; {runner}",
            Path::new(&set).display(),
            conf.display()
        )),
        None => Err(format!(
            "SOFTHSM2_CONF is not set; SoftHSM2 reads its configuration from it alone, and it \
             must name {} before this process starts; {runner}",
            conf.display()
        )),
    }
}

/// The process's context for the PKCS#11 `module`, loaded and initialised
/// on first use. With `kryoptic_conf`, that first `C_Initialize` hands the
/// Kryoptic module its configuration file (see [`initialize_kryoptic`]).
/// Whoever initialises second gets `CKR_CRYPTOKI_ALREADY_INITIALIZED`,
/// which is accepted.
fn context(module: &Path, kryoptic_conf: Option<&Path>) -> Result<Pkcs11, String> {
    static CONTEXTS: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());
    let mut contexts = CONTEXTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, ctx)) = contexts.iter().find(|(m, _)| m == module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(|e| format!("load {}: {e}", module.display()))?;
    let initialized = match kryoptic_conf {
        Some(conf) => initialize_kryoptic(&ctx, conf),
        None => ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)),
    };
    match initialized {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(err) => return Err(format!("C_Initialize of {}: {err}", module.display())),
    }
    contexts.push((module.to_path_buf(), ctx.clone()));
    Ok(ctx)
}

/// `C_Initialize` of a Kryoptic module with the configuration file `conf`,
/// passed as `pReserved = "kryoptic_conf=<conf>"` (kryoptic-lib's
/// `Config::from_init_args`), so that Kryoptic does not look for it in the
/// environment.
#[allow(unsafe_code)]
fn initialize_kryoptic(ctx: &Pkcs11, conf: &Path) -> cryptoki::error::Result<()> {
    let arg = CString::new(format!("kryoptic_conf={}", conf.display()))
        .expect("a temporary path has no NUL byte"); // safe: built from a path we made
    let reserved: &CStr = &arg;
    // SAFETY: `pReserved` points to `arg`, a NUL-terminated string that
    // lives until the end of this function, past the one `C_Initialize`
    // call that uses `args`. Kryoptic reads it there as a C string and keeps
    // no pointer to it; a module that does not know `pReserved` must refuse
    // it without reading it (PKCS#11 requires it to be NULL otherwise).
    let args = unsafe {
        CInitializeArgs::new_with_reserved(
            CInitializeFlags::OS_LOCKING_OK,
            NonNull::from(reserved).cast::<c_void>(),
        )
    };
    ctx.initialize(args)
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
