//! Stores named by URL (R18, R19): the local filesystem, Azure Blob
//! Storage and S3, through `object_store`'s clients.
//!
//! | URL | store | credentials |
//! |---|---|---|
//! | `file:///abs/path` | the local filesystem, fsynced | none |
//! | `az://container/prefix` | Azure Blob Storage (feature `azure`) | `AZURE_*`: account key, SAS, client secret, managed identity, ... |
//! | `s3://bucket/prefix` | S3 (feature `aws`) | `AWS_*`: env keys, profile, web identity, instance role, ... |
//!
//! Data goes over HTTPS only (R19): a plain `http://` endpoint is refused
//! with [`Error::InsecureTransport`] unless it is a loopback address (an
//! emulator on this machine) and the caller said so with
//! [`StoreOptions::allow_http_loopback`]. TLS certificates are always
//! checked against the system's roots; no option turns that off.

#[cfg(any(feature = "azure", feature = "aws", test))]
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::path::Path;

use crate::Error;

/// The kind of store a [`Store`] reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKind {
    /// The local filesystem (`file://`).
    Local,
    /// Azure Blob Storage (`az://`).
    Azure,
    /// Amazon S3 or an S3-compatible service (`s3://`).
    S3,
    /// A store made elsewhere ([`Store::from_object_store`]).
    Other,
}

/// How to reach a store named by URL: credentials and endpoints beyond the
/// environment's, the plain-HTTP exception for emulators, retries and
/// timeouts.
///
/// The defaults, chosen for backups (large parts, long jobs):
///
/// | setting | default | why |
/// |---|---|---|
/// | retries | 8, within 60 s | a throttled or restarting endpoint comes back within seconds; a dead one is reported within a minute |
/// | backoff | 100 ms doubling, at most 15 s, with jitter | object_store's own |
/// | request timeout | 120 s | one 8 MiB part at 70 kB/s; a stalled connection fails rather than hang |
/// | connect timeout | 10 s | an unreachable endpoint fails fast, then is retried |
///
/// Retries cover connection failures, 5xx, 408 and 429 answers, and
/// timeouts of idempotent requests (reads, part uploads, overwrites). A
/// create-only put that is retried after it landed is recognised (the
/// object holds exactly the bytes sent) and counts as done.
#[derive(Clone)]
pub struct StoreOptions {
    allow_http_loopback: bool,
    from_env: bool,
    config: Vec<(String, String)>,
    max_retries: usize,
    retry_timeout: Duration,
    request_timeout: Duration,
    connect_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            allow_http_loopback: false,
            from_env: true,
            config: Vec::new(),
            max_retries: 8,
            retry_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl core::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Config values may be secrets (account keys, SAS tokens): only
        // their keys are shown.
        let keys: Vec<&str> = self.config.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("StoreOptions")
            .field("allow_http_loopback", &self.allow_http_loopback)
            .field("from_env", &self.from_env)
            .field("config_keys", &keys)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl StoreOptions {
    /// Allows plain `http://` to an endpoint on a loopback address
    /// (127.0.0.0/8 or `::1`, written as an IP address): an emulator such
    /// as Azurite or moto on this machine. Any other `http://` endpoint is
    /// refused whatever this says.
    #[must_use]
    pub fn allow_http_loopback(mut self, allow: bool) -> Self {
        self.allow_http_loopback = allow;
        self
    }

    /// Whether to read the store's settings from the environment
    /// (`AZURE_*` for `az://`, `AWS_*` for `s3://`, as object_store's
    /// `from_env`; default yes). Settings given with
    /// [`config`](Self::config) win over the environment's.
    #[must_use]
    pub fn from_env(mut self, read: bool) -> Self {
        self.from_env = read;
        self
    }

    /// One setting of the store's client, by object_store's key name:
    /// `azure_storage_account_name`, `azure_storage_account_key`,
    /// `azure_storage_endpoint`, `azure_storage_sas_key`, ... for `az://`;
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_region`,
    /// `aws_endpoint`, ... for `s3://`. Unknown keys fail
    /// [`Store::open`]; `allow_http` and `allow_invalid_certificates` are
    /// refused there (R19).
    #[must_use]
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.push((key.into(), value.into()));
        self
    }

