//! The commands, each on the facade (`strongroom::RecoveryVault`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::CommandFactory;
use serde_json::json;
use strongroom::envelope::KeyRef;
use strongroom::{
    BackupOptions, Error, Item, KeyReference, RecoveryPoint, RecoveryVault, RewrapOptions,
    RewrapReport, SecretReference, SourceEncryption,
};
use tokio::io::AsyncWriteExt;

use strongroom::keyvault::{
    AttributeUpdate, KeyImport, KeyOptions, KeyType, KeyVault, Permission, Permissions, Principal,
    VaultError,
};
use strongroom::policy::{CustomerKey, EncryptionSettings, Identity};
use zeroize::Zeroizing;

use crate::exit::{Class, Failure};
use crate::identities;
use crate::keyvaults::{self, PassphraseSource};
use crate::stores::{self, StoreChoice};
use crate::{
    AccessCommand, AuditCommand, Cli, Command, EncryptionCommand, KeyTypeArg, KeyVaultCommand,
    KeysCommand, SecretsCommand, Who, demo, progress,
};

pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let Cli {
        vault: dir,
        store,
        allow_http_loopback,
        quiet,
        passphrase_file,
        command,
    } = cli;
    stores::choose(StoreChoice {
        url: store,
        allow_http_loopback,
    });
    let secrets = PassphraseSource {
        file: passphrase_file,
    };
    match command {
        Command::Init { name } => init(&dir, &name).await,
        Command::Demo => demo::run().await,
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "strongroom", &mut std::io::stdout());
            Ok(())
        }
        Command::Protect {
            item,
            bek,
            kek,
            disk_encryption_set,
            des_key,
        } => {
            let source = source_encryption(bek, kek, disk_encryption_set, des_key)?;
            protect(&open(&dir, &secrets).await?, &item, source).await
        }
        Command::Backup {
            item,
            source,
            chunk_size,
        } => {
            backup(
                &open(&dir, &secrets).await?,
                &item,
                &source,
                chunk_size,
                quiet,
            )
            .await
        }
        Command::Points { item, json } => {
            points(&open(&dir, &secrets).await?, item.as_deref(), json).await
        }
        Command::Restore {
            point,
            output,
            range,
            force,
            disk_keys,
            disk_keys_into,
        } => {
            let vault = open(&dir, &secrets).await?;
            restore(&vault, &point, &output, range.as_deref(), force, quiet).await?;
            if disk_keys {
                restore_disk_keys(&vault, &point, disk_keys_into.as_deref()).await?;
            }
            Ok(())
        }
        Command::Verify { point } => verify(&open(&dir, &secrets).await?, &point, quiet).await,
        Command::Delete { point } => delete(&open(&dir, &secrets).await?, &point).await,
        Command::Gc { grace_secs } => gc(&open(&dir, &secrets).await?, grace_secs).await,
        Command::Rewrap {
            item,
            from_version,
            json,
        } => {
            rewrap(
                &open(&dir, &secrets).await?,
                item,
                from_version.as_deref(),
                json,
                quiet,
            )
            .await
        }
        Command::Encryption(EncryptionCommand::Show { json }) => {
            encryption(&open(&dir, &secrets).await?, json).await
        }
        Command::Encryption(EncryptionCommand::Set {
            key_vault,
            key,
            version,
            infrastructure_encryption,
            user_assigned_identity,
        }) => {
            let vault = open(&dir, &secrets).await?;
            let mut customer = CustomerKey::new(&key_vault, &key);
            if let Some(version) = version {
                customer = customer.with_version(&version);
            }
            if let Some(text) = user_assigned_identity {
                let (name, principal) = text
                    .split_once('=')
                    .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                    .ok_or_else(|| {
                        Failure::usage(format!("{text:?} is not NAME=PRINCIPAL"))
                            .next("e.g. --user-assigned-identity backup-id=contoso/backup-identity")
                    })?;
                identities::add(&dir, name, principal)?;
                vault.add_user_assigned_identity(name, Principal::new(principal));
                customer = customer.with_identity(Identity::UserAssigned(name.to_owned()));
            }
            let mut settings = EncryptionSettings::customer_managed(customer);
            if infrastructure_encryption {
                settings = settings.with_infrastructure_encryption();
            }
            vault.set_encryption(settings).await?;
            encryption(&vault, false).await
        }
        Command::KeyVault(command) => key_vault(&dir, command, &secrets).await,
        Command::Keys(command) => keys(&dir, command, &secrets).await,
        Command::Access(command) => access(&dir, command, &secrets).await,
        Command::Secrets(command) => secrets_command(&dir, command, &secrets).await,
        Command::Audit(command) => audit(&dir, command, &secrets),
    }
}

async fn init(dir: &Path, name: &str) -> Result<(), Failure> {
    if stores::recorded(dir)?.is_some() {
        return Err(Failure::usage(format!("{} holds a vault", dir.display()))
            .next("use it as it is, or give another directory with --vault"));
    }
    let store = stores::for_init()?;
    let created = match store {
        Some(store) => RecoveryVault::create_local_with_store(dir, name, store).await,
        None => RecoveryVault::create_local(dir, name).await,
    };
    let vault = created.map_err(|e| {
        let already = matches!(e, Error::AlreadyExists { .. });
        let failure = Failure::from(e);
        if already {
            failure.next("use it as it is, or give another directory with --vault")
        } else {
            failure
        }
    })?;
    stores::record(dir)?;
    println!(
        "created vault {:?} (id {}) in {}",
        vault.name(),
        vault.id(),
        dir.display()
    );
    if let Some(url) = stores::recorded(dir)? {
        println!("its recovery points are kept in {url}");
    }
    println!(
        "its platform key is in {} (keep that directory private)",
        dir.join("platform-keyvault").display()
    );
    Ok(())
}

