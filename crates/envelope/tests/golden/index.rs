//! Writing the golden files, and the index a third party reads them by:
//! `README.md`, `ok_vectors.tsv` and `errors.tsv` under tests/data.

use super::*;

/// Writes every derived file, and first, when `sealed`, seals the sealed
/// `ok_*` files afresh (new random DEKs and salts).
pub(super) fn regenerate(sealed: bool) {
    let dir = data_dir();
    if sealed {
        for case in OK {
            let Make::Seal(keys) = case.make else {
                continue;
            };
            let wrappers: Vec<Box<dyn KeyWrapper>> = keys.iter().map(|k| k.wrapper()).collect();
            let wrappers: Vec<&dyn KeyWrapper> = wrappers.iter().map(Box::as_ref).collect();
            let stream = encrypt(&plaintext(case.len), &wrappers, &ok_options(case), 1);
            std::fs::write(dir.join(case.file), stream).expect("write ok file");
        }
    }
    // After the sealed files: everything else derives from them. The
    // error table decrypts the files, so it comes last.
    for case in OK {
        if let Make::Derive(derive) = case.make {
            std::fs::write(dir.join(case.file), derive()).expect("write ok file");
        }
    }
    for case in fail_cases() {
        std::fs::write(dir.join(format!("{}.srm", case.name)), (case.mutate)())
            .expect("write fail file");
    }
    std::fs::write(dir.join("README.md"), readme()).expect("write README");
    std::fs::write(dir.join("ok_vectors.tsv"), vectors_tsv()).expect("write tsv");
    std::fs::write(dir.join("errors.tsv"), errors_tsv()).expect("write tsv");
}

/// `+`-joined key sets, `,` between sets.
fn key_sets(sets: &[&[GoldenKey]]) -> String {
    sets.iter()
        .map(|keys| GoldenKey::names(keys))
        .collect::<Vec<_>>()
        .join(",")
}

/// For `third_party_decrypt.py`: file, plaintext length, chunk size, the
/// key sets that each open it.
pub(super) fn vectors_tsv() -> String {
    let mut out = String::from("# file\tplaintext_len\tchunk_size\topens_with\n");
    for case in OK {
        let chunk = case.chunk.unwrap_or(1 << 20);
        writeln!(
            out,
            "{}\t{}\t{chunk}\t{}",
            case.file,
            case.len,
            key_sets(case.opens_with)
        )
        .expect("fmt");
    }
    out
}

/// The error class of docs/FORMAT.md section 6, as `errors.tsv` and
/// `third_party_decrypt.py` write it.
fn class_of(err: &Error) -> String {
    match err {
        Error::Malformed { offset, .. } => format!("malformed {offset}"),
        Error::UnsupportedVersion(v) => format!("unsupported-version {v}"),
        Error::UnsupportedSuite(s) => format!("unsupported-suite {s}"),
        Error::Truncated => "truncated".to_owned(),
        Error::NoMatchingKey { recorded } => {
            let refs: Vec<String> = recorded.iter().map(ToString::to_string).collect();
            format!("no-matching-key {}", refs.join(", "))
        }
        Error::KeyUnavailable { key, .. } => format!("key-unavailable {key}"),
        Error::DecryptionFailed => "decryption-failed".to_owned(),
        Error::TooLarge => "too-large".to_owned(),
        other => panic!("not an error class of a reader: {other:?}"),
    }
}

/// For `third_party_decrypt.py`: every file a reader must refuse, with
/// the keys it holds and the error class it must report (what this
/// library reports, on one thread).
pub(super) fn errors_tsv() -> String {
    let mut rows: Vec<(String, &Outcome)> = Vec::new();
    let fails = fail_cases();
    let wrong = wrong_key_cases();
    for case in &fails {
        for outcome in &case.outcomes {
            rows.push((format!("{}.srm", case.name), outcome));
        }
    }
    for case in &wrong {
        rows.push((case.file.to_owned(), &case.outcome));
    }
    let mut out = String::from("# file\tkeys\terror\n");
    for (file, outcome) in rows {
        let (_, result) = decrypt_with(&read_data(&file), outcome.keys, 1);
        let err = result.expect_err(&file);
        let keys = GoldenKey::names(outcome.keys);
        writeln!(out, "{file}\t{keys}\t{}", class_of(&err)).expect("fmt");
    }
    out
}

