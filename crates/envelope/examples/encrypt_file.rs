//! Encrypts or decrypts a file with the Strongroom stream format, streaming
//! from a `BufReader<File>` to a `BufWriter<File>` in bounded memory.
//!
//! ```text
//! cargo run --release -p strongroom-envelope --example encrypt_file -- \
//!     encrypt|decrypt IN OUT [--threads N] [--chunk-size BYTES] [--key-file F]
//! ```
//!
//! The key-encryption key is AES-256 (key wrap, `A256KW`): 32 raw bytes or
//! 64 hex digits read from `--key-file`, or, without it, a fixed demo key
//! that protects nothing (a warning says so). Each output gets a fresh DEK,
//! wrapped under the KEK and recorded in the header.
//!
//! On any error the partly written `OUT` is removed and the exit status is
//! 1 (2 for a usage error).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use strongroom_aes::Aes256Key;
use strongroom_envelope::{
    AesKeyWrapper, Decryptor, Encryptor, Error, HeaderOptions, KeyRef, WrapAlgorithm,
};

/// The demo KEK used without `--key-file`. Not a secret: anyone can read it
/// here.
const DEMO_KEK: [u8; 32] = *b"strongroom demo KEK: not secret!";

/// Buffer size of the file reader and writer.
const IO_BUF: usize = 256 << 10;

const USAGE: &str =
    "usage: encrypt_file encrypt|decrypt IN OUT [--threads N] [--chunk-size BYTES] [--key-file F]

  encrypt      write IN as a Strongroom stream (header + body) to OUT
  decrypt      read the Strongroom stream IN, write its plaintext to OUT
  --threads N  seal/open chunks on N threads (default: all cores)
  --chunk-size BYTES
               plaintext bytes per chunk when encrypting: a power of two
               from 4096 to 16777216 (default 1048576)
  --key-file F the AES-256 KEK: 32 raw bytes or 64 hex digits
               (default: a fixed, public demo key)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Encrypt,
    Decrypt,
}

#[derive(Debug)]
struct Args {
    mode: Mode,
    input: PathBuf,
    output: PathBuf,
    threads: Option<usize>,
    chunk_size: Option<usize>,
    key_file: Option<PathBuf>,
}

/// What went wrong, worded for the person at the terminal.
#[derive(Debug)]
enum Failure {
    Help,
    Usage(String),
    Run(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Help => f.write_str(USAGE),
            Self::Usage(m) => write!(f, "{m}\n\n{USAGE}"),
            Self::Run(m) => f.write_str(m),
        }
    }
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::Usage(msg.into())
}

fn run_err(msg: impl Into<String>) -> Failure {
    Failure::Run(msg.into())
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, Failure> {
    let mode = match args.next().as_deref() {
        Some("encrypt") => Mode::Encrypt,
        Some("decrypt") => Mode::Decrypt,
        Some("-h" | "--help") => return Err(Failure::Help),
        Some(other) => return Err(usage(format!("unknown command {other:?}"))),
        None => return Err(usage("missing command")),
    };
    let mut positional = Vec::new();
    let mut threads = None;
    let mut chunk_size = None;
    let mut key_file = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--threads" => {
                let v = value("--threads")?;
                match v.parse::<usize>() {
                    Ok(n) if n >= 1 => threads = Some(n),
                    _ => return Err(usage(format!("--threads: {v:?} is not a number >= 1"))),
                }
            }
            "--chunk-size" => {
                let v = value("--chunk-size")?;
                let n = v
                    .parse::<usize>()
                    .map_err(|_| usage(format!("--chunk-size: {v:?} is not a number")))?;
                chunk_size = Some(n);
            }
            "--key-file" => key_file = Some(PathBuf::from(value("--key-file")?)),
            s if s.starts_with("--") => return Err(usage(format!("unknown option {s}"))),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [input, output]: [PathBuf; 2] = positional
        .try_into()
        .map_err(|p: Vec<PathBuf>| usage(format!("expected IN and OUT, got {} paths", p.len())))?;
    if chunk_size.is_some() && mode == Mode::Decrypt {
        return Err(usage(
            "--chunk-size applies to encrypt only (decrypt reads it from the header)",
        ));
    }
    Ok(Args {
        mode,
        input,
        output,
        threads,
        chunk_size,
        key_file,
    })
}

/// Reads a KEK file: exactly 32 bytes, or 64 hex digits (surrounding
/// whitespace ignored).
fn read_key(path: &Path) -> Result<Aes256Key, Failure> {
    let bytes = fs::read(path)
        .map_err(|e| run_err(format!("cannot read key file {}: {e}", path.display())))?;
    if bytes.len() == 32 {
        return Aes256Key::try_from_slice(&bytes).map_err(|_| run_err("key file: bad length"));
    }
    let text = std::str::from_utf8(&bytes).map(str::trim).unwrap_or("");
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut key = [0u8; 32];
        for (i, k) in key.iter_mut().enumerate() {
            *k = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| run_err("key file: bad hex"))?;
        }
        return Ok(Aes256Key::from_bytes(key));
    }
    Err(run_err(format!(
        "key file {} must hold 32 raw bytes or 64 hex digits (it has {} bytes)",
        path.display(),
        bytes.len()
    )))
}