    /// Retries of a failed request (default 8) and the time they may take
    /// in all (default 60 s).
    #[must_use]
    pub fn retries(mut self, max_retries: usize, within: Duration) -> Self {
        self.max_retries = max_retries;
        self.retry_timeout = within;
        self
    }

    /// The longest one request may take, from connecting to the end of
    /// its body (default 120 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The longest connecting may take (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Opens the store `url` names; see [`Store::open`].
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open(&self, url: &str) -> Result<Store, Error> {
        Store::open(url, self)
    }
}

/// A store named by URL, and the prefix in it under which a vault lives.
/// Give it to [`VaultConfig::at`](crate::VaultConfig::at) or
/// [`RecoveryVault::create_local_with_store`](crate::RecoveryVault::create_local_with_store).
///
/// ```
/// use strongroom::{Error, StoreKind, StoreOptions};
///
/// let tmp = tempfile::tempdir()?;
/// let url = format!("file://{}", tmp.path().display());
/// let store = StoreOptions::default().open(&url)?;
/// assert_eq!(store.kind(), StoreKind::Local);
///
/// // Plain HTTP to anything but an emulator on this machine is refused.
/// let refused = StoreOptions::default()
///     .config("aws_endpoint", "http://s3.example.com")
///     .allow_http_loopback(true)
///     .open("s3://backups/vault-1");
/// # #[cfg(feature = "aws")]
/// assert!(matches!(refused, Err(Error::InsecureTransport { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Store {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
    kind: StoreKind,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store `url` names (see the [module](self) table). Nothing
    /// is sent yet: a wrong credential or an unreachable endpoint shows at
    /// the first call.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a malformed URL, an unknown scheme,
    /// a scheme whose feature is off, or an unknown or refused setting;
    /// [`Error::InsecureTransport`] for a plain-HTTP endpoint not allowed
    /// (R19), or a client that cannot be set up from the settings given
    /// (no account name for Azure, say).
    pub fn open(url: &str, options: &StoreOptions) -> Result<Self, Error> {
        let parsed = parse_url(url)?;
        for (key, _) in &options.config {
            let key = key.to_ascii_lowercase();
            if key.ends_with("allow_http") || key.ends_with("allow_invalid_certificates") {
                return Err(Error::InvalidArgument {
                    reason: format!(
                        "the store setting {key} is not accepted: data goes over HTTPS with checked certificates only (R19); for an emulator on this machine use allow_http_loopback"
                    ),
                });
            }
        }
        match parsed {
            Parsed::Local(path) => Ok(Self {
                store: crate::vault::local_store(&path)?,
                prefix: Path::default(),
                url: url.to_owned(),
                kind: StoreKind::Local,
            }),
            Parsed::Azure { container, prefix } => {
                let store = open_azure(&container, options)?;
                Ok(Self {
                    store,
                    prefix,
                    url: url.to_owned(),
                    kind: StoreKind::Azure,
                })
            }
            Parsed::S3 { bucket, prefix } => {
                let store = open_s3(&bucket, options)?;
                Ok(Self {
                    store,
                    prefix,
                    url: url.to_owned(),
                    kind: StoreKind::S3,
                })
            }
        }
    }

    /// A store made elsewhere (any `object_store`), with the prefix the
    /// vault lives under; `url` only names it in messages.
    #[must_use]
    pub fn from_object_store(store: Arc<dyn ObjectStore>, prefix: Path, url: &str) -> Self {
        Self {
            store,
            prefix,
            url: url.to_owned(),
            kind: StoreKind::Other,
        }
    }

    /// The URL it was opened with.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Local, Azure, S3, or another made elsewhere.
    #[must_use]
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The `object_store` client.
    #[must_use]
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// The prefix the vault lives under (empty for `file://`).
    #[must_use]
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    pub(crate) fn into_parts(self) -> (Arc<dyn ObjectStore>, Path) {
        (self.store, self.prefix)
    }
}