/// Refuses a directory without a vault, saying how to make one.
fn check_vault(dir: &Path) -> Result<(), Failure> {
    if !dir.join("store").join("vault.json").is_file() && !dir.join("store.json").is_file() {
        return Err(
            Failure::new(Class::NotFound, format!("no vault in {}", dir.display()))
                .next("create one with `strongroom init`, or name another with --vault DIR"),
        );
    }
    let platform = dir.join("platform-keyvault");
    if !platform.is_dir() {
        return Err(Failure::new(
            Class::Key,
            format!(
                "the vault's platform key vault is missing ({} is not there): no point can be opened without it",
                platform.display()
            ),
        )
        .next("put it back from a copy of the vault directory"));
    }
    Ok(())
}

/// Opens the vault in `dir` with the customer key vaults beside it
/// attached (those with a passphrase only when it was given).
async fn open(dir: &Path, secrets: &PassphraseSource) -> Result<RecoveryVault, Failure> {
    check_vault(dir)?;
    let vault = match stores::for_vault(dir)? {
        Some(store) => RecoveryVault::open_local_with_store(dir, store).await?,
        None => RecoveryVault::open_local(dir).await?,
    };
    for (name, principal) in identities::load(dir)? {
        vault.add_user_assigned_identity(&name, Principal::new(principal));
    }
    for name in keyvaults::names(dir)? {
        if let Some(kv) = keyvaults::open(dir, &name, secrets)? {
            vault.attach_key_vault(kv)?;
        }
    }
    Ok(vault)
}

/// `KEY_VAULT/NAME[/VERSION]` split.
fn parse_reference(flag: &str, text: &str) -> Result<(String, String, Option<String>), Failure> {
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        [kv, name] if !kv.is_empty() && !name.is_empty() => {
            Ok(((*kv).to_owned(), (*name).to_owned(), None))
        }
        [kv, name, version] if !kv.is_empty() && !name.is_empty() && !version.is_empty() => Ok((
            (*kv).to_owned(),
            (*name).to_owned(),
            Some((*version).to_owned()),
        )),
        _ => Err(Failure::usage(format!(
            "{flag} {text:?} is not KEY_VAULT/NAME or KEY_VAULT/NAME/VERSION"
        ))
        .next(format!("e.g. {flag} contoso/os-bek"))),
    }
}

/// The source encryption `protect`'s flags describe.
fn source_encryption(
    bek: Option<String>,
    kek: Option<String>,
    disk_encryption_set: Option<String>,
    des_key: Option<String>,
) -> Result<SourceEncryption, Failure> {
    if let Some(bek) = bek {
        let (key_vault, name, version) = parse_reference("--bek", &bek)?;
        let kek = kek
            .map(|kek| {
                parse_reference("--kek", &kek).map(|(key_vault, name, version)| KeyReference {
                    key_vault,
                    name,
                    version,
                })
            })
            .transpose()?;
        return Ok(SourceEncryption::InGuest {
            bek: SecretReference {
                key_vault,
                name,
                version,
            },
            kek,
        });
    }
    if let (Some(set), Some(key)) = (disk_encryption_set, des_key) {
        let (key_vault, name, version) = parse_reference("--des-key", &key)?;
        return Ok(SourceEncryption::ServerSide {
            disk_encryption_set: set,
            key: KeyReference {
                key_vault,
                name,
                version,
            },
        });
    }
    Ok(SourceEncryption::None)
}

/// How an item's disks are encrypted, in a line.
fn source_line(source: &SourceEncryption) -> Option<String> {
    let with_version = |kv: &str, name: &str, version: Option<&String>| match version {
        Some(v) => format!("{kv}/{name}/{v}"),
        None => format!("{kv}/{name} (latest)"),
    };
    match source {
        SourceEncryption::InGuest { bek, kek } => Some(match kek {
            Some(kek) => format!(
                "in-guest encryption: BEK {}, KEK {}",
                with_version(&bek.key_vault, &bek.name, bek.version.as_ref()),
                with_version(&kek.key_vault, &kek.name, kek.version.as_ref())
            ),
            None => format!(
                "in-guest encryption: BEK {}",
                with_version(&bek.key_vault, &bek.name, bek.version.as_ref())
            ),
        }),
        SourceEncryption::ServerSide {
            disk_encryption_set,
            key,
        } => Some(format!(
            "server-side encryption: set {disk_encryption_set}, key {}",
            with_version(&key.key_vault, &key.name, key.version.as_ref())
        )),
        _ => None,
    }
}

async fn protect(
    vault: &RecoveryVault,
    item: &str,
    source: SourceEncryption,
) -> Result<(), Failure> {
    let in_guest = matches!(source, SourceEncryption::InGuest { .. });
    let item = vault.protect_with(item, source).await?;
    println!("protected {:?}", item.name());
    if let Some(line) = source_line(item.source_encryption()) {
        println!("{line}");
    }
    if in_guest {
        println!(
            "each backup carries the BEK's (and KEK's) backup: grant the vault's identity get, list and backup on them:\n  strongroom access grant --key-vault KV --vault-identity --permissions get,list,backup,getSecret,listSecrets,backupSecret"
        );
    }
    Ok(())
}

/// Puts the point's BEK (and KEK) back, and says what was done.
async fn restore_disk_keys(
    vault: &RecoveryVault,
    id: &str,
    into: Option<&str>,
) -> Result<(), Failure> {
    let point = find_point(vault, id).await?;
    let keys = vault
        .restore_disk_keys(&point, into)
        .await
        .map_err(disk_keys_failure)?;
    let said = |what: &str, key: &strongroom::RestoredKey| {
        let done = if key.restored {
            "restored from the point's backup"
        } else {
            "already there, left as it is"
        };
        eprintln!(
            "{what} {}/{}/{}: {done}",
            key.key_vault, key.name, key.version
        );
    };
    if let Some(kek) = &keys.kek {
        said("KEK", kek);
    }
    said("BEK", &keys.bek);
    Ok(())
}

