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
mod identities;
mod keyvaults;
mod progress;
mod stores;

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

    /// Where `init` puts the vault's recovery points: az://container/prefix
    /// (Azure Blob Storage), s3://bucket/prefix (S3) or file:///path;
    /// credentials from the environment (AZURE_STORAGE_*, AWS_*). Recorded
    /// in the vault directory: later commands need not repeat it. Default:
    /// DIR/store.
    #[arg(long, global = true, env = "STRONGROOM_STORE", value_name = "URL")]
    pub(crate) store: Option<String>,

    /// Allows plain http:// to a store endpoint on a loopback IP address
    /// (an emulator such as Azurite or moto on this machine). Any other
    /// http:// endpoint is refused: data goes over HTTPS only.
    #[arg(long, global = true, env = "STRONGROOM_ALLOW_HTTP_LOOPBACK")]
    pub(crate) allow_http_loopback: bool,

    /// No progress bars (they are off anyway when stderr is not a
    /// terminal).
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,

    /// A file holding the passphrase of the customer key vaults that have
    /// one (else STRONGROOM_KEYVAULT_PASSPHRASE; never on the command
    /// line).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) passphrase_file: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Creates a vault: a platform key in a file key vault in the vault
    /// directory, and its recovery points in DIR/store or the --store.
    #[command(after_help = "Examples:\n  strongroom init --name backups\n  \
                      AZURE_STORAGE_ACCOUNT_NAME=contoso AZURE_STORAGE_ACCOUNT_KEY=... \\\n    \
                      strongroom init --store az://backups/vault-1")]
    Init {
        /// The vault's name.
        #[arg(long, default_value = "backups")]
        name: String,
    },

    /// Protects an item: its recovery points can then be taken.
    ///
    /// A disk encrypted in the guest (BitLocker, dm-crypt) names its BEK
    /// secret (and KEK) in a key vault beside the vault: each backup then
    /// carries their backups (the vault's identity needs get, list and
    /// backup on them). A disk encrypted server-side with a customer key
    /// names its disk-encryption set and key, recorded in every point.
    #[command(after_help = "Examples:\n  strongroom protect vm-42/disk-0\n  \
                      strongroom protect vm-42/os --bek contoso/os-bek --kek contoso/vm-kek\n  \
                      strongroom protect vm-7/data --disk-encryption-set des-1 --des-key contoso/des-key/0f3a...")]
    Protect {
        /// The item's name (1 to 255 bytes, no control characters).
        item: String,
        /// In-guest encryption: the BEK secret, KEY_VAULT/SECRET[/VERSION]
        /// (no version: the latest at each backup).
        #[arg(
            long,
            value_name = "KEY_VAULT/SECRET[/VERSION]",
            conflicts_with = "disk_encryption_set"
        )]
        bek: Option<String>,
        /// In-guest encryption: the key wrapping the BEK,
        /// KEY_VAULT/KEY[/VERSION].
        #[arg(long, value_name = "KEY_VAULT/KEY[/VERSION]", requires = "bek")]
        kek: Option<String>,
        /// Server-side encryption with a customer key: the disk-encryption
        /// set's id.
        #[arg(long, value_name = "ID", requires = "des_key")]
        disk_encryption_set: Option<String>,
        /// Server-side encryption: the set's key, KEY_VAULT/KEY[/VERSION].
        #[arg(
            long,
            value_name = "KEY_VAULT/KEY[/VERSION]",
            requires = "disk_encryption_set"
        )]
        des_key: Option<String>,
    },

    /// Backs up a file, a block device, a directory (as one tar stream) or
    /// stdin as a new recovery point.
    #[command(
        after_help = "Examples:\n  strongroom backup db ./db.dump\n  strongroom backup photos ./photos\n  \
                      tar -cf - ./photos | strongroom backup photos -"
    )]
    Backup {
        /// The protected item the point belongs to.
        item: String,
        /// A file, block device or directory to read, or `-` for stdin.
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
        /// After the data, put the BEK (and KEK) the point was taken with
        /// back into their key vault when they are gone there (an item
        /// encrypted in the guest).
        #[arg(long)]
        disk_keys: bool,
        /// With --disk-keys: into this key vault instead (one of the same
        /// owner).
        #[arg(long, value_name = "KEY_VAULT", requires = "disk_keys")]
        disk_keys_into: Option<String>,
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

    /// Keys: customer keys in a key vault beside the vault, which versions
    /// the points need, platform key rotation.
    #[command(subcommand)]
    Keys(KeysCommand),

    /// Customer key vaults kept beside the vault (in DIR/keyvaults).
    #[command(subcommand)]
    KeyVault(KeyVaultCommand),

    /// Who may use a customer key vault's keys.
    #[command(subcommand)]
    Access(AccessCommand),

    /// Secrets in a customer key vault (a disk's BEK).
    #[command(subcommand)]
    Secrets(SecretsCommand),

    /// A customer key vault's audit log.
    #[command(subcommand)]
    Audit(AuditCommand),

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
    /// Switches the vault to a customer key (only before the first item
    /// is protected), or to another customer key later. The key is checked
    /// first: every problem is listed, and nothing changes until none is
    /// left.
    #[command(
        after_help = "Example:\n  strongroom encryption set --key-vault contoso --key cmk --infrastructure-encryption"
    )]
    Set {
        /// The customer key vault (see `strongroom key-vault list`).
        #[arg(long)]
        key_vault: String,
        /// The key's name.
        #[arg(long)]
        key: String,
        /// A key version to stay on; without it the vault follows the
        /// key's latest enabled version.
        #[arg(long)]
        version: Option<String>,
        /// Two layers of encryption, the outer under the platform key:
        /// only with the first customer key, and for good.
        #[arg(long)]
        infrastructure_encryption: bool,
        /// Reach the key vault as a user-assigned identity, NAME=PRINCIPAL
        /// (recorded in DIR/identities.json), instead of the vault's
        /// system-assigned one. Grant PRINCIPAL access first.
        #[arg(long, value_name = "NAME=PRINCIPAL")]
        user_assigned_identity: Option<String>,
    },
}

