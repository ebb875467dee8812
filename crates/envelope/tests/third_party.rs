//! R5: a third party can decrypt from docs/FORMAT.md alone. Runs
//! `tests/third_party_decrypt.py`, an independent decryptor written with
//! Python's `cryptography` package, over the golden files: it must open
//! each `ok_*` file with the keys `ok_vectors.tsv` names, and refuse every
//! file of `errors.tsv` with the error class this library reports.
//!
//! Needs `python3` and `pip install cryptography` (CI installs both). When
//! either is missing this test fails, saying so: it is never skipped.

use std::path::PathBuf;
use std::process::Command;

fn python() -> &'static str {
    "python3"
}

#[test]
fn third_party_python_decryptor_opens_the_golden_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");

    let probe = Command::new(python())
        .args(["-c", "import cryptography"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}); install Python 3 and `pip install cryptography`")
        });
    assert!(
        probe.status.success(),
        "the Python `cryptography` package is missing: run `pip install cryptography` \
         (python3 said: {})",
        String::from_utf8_lossy(&probe.stderr).trim()
    );

    let run = Command::new(python())
        .arg(dir.join("third_party_decrypt.py"))
        .arg(dir.join("data"))
        .output()
        .expect("python3 ran a moment ago");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "third_party_decrypt.py failed:\n{stdout}\n{stderr}"
    );
    // It really checked something: both record kinds, and the refusals
    // with their error classes (docs/FORMAT.md section 6).
    for line in [
        "ok   ok_two_keys.srm (rsa)",
        "ok   ok_several_chunks.srm (aes)",
        "ok   ok_records_skipped.srm (aes)",
        "ok   fail_empty_final_chunk.srm (aes): decryption-failed",
        "ok   fail_unknown_wrap_algorithm.srm (aes): malformed 151",
        "ok   ok_two_keys.srm (rsa-public): key-unavailable",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}");
    }
    assert!(stdout.contains(" 0 failures"), "{stdout}");
}