/// How a failure to put a point's disk keys back is reported: the data was
/// restored before it; what to do next depends on what refused.
fn disk_keys_failure(e: Error) -> Failure {
    let denied = matches!(
        &e,
        Error::Key {
            source: VaultError::AccessDenied { .. },
            ..
        }
    );
    let failure = Failure::from(e);
    let then = if denied {
        "to put the keys back the vault's identity needs list and restore there (listSecrets and restoreSecret for the BEK, list and restore for the KEK)".to_owned()
    } else {
        failure.next.clone().unwrap_or_else(|| {
            "the keys were not put back: do as the message says, then run the same restore with --disk-keys again".to_owned()
        })
    };
    failure.next(format!("the data was restored; {then}"))
}

async fn backup(
    vault: &RecoveryVault,
    item: &str,
    source: &str,
    chunk_size: Option<usize>,
    quiet: bool,
) -> Result<(), Failure> {
    let item = find_item(vault, item).await?;
    let mut options = BackupOptions::default();
    if let Some(bytes) = chunk_size {
        options = options.chunk_size(bytes)?;
    }
    let point = if source == "-" {
        let bar = progress::bytes(quiet, "backup", None);
        let shown = bar.clone();
        let options = options.progress(move |p| shown.set_position(p.done));
        let point = vault.backup(&item, tokio::io::stdin(), options).await;
        bar.finish_and_clear();
        point?
    } else {
        let path = PathBuf::from(source);
        let meta = std::fs::metadata(&path)
            .map_err(|e| Failure::io(&format!("cannot read {}", path.display()), &e))?;
        if meta.is_dir() {
            let bar = progress::bytes(quiet, "backup (tar)", None);
            let shown = bar.clone();
            let options = options.progress(move |p| shown.set_position(p.done));
            let point = vault
                .backup(&item, tar_stream(path.clone())?, options)
                .await;
            bar.finish_and_clear();
            let point = point.map_err(|e| match e {
                Error::Io(io) => Failure::io(
                    &format!("reading the directory {} failed", path.display()),
                    &io,
                )
                .next("nothing was committed; fix the path and run the backup again"),
                other => other.into(),
            })?;
            eprintln!(
                "backed up the directory {} ({} bytes of tar) of {:?} as point {}; restore it with: strongroom restore {} -o - | tar -x",
                path.display(),
                point.size(),
                item.name(),
                point.id(),
                point.id()
            );
            println!("{}", point.id());
            return Ok(());
        }
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Failure::io(&format!("cannot open {}", path.display()), &e))?;
        // A block device reports no length: progress then counts bytes.
        let total = meta.is_file().then_some(meta.len());
        let bar = progress::bytes(quiet, "backup", total);
        let shown = bar.clone();
        let mut options = options.progress(move |p| shown.set_position(p.done));
        if let Some(total) = total {
            options = options.size_hint(total);
        }
        let point = vault.backup(&item, file, options).await;
        bar.finish_and_clear();
        point?
    };
    eprintln!(
        "backed up {} bytes of {:?} as point {}",
        point.size(),
        item.name(),
        point.id()
    );
    println!("{}", point.id());
    Ok(())
}

async fn find_item(vault: &RecoveryVault, name: &str) -> Result<Item, Failure> {
    vault.item(name).await.map_err(|e| {
        let missing = matches!(e, Error::NotFound { .. });
        let failure = Failure::from(e);
        if missing {
            failure.next(format!("protect it first: strongroom protect {name}"))
        } else {
            failure
        }
    })
}