/// A key type.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum KeyTypeArg {
    #[value(name = "rsa-2048")]
    Rsa2048,
    #[value(name = "rsa-3072")]
    Rsa3072,
    #[value(name = "rsa-4096")]
    Rsa4096,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyVaultCommand {
    /// Creates a customer key vault beside the vault: its root key a key
    /// file (mode 0600) or, with --passphrase, a passphrase from
    /// STRONGROOM_KEYVAULT_PASSPHRASE or --passphrase-file.
    #[command(
        after_help = "Examples:\n  strongroom key-vault create contoso --purge-protection\n  \
                      STRONGROOM_KEYVAULT_PASSPHRASE=... strongroom key-vault create vault2 --passphrase"
    )]
    Create {
        /// Letters, digits, - and _.
        name: String,
        /// A passphrase instead of a key file.
        #[arg(long)]
        passphrase: bool,
        /// Turn purge protection on (a customer key needs it; it cannot be
        /// turned off).
        #[arg(long)]
        purge_protection: bool,
    },
    /// Lists the customer key vaults beside the vault.
    #[command(after_help = "Example:\n  strongroom key-vault list --json")]
    List {
        /// As JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct Who {
    /// The customer key vault.
    #[arg(long)]
    pub(crate) key_vault: String,
    /// The vault's system-assigned identity.
    #[arg(
        long,
        conflicts_with = "principal",
        required_unless_present = "principal"
    )]
    pub(crate) vault_identity: bool,
    /// Another principal, by its id.
    #[arg(long)]
    pub(crate) principal: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccessCommand {
    /// Grants permissions on a customer key vault's keys.
    #[command(
        after_help = "Example:\n  strongroom access grant --key-vault contoso --vault-identity"
    )]
    Grant {
        #[command(flatten)]
        who: Who,
        /// Comma-separated: get, list, create, import, update, delete,
        /// recover, purge, rotate, backup, restore, wrapKey, unwrapKey;
        /// for secrets getSecret, listSecrets, setSecret, deleteSecret,
        /// recoverSecret, purgeSecret, backupSecret, restoreSecret.
        #[arg(long, default_value = "get,wrapKey,unwrapKey")]
        permissions: String,
    },
    /// Takes permissions back (all of them by default).
    #[command(
        after_help = "Example:\n  strongroom access revoke --key-vault contoso --vault-identity"
    )]
    Revoke {
        #[command(flatten)]
        who: Who,
        /// Comma-separated, as for grant; all when left out.
        #[arg(long)]
        permissions: Option<String>,
    },
    /// Shows what the vault's identity and the command's administrator may
    /// do in a customer key vault.
    #[command(after_help = "Example:\n  strongroom access list --key-vault contoso --json")]
    List {
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
        /// As JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Shows a customer key vault's audit log (its live segment).
    #[command(after_help = "Example:\n  strongroom audit show --key-vault contoso --json")]
    Show {
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
        /// As JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Checks the audit log's hash chain and that it reaches the newest
    /// entry the key vault recorded.
    #[command(after_help = "Example:\n  strongroom audit verify --key-vault contoso")]
    Verify {
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCommand {
    /// Sets a secret: a new version with the file's bytes as its value.
    #[command(
        after_help = "Example:\n  strongroom secrets set os-bek ./os.bek --key-vault contoso --content-type BEK"
    )]
    Set {
        /// The secret's name.
        name: String,
        /// A file holding the value (at most 25 KiB), or `-` for stdin.
        file: String,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
        /// What the value is (e.g. BEK).
        #[arg(long)]
        content_type: Option<String>,
    },
    /// Lists the secrets, or one secret's versions (never values).
    #[command(
        after_help = "Examples:\n  strongroom secrets list --key-vault contoso\n  \
                            strongroom secrets list os-bek --key-vault contoso --json"
    )]
    List {
        /// Only this secret's versions.
        name: Option<String>,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
        /// As JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Soft-deletes a secret (recoverable until it is purged).
    #[command(after_help = "Example:\n  strongroom secrets delete os-bek --key-vault contoso")]
    Delete {
        /// The secret's name.
        name: String,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
    },
    /// Recovers a soft-deleted secret.
    #[command(after_help = "Example:\n  strongroom secrets recover os-bek --key-vault contoso")]
    Recover {
        /// The secret's name.
        name: String,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
    },
    /// Purges a soft-deleted secret for good (refused under purge
    /// protection).
    #[command(after_help = "Example:\n  strongroom secrets purge os-bek --key-vault contoso")]
    Purge {
        /// The secret's name.
        name: String,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Creates a key in a customer key vault.
    #[command(
        after_help = "Example:\n  strongroom keys create cmk --key-vault contoso --type rsa-3072"
    )]
    Create {
        /// The key's name.
        name: String,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
        /// The key's type.
        #[arg(long = "type", value_enum, default_value = "rsa-3072")]
        key_type: KeyTypeArg,
    },
    /// Imports an RSA private key (PKCS#8 PEM or DER, or a JWK) as a key.
    #[command(after_help = "Example:\n  strongroom keys import cmk ./cmk.pem --key-vault contoso")]
    Import {
        /// The key's name.
        name: String,
        /// The key file (`-----BEGIN PRIVATE KEY-----`, DER, or JSON).
        file: PathBuf,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
    },
    /// Makes a new version of a customer key.
    #[command(
        after_help = "Example:\n  strongroom keys rotate cmk --key-vault contoso && strongroom rewrap"
    )]
    Rotate {
        /// The key's name.
        name: String,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
    },
    /// Disables a key version, refused while recovery points need it
    /// (`keys health`) unless --force.
    #[command(after_help = "Example:\n  strongroom keys disable cmk 0f3a... --key-vault contoso")]
    Disable {
        /// The key's name.
        name: String,
        /// The version.
        version: String,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
        /// Disable it even though points need it (they cannot be restored
        /// until it is enabled again).
        #[arg(long)]
        force: bool,
    },
    /// Enables a key version again.
    #[command(after_help = "Example:\n  strongroom keys enable cmk 0f3a... --key-vault contoso")]
    Enable {
        /// The key's name.
        name: String,
        /// The version.
        version: String,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
    },
    /// Soft-deletes a key (recoverable until it is purged).
    #[command(after_help = "Example:\n  strongroom keys delete cmk --key-vault contoso")]
    Delete {
        /// The key's name.
        name: String,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
    },
    /// Recovers a soft-deleted key.
    #[command(after_help = "Example:\n  strongroom keys recover cmk --key-vault contoso")]
    Recover {
        /// The key's name.
        name: String,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
    },
    /// Purges a soft-deleted key for good (refused under purge
    /// protection): the points under it can never be restored.
    #[command(after_help = "Example:\n  strongroom keys purge cmk --key-vault contoso")]
    Purge {
        /// The key's name.
        name: String,
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
    },
    /// Lists a customer key vault's keys and their versions.
    #[command(after_help = "Example:\n  strongroom keys list --key-vault contoso --json")]
    List {
        /// The customer key vault.
        #[arg(long)]
        key_vault: String,
        /// As JSON on stdout.
        #[arg(long)]
        json: bool,
    },
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
