//! Test support for the store suite: the emulators and a faulty network.
//!
//! - [`azurite`] and [`moto`]: the Azure Blob and S3 emulators that
//!   `scripts/test.sh` installs and starts on 127.0.0.1, named by
//!   `STRONGROOM_TEST_AZURITE` and `STRONGROOM_TEST_S3` (`host:port`).
//!   Without them a test fails, saying how to start them: it never skips.
//!   The first call makes the container (Azurite) or bucket (moto) the
//!   tests share; each test works under its own prefix.
//! - [`FaultProxy`]: a TCP proxy in front of an emulator that passes bytes
//!   until told to cut connections mid-transfer (once, or for good: an
//!   outage), to test retries and what a failure leaves behind.
//!
//! Why a hand-signed request for the container: object_store cannot make
//! containers or buckets, and one `PUT ?restype=container` signed with
//! SharedKey (HMAC-SHA256 under the emulator's published key, 40 lines
//! here) is far lighter than the `azure_storage_blobs` crate and its tree.
//! moto checks no signatures by default, so its bucket is one plain `PUT`.

#![forbid(unsafe_code)]

mod emulator;
mod proxy;

pub use emulator::{CONTAINER, Emulator, EmulatorKind, azurite, moto, unique_prefix};
pub use proxy::{Direction, FaultProxy};