/// The point with id `id`, in whichever item holds it.
async fn find_point(vault: &RecoveryVault, id: &str) -> Result<RecoveryPoint, Failure> {
    for item in vault.items().await? {
        match vault.point(&item, id).await {
            Ok(point) => return Ok(point),
            Err(Error::NotFound { .. } | Error::InvalidArgument { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(Failure::new(
        Class::NotFound,
        format!("no recovery point {id:?} in this vault"),
    )
    .next("list them with `strongroom points`"))
}

fn key_json(key: &KeyRef) -> serde_json::Value {
    json!({
        "key_vault": key.vault,
        "key": key.name,
        "version": key.version,
        "algorithm": key.algorithm.name(),
    })
}

fn point_json(point: &RecoveryPoint) -> serde_json::Value {
    json!({
        "item": point.item(),
        "point": point.id(),
        "created": point.created(),
        "size": point.size(),
        "keys": point.keys().iter().map(key_json).collect::<Vec<_>>(),
        "infrastructure_keys": point.infrastructure_keys().iter().map(key_json).collect::<Vec<_>>(),
        "source_encryption": serde_json::to_value(point.source_encryption()).unwrap_or_default(),
    })
}

fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .map_err(|e| Failure::io("writing to stdout", &e))
}

async fn points(vault: &RecoveryVault, item: Option<&str>, json: bool) -> Result<(), Failure> {
    let items = match item {
        Some(name) => vec![find_item(vault, name).await?],
        None => vault.items().await?,
    };
    let mut all = Vec::new();
    for item in &items {
        all.extend(vault.points(item).await?);
    }
    if json {
        return print_json(&serde_json::Value::Array(
            all.iter().map(point_json).collect(),
        ));
    }
    if all.is_empty() {
        println!("no recovery points");
        return Ok(());
    }
    println!("{:<30}  {:>14}  {:<20}  KEY", "POINT", "BYTES", "ITEM");
    for point in &all {
        let key = point
            .keys()
            .first()
            .map(|k| format!("{}/{}/{}", k.vault, k.name, k.version))
            .unwrap_or_default();
        let layers = if point.infrastructure_encrypted() {
            " + infrastructure layer"
        } else {
            ""
        };
        println!(
            "{:<30}  {:>14}  {:<20}  {key}{layers}",
            point.id(),
            point.size(),
            point.item()
        );
        if let Some(line) = source_line(point.source_encryption()) {
            println!("{:<30}  {line}", "");
        }
    }
    Ok(())
}

fn parse_range(text: &str) -> Result<std::ops::Range<u64>, Failure> {
    let bad = || {
        Failure::usage(format!("{text:?} is not a range")).next("write it as A..B, e.g. 4096..8192")
    };
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let (a, b) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a > b {
        return Err(bad());
    }
    Ok(a..b)
}

async fn restore(
    vault: &RecoveryVault,
    id: &str,
    output: &str,
    range: Option<&str>,
    force: bool,
    quiet: bool,
) -> Result<(), Failure> {
    let range = range.map(parse_range).transpose()?;
    let point = find_point(vault, id).await?;
    if output == "-" {
        let mut stdout = tokio::io::stdout();
        let written = restore_into(vault, &point, range, &mut stdout, quiet).await;
        let _ = stdout.flush().await;
        return written.map(drop).map_err(|failure| {
            failure.next("bytes written to stdout before the failure must be discarded")
        });
    }
    let path = PathBuf::from(output);
    if path.exists() && !force {
        return Err(Failure::usage(format!("{} exists", path.display()))
            .next("give another path, or --force to replace it"));
    }
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // A temporary name beside the output, renamed only when every byte
    // authenticated: a failed restore leaves no output file.
    let temp = tempfile::Builder::new()
        .prefix(".strongroom-restore-")
        .tempfile_in(&dir)
        .map_err(|e| Failure::io(&format!("cannot write in {}", dir.display()), &e))?;
    let file = temp
        .as_file()
        .try_clone()
        .map_err(|e| Failure::io("cannot open the temporary file", &e))?;
    let mut file = tokio::fs::File::from_std(file);
    let written = restore_into(vault, &point, range, &mut file, quiet).await;
    let written = match written {
        Ok(n) => n,
        Err(failure) => {
            drop(file);
            drop(temp);
            return Err(failure.next(format!("nothing was written to {}", path.display())));
        }
    };
    file.sync_all()
        .await
        .map_err(|e| Failure::io("cannot flush the restored data", &e))?;
    drop(file);
    temp.persist(&path)
        .map_err(|e| Failure::io(&format!("cannot rename to {}", path.display()), &e.error))?;
    eprintln!(
        "restored {written} bytes of point {} to {}",
        point.id(),
        path.display()
    );
    Ok(())
}

async fn restore_into<W: tokio::io::AsyncWrite + Unpin + Send>(
    vault: &RecoveryVault,
    point: &RecoveryPoint,
    range: Option<std::ops::Range<u64>>,
    sink: W,
    quiet: bool,
) -> Result<u64, Failure> {
    if let Some(range) = range {
        return Ok(vault.restore_range(point, range, sink).await?);
    }
    let bar = progress::bytes(quiet, "restore", Some(point.size()));
    let shown = bar.clone();
    let written = vault
        .restore_with_progress(point, sink, move |p| shown.set_position(p.done))
        .await;
    bar.finish_and_clear();
    Ok(written?)
}

async fn verify(vault: &RecoveryVault, id: &str, quiet: bool) -> Result<(), Failure> {
    let point = find_point(vault, id).await?;
    let n = restore_into(vault, &point, None, tokio::io::sink(), quiet).await?;
    println!("point {} is whole: {n} bytes authenticated", point.id());
    Ok(())
}

async fn delete(vault: &RecoveryVault, id: &str) -> Result<(), Failure> {
    let point = find_point(vault, id).await?;
    vault.delete_point(&point).await?;
    println!(
        "deleted point {} of {:?}: its wrapped keys went first, so no copy of its data can be decrypted",
        point.id(),
        point.item()
    );
    Ok(())
}

async fn gc(vault: &RecoveryVault, grace_secs: u64) -> Result<(), Failure> {
    let removed = vault.gc(Duration::from_secs(grace_secs)).await?;
    println!("removed {removed} unfinished or half-deleted points");
    Ok(())
}

async fn rewrap(
    vault: &RecoveryVault,
    item: Option<String>,
    from_version: Option<&str>,
    json: bool,
    quiet: bool,
) -> Result<(), Failure> {
    let mut options = RewrapOptions::default();
    if let Some(item) = item {
        options = options.item(&item);
    }
    if let Some(text) = from_version {
        let parts: Vec<&str> = text.split('/').collect();
        let [key_vault, key, version] = parts.as_slice() else {
            return Err(Failure::usage(format!("{text:?} is not a key version"))
                .next("write it as KEY_VAULT/KEY/VERSION, as `strongroom keys health` shows it"));
        };
        options = options.from_version(key_vault, key, version);
    }
    let bar = progress::points(quiet, "rewrap");
    let shown = bar.clone();
    options = options.progress(move |p| {
        shown.set_length(p.total as u64);
        shown.set_position(p.done as u64);
    });
    // Ctrl-C stops the job after the points in flight; a later one goes on
    // from its checkpoint.
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });
    let report = vault.rewrap(options.cancel_flag(cancel)).await;
    watcher.abort();
    bar.finish_and_clear();
    let report = report?;
    if json {
        print_json(&report_json(&report))?;
    } else {
        print_report(&report);
    }
    if let Some(first) = report.skipped.into_iter().next() {
        let failure = Failure::from(first.error);
        return Err(Failure {
            message: format!(
                "some points were not moved; the first, {} of {:?}: {}",
                first.point, first.item, failure.message
            ),
            ..failure
        });
    }
    if report.cancelled {
        return Err(Failure::new(Class::Other, "interrupted")
            .next("run `strongroom rewrap` again to go on from where it stopped"));
    }
    Ok(())
}

fn report_json(report: &RewrapReport) -> serde_json::Value {
    json!({
        "rewrapped": report.rewrapped,
        "current": report.current,
        "cancelled": report.cancelled,
        "target": report.target.as_ref().map(key_json),
        "infrastructure_target": report.infrastructure_target.as_ref().map(key_json),
        "skipped": report.skipped.iter().map(|s| json!({
            "item": s.item,
            "point": s.point,
            "error": s.error.to_string(),
        })).collect::<Vec<_>>(),
    })
}

fn print_report(report: &RewrapReport) {
    if let Some(target) = &report.target {
        println!(
            "target key: {}/{}/{}",
            target.vault, target.name, target.version
        );
    }
    if let Some(target) = &report.infrastructure_target {
        println!(
            "infrastructure layer: {}/{}/{}",
            target.vault, target.name, target.version
        );
    }
    println!(
        "{} points rewrapped, {} already current, {} skipped{}",
        report.rewrapped,
        report.current,
        report.skipped.len(),
        if report.cancelled {
            " (interrupted)"
        } else {
            ""
        }
    );
    for skipped in &report.skipped {
        println!(
            "  skipped {} of {:?}: {}",
            skipped.point, skipped.item, skipped.error
        );
    }
}

async fn encryption(vault: &RecoveryVault, json: bool) -> Result<(), Failure> {
    let encryption = vault.encryption().await?;
    let settings = encryption.settings();
    if json {
        let value = json!({
            "settings": serde_json::to_value(settings).map_err(|e| Failure::new(Class::Other, e.to_string()))?,
            "protection_attempted": encryption.protection_attempted(),
            "system_identity": vault.system_identity().id(),
        });
        return print_json(&value);
    }
    match settings.key.customer_key() {
        None => println!("key: platform-managed"),
        Some(key) => println!(
            "key: customer-managed, {key}, as the vault's {}",
            key.identity
        ),
    }
    println!(
        "infrastructure encryption: {}",
        if settings.infrastructure_encryption {
            "on"
        } else {
            "off"
        }
    );
    println!(
        "items protected: {}",
        if encryption.protection_attempted() {
            "yes (a customer key can no longer be enabled)"
        } else {
            "none yet"
        }
    );
    println!(
        "the vault's system identity: {}",
        vault.system_identity().id()
    );
    Ok(())
}

async fn health(vault: &RecoveryVault, json: bool) -> Result<(), Failure> {
    let health = vault.key_health().await?;
    if json {
        let versions: Vec<_> = health
            .versions()
            .iter()
            .map(|v| {
                json!({
                    "key_vault": v.vault,
                    "key": v.name,
                    "version": v.version,
                    "points": v.points,
                    "sole_copy_points": v.sole_copy_points,
                    "safe_to_disable": v.safe_to_disable(),
                })
            })
            .collect();
        return print_json(&serde_json::Value::Array(versions));
    }
    if health.versions().is_empty() {
        println!("no recovery points: no key version is needed");
        return Ok(());
    }
    for v in health.versions() {
        let state = if v.safe_to_disable() {
            "safe to disable".to_owned()
        } else {
            format!(
                "needed: the only key copy of {} points",
                v.sole_copy_points.len()
            )
        };
        println!(
            "{}/{}/{}: {} points, {state}",
            v.vault, v.name, v.version, v.points
        );
    }
    Ok(())
}

async fn key_vault(
    dir: &Path,
    command: KeyVaultCommand,
    secrets: &PassphraseSource,
) -> Result<(), Failure> {
    check_vault(dir)?;
    match command {
        KeyVaultCommand::Create {
            name,
            passphrase,
            purge_protection,
        } => {
            keyvaults::create(dir, &name, passphrase, secrets, purge_protection)?;
            println!(
                "created key vault {name:?} ({}{})",
                if passphrase {
                    "a passphrase"
                } else {
                    "a key file beside it, mode 0600"
                },
                if purge_protection {
                    ", purge protection on"
                } else {
                    ""
                }
            );
            println!("the command acts in it as {}", keyvaults::ADMIN);
            Ok(())
        }
        KeyVaultCommand::List { json } => {
            let names = keyvaults::names(dir)?;
            if json {
                let list: Vec<_> = names
                    .iter()
                    .map(|n| json!({"name": n, "passphrase": keyvaults::uses_passphrase(dir, n)}))
                    .collect();
                return print_json(&serde_json::Value::Array(list));
            }
            if names.is_empty() {
                println!("no customer key vaults (create one with `strongroom key-vault create`)");
            }
            for name in names {
                let root = if keyvaults::uses_passphrase(dir, &name) {
                    "passphrase"
                } else {
                    "key file"
                };
                println!("{name} ({root})");
            }
            Ok(())
        }
    }
}

fn key_type(arg: KeyTypeArg) -> KeyType {
    match arg {
        KeyTypeArg::Rsa2048 => KeyType::Rsa2048,
        KeyTypeArg::Rsa3072 => KeyType::Rsa3072,
        KeyTypeArg::Rsa4096 => KeyType::Rsa4096,
    }
}

/// Runs `f` in key vault `name` as its administrator, on a blocking thread.
async fn in_key_vault<T: Send + 'static>(
    dir: &Path,
    name: &str,
    secrets: &PassphraseSource,
    f: impl FnOnce(&dyn KeyVault, &Principal) -> Result<T, VaultError> + Send + 'static,
) -> Result<T, Failure> {
    let kv = keyvaults::open_required(dir, name, secrets)?;
    let label = name.to_owned();
    tokio::task::spawn_blocking(move || f(kv.as_ref(), &keyvaults::admin()))
        .await
        .map_err(|e| Failure::new(Class::Other, format!("a key vault task failed: {e}")))?
        .map_err(|e| keyvaults::failure(&label, e))
}

