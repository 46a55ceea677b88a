//! `--mode profile`: where the relay's CPU per alert goes, by stage.
//!
//! One relay saturation run (after the warm-up, so at the retention bound) with `perf record -e cpu-clock
//! --call-graph fp` (`--perf-call-graph`) attached to the relay child; then `perf script` and every sample is given to one stage:
//!
//! 1. **allocator**: the sample's innermost user-space frame is jemalloc's (or Rust's alloc shims);
//! 2. **pruning**: any frame is retention's (`prune_records`, `prune_keys`, the maintenance pass);
//! 3. **journal**: the thread is the group-commit flusher (`journal-flush`) or one of sled's;
//! 4. **paper execution**: any frame is the paper executor's (`alert_relay::paper`), its own sled store
//!    included;
//! 5. otherwise the innermost frame that names a stage: **auth** (hmac, sha2, `alert_relay::verify`),
//!    **template** (minijinja, `alert_relay::template`), **journal** (sled, `alert_relay::journal`, the group
//!    commit), **relay core** (the relay's own ingest, engine and sequencer code), **HTTP** (hyper, warp,
//!    httparse, the socket, `alert_relay::web`); frames of generic crates
//!    (serde, core, std, tokio's scheduler) are passed over, so serde under the journal's codec counts as
//!    journal and under the body parser as HTTP;
//! 6. **other**: the rest (the tokio scheduler, the engine's bookkeeping, the kernel's scheduling); its
//!    most frequent innermost symbols are printed, to refine the rules.
//!
//! Kernel frames count under the user frame that made the system call (an `fdatasync` from sled is journal,
//! a socket write from hyper HTTP). The stage's µs/alert is its share of the samples times the child's
//! CPU per acknowledged alert over the run (from /proc, as in the other modes). With fat LTO much is
//! inlined, so a frame is the outermost function that survived: build with
//! `RUSTFLAGS="-C force-frame-pointers=yes"` for whole stacks (or pass `--perf-call-graph dwarf`). perf must be installed (Debian:
//! `linux-perf`); the VM's hardware counters are not needed (`cpu-clock` is a software event).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::client::closed_loop;
use crate::opts::{Bound, Opts};
use crate::{die, print_client, print_server, AlertGen, Server};

const STAGES: [&str; 9] = [
    "HTTP (hyper/warp)",
    "auth (hmac/verify)",
    "template (minijinja)",
    "journal (sled, group commit)",
    "paper execution",
    "pruning",
    "allocator",
    "relay core (ingest, engine)",
    "other",
];
const HTTP: usize = 0;
const AUTH: usize = 1;
const TEMPLATE: usize = 2;
const JOURNAL: usize = 3;
const PAPER: usize = 4;
const PRUNING: usize = 5;
const ALLOCATOR: usize = 6;
const CORE: usize = 7;
const OTHER: usize = 8;

pub fn run(opts: &Opts, rt: &tokio::runtime::Runtime, gen: &Arc<AlertGen>) {
    let c = opts.concurrency;
    let bound = opts.bound();
    let mut s = Server::start("relay", opts);
    rt.block_on(closed_loop(&s.target, gen, 0, Bound::Count(opts.warmup), c));
    s.mark();
    let mut perf = Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "--call-graph"])
        .arg(&opts.perf_call_graph)
        .arg("-F")
        .arg(opts.perf_freq.to_string())
        .arg("-p")
        .arg(s.pid().to_string())
        .arg("-o")
        .arg(&opts.perf_data)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            die(&format!(
                "profile mode needs perf (Debian: linux-perf): {e}"
            ))
        });
    std::thread::sleep(Duration::from_millis(500)); // perf attaches to every thread
    let st = rt.block_on(closed_loop(&s.target, gen, opts.warmup, bound, c));
    // SIGINT: perf writes its file and exits. (`kill`, since this crate forbids `unsafe`.)
    let _ = Command::new("kill")
        .args(["-INT", &perf.id().to_string()])
        .status();
    let _ = perf.wait();
    let mut st = st;
    print_client(&format!("relay under perf (C={c}, {bound})"), &mut st);
    let r = s.report();
    print_server(&r, st.ok as usize);
    let cpu_ms = r["cpuMs"].as_u64().unwrap_or(0);
    breakdown(&opts.perf_data, cpu_ms, st.ok);
}

