//! Key rotation and the rewrap job (R8): recovery points move to the
//! vault's current key by rewriting only their headers.
//!
//! A header is replaced with one atomic put, so at any instant a point
//! opens under its old header or its new one. The job keeps a checkpoint
//! in the store (`jobs/rewrap.json`: the key it moves points to and the
//! last point of an unbroken run of finished ones, in order), so a job
//! started again after a stop or a crash does not read the finished points
//! again; a point already under the target key is never rewritten.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use strongroom_envelope::{KeyRef, KeyWrapper};
use strongroom_keyvault::KeyOptions;

use crate::error::{envelope_error, key_error};
use crate::layout;
use crate::restore::Layer;
use crate::vault::{RecoveryPoint, RecoveryVault, blocking};
use crate::{Error, store};

/// How often (in points) the job writes its checkpoint.
const CHECKPOINT_EVERY: usize = 32;

/// How far a rewrap job has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewrapProgress {
    /// Points finished (rewrapped, already current, or skipped).
    pub done: usize,
    /// Points the job covers.
    pub total: usize,
}

/// Which points a rewrap job moves, and how.
#[derive(Clone)]
pub struct RewrapOptions {
    item: Option<String>,
    from: Option<(String, String, String)>,
    in_flight: usize,
    progress: Option<Arc<dyn Fn(RewrapProgress) + Send + Sync>>,
    cancel: Option<Arc<AtomicBool>>,
}

impl Default for RewrapOptions {
    fn default() -> Self {
        Self {
            item: None,
            from: None,
            in_flight: 4,
            progress: None,
            cancel: None,
        }
    }
}

impl core::fmt::Debug for RewrapOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RewrapOptions")
            .field("item", &self.item)
            .field("from", &self.from)
            .field("in_flight", &self.in_flight)
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel.is_some())
            .finish()
    }
}

impl RewrapOptions {
    /// Only the points of `item`.
    #[must_use]
    pub fn item(mut self, item: &str) -> Self {
        self.item = Some(item.to_owned());
        self
    }

    /// Only the points with a copy of their DEK under this key version.
    #[must_use]
    pub fn from_version(mut self, key_vault: &str, key: &str, version: &str) -> Self {
        self.from = Some((key_vault.to_owned(), key.to_owned(), version.to_owned()));
        self
    }

    /// Points in progress at once (default 4): store and key vault calls
    /// overlap.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] outside 1 to 64.
    pub fn in_flight(mut self, points: usize) -> Result<Self, Error> {
        if !(1..=64).contains(&points) {
            return Err(Error::InvalidArgument {
                reason: format!("points in flight must be 1 to 64, not {points}"),
            });
        }
        self.in_flight = points;
        Ok(self)
    }

    /// Called after each point, in order.
    #[must_use]
    pub fn progress(mut self, progress: impl Fn(RewrapProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// Stops the job (before its next point) once `flag` is set; the
    /// report then says `cancelled`, and a later job goes on from the
    /// checkpoint.
    #[must_use]
    pub fn cancel_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }
}

/// A point the job could not move, and why (its key version disabled,
/// deleted or unreachable, its header damaged, the store failing).
#[derive(Debug)]
pub struct SkippedPoint {
    /// The item.
    pub item: String,
    /// The point's id.
    pub point: String,
    /// What stopped it; the point keeps its old header.
    pub error: Error,
}

/// What a rewrap job did.
#[derive(Debug, Default)]
pub struct RewrapReport {
    /// Points whose header was rewritten under the target key.
    pub rewrapped: usize,
    /// Points already under the target key (not rewritten).
    pub current: usize,
    /// Points left as they were, each with its reason.
    pub skipped: Vec<SkippedPoint>,
    /// Whether the job stopped on its cancel flag before the end.
    pub cancelled: bool,
    /// The key the points were moved to.
    pub target: Option<KeyRef>,
    /// The platform key version the outer layers of points with
    /// infrastructure encryption were moved to (`None` when the job met
    /// no such point).
    pub infrastructure_target: Option<KeyRef>,
}

/// `jobs/rewrap.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint {
    format: u32,
    vault_id: String,
    /// The target key (`KeyRef`'s display form; with infrastructure
    /// encryption, the outer layer's too).
    target: String,
    /// The job's selection (item, key version): a checkpoint serves only
    /// a job that selects the same points.
    scope: String,
    /// Every point up to this one (`<item>/<point>`, in job order) is done.
    through: String,
}