/// The secret permissions the command's administrator holds in every key
/// vault it makes; one made before secrets existed gets them on first use
/// (a management-plane change, audited there).
fn with_secret_permissions(kv: &dyn KeyVault, admin: &Principal) -> Result<(), VaultError> {
    let held = kv.access_policy(admin)?;
    if held != Permissions::all() {
        kv.set_access_policy(admin, Permissions::all())?;
    }
    Ok(())
}

async fn secrets_command(
    dir: &Path,
    command: SecretsCommand,
    secrets: &PassphraseSource,
) -> Result<(), Failure> {
    check_vault(dir)?;
    match command {
        SecretsCommand::Set {
            name,
            file,
            key_vault,
            content_type,
        } => {
            let mut value = Zeroizing::new(Vec::new());
            let read = if file == "-" {
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut value)
            } else {
                std::fs::File::open(&file)
                    .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut value))
            };
            read.map_err(|e| Failure::io(&format!("cannot read {file}"), &e))?;
            let info = in_key_vault(dir, &key_vault, secrets, move |kv, admin| {
                with_secret_permissions(kv, admin)?;
                let options = strongroom::keyvault::SecretOptions {
                    content_type,
                    ..strongroom::keyvault::SecretOptions::default()
                };
                kv.set_secret(admin, &name, &value, options)
            })
            .await?;
            println!(
                "set secret {key_vault}/{}, version {}",
                info.name, info.version
            );
            Ok(())
        }
        SecretsCommand::List {
            name,
            key_vault,
            json,
        } => {
            let listed = in_key_vault(dir, &key_vault, secrets, move |kv, admin| {
                with_secret_permissions(kv, admin)?;
                match &name {
                    Some(name) => kv.list_secret_versions(admin, name),
                    None => kv.list_secrets(admin),
                }
            })
            .await?;
            if json {
                return print_json(&serde_json::Value::Array(
                    listed
                        .iter()
                        .map(|s| {
                            json!({
                                "key_vault": s.vault,
                                "name": s.name,
                                "version": s.version,
                                "enabled": s.attributes.enabled,
                                "content_type": s.attributes.content_type,
                                "created": s.attributes.created,
                            })
                        })
                        .collect(),
                ));
            }
            if listed.is_empty() {
                println!("no secrets in key vault {key_vault}");
            }
            for s in &listed {
                let state = if s.attributes.enabled {
                    "enabled"
                } else {
                    "disabled"
                };
                let content = s.attributes.content_type.as_deref().unwrap_or("-");
                println!("{}/{}/{}  {content}  {state}", s.vault, s.name, s.version);
            }
            Ok(())
        }
        SecretsCommand::Delete { name, key_vault } => {
            let deleted = in_key_vault(dir, &key_vault, secrets, move |kv, admin| {
                with_secret_permissions(kv, admin)?;
                kv.delete_secret(admin, &name)
            })
            .await?;
            println!(
                "deleted secret {key_vault}/{}: recoverable until {} (Unix time)",
                deleted.name, deleted.scheduled_purge
            );
            Ok(())
        }
        SecretsCommand::Recover { name, key_vault } => {
            let info = in_key_vault(dir, &key_vault, secrets, move |kv, admin| {
                with_secret_permissions(kv, admin)?;
                kv.recover_secret(admin, &name)
            })
            .await?;
            println!("recovered secret {key_vault}/{}", info.name);
            Ok(())
        }
        SecretsCommand::Purge { name, key_vault } => {
            let shown = name.clone();
            in_key_vault(dir, &key_vault, secrets, move |kv, admin| {
                with_secret_permissions(kv, admin)?;
                kv.purge_secret(admin, &name)
            })
            .await?;
            println!("purged secret {key_vault}/{shown}: it is gone for good");
            Ok(())
        }
    }
}

