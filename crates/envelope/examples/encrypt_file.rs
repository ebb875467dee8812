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
//! `OUT` is never written in place. The output goes to a new file beside it,
//! `.OUT.strongroom-tmp-<16 hex digits>` (created exclusively, mode 0600 on
//! Unix), which is flushed, synced to disk and renamed over `OUT` only once
//! the whole stream has been written (and, when decrypting, every chunk
//! verified); then `OUT`'s directory is synced so the rename survives a
//! crash. So `OUT` either keeps what it held before (or stays absent) or
//! holds the complete output; never a part of it. On an error the temporary
//! file is removed and the exit status is 1 (2 for a usage error). If the
//! process is killed, the temporary file can remain: it holds part of the
//! output (when decrypting, verified plaintext) and can be deleted.
//!
//! The rename replaces `OUT` itself: a new file with mode 0600, and a
//! symbolic link at `OUT` is replaced, not followed.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
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
    /// Failed; OUT was not written.
    Run(String),
    /// OUT was written, but something after that failed.
    Written(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Help => f.write_str(USAGE),
            Self::Usage(m) => write!(f, "{m}\n\n{USAGE}"),
            Self::Run(m) | Self::Written(m) => f.write_str(m),
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
        // The library's message adds that no plaintext of the failed part
        // was released. The chunks before it did verify and reached the
        // temporary file (since removed), so this program says what became
        // of OUT instead (see `run`).
        Error::DecryptionFailed => "decryption failed: wrong key, or the data was altered".into(),
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
    output: &File,
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
    let mut writer = enc.finish().map_err(|e| from_env("finishing", e))?;
    writer
        .flush()
        .map_err(|e| from_io("writing the output", e))?;
    Ok((plain, header_len))
}

fn decrypt(
    args: &Args,
    kek: &AesKeyWrapper,
    input: File,
    output: &File,
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
    Ok((plain, header_len))
}

/// The output being written: a new file beside `OUT`, renamed over it by
/// [`Staged::commit`] once complete, and removed when dropped uncommitted
/// (after an error, or a panic).
struct Staged {
    file: File,
    path: PathBuf,
    committed: bool,
}

impl Staged {
    /// Creates `.OUT.strongroom-tmp-<random>` in `OUT`'s directory: beside
    /// it, so the rename stays within one file system; created exclusively
    /// (never an existing file, nor a link planted at that name), readable
    /// only by its owner, since it can hold plaintext.
    fn create(out: &Path) -> Result<Self, Failure> {
        let name = out
            .file_name()
            .ok_or_else(|| usage(format!("OUT {} does not name a file", out.display())))?;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut attempts = 0;
        loop {
            let random = getrandom::u64()
                .map_err(|e| run_err(format!("cannot name a temporary file: {e}")))?;
            let mut temp_name = OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(".strongroom-tmp-{random:016x}"));
            let path = out.with_file_name(temp_name);
            match options.open(&path) {
                Ok(file) => {
                    return Ok(Self {
                        file,
                        path,
                        committed: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => {
                    attempts += 1;
                }
                Err(e) => {
                    return Err(run_err(format!(
                        "cannot create a temporary file {}: {e}",
                        path.display()
                    )));
                }
            }
        }
    }

    /// Makes the output durable under the name `out`: syncs the file's data,
    /// renames it over `out` (atomic: `out` is the old file or the new one,
    /// never a mix), then syncs the directory, which records the rename.
    fn commit(mut self, out: &Path) -> Result<(), Failure> {
        self.file
            .sync_all()
            .map_err(|e| from_io("syncing the output", e))?;
        fs::rename(&self.path, out).map_err(|e| {
            run_err(format!(
                "cannot rename {} to {}: {e}",
                self.path.display(),
                out.display()
            ))
        })?;
        self.committed = true;
        #[cfg(unix)]
        {
            let dir = match out.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| {
                Failure::Written(format!(
                    "{} was written, but syncing its directory failed ({e}); \
                     a crash now could lose the rename",
                    out.display()
                ))
            })?;
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed
            && let Err(e) = fs::remove_file(&self.path)
        {
            eprintln!(
                "warning: could not remove the temporary file {}: {e}; delete it",
                self.path.display()
            );
        }
    }
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
    let (plain, header) = write_output(args).map_err(|e| match e {
        Failure::Run(m) => Failure::Run(format!(
            "{m}; {out} was not written (an existing {out} is unchanged)",
            out = args.output.display()
        )),
        e => e,
    })?;
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

/// Encrypts or decrypts into a [`Staged`] file and commits it: returns the
/// plaintext and header lengths.
fn write_output(args: &Args) -> Result<(u64, u64), Failure> {
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
    let staged = Staged::create(&args.output)?;
    // On an error `staged` is dropped here, which removes the temporary file.
    let lengths = match args.mode {
        Mode::Encrypt => encrypt(args, &kek, input, &staged.file)?,
        Mode::Decrypt => decrypt(args, &kek, input, &staged.file)?,
    };
    staged.commit(&args.output)?;
    Ok(lengths)
}

/// Runs the command line `args` (without the program name), reporting on
/// stderr; returns the exit status: 0, 1 on failure, 2 on a usage error.
///
/// `pub` for `tests/encrypt_file.rs`, which runs it in a child process.
pub fn cli(args: impl Iterator<Item = String>) -> u8 {
    match parse_args(args).and_then(|args| run(&args)) {
        Ok(()) => 0,
        Err(Failure::Help) => {
            println!("{USAGE}");
            0
        }
        Err(e @ Failure::Usage(_)) => {
            eprintln!("encrypt_file: {e}");
            2
        }
        Err(e) => {
            eprintln!("encrypt_file: {e}");
            1
        }
    }
}

fn main() -> ExitCode {
    ExitCode::from(cli(std::env::args().skip(1)))
}