enum Parsed {
    Local(PathBuf),
    Azure { container: String, prefix: Path },
    S3 { bucket: String, prefix: Path },
}

fn invalid(url: &str, why: &str) -> Error {
    Error::InvalidArgument {
        reason: format!(
            "store URL {url:?}: {why} (expected file:///absolute/path, az://container/prefix or s3://bucket/prefix)"
        ),
    }
}

fn parse_url(url: &str) -> Result<Parsed, Error> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(url, "no scheme"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            // file:///path, or file://localhost/path.
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(invalid(url, "a file URL needs an absolute path"));
            }
            if path.contains('%') || path.contains('?') || path.contains('#') {
                return Err(invalid(
                    url,
                    "percent-escapes, queries and fragments are not supported in file URLs",
                ));
            }
            Ok(Parsed::Local(PathBuf::from(path)))
        }
        "az" | "azure" => {
            let (container, prefix) = split_bucket(url, rest)?;
            let valid = (3..=63).contains(&container.len())
                && container
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !container.starts_with('-')
                && !container.ends_with('-')
                && !container.contains("--");
            if !valid {
                return Err(invalid(
                    url,
                    "an Azure container name is 3 to 63 lowercase letters, digits and single hyphens",
                ));
            }
            Ok(Parsed::Azure { container, prefix })
        }
        "s3" => {
            let (bucket, prefix) = split_bucket(url, rest)?;
            let valid = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                })
                && bucket.as_bytes()[0].is_ascii_alphanumeric()
                && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric();
            if !valid {
                return Err(invalid(
                    url,
                    "an S3 bucket name is 3 to 63 lowercase letters, digits, dots and hyphens",
                ));
            }
            Ok(Parsed::S3 { bucket, prefix })
        }
        _ => Err(invalid(url, &format!("unknown scheme {scheme:?}"))),
    }
}

fn split_bucket(url: &str, rest: &str) -> Result<(String, Path), Error> {
    if rest.contains('?') || rest.contains('#') || rest.contains('%') {
        return Err(invalid(
            url,
            "queries, fragments and percent-escapes are not supported (credentials come from the environment or StoreOptions::config)",
        ));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_end_matches('/');
    let prefix = Path::parse(prefix).map_err(|e| invalid(url, &format!("bad prefix: {e}")))?;
    Ok((bucket.to_owned(), prefix))
}

/// R19: whether plain HTTP may be used to reach `endpoint`. HTTPS: no
/// need. HTTP: only to a loopback IP address, and only when allowed.
#[cfg(any(feature = "azure", feature = "aws", test))]
fn check_endpoint(endpoint: &str, allow_http_loopback: bool) -> Result<bool, Error> {
    let lower = endpoint.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(false);
    }
    let Some(rest) = lower.strip_prefix("http://") else {
        return Err(Error::InvalidArgument {
            reason: format!("store endpoint {endpoint:?} is not an https:// URL"),
        });
    };
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    let loopback = host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback && allow_http_loopback {
        return Ok(true);
    }
    let reason = if loopback {
        "plain HTTP is refused unless the caller allows it for an emulator on this machine (--allow-http-loopback / StoreOptions::allow_http_loopback)"
    } else {
        "plain HTTP is refused: data in transit goes over HTTPS only (R19); only an emulator on a loopback IP address (127.0.0.1, ::1) may be reached over HTTP, when allowed"
    };
    Err(Error::InsecureTransport {
        endpoint: endpoint.to_owned(),
        reason: reason.into(),
    })
}