/// Enables or disables key version `name`/`version` in `key_vault`.
async fn set_enabled(
    dir: &Path,
    key_vault: &str,
    name: &str,
    version: &str,
    enabled: bool,
    secrets: &PassphraseSource,
) -> Result<(), Failure> {
    let (n, v) = (name.to_owned(), version.to_owned());
    in_key_vault(dir, key_vault, secrets, move |kv, admin| {
        let update = AttributeUpdate {
            enabled: Some(enabled),
            ..AttributeUpdate::default()
        };
        kv.update_key(admin, &n, &v, update)
    })
    .await?;
    let done = if enabled { "enabled" } else { "disabled" };
    println!("{done} {key_vault}/{name}/{version}");
    Ok(())
}

async fn keys(dir: &Path, command: KeysCommand, secrets: &PassphraseSource) -> Result<(), Failure> {
    check_vault(dir)?;
    match command {
        KeysCommand::Health { json } => health(&open(dir, secrets).await?, json).await,
        KeysCommand::RotatePlatform => {
            let version = open(dir, secrets).await?.rotate_platform_key().await?;
            println!("the platform key's new version is {version}");
            println!("new points are wrapped under it; `strongroom rewrap` moves the others");
            Ok(())
        }
        KeysCommand::Create {
            name,
            key_vault,
            key_type: kind,
        } => {
            let info = in_key_vault(dir, &key_vault, secrets, move |kv, admin| {
                kv.create_key(admin, &name, key_type(kind), KeyOptions::default())
            })
            .await?;
            println!(
                "created {key_vault}/{} ({}), version {}",
                info.name, info.key_type, info.version
            );
            Ok(())
        }
        KeysCommand::Import {
            name,
            file,
            key_vault,
        } => {
            let bytes = Zeroizing::new(
                std::fs::read(&file)
                    .map_err(|e| Failure::io(&format!("cannot read {}", file.display()), &e))?,
            );
            let info = in_key_vault(dir, &key_vault, secrets, move |kv, admin| {
                let import = match std::str::from_utf8(&bytes) {
                    Ok(text) if text.trim_start().starts_with('{') => KeyImport::Jwk(text),
                    Ok(text) if text.contains("-----BEGIN") => KeyImport::Pkcs8Pem(text),
                    _ => KeyImport::Pkcs8Der(&bytes),
                };
                kv.import_key(admin, &name, import, KeyOptions::default())
            })
            .await?;
            println!(
                "imported {key_vault}/{} ({}), version {}",
                info.name, info.key_type, info.version
            );
            Ok(())
        }
        KeysCommand::Rotate { name, key_vault } => {
            let info = in_key_vault(dir, &key_vault, secrets, move |kv, admin| {
                kv.rotate_key(admin, &name, KeyOptions::default())
            })
            .await?;
            println!(
                "{key_vault}/{} has a new version, {}: a vault following the key's latest version wraps new points under it; `strongroom rewrap` moves the others",
                info.name, info.version
            );
            Ok(())
        }
        KeysCommand::Disable {
            name,
            version,
            key_vault,
            force,
        } => {
            if !force {
                let health = open(dir, secrets).await?.key_health().await?;
                if let Some(needed) = health.version(&key_vault, &name, &version)
                    && !needed.safe_to_disable()
                {
                    return Err(Failure::new(
                        Class::Key,
                        format!(
                            "{key_vault}/{name}/{version} holds the only key copy of {} recovery points ({})",
                            needed.sole_copy_points.len(),
                            needed.sole_copy_points.join(", ")
                        ),
                    )
                    .next("run `strongroom rewrap` to move them first, or --force to disable it anyway (they cannot be restored until it is enabled again)"));
                }
            }
            set_enabled(dir, &key_vault, &name, &version, false, secrets).await
        }
        KeysCommand::Enable {
            name,
            version,
            key_vault,
        } => set_enabled(dir, &key_vault, &name, &version, true, secrets).await,
        KeysCommand::Delete { name, key_vault } => {
            let info = in_key_vault(dir, &key_vault, secrets, move |kv, admin| {
                kv.delete_key(admin, &name)
            })
            .await?;
            println!(
                "deleted {key_vault}/{}: `strongroom keys recover` brings it back until it is purged (scheduled at {}, Unix time)",
                info.name, info.scheduled_purge
            );
            Ok(())
        }
        KeysCommand::Recover { name, key_vault } => {
            let info = in_key_vault(dir, &key_vault, secrets, move |kv, admin| {
                kv.recover_key(admin, &name)
            })
            .await?;
            println!("recovered {key_vault}/{}", info.name);
            Ok(())
        }
        KeysCommand::Purge { name, key_vault } => {
            let n = name.clone();
            in_key_vault(dir, &key_vault, secrets, move |kv, admin| {
                kv.purge_key(admin, &n)
            })
            .await?;
            println!(
                "purged {key_vault}/{name}: the recovery points under it can never be restored"
            );
            Ok(())
        }
        KeysCommand::List { key_vault, json } => {
            let versions = in_key_vault(dir, &key_vault, secrets, |kv, admin| {
                let mut all = Vec::new();
                for key in kv.list_keys(admin)? {
                    all.extend(kv.list_versions(admin, &key.name)?);
                }
                Ok(all)
            })
            .await?;
            if json {
                let list: Vec<_> = versions
                    .iter()
                    .map(|v| {
                        json!({
                            "key_vault": v.vault,
                            "key": v.name,
                            "version": v.version,
                            "type": v.key_type.to_string(),
                            "enabled": v.attributes.enabled,
                            "not_before": v.attributes.not_before,
                            "expires": v.attributes.expires,
                            "created": v.attributes.created,
                        })
                    })
                    .collect();
                return print_json(&serde_json::Value::Array(list));
            }
            if versions.is_empty() {
                println!("no keys in {key_vault}");
            }
            for v in versions {
                let state = if v.attributes.enabled {
                    "enabled"
                } else {
                    "disabled"
                };
                println!(
                    "{}/{}/{}  {}  {state}",
                    v.vault, v.name, v.version, v.key_type
                );
            }
            Ok(())
        }
    }
}

