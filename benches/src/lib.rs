//! Benchmarks for Strongroom (no library code).
//!
//! The benchmarks live in `benches/benches/`:
//!
//! * `aead`: AES-256-GCM seal/open throughput, strongroom-aes vs aes-gcm, ring and aws-lc-rs.
//! * `keywrap`: AES-256 key wrap (RFC 3394) and key wrap with padding (RFC 5649),
//!   strongroom-aes vs aes-kw and aws-lc-rs.
//!
//! Run with `cargo bench -p strongroom-benches --bench aead` (or `--bench keywrap`),
//! then `python3 benches/ratios.py` for a throughput/ratio table.
