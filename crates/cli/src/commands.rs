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
    BackupOptions, Error, Item, RecoveryPoint, RecoveryVault, RewrapOptions, RewrapReport,
};
use tokio::io::AsyncWriteExt;

use crate::exit::{Class, Failure};
use crate::{Cli, Command, EncryptionCommand, KeysCommand, demo, progress};

pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let Cli {
        vault: dir,
        quiet,
        command,
    } = cli;
    match command {
        Command::Init { name } => init(&dir, &name).await,
        Command::Demo => demo::run().await,
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "strongroom", &mut std::io::stdout());
            Ok(())
        }
        Command::Protect { item } => protect(&open(&dir).await?, &item).await,
        Command::Backup {
            item,
            source,
            chunk_size,
        } => backup(&open(&dir).await?, &item, &source, chunk_size, quiet).await,
        Command::Points { item, json } => points(&open(&dir).await?, item.as_deref(), json).await,
        Command::Restore {
            point,
            output,
            range,
            force,
        } => {
            let vault = open(&dir).await?;
            restore(&vault, &point, &output, range.as_deref(), force, quiet).await
        }
        Command::Verify { point } => verify(&open(&dir).await?, &point, quiet).await,
        Command::Delete { point } => delete(&open(&dir).await?, &point).await,
        Command::Gc { grace_secs } => gc(&open(&dir).await?, grace_secs).await,
        Command::Rewrap {
            item,
            from_version,
            json,
        } => {
            rewrap(
                &open(&dir).await?,
                item,
                from_version.as_deref(),
                json,
                quiet,
            )
            .await
        }
        Command::Encryption(EncryptionCommand::Show { json }) => {
            encryption(&open(&dir).await?, json).await
        }
        Command::Keys(KeysCommand::Health { json }) => health(&open(&dir).await?, json).await,
        Command::Keys(KeysCommand::RotatePlatform) => {
            let version = open(&dir).await?.rotate_platform_key().await?;
            println!("the platform key's new version is {version}");
            println!("new points are wrapped under it; `strongroom rewrap` moves the others");
            Ok(())
        }
    }
}

async fn init(dir: &Path, name: &str) -> Result<(), Failure> {
    let vault = RecoveryVault::create_local(dir, name).await.map_err(|e| {
        let already = matches!(e, Error::AlreadyExists { .. });
        let failure = Failure::from(e);
        if already {
            failure.next("use it as it is, or give another directory with --vault")
        } else {
            failure
        }
    })?;
    println!(
        "created vault {:?} (id {}) in {}",
        vault.name(),
        vault.id(),
        dir.display()
    );
    println!(
        "its platform key is in {} (keep that directory private)",
        dir.join("platform-keyvault").display()
    );
    Ok(())
}

/// Opens the vault in `dir`, saying how to make one when there is none.
async fn open(dir: &Path) -> Result<RecoveryVault, Failure> {
    if !dir.join("store").join("vault.json").is_file() {
        return Err(
            Failure::new(Class::NotFound, format!("no vault in {}", dir.display()))
                .next("create one with `strongroom init`, or name another with --vault DIR"),
        );
    }
    Ok(RecoveryVault::open_local(dir).await?)
}

async fn protect(vault: &RecoveryVault, item: &str) -> Result<(), Failure> {
    let item = vault.protect(item).await?;
    println!("protected {:?}", item.name());
    Ok(())
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
            return Err(
                Failure::usage(format!("{} is a directory", path.display())).next(format!(
                    "back it up as a tar stream: tar -C {} -cf - . | strongroom backup {} -",
                    path.display(),
                    item.name()
                )),
            );
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