fn parse_permissions(text: &str) -> Result<Permissions, Failure> {
    let mut permissions = Permissions::NONE;
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let permission = Permission::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Failure::usage(format!("{name:?} is not a permission")).next(
                    "use get, list, create, import, update, delete, recover, purge, rotate, backup, restore, wrapKey, unwrapKey (keys) or getSecret, listSecrets, setSecret, deleteSecret, recoverSecret, purgeSecret, backupSecret, restoreSecret (secrets)",
                )
            })?;
        permissions = permissions.with(permission);
    }
    Ok(permissions)
}

fn permission_list(permissions: Permissions) -> String {
    let names: Vec<_> = permissions.iter().map(Permission::name).collect();
    if names.is_empty() {
        "nothing".to_owned()
    } else {
        names.join(", ")
    }
}

/// The principal `who` names.
async fn principal(
    dir: &Path,
    who: &Who,
    secrets: &PassphraseSource,
) -> Result<Principal, Failure> {
    match &who.principal {
        Some(id) => Ok(Principal::new(id.clone())),
        None => Ok(open(dir, secrets).await?.system_identity()),
    }
}

async fn access(
    dir: &Path,
    command: AccessCommand,
    secrets: &PassphraseSource,
) -> Result<(), Failure> {
    check_vault(dir)?;
    let (who, change): (Who, Box<dyn FnOnce(Permissions) -> Permissions + Send>) = match command {
        AccessCommand::Grant { who, permissions } => {
            let add = parse_permissions(&permissions)?;
            (
                who,
                Box::new(move |now| add.iter().fold(now, Permissions::with)),
            )
        }
        AccessCommand::Revoke { who, permissions } => {
            let remove = match permissions {
                Some(text) => parse_permissions(&text)?,
                None => Permissions::all(),
            };
            (
                who,
                Box::new(move |now| remove.iter().fold(now, Permissions::without)),
            )
        }
        AccessCommand::List { key_vault, json } => {
            return access_list(dir, &key_vault, json, secrets).await;
        }
    };
    let principal = principal(dir, &who, secrets).await?;
    let p = principal.clone();
    let now = in_key_vault(dir, &who.key_vault, secrets, move |kv, _| {
        let next = change(kv.access_policy(&p)?);
        kv.set_access_policy(&p, next)?;
        Ok(next)
    })
    .await?;
    println!(
        "in {}, {} may now: {}",
        who.key_vault,
        principal.id(),
        permission_list(now)
    );
    Ok(())
}