/// The unwrapping keys of each set of key references met in one job.
type WrapperCache = Mutex<HashMap<Vec<KeyRef>, Vec<Arc<dyn KeyWrapper>>>>;

/// What happened to one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Rewrapped,
    Current,
}

/// The keys a job moves points to.
struct Targets {
    /// The data layer's: the vault's current key.
    data: Arc<dyn KeyWrapper>,
    /// The outer layer's, for points with infrastructure encryption: the
    /// platform key's latest enabled version.
    infrastructure: Option<Arc<dyn KeyWrapper>>,
}

impl Targets {
    /// The checkpoint's name for them.
    fn name(&self) -> String {
        match &self.infrastructure {
            None => self.data.key_ref().to_string(),
            Some(outer) => format!(
                "{} + infrastructure {}",
                self.data.key_ref(),
                outer.key_ref()
            ),
        }
    }
}

/// A point's place in job order.
fn order_key(point: &RecoveryPoint) -> String {
    format!("{}/{}", point.item, point.id)
}

impl RecoveryVault {
    /// Makes a new version of the platform key: new points are wrapped
    /// under it; existing ones keep theirs until a [`rewrap`](Self::rewrap)
    /// moves them. Returns the new version.
    ///
    /// # Errors
    /// [`Error::Key`] when the platform key vault refuses.
    pub async fn rotate_platform_key(&self) -> Result<String, Error> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let record = &inner.record;
            inner
                .platform
                .rotate_key(
                    &inner.platform_principal,
                    &record.platform_key,
                    KeyOptions::default(),
                )
                .map(|info| info.version)
                .map_err(|e| {
                    key_error(
                        format!("{}/{}", record.platform_key_vault, record.platform_key),
                        e,
                    )
                })
        })
        .await?
    }

    /// Disables a key version (R14) — of the platform key, or of a
    /// customer key in an attached key vault, reached as the vault's
    /// identity (which then needs the `update` permission there) — after
    /// checking with [`key_health`](Self::key_health) that no recovery
    /// point holds its only DEK copy under it. `force` disables it anyway:
    /// those points cannot be restored until it is enabled again.
    ///
    /// The platform key's first version (the one the vault's settings key
    /// is wrapped under) is never disabled.
    ///
    /// # Errors
    /// [`Error::KeyStillNeeded`] naming the points; [`Error::Key`] when the
    /// key vault refuses; [`Error::NotFound`] for a key vault not attached;
    /// [`Error::InvalidArgument`] for the platform key's first version.
    pub async fn disable_key_version(
        &self,
        key_vault: &str,
        key: &str,
        version: &str,
        force: bool,
    ) -> Result<(), Error> {
        let vault = self.key_vault(key_vault)?;
        let record = &self.inner.record;
        if key_vault == record.platform_key_vault
            && key == record.platform_key
            && version == record.platform_key_version
        {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "{key_vault}/{key}/{version} is the platform key version the vault's settings key is wrapped under: the vault cannot open without it"
                ),
            });
        }
        let health = self.key_health().await?;
        if let Some(needed) = health.version(key_vault, key, version)
            && !needed.safe_to_disable()
            && !force
        {
            return Err(Error::KeyStillNeeded {
                key: format!("{key_vault}/{key}/{version}"),
                points: needed.sole_copy_points.clone(),
            });
        }
        let principal = if key_vault == self.inner.record.platform_key_vault {
            self.inner.platform_principal.clone()
        } else {
            self.principal_for_key_vault(key_vault).await?
        };
        let (name, version) = (key.to_owned(), version.to_owned());
        let label = format!("{key_vault}/{key}/{version}");
        blocking(move || {
            vault
                .update_key(
                    &principal,
                    &name,
                    &version,
                    strongroom_keyvault::AttributeUpdate {
                        enabled: Some(false),
                        ..strongroom_keyvault::AttributeUpdate::default()
                    },
                )
                .map(drop)
                .map_err(|e| key_error(label, e))
        })
        .await?
    }

    /// Moves one point to the vault's current key (the latest enabled
    /// version of the platform key, or of the customer key the settings
    /// name), rewriting only its header with one atomic put; with
    /// infrastructure encryption, its outer layer's header too, to the
    /// platform key's latest enabled version. Returns whether a header was
    /// rewritten (`false`: it was under those keys already).
    ///
    /// # Errors
    /// As [`check_keys`](Self::check_keys) for the old key; [`Error::Key`]
    /// when the current key cannot wrap; [`Error::Store`].
    pub async fn rewrap_point(&self, point: &RecoveryPoint) -> Result<bool, Error> {
        let targets = self.targets(std::slice::from_ref(point)).await?;
        self.rewrap_to(point, &targets, &WrapperCache::default())
            .await
            .map(|outcome| matches!(outcome, Outcome::Rewrapped))
    }

    /// The keys to move `points` to: the vault's current key, and the
    /// platform key's latest version when one of them has an
    /// infrastructure layer.
    async fn targets(&self, points: &[RecoveryPoint]) -> Result<Targets, Error> {
        let data = self.current_wrapper().await?;
        let infrastructure = if points.iter().any(RecoveryPoint::infrastructure_encrypted) {
            Some(self.platform_wrapper().await?)
        } else {
            None
        };
        Ok(Targets {
            data,
            infrastructure,
        })
    }

    /// Moves every recovery point (or those `options` selects) to the
    /// vault's current key, rewriting only headers: the cost per point does
    /// not depend on its size. Resumable (a checkpoint in the store), safe
    /// to stop or crash at any point (each header is replaced atomically),
    /// and never stopped by one bad point: those are skipped and reported.
    ///
    /// # Errors
    /// [`Error::Key`] when the current key cannot wrap (nothing is
    /// changed); [`Error::Store`] / [`Error::Corrupt`] when the points
    /// cannot be listed.
    pub async fn rewrap(&self, options: RewrapOptions) -> Result<RewrapReport, Error> {
        let items = match &options.item {
            Some(name) => vec![self.item(name).await?],
            None => self.items().await?,
        };
        let mut points = Vec::new();
        for item in &items {
            points.extend(self.points(item).await?);
        }
        if let Some((vault, name, version)) = &options.from {
            points.retain(|p| {
                p.keys
                    .iter()
                    .chain(&p.infrastructure_keys)
                    .any(|k| k.vault == *vault && k.name == *name && k.version == *version)
            });
        }
        points.sort_by_key(order_key);
        let targets = Arc::new(self.targets(&points).await?);
        let target_name = targets.name();

        let checkpoint_path = self.inner.layout.child(&["jobs", "rewrap.json"]);
        let scope = format!("item={:?} from={:?}", options.item, options.from);
        let mut through = self
            .load_checkpoint(&checkpoint_path, &target_name, &scope)
            .await?
            .unwrap_or_default();
        let total = points.len();
        let resumed = points
            .iter()
            .take_while(|p| !through.is_empty() && order_key(p) <= through)
            .count();
        let mut report = RewrapReport {
            current: resumed,
            target: Some(targets.data.key_ref().clone()),
            infrastructure_target: targets.infrastructure.as_ref().map(|w| w.key_ref().clone()),
            ..RewrapReport::default()
        };
        let mut done = resumed;
        if let Some(progress) = &options.progress {
            progress(RewrapProgress { done, total });
        }
        let cancel = options.cancel.clone();
        let cancelled = || cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
        let cache = WrapperCache::default();
        let mut results = futures::stream::iter(points.into_iter().skip(resumed))
            .take_while(|_| std::future::ready(!cancelled()))
            .map(|point| {
                let (targets, cache) = (Arc::clone(&targets), &cache);
                async move {
                    let outcome = self.rewrap_to(&point, &targets, cache).await;
                    (point, outcome)
                }
            })
            .buffered(options.in_flight);
        // The checkpoint advances over an unbroken run of finished points
        // only: a skipped one is retried by the next job.
        let mut unbroken = true;
        let mut since_checkpoint = 0;
        while let Some((point, outcome)) = results.next().await {
            match outcome {
                Ok(Outcome::Rewrapped) => report.rewrapped += 1,
                Ok(Outcome::Current) => report.current += 1,
                Err(error) => {
                    unbroken = false;
                    report.skipped.push(SkippedPoint {
                        item: point.item.clone(),
                        point: point.id.clone(),
                        error,
                    });
                }
            }
            if unbroken {
                through = order_key(&point);
                since_checkpoint += 1;
                if since_checkpoint >= CHECKPOINT_EVERY {
                    since_checkpoint = 0;
                    self.save_checkpoint(&checkpoint_path, &target_name, &scope, &through)
                        .await?;
                }
            }
            done += 1;
            if let Some(progress) = &options.progress {
                progress(RewrapProgress { done, total });
            }
        }
        drop(results);
        report.cancelled = done < total;
        if report.cancelled || !report.skipped.is_empty() {
            if !through.is_empty() {
                self.save_checkpoint(&checkpoint_path, &target_name, &scope, &through)
                    .await?;
            }
        } else {
            store::delete(self.inner.store.as_ref(), &checkpoint_path).await?;
        }
        Ok(report)
    }

    /// Moves `point` under `targets`: its data header, then its outer
    /// header if it has one (each one atomic put: at any instant each
    /// header opens under its old key or its new one).
    async fn rewrap_to(
        &self,
        point: &RecoveryPoint,
        targets: &Targets,
        cache: &WrapperCache,
    ) -> Result<Outcome, Error> {
        let data = self
            .rewrap_layer(point, Layer::Data, &targets.data, cache)
            .await?;
        if !point.infrastructure_encrypted() {
            return Ok(data);
        }
        let Some(platform) = &targets.infrastructure else {
            return Err(Error::InvalidArgument {
                reason: "no target for the infrastructure layer".into(),
            });
        };
        let outer = self
            .rewrap_layer(point, Layer::Infrastructure, platform, cache)
            .await?;
        Ok(if data == Outcome::Current && outer == Outcome::Current {
            Outcome::Current
        } else {
            Outcome::Rewrapped
        })
    }

    /// Moves one of `point`'s headers under `target`. `cache` keeps the
    /// unwrapping keys of each set of key references met in this job (one
    /// key vault `get` per key, not per point; each unwrap still asks the
    /// key vault, so a revocation during the job is seen).
    async fn rewrap_layer(
        &self,
        point: &RecoveryPoint,
        layer: Layer,
        target: &Arc<dyn KeyWrapper>,
        cache: &WrapperCache,
    ) -> Result<Outcome, Error> {
        let path = match layer {
            Layer::Data => self.inner.layout.header(&point.item, &point.id),
            Layer::Infrastructure => self.inner.layout.outer_header(&point.item, &point.id),
        };
        let header = self.read_header(point, layer).await?;
        let refs: Vec<KeyRef> = header.key_refs().cloned().collect();
        if refs.len() == 1 && refs[0] == *target.key_ref() {
            return Ok(Outcome::Current);
        }
        let cached = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&refs)
            .cloned();
        let wrappers = match cached {
            Some(wrappers) => wrappers,
            None => {
                let wrappers = self.unwrappers(&refs).await?;
                cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(refs, wrappers.clone());
                wrappers
            }
        };
        let target = Arc::clone(target);
        let id = point.id.clone();
        let (opened, rewrapped) = blocking(move || -> Result<_, Error> {
            let refs: Vec<&dyn KeyWrapper> = wrappers.iter().map(|w| w.as_ref()).collect();
            let opened = header.open(&refs).map_err(|e| envelope_error(&id, e))?;
            let rewrapped = opened
                .rewrap(&[target.as_ref()])
                .map_err(|e| envelope_error(&id, e))?;
            Ok((opened, rewrapped))
        })
        .await??;
        self.check_header_is(point, &opened, layer)?;
        store::put(
            self.inner.store.as_ref(),
            &path,
            rewrapped.as_bytes().to_vec(),
        )
        .await?;
        Ok(Outcome::Rewrapped)
    }

    async fn load_checkpoint(
        &self,
        path: &object_store::path::Path,
        target: &str,
        scope: &str,
    ) -> Result<Option<String>, Error> {
        let Some(bytes) =
            store::get_small(self.inner.store.as_ref(), path, layout::MAX_RECORD).await?
        else {
            return Ok(None);
        };
        let checkpoint: Checkpoint = layout::parse(path, &bytes)?;
        layout::check_ours(path, checkpoint.format, &checkpoint.vault_id, self.id())?;
        // A checkpoint of a job towards another key, or over other points:
        // what that job finished says nothing of this one's points.
        Ok(
            (checkpoint.target == target && checkpoint.scope == scope)
                .then_some(checkpoint.through),
        )
    }

    async fn save_checkpoint(
        &self,
        path: &object_store::path::Path,
        target: &str,
        scope: &str,
        through: &str,
    ) -> Result<(), Error> {
        let checkpoint = Checkpoint {
            format: layout::FORMAT,
            vault_id: self.id().to_owned(),
            target: target.to_owned(),
            scope: scope.to_owned(),
            through: through.to_owned(),
        };
        store::put(
            self.inner.store.as_ref(),
            path,
            layout::to_json(&checkpoint),
        )
        .await
    }
}