#[cfg(any(feature = "azure", feature = "aws"))]
fn client_settings(
    options: &StoreOptions,
) -> (
    object_store::RetryConfig,
    [(object_store::ClientConfigKey, String); 3],
) {
    use object_store::{BackoffConfig, ClientConfigKey, RetryConfig};
    let retry = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: options.max_retries,
        retry_timeout: options.retry_timeout,
    };
    let secs = |d: Duration| format!("{}ms", d.as_millis());
    (
        retry,
        [
            (ClientConfigKey::Timeout, secs(options.request_timeout)),
            (
                ClientConfigKey::ConnectTimeout,
                secs(options.connect_timeout),
            ),
            (ClientConfigKey::AllowInvalidCertificates, "false".into()),
        ],
    )
}

/// A client that cannot be built is a settings problem, not a store
/// failure: nothing was sent, and retrying will not help.
#[cfg(any(feature = "azure", feature = "aws"))]
fn client_error(what: &str) -> impl FnOnce(object_store::Error) -> Error + '_ {
    move |source| Error::InvalidArgument {
        reason: format!(
            "cannot set up a client for {what}: {source}; give the store's settings in the environment or with StoreOptions::config"
        ),
    }
}

#[cfg(feature = "azure")]
fn open_azure(container: &str, options: &StoreOptions) -> Result<Arc<dyn ObjectStore>, Error> {
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    let mut builder = if options.from_env {
        MicrosoftAzureBuilder::from_env()
    } else {
        MicrosoftAzureBuilder::new()
    };
    for (key, value) in &options.config {
        let key: AzureConfigKey =
            key.to_ascii_lowercase()
                .parse()
                .map_err(|_| Error::InvalidArgument {
                    reason: format!("unknown Azure store setting {key:?}"),
                })?;
        builder = builder.with_config(key, value);
    }
    // The endpoint the data goes to: the emulator's (object_store's
    // AZURITE_BLOB_STORAGE_URL, else its default), the one given, or
    // https://<account>.blob.core.windows.net.
    let emulator = builder
        .get_config_value(&AzureConfigKey::UseEmulator)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"));
    let endpoint = if emulator {
        Some(
            std::env::var("AZURITE_BLOB_STORAGE_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:10000".to_owned()),
        )
    } else {
        builder.get_config_value(&AzureConfigKey::Endpoint)
    };
    let allow_http = match &endpoint {
        Some(endpoint) => check_endpoint(endpoint, options.allow_http_loopback)?,
        None => false,
    };
    let (retry, client) = client_settings(options);
    for (key, value) in client {
        builder = builder.with_config(AzureConfigKey::Client(key), value);
    }
    let store = builder
        .with_container_name(container)
        .with_retry(retry)
        .with_allow_http(allow_http)
        .build()
        .map_err(client_error(&format!("az://{container}")))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "azure"))]
fn open_azure(_: &str, _: &StoreOptions) -> Result<Arc<dyn ObjectStore>, Error> {
    Err(Error::InvalidArgument {
        reason: "az:// stores need strongroom's `azure` feature".into(),
    })
}

#[cfg(feature = "aws")]
fn open_s3(bucket: &str, options: &StoreOptions) -> Result<Arc<dyn ObjectStore>, Error> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    let mut builder = if options.from_env {
        AmazonS3Builder::from_env()
    } else {
        AmazonS3Builder::new()
    };
    for (key, value) in &options.config {
        let key: AmazonS3ConfigKey =
            key.to_ascii_lowercase()
                .parse()
                .map_err(|_| Error::InvalidArgument {
                    reason: format!("unknown S3 store setting {key:?}"),
                })?;
        builder = builder.with_config(key, value);
    }
    // As object_store's build: the S3-specific endpoint wins; none means
    // https://s3.<region>.amazonaws.com.
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
    let allow_http = match &endpoint {
        Some(endpoint) => check_endpoint(endpoint, options.allow_http_loopback)?,
        None => false,
    };
    if builder
        .get_config_value(&AmazonS3ConfigKey::Region)
        .is_none()
    {
        builder = builder.with_region("us-east-1");
    }
    let (retry, client) = client_settings(options);
    for (key, value) in client {
        builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
    }
    let store = builder
        .with_bucket_name(bucket)
        .with_retry(retry)
        .with_allow_http(allow_http)
        .build()
        .map_err(client_error(&format!("s3://{bucket}")))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "aws"))]