async fn access_list(
    dir: &Path,
    key_vault: &str,
    json: bool,
    secrets: &PassphraseSource,
) -> Result<(), Failure> {
    let principals = [
        open(dir, secrets).await?.system_identity(),
        keyvaults::admin(),
    ];
    let asked = principals.clone();
    let policies = in_key_vault(dir, key_vault, secrets, move |kv, _| {
        asked
            .iter()
            .map(|p| kv.access_policy(p))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    if json {
        let list: Vec<_> = principals
            .iter()
            .zip(&policies)
            .map(|(p, perms)| {
                json!({
                    "principal": p.id(),
                    "permissions": perms.iter().map(Permission::name).collect::<Vec<_>>(),
                })
            })
            .collect();
        return print_json(&serde_json::Value::Array(list));
    }
    for (p, perms) in principals.iter().zip(&policies) {
        println!("{}: {}", p.id(), permission_list(*perms));
    }
    Ok(())
}

fn audit(dir: &Path, command: AuditCommand, secrets: &PassphraseSource) -> Result<(), Failure> {
    check_vault(dir)?;
    match command {
        AuditCommand::Show { key_vault, json } => {
            let kv = keyvaults::open_required(dir, &key_vault, secrets)?;
            let entries = kv
                .audit_log()
                .map_err(|e| keyvaults::failure(&key_vault, e))?;
            if json {
                let list: Vec<_> = entries
                    .iter()
                    .map(|e| {
                        json!({
                            "seq": e.seq,
                            "time": e.time,
                            "principal": e.principal,
                            "operation": e.operation,
                            "key": e.key,
                        })
                    })
                    .collect();
                return print_json(&serde_json::Value::Array(list));
            }
            for e in entries {
                println!(
                    "{:>6}  {}  {}  {}  {}",
                    e.seq,
                    e.time,
                    e.principal,
                    e.operation,
                    e.key.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        AuditCommand::Verify { key_vault } => {
            let kv = keyvaults::open_required(dir, &key_vault, secrets)?;
            kv.verify_audit_log()
                .map_err(|e| keyvaults::failure(&key_vault, e))?;
            println!("the audit log of {key_vault} is whole: its hash chain verifies");
            Ok(())
        }
    }
}

/// A directory as a tar stream, written by a thread into a pipe that the
/// backup reads. The reader reports the thread's failure (an unreadable
/// file, say) as an error at the end of the stream, so that a backup of a
/// directory that could not be read whole never commits.
fn tar_stream(dir: PathBuf) -> Result<TarSource, Failure> {
    let (reader, writer) =
        std::io::pipe().map_err(|e| Failure::io("cannot make a pipe for the tar stream", &e))?;
    let status: TarStatus = Arc::default();
    let written = Arc::clone(&status);
    std::thread::spawn(move || {
        let mut builder = tar::Builder::new(writer);
        builder.follow_symlinks(false);
        let result = builder
            .append_dir_all(".", &dir)
            .and_then(|()| builder.finish());
        // The status first, then the pipe's end: the reader sees the end
        // only once the status is there.
        let outcome = result.map_err(|e| (e.kind(), e.to_string()));
        *written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(outcome);
        drop(builder);
    });
    let file = tokio::fs::File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
    Ok(TarSource { file, status })
}

/// How the tar thread ended: `Ok`, or its error's kind and message.
type TarStatus = Arc<std::sync::Mutex<Option<Result<(), (std::io::ErrorKind, String)>>>>;

/// The read end of [`tar_stream`].
struct TarSource {
    file: tokio::fs::File,
    /// Set by the thread before the pipe ends.
    status: TarStatus,
}

impl tokio::io::AsyncRead for TarSource {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.file).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled
            && buf.filled().len() == before
        {
            // The end of the stream: whole only if the tar thread finished.
            let status = self
                .status
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            return std::task::Poll::Ready(match status {
                Some(Ok(())) => Ok(()),
                Some(Err((kind, message))) => Err(std::io::Error::new(kind, message)),
                None => Err(std::io::Error::other("the tar stream ended early")),
            });
        }
        polled
    }
}
