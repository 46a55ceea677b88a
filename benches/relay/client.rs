//! The load generator: a minimal HTTP/1.1 keep-alive client on tokio's `TcpStream`.
//!
//! reqwest (hyper's pooled client) cost the bench's own process so much CPU per request that it capped the
//! bare server near 78,000 req/s on a 2-core machine where `wrk` (one thread, 64 connections) gets about
//! 105,000: every relay/bare ratio came out too high. This client writes each request in one `write_all`,
//! reads the status line and `Content-Length`, and keeps the connection; nothing else. It speaks only what
//! the relay and the bare server answer (HTTP/1.1 with a `Content-Length`), and anything else counts as an
//! error of that request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::opts::Bound;
use crate::AlertGen;

/// A latency histogram (µs or ms), three significant digits, up to an hour in µs (larger values are
/// recorded as that).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

/// Where requests go: the server's address and the request head up to the per-request headers.
pub struct Target {
    pub addr: SocketAddr,
    head: String,
    /// Idle keep-alive connections (the open-loop runs take one per request, or connect).
    idle: Mutex<Vec<Conn>>,
}

impl Target {
    pub fn new(addr: SocketAddr, path: &str) -> Target {
        Target {
            addr,
            head: format!(
                "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            ),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The whole request for alert `i`.
    pub fn request(&self, gen: &AlertGen, i: usize) -> Vec<u8> {
        let (body, sig) = gen.body(i);
        let mut req = Vec::with_capacity(self.head.len() + body.len() + 128);
        req.extend_from_slice(self.head.as_bytes());
        if let Some(sig) = sig {
            req.extend_from_slice(format!("x-hub-signature-256: {sig}\r\n").as_bytes());
        }
        req.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        req.extend_from_slice(&body);
        req
    }

    /// One request on an idle connection (or a new one), which goes back to the pool if it stays usable.
    pub async fn send_pooled(&self, req: &[u8]) -> Outcome {
        let idle = self.idle.lock().unwrap().pop();
        let mut conn = match idle {
            Some(c) => c,
            None => match Conn::connect(self.addr).await {
                Ok(c) => c,
                Err(e) => return Outcome::Error(format!("transport: connect: {e}")),
            },
        };
        let out = conn.roundtrip(req).await;
        if conn.usable {
            self.idle.lock().unwrap().push(conn);
        }
        out
    }
}

/// What one request got.
pub enum Outcome {
    Accepted,
    /// Any other status, or a transport failure: a short description (status and the body's start).
    Error(String),
}

/// One keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    usable: bool,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
            usable: true,
        })
    }

    /// Writes `req`, reads one response.
    pub async fn roundtrip(&mut self, req: &[u8]) -> Outcome {
        match self.exchange(req).await {
            Ok((202, _)) => Outcome::Accepted,
            Ok((status, body)) => {
                let sample: String = String::from_utf8_lossy(&body).chars().take(160).collect();
                Outcome::Error(format!("{status} {sample}"))
            }
            Err(e) => {
                self.usable = false;
                Outcome::Error(format!("transport: {e}"))
            }
        }
    }

    async fn exchange(&mut self, req: &[u8]) -> Result<(u16, Vec<u8>), String> {
        if !self.usable {
            return Err("connection closed".into());
        }
        self.stream
            .write_all(req)
            .await
            .map_err(|e| e.to_string())?;
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| "head not UTF-8")?;
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or("no status line")?;
        let mut len = None;
        for line in head.split("\r\n").skip(1) {
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("connection") && v.trim() == "close" {
                    self.usable = false;
                }
            }
        }
        let len = len.ok_or("response without Content-Length")?;
        while self.buf.len() < head_end + len {
            self.fill().await?;
        }
        let body = if status == 202 {
            Vec::new()
        } else {
            self.buf[head_end..head_end + len].to_vec()
        };
        self.buf.drain(..head_end + len);
        Ok((status, body))
    }

    async fn fill(&mut self) -> Result<(), String> {
        self.buf.reserve(4096);
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) => Err("connection closed by the server".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A run's client-side figures.
pub struct RunStats {
    /// Request → full response, µs (fixed rate: from the intended send time).
    pub lat_us: Histogram<u64>,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

impl Default for RunStats {
    fn default() -> Self {
        RunStats {
            lat_us: histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            elapsed: Duration::ZERO,
        }
    }
}

impl RunStats {
    pub fn count(&mut self, out: Outcome) {
        match out {
            Outcome::Accepted => self.ok += 1,
            Outcome::Error(e) => *self.errors.entry(e).or_default() += 1,
        }
    }
    pub fn merge(&mut self, o: RunStats) {
        self.lat_us
            .add(&o.lat_us)
            .expect("auto-resizing histograms add");
        self.ok += o.ok;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
    /// Quantile `q` (0..=1) of the latency, µs.
    pub fn q(&self, q: f64) -> u64 {
        self.lat_us.value_at_quantile(q)
    }
}

/// Requests `first..` with C in flight, one connection each, until `bound`.
pub async fn closed_loop(
    target: &Arc<Target>,
    gen: &Arc<AlertGen>,
    first: usize,
    bound: Bound,
    c: usize,
) -> RunStats {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let conns = match bound {
        Bound::Count(n) => c.min(n),
        Bound::Time(_) => c,
    };
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (target, gen, next) = (target.clone(), gen.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut st = RunStats::default();
            let mut conn: Option<Conn> = None;
            loop {
                let k = match bound {
                    Bound::Count(n) => match next.fetch_add(1, Ordering::Relaxed) {
                        k if k >= n => break,
                        k => k,
                    },
                    Bound::Time(d) if start.elapsed() >= d => break,
                    Bound::Time(_) => next.fetch_add(1, Ordering::Relaxed),
                };
                let req = target.request(&gen, first + k);
                let t = Instant::now();
                if !conn.as_ref().is_some_and(|c| c.usable) {
                    match Conn::connect(target.addr).await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            st.count(Outcome::Error(format!("transport: connect: {e}")));
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().expect("connected above");
                let out = c.roundtrip(&req).await;
                st.lat_us.saturating_record(t.elapsed().as_micros() as u64);
                st.count(out);
            }
            st
        }));
    }
    let mut st = gather(tasks).await;
    st.elapsed = start.elapsed();
    st
}

/// Open loop: request k is due at start + k/rate, whatever happened to the others; latency counts from the
/// due time, so a stall is not hidden (no coordinated omission).
pub async fn open_loop(
    target: &Arc<Target>,
    gen: &Arc<AlertGen>,
    first: usize,
    n: usize,
    rate: f64,
) -> RunStats {
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for k in 0..n {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(due).await;
        let (target, gen) = (target.clone(), gen.clone());
        tasks.push(tokio::spawn(async move {
            let mut st = RunStats::default();
            let out = target.send_pooled(&target.request(&gen, first + k)).await;
            st.lat_us
                .saturating_record(due.elapsed().as_micros() as u64);
            st.count(out);
            st
        }));
    }
    let mut st = gather(tasks).await;
    st.elapsed = start.elapsed();
    st
}

async fn gather(tasks: Vec<tokio::task::JoinHandle<RunStats>>) -> RunStats {
    let mut all = RunStats::default();
    for t in tasks {
        all.merge(t.await.unwrap());
    }
    all
}
