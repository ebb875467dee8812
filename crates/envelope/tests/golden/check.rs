//! What every golden file must do: open with the keys that open it, and
//! fail, with exactly the error and plaintext its case says, with the keys
//! that must not.

use super::*;

/// Random access to `stream` holding `keys`.
fn open_seekable<'a>(
    stream: &'a [u8],
    keys: &[GoldenKey],
) -> Result<SeekableDecryptor<Cursor<&'a [u8]>>, Error> {
    let wrappers: Vec<Box<dyn KeyWrapper>> = keys.iter().map(|k| k.wrapper()).collect();
    let wrappers: Vec<&dyn KeyWrapper> = wrappers.iter().map(Box::as_ref).collect();
    SeekableDecryptor::new(Cursor::new(stream), &wrappers)
}

pub(super) fn check_ok(case: &OkCase) {
    let stream = read_data(case.file);
    if let Make::Derive(derive) = case.make {
        assert!(
            stream == derive(),
            "{} is stale; regenerate (see golden.rs)",
            case.file
        );
    }
    let want = plaintext(case.len);

    // The header says what the case says.
    let header = Header::from_bytes(&stream[..header_len(&stream)]).expect("header");
    assert_eq!(
        header.chunk_size(),
        case.chunk.unwrap_or(1 << 20),
        "{}",
        case.file
    );
    let metadata: BTreeMap<String, String> = case
        .metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(header.metadata(), &metadata, "{}", case.file);
    if let Make::Seal(keys) = case.make {
        let refs: Vec<KeyRef> = keys.iter().map(|k| k.wrapper().key_ref().clone()).collect();
        assert_eq!(
            header.key_refs().cloned().collect::<Vec<_>>(),
            refs,
            "{}",
            case.file
        );
    }

    for keys in case.opens_with {
        let name = GoldenKey::names(keys);
        // Every record opens the stream on its own, on any thread count.
        for threads in [1, 2, 3] {
            let (out, result) = decrypt_with(&stream, keys, threads);
            result.unwrap_or_else(|e| panic!("{} with {name} on {threads}: {e}", case.file));
            assert!(
                out == want,
                "{} with {name} on {threads} threads",
                case.file
            );
        }
        let mut seekable = open_seekable(&stream, keys).expect("seekable");
        assert_eq!(seekable.plaintext_len(), case.len as u64, "{}", case.file);
        assert!(
            seekable.read_range(0, case.len).expect("range") == want,
            "{}",
            case.file
        );
        assert_eq!(seekable.header().expect("header").metadata(), &metadata);
    }
}

fn fail_case(name: &str) -> FailCase {
    fail_cases()
        .into_iter()
        .find(|c| c.name == name)
        .expect("a fail case")
}

pub(super) fn check_fail(name: &str) {
    let case = fail_case(name);
    let file = format!("{name}.srm");
    let stream = read_data(&file);
    assert!(
        stream == (case.mutate)(),
        "{file} is not `{}` applied to {}; regenerate (see golden.rs)",
        case.change,
        case.from
    );
    let want = plaintext(ok_case(case.from).len);
    for outcome in &case.outcomes {
        check_outcome(&file, &stream, &want, outcome);
    }
}

/// Decrypting `stream` holding `outcome.keys` fails as `outcome` says,
/// through every API, releasing only verified plaintext.
fn check_outcome(file: &str, stream: &[u8], want: &[u8], outcome: &Outcome) {
    let keys = GoldenKey::names(outcome.keys);

    // One thread: batches of two chunks, so what comes out is exact.
    let (out, result) = decrypt_with(stream, outcome.keys, 1);
    let err = result.expect_err(file);
    assert!(
        (outcome.expect)(&err),
        "{file} with {keys}: got {err:?}, want {}",
        outcome.error
    );
    assert_eq!(
        out.len(),
        outcome.released,
        "{file} with {keys}: plaintext released"
    );
    assert!(
        out == want[..outcome.released],
        "{file} with {keys}: released bytes differ"
    );

    // More threads, bigger batches: the same error, and never more.
    for threads in [2, 3] {
        let (out, result) = decrypt_with(stream, outcome.keys, threads);
        let err = result.expect_err(file);
        assert!(
            (outcome.expect)(&err),
            "{file} with {keys} on {threads}: {err:?}"
        );
        assert!(
            out.len() <= outcome.released,
            "{file} with {keys} on {threads}: released"
        );
        assert!(out == want[..out.len()], "{file} with {keys} on {threads}");
    }

    // Random access fails too, through either API.
    if let Ok(mut seekable) = open_seekable(stream, outcome.keys) {
        let len = usize::try_from(seekable.plaintext_len()).expect("small");
        assert!(seekable.read_range(0, len).is_err(), "{file}: read_range");
        seekable.seek(SeekFrom::Start(0)).expect("seek");
        let mut out = Vec::new();
        assert!(read_all(&mut seekable, &mut out).is_err(), "{file}: Read");
        assert!(out == want[..out.len()], "{file}: Read released");
    }
}

pub(super) fn check_wrong_keys(name: &str) {
    let case = wrong_key_cases()
        .into_iter()
        .find(|c| c.name == name)
        .expect("a wrong-key case");
    let want = plaintext(ok_case(case.file).len);
    check_outcome(case.file, &read_data(case.file), &want, &case.outcome);
}
