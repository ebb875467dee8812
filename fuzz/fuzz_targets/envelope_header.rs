//! Header parsing on arbitrary input (docs/FORMAT.md section 2).
//!
//! For every input: `Header::read_from` and `Header::from_bytes` must not
//! panic (nor allocate beyond the format's limits). When a header parses,
//! its serialization `as_bytes()` is exactly the prefix it consumed, it
//! parses again to the same header, and `from_bytes` on the whole input
//! succeeds exactly when nothing follows the header (else `Malformed` at the
//! header's end).
//!
//! Seed the corpus with the golden files for speed:
//! `cp crates/envelope/tests/data/*.srm fuzz/corpus/envelope_header/`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_envelope::{Error, Header};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let parsed = Header::read_from(&mut rest);
    let whole = Header::from_bytes(data);
    let Ok(header) = parsed else {
        assert!(whole.is_err(), "from_bytes accepted what read_from refused");
        return;
    };
    let consumed = data.len() - rest.len();
    assert_eq!(
        header.as_bytes(),
        &data[..consumed],
        "as_bytes is not the input prefix"
    );

    let again = Header::from_bytes(header.as_bytes()).expect("a parsed header parses again");
    assert_eq!(again, header);

    match whole {
        Ok(h) => {
            assert!(rest.is_empty(), "from_bytes ignored trailing bytes");
            assert_eq!(h, header);
        }
        Err(Error::Malformed { offset, .. }) => {
            assert!(!rest.is_empty());
            assert_eq!(offset, consumed as u64);
        }
        Err(e) => panic!("from_bytes on header + trailing bytes: {e:?}"),
    }

    // The accessors hold up on whatever parsed.
    assert!(header.chunk_size().is_power_of_two());
    assert!((1..=16).contains(&header.wrapped_keys().len()));
    assert!(header.metadata().len() <= 64);
    for key_ref in header.key_refs() {
        let _ = key_ref.to_string();
    }
});
