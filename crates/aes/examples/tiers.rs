//! Prints which AES-GCM implementation tiers this CPU runs and which it
//! cannot, by the crate's own detection (`Backend::supported`), so that CI
//! and the tests agree with the library about what "this CPU has" means.
//!
//! Run with `cargo run -p strongroom-aes --example tiers`. Two lines, each a
//! comma-separated list, fastest first (the second empty when the CPU runs
//! every tier):
//!
//! ```text
//! runs=avx512,avx2,aesni,portable
//! cannot_run=
//! ```
//!
//! `.ci/run` exports the first as `STRONGROOM_REQUIRE_BACKENDS`, so the
//! tests fail rather than skip a tier this CPU has, and prints the second.

use strongroom_aes::Backend;

fn list(supported: bool) -> String {
    Backend::ALL
        .into_iter()
        .filter(|b| b.supported() == supported)
        .map(Backend::name)
        .collect::<Vec<_>>()
        .join(",")
}

fn main() {
    println!("runs={}", list(true));
    println!("cannot_run={}", list(false));
}
