//! A TCP proxy that passes bytes until told to cut connections.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// Which bytes a fault counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to store: uploads.
    Up,
    /// Store to client: downloads.
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every byte passes.
    Pass,
    /// After `after` more bytes in `dir`, cut every connection; then pass.
    CutOnce { dir: Direction, after: u64 },
    /// After `after` more bytes in `dir`, cut every connection; then close
    /// every new one at once (the store is gone) until healed.
    OutageAfter { dir: Direction, after: u64 },
    /// Every new connection is closed at once.
    Out,
}

struct State {
    mode: Mutex<(Mode, u64)>,
    up: AtomicU64,
    down: AtomicU64,
    cuts: AtomicUsize,
    open: Mutex<Vec<(TcpStream, TcpStream)>>,
    stop: AtomicBool,
}

impl State {
    fn counter(&self, dir: Direction) -> &AtomicU64 {
        match dir {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    /// Counts `n` bytes in `dir`; true when they trip a fault (and then
    /// every open connection is cut).
    fn pass(&self, dir: Direction, n: usize) -> bool {
        let total = self.counter(dir).fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        let mut mode = self.mode.lock().expect("proxy state");
        let (next, tripped) = match mode.0 {
            Mode::CutOnce { dir: d, after } if d == dir && total > mode.1 + after => {
                (Mode::Pass, true)
            }
            Mode::OutageAfter { dir: d, after } if d == dir && total > mode.1 + after => {
                (Mode::Out, true)
            }
            Mode::Out => (Mode::Out, true),
            other => (other, false),
        };
        mode.0 = next;
        drop(mode);
        if tripped {
            self.cuts.fetch_add(1, Ordering::SeqCst);
            for (a, b) in self.open.lock().expect("proxy state").drain(..) {
                let _ = a.shutdown(Shutdown::Both);
                let _ = b.shutdown(Shutdown::Both);
            }
        }
        tripped
    }
}

/// A proxy on 127.0.0.1 in front of `upstream`, passing bytes both ways
/// until a fault is armed. Threads, not async: it must keep working while
/// the code under test blocks its runtime.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free port.
    ///
    /// # Panics
    /// When no port can be bound.
    #[must_use]
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port for the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let state = Arc::new(State {
            mode: Mutex::new((Mode::Pass, 0)),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            cuts: AtomicUsize::new(0),
            open: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for client in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if shared.mode.lock().expect("proxy state").0 == Mode::Out {
                    // The store is gone: the connection closes at once.
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                shared.open.lock().expect("proxy state").push((c3, s3));
                let up = Arc::clone(&shared);
                thread::spawn(move || pump(client, server, Direction::Up, &up));
                let down = Arc::clone(&shared);
                thread::spawn(move || pump(s2, c2, Direction::Down, &down));
            }
        });
        Self { addr, state }
    }

    /// Where it listens (give this to the client instead of the store's).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// After `bytes` more bytes in `dir`, cuts every open connection
    /// mid-transfer, once; then passes bytes again (a transient fault that
    /// retries get past).
    pub fn cut_once_after(&self, dir: Direction, bytes: u64) {
        self.arm(Mode::CutOnce { dir, after: bytes }, dir);
    }

    /// After `bytes` more bytes in `dir`, cuts every open connection and
    /// closes every new one at once until [`heal`](Self::heal): the store
    /// becomes unreachable mid-transfer.
    pub fn outage_after(&self, dir: Direction, bytes: u64) {
        self.arm(Mode::OutageAfter { dir, after: bytes }, dir);
    }

    /// Ends an outage (or disarms a fault): bytes pass again.
    pub fn heal(&self) {
        *self.state.mode.lock().expect("proxy state") = (Mode::Pass, 0);
    }

    /// How many times a fault cut the connections (a test checks its
    /// fault really fired).
    #[must_use]
    pub fn cuts(&self) -> usize {
        self.state.cuts.load(Ordering::SeqCst)
    }

    /// Bytes passed so far in `dir`.
    #[must_use]
    pub fn bytes(&self, dir: Direction) -> u64 {
        self.state.counter(dir).load(Ordering::SeqCst)
    }

    fn arm(&self, mode: Mode, dir: Direction) {
        let base = self.state.counter(dir).load(Ordering::SeqCst);
        *self.state.mode.lock().expect("proxy state") = (mode, base);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        for (a, b) in self.state.open.lock().expect("proxy state").drain(..) {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` to `to`, counting, until either side ends or a fault
/// cuts them.
fn pump(mut from: TcpStream, mut to: TcpStream, dir: Direction, state: &State) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if state.pass(dir, n) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