/// A pattern for a Markdown table cell.
fn cell(pattern: &str) -> String {
    pattern
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

pub(super) fn readme() -> String {
    let mut out = String::from(
        "# Envelope test vectors (generated; do not edit)\n\
         \n\
         Written by `STRONGROOM_REGENERATE_GOLDEN=derived cargo test -p strongroom-envelope \
         --test golden`\n\
         (`=1` also seals the sealed `ok_*` files afresh) and checked by `tests/golden.rs`; \
         the format is\ndocs/FORMAT.md.\n\
         \n\
         Key material:\n\
         \n\
         - `kek_a256kw.hex`: the AES-256 KEK (hex), key reference \
         `golden-vault/platform-key/v1`, A256KW.\n\
         - `rsa2048_pkcs8.pem`: the RSA-2048 private key (PKCS#8), key reference\n  \
         `customer-vault/cmk-rsa/7`, RSA-OAEP-256 (generated once with `openssl genpkey`).\n\
         \n\
         The keys a reader holds, by name (a reader may hold several: `aes+rsa`). Each is \
         held under\none key reference (vault/name/version, algorithm), matched against \
         records byte for byte\n(docs/FORMAT.md section 3.2):\n\
         \n\
         | keys | what |\n\
         |---|---|\n",
    );
    for key in GoldenKey::ALL {
        writeln!(out, "| `{}` | {} |", key.name(), key.about()).expect("fmt");
    }
    out.push_str(
        "\nPlaintext of every `ok_*` file: byte `i` is `i mod 251`; lengths, and the keys \
         that open\neach file, in `ok_vectors.tsv`. The sealed files were made by the writer; \
         the others are\nderived from them and the key material, and re-derived by every \
         check.\n\
         \n\
         | file | chunk size | plaintext bytes | opens with | what |\n\
         |---|---|---|---|---|\n",
    );
    for case in OK {
        let chunk = case.chunk.unwrap_or(1 << 20);
        let sets: Vec<String> = case
            .opens_with
            .iter()
            .map(|keys| format!("`{}`", GoldenKey::names(keys)))
            .collect();
        writeln!(
            out,
            "| `{}` | {chunk} | {} | {} | {} |",
            case.file,
            case.len,
            sets.join(", "),
            cell(case.about)
        )
        .expect("fmt");
    }
    out.push_str(
        "\nEach `fail_*` file is one change away from an `ok_*` file (a header MAC \
         recomputed under\nthe stream's DEK, where said, is part of the change: what any \
         holder of the DEK can do).\nDecrypting it holding the keys shown must fail with \
         the error shown; on one thread (two\nchunks per batch) exactly the plaintext bytes \
         shown come out first, all from chunks that\nverified. `errors.tsv` gives each \
         error's class (docs/FORMAT.md section 6).\n\
         \n\
         | file | from | change | keys | error | plaintext released |\n\
         |---|---|---|---|---|---|\n",
    );
    for case in fail_cases() {
        for outcome in &case.outcomes {
            writeln!(
                out,
                "| `{}.srm` | `{}` | {} | `{}` | `{}` | {} |",
                case.name,
                case.from,
                cell(case.change),
                GoldenKey::names(outcome.keys),
                cell(outcome.error),
                outcome.released
            )
            .expect("fmt");
        }
    }
    out.push_str(
        "\nSome `ok_*` files must be refused by a reader holding other keys; nothing comes \
         out:\n\
         \n\
         | file | keys | error | why |\n\
         |---|---|---|---|\n",
    );
    for case in wrong_key_cases() {
        writeln!(
            out,
            "| `{}` | `{}` | `{}` | {} |",
            case.file,
            GoldenKey::names(case.outcome.keys),
            cell(case.outcome.error),
            cell(case.why)
        )
        .expect("fmt");
    }
    out
}