/// An envelope error, including one carried inside an `io::Error` by
/// `Read` / `Write`, as a message.
fn describe(e: Error) -> String {
    match e {
        Error::Io(io) => format!("I/O error: {io}"),
        e => e.to_string(),
    }
}

fn from_io(what: &str, e: io::Error) -> Failure {
    run_err(format!("{what}: {}", describe(Error::from_io(e))))
}

fn from_env(what: &str, e: Error) -> Failure {
    run_err(format!("{what}: {}", describe(e)))
}

fn encrypt(
    args: &Args,
    kek: &AesKeyWrapper,
    input: File,
    output: File,
) -> Result<(u64, u64), Failure> {
    let mut options = HeaderOptions::default();
    if let Some(bytes) = args.chunk_size {
        options = options
            .chunk_size(bytes)
            .map_err(|e| usage(format!("--chunk-size: {}", describe(e))))?;
    }
    let mut reader = BufReader::with_capacity(IO_BUF, input);
    let writer = BufWriter::with_capacity(IO_BUF, output);
    let mut enc = Encryptor::new(writer, &[kek], &options)
        .map_err(|e| from_env("cannot start encrypting", e))?;
    if let Some(n) = args.threads {
        enc = enc
            .threads(n)
            .map_err(|e| from_env("cannot start threads", e))?;
    }
    let header_len = enc.header().map_or(0, |h| h.as_bytes().len() as u64);
    let plain = io::copy(&mut reader, &mut enc).map_err(|e| from_io("encrypting", e))?;
    let writer = enc.finish().map_err(|e| from_env("finishing", e))?;
    let file = writer
        .into_inner()
        .map_err(|e| from_io("writing the output", e.into_error()))?;
    file.sync_all()
        .map_err(|e| from_io("syncing the output", e))?;
    Ok((plain, header_len))
}

fn decrypt(
    args: &Args,
    kek: &AesKeyWrapper,
    input: File,
    output: File,
) -> Result<(u64, u64), Failure> {
    let reader = BufReader::with_capacity(IO_BUF, input);
    let mut writer = BufWriter::with_capacity(IO_BUF, output);
    let mut dec = Decryptor::new(reader, &[kek]).map_err(|e| from_env("cannot open", e))?;
    if let Some(n) = args.threads {
        dec = dec
            .threads(n)
            .map_err(|e| from_env("cannot start threads", e))?;
    }
    let header_len = dec.header().map_or(0, |h| h.as_bytes().len() as u64);
    let plain = io::copy(&mut dec, &mut writer).map_err(|e| from_io("decrypting", e))?;
    writer
        .flush()
        .map_err(|e| from_io("writing the output", e))?;
    let file = writer
        .into_inner()
        .map_err(|e| from_io("writing the output", e.into_error()))?;
    file.sync_all()
        .map_err(|e| from_io("syncing the output", e))?;
    Ok((plain, header_len))
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn run(args: &Args) -> Result<(), Failure> {
    if same_file(&args.input, &args.output) {
        return Err(usage("IN and OUT are the same file"));
    }
    let key = match &args.key_file {
        Some(path) => read_key(path)?,
        None => {
            eprintln!(
                "warning: no --key-file given; using the fixed demo KEK, which protects nothing"
            );
            Aes256Key::from_bytes(DEMO_KEK)
        }
    };
    let kek = AesKeyWrapper::new(
        KeyRef::new("local", "encrypt_file-kek", "1", WrapAlgorithm::A256Kw),
        &key,
    );
    let input = File::open(&args.input)
        .map_err(|e| run_err(format!("cannot open {}: {e}", args.input.display())))?;
    let output = File::create(&args.output)
        .map_err(|e| run_err(format!("cannot create {}: {e}", args.output.display())))?;
    let result = match args.mode {
        Mode::Encrypt => encrypt(args, &kek, input, output),
        Mode::Decrypt => decrypt(args, &kek, input, output),
    };
    match result {
        Ok((plain, header)) => {
            let verb = match args.mode {
                Mode::Encrypt => "encrypted",
                Mode::Decrypt => "decrypted",
            };
            eprintln!(
                "{verb} {plain} plaintext bytes ({header}-byte header): {} -> {}",
                args.input.display(),
                args.output.display()
            );
            Ok(())
        }
        Err(e) => {
            // Leave no partial output behind (for decryption: only verified
            // plaintext was written, but not all of it).
            if let Err(rm) = fs::remove_file(&args.output) {
                eprintln!(
                    "warning: could not remove the partial output {}: {rm}",
                    args.output.display()
                );
            }
            Err(e)
        }
    }
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args().skip(1)).and_then(|args| run(&args));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e @ Failure::Usage(_)) => {
            eprintln!("encrypt_file: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("encrypt_file: {e}");
            ExitCode::FAILURE
        }
    }
}
