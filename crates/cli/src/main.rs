//! `strongroom`: encrypted backups in a recovery vault, from the shell.
//!
//! ```text
//! strongroom init                         # a vault in ./.strongroom
//! strongroom protect db
//! strongroom backup db ./db.dump          # or - for stdin
//! strongroom points
//! strongroom restore <point> -o db.dump   # written to a temporary name, renamed when whole
//! strongroom demo                         # the whole story, narrated
//! ```
//!
//! Every failure is one sentence on stderr naming what failed and what to
//! do next, with an exit code per class (see [`exit`]).

#![forbid(unsafe_code)]

mod commands;
mod demo;
mod exit;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Encrypted backups in a recovery vault: one key per recovery point,
/// wrapped by the vault's platform key or your own.
#[derive(Debug, Parser)]
#[command(
    name = "strongroom",
    version,
    after_help = "Examples:\n  strongroom init\n  strongroom protect db\n  strongroom backup db ./db.dump\n  strongroom points\n  strongroom restore <point> -o restored.dump\n  strongroom demo"
)]
pub(crate) struct Cli {
    /// The vault's directory.
    #[arg(
        long,
        global = true,
        env = "STRONGROOM_VAULT",
        default_value = ".strongroom",
        value_name = "DIR"
    )]
    pub(crate) vault: PathBuf,

    /// No progress bars (they are off anyway when stderr is not a
    /// terminal).
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Creates a vault: a local store and a platform key in a file key
    /// vault, in the vault directory.
    #[command(after_help = "Example:\n  strongroom init --name backups")]
    Init {
        /// The vault's name.
        #[arg(long, default_value = "backups")]
        name: String,
    },

    /// Protects an item: its recovery points can then be taken.
    #[command(after_help = "Example:\n  strongroom protect vm-42/disk-0")]
    Protect {
        /// The item's name (1 to 255 bytes, no control characters).
        item: String,
    },

    /// Backs up a file, a block device or stdin as a new recovery point.
    #[command(after_help = "Examples:\n  strongroom backup db ./db.dump\n  \
                      tar -cf - ./photos | strongroom backup photos -")]
    Backup {
        /// The protected item the point belongs to.
        item: String,
        /// A file or block device to read, or `-` for stdin.
        source: String,
        /// Plaintext bytes per chunk, the unit a range restore reads: a
        /// power of two from 4096 to 16777216.
        #[arg(long, value_name = "BYTES")]
        chunk_size: Option<usize>,
    },

    /// Lists recovery points, oldest first.
    #[command(after_help = "Examples:\n  strongroom points\n  strongroom points db --json")]
    Points {
        /// Only this item's points.
        item: Option<String>,
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },

    /// Restores a recovery point, whole or a byte range.
    ///
    /// Into a file, the data goes to a temporary name beside it and is
    /// renamed only when every byte authenticated: a failed restore leaves
    /// no output file.
    #[command(
        after_help = "Examples:\n  strongroom restore 1733500000000-0123456789abcdef -o db.dump\n  \
                      strongroom restore 1733500000000-0123456789abcdef --range 4096..8192 -o -"
    )]
    Restore {
        /// The point's id (see `strongroom points`).
        point: String,
        /// Where to write: a path, or `-` for stdout.
        #[arg(short, long, value_name = "PATH")]
        output: String,
        /// Only bytes A..B (A included, B not).
        #[arg(long, value_name = "A..B")]
        range: Option<String>,
        /// Replace the output file if it exists.
        #[arg(long)]
        force: bool,
    },

    /// Authenticates every byte of a recovery point, writing nothing.
    #[command(after_help = "Example:\n  strongroom verify 1733500000000-0123456789abcdef")]
    Verify {
        /// The point's id.
        point: String,
    },

    /// Deletes a recovery point as a crypto-shred: its wrapped keys first.
    #[command(after_help = "Example:\n  strongroom delete 1733500000000-0123456789abcdef")]
    Delete {
        /// The point's id.
        point: String,
    },

    /// Removes what interrupted backups and deletes left behind.
    #[command(after_help = "Example:\n  strongroom gc --grace-secs 3600")]
    Gc {
        /// Leave alone objects newer than this (a backup running now).
        #[arg(long, default_value_t = 86_400, value_name = "SECONDS")]
        grace_secs: u64,
    },

    /// Moves recovery points to the vault's current key, rewriting only
    /// their headers; resumable.
    #[command(after_help = "Examples:\n  strongroom rewrap\n  strongroom rewrap --item db --json")]
    Rewrap {
        /// Only this item's points.
        #[arg(long)]
        item: Option<String>,
        /// Only the points with a key copy under this version
        /// (`KEY_VAULT/KEY/VERSION`).
        #[arg(long, value_name = "KEY_VAULT/KEY/VERSION")]
        from_version: Option<String>,
        /// The report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },

    /// The vault's encryption settings.
    #[command(subcommand)]
    Encryption(EncryptionCommand),

    /// Keys: which versions the points need, platform key rotation.
    #[command(subcommand)]
    Keys(KeysCommand),

    /// Runs the whole story in a temporary folder and narrates it.
    ///
    /// Platform key by default, a backup and a restore; a customer key
    /// created and granted to a vault's identity; a backup under it;
    /// rotation and rewrap; access revoked and the restore refused; access
    /// granted back; the restore verified byte for byte; one point
    /// crypto-shredded. Exits 0 only when every step behaved as told.
    #[command(after_help = "Example:\n  strongroom demo")]
    Demo,

    /// Prints a shell completion script.
    #[command(
        after_help = "Example:\n  strongroom completions bash > ~/.local/share/bash-completion/completions/strongroom"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum EncryptionCommand {
    /// Shows the settings in force.
    #[command(after_help = "Example:\n  strongroom encryption show --json")]
    Show {
        /// As JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Which key versions the recovery points still need (R14).
    #[command(after_help = "Example:\n  strongroom keys health --json")]
    Health {
        /// As JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Makes a new version of the platform key: new points are wrapped
    /// under it; `strongroom rewrap` moves the old ones.
    #[command(after_help = "Example:\n  strongroom keys rotate-platform && strongroom rewrap")]
    RotatePlatform,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the runtime: {e}");
            return exit::Class::Other.code();
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            if let Some(next) = &failure.next {
                eprintln!("{next}");
            }
            failure.class.code()
        }
    }
}