fn open_s3(_: &str, _: &StoreOptions) -> Result<Arc<dyn ObjectStore>, Error> {
    Err(Error::InvalidArgument {
        reason: "s3:// stores need strongroom's `aws` feature".into(),
    })
}

/// Whether a store error means the store could not be reached after the
/// client's retries: a transport failure (refused, reset, timed out) is
/// somewhere in its chain. (An HTTP error answer is the store's
/// [`Error::Store`].)
pub(crate) fn unreachable(error: &object_store::Error) -> bool {
    #[cfg(any(feature = "azure", feature = "aws"))]
    {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = next {
            if e.downcast_ref::<object_store::client::HttpError>()
                .is_some()
            {
                return true;
            }
            next = e.source();
        }
    }
    #[cfg(not(any(feature = "azure", feature = "aws")))]
    let _ = error;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(
            matches!(parse_url("file:///tmp/x"), Ok(Parsed::Local(p)) if p == std::path::Path::new("/tmp/x"))
        );
        assert!(matches!(
            parse_url("file://localhost/tmp/x"),
            Ok(Parsed::Local(_))
        ));
        match parse_url("az://backups/vaults/one/") {
            Ok(Parsed::Azure { container, prefix }) => {
                assert_eq!(container, "backups");
                assert_eq!(prefix.as_ref(), "vaults/one");
            }
            _ => panic!("az URL not parsed"),
        }
        match parse_url("s3://my.bucket-1") {
            Ok(Parsed::S3 { bucket, prefix }) => {
                assert_eq!(bucket, "my.bucket-1");
                assert_eq!(prefix.as_ref(), "");
            }
            _ => panic!("s3 URL not parsed"),
        }
        for bad in [
            "/tmp/x",
            "file://tmp/x",
            "gs://bucket/x",
            "az://Upper/x",
            "az://ab/x",
            "az://a--b/x",
            "s3://-bucket/x",
            "s3://bucket/a//b",
            "s3://bucket/../x",
            "s3://bucket/x?sig=1",
            "az://container/x%2F",
        ] {
            assert!(
                matches!(parse_url(bad), Err(Error::InvalidArgument { .. })),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            check_endpoint("https://s3.example.com", false).ok(),
            Some(false)
        );
        assert_eq!(
            check_endpoint("HTTPS://x.blob.core.windows.net", true).ok(),
            Some(false)
        );
        for ok in [
            "http://127.0.0.1:10000/devstoreaccount1",
            "http://127.8.9.1",
            "http://[::1]:5000",
            "http://user@127.0.0.1:5000/",
        ] {
            assert_eq!(check_endpoint(ok, true).ok(), Some(true), "{ok}");
            assert!(
                matches!(
                    check_endpoint(ok, false),
                    Err(Error::InsecureTransport { .. })
                ),
                "{ok} allowed without the option"
            );
        }
        for refused in [
            "http://s3.example.com",
            "http://localhost:5000",
            "http://10.0.0.1:5000",
            "http://127.0.0.1.example.com",
            "http://[::2]:5000",
            "http://127.0.0.1@evil.example.com/",
        ] {
            assert!(
                matches!(
                    check_endpoint(refused, true),
                    Err(Error::InsecureTransport { .. })
                ),
                "{refused} allowed"
            );
        }
        assert!(matches!(
            check_endpoint("ftp://x", true),
            Err(Error::InvalidArgument { .. })
        ));
    }
}
