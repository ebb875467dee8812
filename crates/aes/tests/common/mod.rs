//! Shared helpers for the integration tests: hex decoding and a parser for
//! NIST CAVP `.rsp` files (also used for the house key-wrap KAT file).
//!
//! Format: `#` comment lines; `[Name = value]` section header lines (a run of
//! them opens a new section); `Name = value` case fields, `Count = ...`
//! starting a new case; bare words such as `FAIL` are flags of the current
//! case. Lines may end in CRLF.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;

/// Decodes hex (either case); panics on anything else, so a corrupt data
/// file fails loudly instead of silently testing nothing.
pub fn hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len().is_multiple_of(2), "odd-length hex string {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
        })
        .collect()
}

/// Decodes hex into a fixed-size array; panics on a length mismatch.
pub fn hex_array<const N: usize>(s: &str) -> [u8; N] {
    let v = hex(s);
    v.as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("expected {N} bytes, got {} from {s:?}", v.len()))
}

/// A section of an `.rsp` file: its `[K = V]` headers and the cases below them.
#[derive(Debug, Default)]
pub struct Section {
    pub headers: BTreeMap<String, String>,
    pub cases: Vec<Case>,
}

impl Section {
    /// The value of header `name`; panics when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("section has no [{name}] header: {:?}", self.headers))
    }

    /// Header `name` parsed as a number.
    pub fn header_usize(&self, name: &str) -> usize {
        self.header(name)
            .parse()
            .unwrap_or_else(|e| panic!("[{name}] is not a number: {e}"))
    }
}

/// One `Count = ...` case.
#[derive(Debug, Default)]
pub struct Case {
    /// 1-based line of the `Count` line, for failure messages.
    pub line: usize,
    pub fields: BTreeMap<String, String>,
    pub flags: Vec<String>,
}

impl Case {
    /// The raw value of field `name`; panics when absent.
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("case at line {} has no {name} field", self.line))
    }

    /// Field `name` hex-decoded.
    pub fn bytes(&self, name: &str) -> Vec<u8> {
        hex(self.get(name))
    }

    /// Field `name` hex-decoded into an array of exactly `N` bytes.
    pub fn array<const N: usize>(&self, name: &str) -> [u8; N] {
        hex_array(self.get(name))
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Identifies the case in assertion messages.
    pub fn id(&self, file: &str) -> String {
        format!("{file}:{} (Count = {})", self.line, self.get("Count"))
    }
}

/// Parses an `.rsp` file into sections.
pub fn parse_rsp(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut in_header_run = false;
    let mut in_case = false;
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            in_case = false;
            continue;
        }
        if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if !in_header_run {
                sections.push(Section::default());
                in_header_run = true;
            }
            let (k, v) = inner
                .split_once('=')
                .unwrap_or_else(|| panic!("line {}: bad header {line:?}", idx + 1));
            let section = sections.last_mut().expect("just pushed");
            section
                .headers
                .insert(k.trim().to_owned(), v.trim().to_owned());
            in_case = false;
            continue;
        }
        in_header_run = false;
        let section = sections
            .last_mut()
            .unwrap_or_else(|| panic!("line {}: case data before any [header]", idx + 1));
        match line.split_once('=') {
            Some((k, v)) => {
                let (k, v) = (k.trim(), v.trim());
                if k == "Count" {
                    section.cases.push(Case {
                        line: idx + 1,
                        ..Case::default()
                    });
                    in_case = true;
                }
                assert!(in_case, "line {}: field {k:?} outside a case", idx + 1);
                let case = section.cases.last_mut().expect("in a case");
                let old = case.fields.insert(k.to_owned(), v.to_owned());
                assert!(old.is_none(), "line {}: duplicate field {k:?}", idx + 1);
            }
            None => {
                assert!(in_case, "line {}: flag {line:?} outside a case", idx + 1);
                section
                    .cases
                    .last_mut()
                    .expect("in a case")
                    .flags
                    .push(line.to_owned());
            }
        }
    }
    sections
}

/// A small deterministic byte generator (SplitMix64), for test inputs that
/// must be reproducible without a data file.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `key` expanded on every tier this CPU can run, each forced. Panics (the
/// test fails, it does not skip) when the crate refuses a tier the CPU has
/// (per `Backend::supported`, the detection CI reads too), accepts one it
/// lacks, or a tier `STRONGROOM_REQUIRE_BACKENDS` requires is missing.
pub fn backends(key: [u8; 32]) -> Vec<(strongroom_aes::Backend, strongroom_aes::Aes256Gcm)> {
    use strongroom_aes::{Aes256Gcm, Aes256Key, Backend};
    let required = Backend::required();
    Backend::ALL
        .iter()
        .filter_map(|&b| {
            let gcm = Aes256Gcm::with_key_and_backend(&Aes256Key::from_bytes(key), b);
            assert_eq!(
                gcm.is_some(),
                b.supported(),
                "{b:?}: constructed vs supported by CPU detection"
            );
            assert!(
                gcm.is_some() || !required.contains(&b),
                "{b:?} is required (STRONGROOM_REQUIRE_BACKENDS) but this CPU cannot run it"
            );
            if let Some(g) = &gcm {
                assert_eq!(g.backend(), b.name());
            }
            gcm.map(|g| (b, g))
        })
        .collect()
}