/// Reads `perf script` of `data` and prints the samples by stage, in µs per alert.
pub fn breakdown(data: &Path, cpu_ms: u64, alerts: u64) {
    let out = Command::new("perf")
        .args(["script", "-F", "comm,ip,sym", "-i"])
        .arg(data)
        .stderr(Stdio::null())
        .output()
        .unwrap_or_else(|e| die(&format!("perf script: {e}")));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut counts = [0u64; STAGES.len()];
    let mut other_leaf: HashMap<String, u64> = HashMap::new();
    let mut total = 0u64;
    let mut comm = String::new();
    let mut frames: Vec<(bool, String)> = Vec::new();
    let mut flush = |comm: &str, frames: &mut Vec<(bool, String)>| {
        if frames.is_empty() && comm.is_empty() {
            return;
        }
        let stage = classify(comm, frames);
        counts[stage] += 1;
        total += 1;
        if stage == OTHER {
            let leaf = frames
                .iter()
                .find(|(kernel, _)| !kernel)
                .or(frames.first())
                .map(|(_, s)| short(s))
                .unwrap_or_else(|| "[no stack]".into());
            *other_leaf.entry(leaf).or_default() += 1;
        }
        frames.clear();
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            flush(&comm, &mut frames);
            comm = line.trim().to_string();
            continue;
        }
        let mut parts = line.trim().splitn(2, ' ');
        let addr = parts.next().unwrap_or("");
        let sym = parts.next().unwrap_or("[unknown]").trim().to_string();
        // Kernel addresses are in the top half: ffff…
        frames.push((addr.len() >= 16 && addr.starts_with("ffff"), sym));
    }
    flush(&comm, &mut frames);
    if total == 0 {
        println!("profile: perf recorded no samples (is perf allowed? see /proc/sys/kernel/perf_event_paranoid)");
        return;
    }
    let per_alert = cpu_ms as f64 * 1000.0 / alerts.max(1) as f64;
    println!(
        "relay CPU by stage ({total} samples; {per_alert:.1} µs of relay CPU per acknowledged alert in all):"
    );
    for (i, name) in STAGES.iter().enumerate() {
        let share = counts[i] as f64 / total as f64;
        println!(
            "    {name:<30} {:>5.1} %  {:>6.1} µs/alert",
            share * 100.0,
            share * per_alert
        );
    }
    let mut top: Vec<(String, u64)> = other_leaf.into_iter().collect();
    top.sort_by_key(|t| std::cmp::Reverse(t.1));
    println!("    other, innermost user frames:");
    for (sym, n) in top.iter().take(12) {
        println!("        {:>5.1} %  {sym}", *n as f64 * 100.0 / total as f64);
    }
    println!("perf data kept in {} (perf report -i …)", data.display());
}

fn classify(comm: &str, frames: &[(bool, String)]) -> usize {
    let user = || {
        frames
            .iter()
            .filter(|(kernel, _)| !kernel)
            .map(|(_, s)| s.as_str())
    };
    if user().next().is_some_and(is_allocator) {
        return ALLOCATOR;
    }
    let any = |pats: &[&str]| user().any(|s| pats.iter().any(|p| s.contains(p)));
    if any(&[
        "prune_records",
        "prune_keys",
        "prune_view",
        "sweep_orphan",
        "::maintain",
    ]) {
        return PRUNING;
    }
    if comm.starts_with("journal-flush") || comm.contains("sled") {
        return JOURNAL;
    }
    if any(&["alert_relay::paper"]) {
        return PAPER;
    }
    for s in user() {
        if let Some(stage) = stage_of(s) {
            return stage;
        }
    }
    OTHER
}

fn is_allocator(s: &str) -> bool {
    [
        "_rjem_",
        "je_",
        "jemalloc",
        "__rust_alloc",
        "__rust_dealloc",
        "__rust_realloc",
        "__rdl_",
        "malloc",
        "free",
        "realloc",
        "calloc",
        "sdallocx",
        "tcache_",
        "arena_",
        "extent_",
    ]
    .iter()
    .any(|p| s.starts_with(p) || s.contains(&format!("::{p}")))
}

fn stage_of(s: &str) -> Option<usize> {
    let has = |pats: &[&str]| pats.iter().any(|p| s.contains(p));
    if has(&[
        "hmac",
        "sha2::",
        "sha256",
        "alert_relay::verify",
        "subtle::",
        "token_matches",
    ]) {
        Some(AUTH)
    } else if has(&["minijinja", "alert_relay::template"]) {
        Some(TEMPLATE)
    } else if has(&[
        "sled::",
        "alert_relay::journal",
        "alert_relay::group_commit",
        "alert_relay::fsync",
        "crc32",
    ]) {
        Some(JOURNAL)
    } else if has(&[
        "alert_relay::relay",
        "alert_relay::engine",
        "alert_relay::sequencer",
        "alert_relay::body",
        "alert_relay::record",
        "alert_relay::domain",
        "alert_relay::executor",
        "alert_relay::claims",
        "alert_relay::source",
    ]) {
        Some(CORE)
    } else if has(&[
        "hyper::",
        "warp::",
        "httparse",
        "http::",
        "tokio::net",
        "mio::",
        "alert_relay::web",
        "headers::",
    ]) {
        Some(HTTP)
    } else {
        None
    }
}

/// A symbol without its generic arguments' noise, at most 100 characters.
fn short(s: &str) -> String {
    s.chars().take(100).collect()
}
