//! The emulators scripts/test.sh starts, and their container and bucket.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64ct::{Base64, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The container (Azurite) and bucket (moto) every test shares, each test
/// under its own prefix.
pub const CONTAINER: &str = "strongroom-tests";

/// Azurite's account and its key, published by Microsoft for the emulator
/// (<https://learn.microsoft.com/azure/storage/common/storage-use-azurite>):
/// not a secret.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Which emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmulatorKind {
    /// Azurite, Azure Blob Storage's emulator.
    Azurite,
    /// moto in server mode, an S3 emulator.
    Moto,
}

/// A running emulator on a loopback address.
#[derive(Debug, Clone, Copy)]
pub struct Emulator {
    kind: EmulatorKind,
    addr: SocketAddr,
}

impl Emulator {
    /// Which one.
    #[must_use]
    pub fn kind(&self) -> EmulatorKind {
        self.kind
    }

    /// Where it listens.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store URL of `prefix` in the shared container or bucket.
    #[must_use]
    pub fn url(&self, prefix: &str) -> String {
        match self.kind {
            EmulatorKind::Azurite => format!("az://{CONTAINER}/{prefix}"),
            EmulatorKind::Moto => format!("s3://{CONTAINER}/{prefix}"),
        }
    }

    /// object_store's settings (key, value) for reaching it at `addr`: its
    /// own address, or a [`FaultProxy`](crate::FaultProxy)'s in front of it.
    #[must_use]
    pub fn config(&self, addr: SocketAddr) -> Vec<(&'static str, String)> {
        match self.kind {
            EmulatorKind::Azurite => vec![
                ("azure_storage_account_name", AZURITE_ACCOUNT.into()),
                ("azure_storage_account_key", AZURITE_KEY.into()),
                (
                    "azure_storage_endpoint",
                    format!("http://{addr}/{AZURITE_ACCOUNT}"),
                ),
            ],
            EmulatorKind::Moto => vec![
                ("aws_access_key_id", "strongroom-test".into()),
                ("aws_secret_access_key", "strongroom-test".into()),
                ("aws_region", "us-east-1".into()),
                ("aws_endpoint", format!("http://{addr}")),
            ],
        }
    }

    /// The same settings as environment variables (`AZURE_STORAGE_*`,
    /// `AWS_*`), for the command.
    #[must_use]
    pub fn env(&self, addr: SocketAddr) -> Vec<(String, String)> {
        self.config(addr)
            .into_iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v))
            .collect()
    }
}

/// A prefix no other test (or run) uses: `name`, the time and a counter.
#[must_use]
pub fn unique_prefix(name: &str) -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{name}-{nanos}-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

fn address(var: &str, what: &str) -> SocketAddr {
    let Ok(value) = std::env::var(var) else {
        panic!(
            "{var} is not set: the store tests need {what} running; `bash scripts/test.sh` installs and starts it (and sets {var}=host:port)"
        )
    };
    value
        .parse()
        .unwrap_or_else(|e| panic!("{var}={value:?} is not host:port: {e}"))
}

/// Azurite, as `STRONGROOM_TEST_AZURITE` names it, with the shared
/// container made.
///
/// # Panics
/// When the variable is unset or the emulator does not answer.
#[must_use]
pub fn azurite() -> Emulator {
    static READY: OnceLock<Emulator> = OnceLock::new();
    *READY.get_or_init(|| {
        let addr = address("STRONGROOM_TEST_AZURITE", "Azurite");
        let date = http_date(SystemTime::now());
        let version = "2021-08-06";
        let resource = format!("/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{CONTAINER}\nrestype:container");
        // SharedKey's string to sign: the verb, eleven standard headers
        // (all empty here, Content-Length 0 written as empty), the x-ms-
        // headers in order, and the resource.
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}"
        );
        let key = Base64::decode_vec(AZURITE_KEY).expect("the published key is base64");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key length");
        mac.update(to_sign.as_bytes());
        let signature = Base64::encode_string(&mac.finalize().into_bytes());
        let request = format!(
            "PUT /{AZURITE_ACCOUNT}/{CONTAINER}?restype=container HTTP/1.1\r\nHost: {addr}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {AZURITE_ACCOUNT}:{signature}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let (status, body) = http(addr, &request, "Azurite");
        // 201 made; 409 there already (another test process made it).
        assert!(
            status == 201 || status == 409,
            "Azurite at {addr} refused to make container {CONTAINER}: {status} {body}"
        );
        Emulator {
            kind: EmulatorKind::Azurite,
            addr,
        }
    })
}

/// moto, as `STRONGROOM_TEST_S3` names it, with the shared bucket made.
///
/// # Panics
/// When the variable is unset or the emulator does not answer.
#[must_use]
pub fn moto() -> Emulator {
    static READY: OnceLock<Emulator> = OnceLock::new();
    *READY.get_or_init(|| {
        let addr = address("STRONGROOM_TEST_S3", "moto (S3)");
        let request = format!(
            "PUT /{CONTAINER} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let (status, body) = http(addr, &request, "moto");
        // 200 made, or there already (moto answers 200 or 409 for that).
        assert!(
            status == 200 || status == 409,
            "moto at {addr} refused to make bucket {CONTAINER}: {status} {body}"
        );
        Emulator {
            kind: EmulatorKind::Moto,
            addr,
        }
    })
}

/// One HTTP/1.1 request over a fresh connection: the status and the body.
fn http(addr: SocketAddr, request: &str, what: &str) -> (u16, String) {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap_or_else(|e| {
            panic!("{what} does not answer at {addr}: {e} (scripts/test.sh starts it)")
        });
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a timeout");
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("writing to {what} at {addr}: {e}"));
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .unwrap_or_else(|e| panic!("reading from {what} at {addr}: {e}"));
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{what} at {addr} answered no HTTP status: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

/// RFC 1123 time, as HTTP dates are written: `Mon, 07 Dec 2026 02:34:08 GMT`.
fn http_date(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let t = UNIX_EPOCH + Duration::from_secs(1_796_610_848);
        assert_eq!(http_date(t), "Mon, 07 Dec 2026 02:34:08 GMT");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
