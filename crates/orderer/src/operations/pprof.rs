//! `General.Profile`: CPU and heap profiles in pprof's protobuf format on
//! Go's paths, for `go tool pprof http://HOST:6060/debug/pprof/profile?seconds=30`
//! and `go tool pprof http://HOST:6060/debug/pprof/heap`.
//!
//! | path | answer |
//! |---|---|
//! | `/debug/pprof/` | the list of profiles |
//! | `/debug/pprof/profile?seconds=N` | a CPU profile over N seconds (default 30, at most [`MAX_SECONDS`]): the `pprof` crate samples the process with `SIGPROF` at 100 Hz, as Go; one at a time (409 while one runs) |
//! | `/debug/pprof/heap` | the memory in use now, by allocation stack (`inuse_space`, bytes), from jemalloc's sampling profiler through `jemalloc_pprof`, function names resolved in the process; one at a time (409) |
//!
//! Heap profiles: jemalloc is the orderer binary's allocator, built with
//! profiling and started with sampling inactive ([`JEMALLOC_CONF`]);
//! [`start`] turns sampling on ([`activate_heap_profiling`]), so only a node
//! with `General.Profile.Enabled` pays for it. One allocation is sampled
//! per [`HEAP_SAMPLE_BYTES`] allocated on average, as Go's
//! `runtime.MemProfileRate`; jemalloc scales each sample up, so the totals
//! estimate all the memory in use, but only memory allocated after start-up
//! (sampling starts there) and only Rust allocations (librdkafka and other C
//! libraries allocate through glibc's malloc). Of Go's heap profile there
//! is only `inuse_space`: no `inuse_objects`, `alloc_space` or
//! `alloc_objects` (and no `/debug/pprof/allocs`). Function names are
//! resolved in the process (`jemalloc_pprof`'s `symbolize`, backtrace-rs),
//! so `go tool pprof` needs neither the binary nor `addr2line`; the first
//! heap profile loads the binary's debug information for that and keeps it
//! (+88 MiB RSS for the debug build in `e2e_pprof`). Query parameters
//! ([`heap_query`]): `gc` is accepted and changes nothing (there is no
//! garbage collector; the profile is always of the memory in use);
//! `debug=0` is the protobuf form, any other `debug` (Go's text form) and
//! `seconds` (Go's delta profile) answer 400. jemalloc writes the raw
//! profile to a file in the temporary directory (`TMPDIR`), removed once
//! read. `_RJEM_MALLOC_CONF` in the environment overrides jemalloc's options
//! (jemalloc's own mechanism; `prof:false` removes heap profiles).
//!
//! Off unless `General.Profile.Enabled` (Fabric's default); plain HTTP
//! without authentication, as Fabric's: bind it to a loopback or management
//! address (SECURITY.md). Connections have the operations endpoint's bounds
//! ([`super::serve`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::RawQuery;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use jemalloc_pprof::JemallocProfCtl;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::serve;

/// Go's default duration of a CPU profile.
pub const DEFAULT_SECONDS: u64 = 30;
/// The longest CPU profile served (Go's is bounded by the server's write
/// timeout; the operations write timeout here is 2 min).
pub const MAX_SECONDS: u64 = 60;
/// Samples per second (Go's `runtime.SetCPUProfileRate` default).
const FREQUENCY: i32 = 100;

/// One CPU profile at a time: `SIGPROF` sampling is process-wide.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// log2 of [`HEAP_SAMPLE_BYTES`]: jemalloc's `lg_prof_sample`.
pub const HEAP_LG_SAMPLE: u32 = 19;
/// Bytes allocated per heap sample on average (512 KiB, Go's default
/// `runtime.MemProfileRate`).
pub const HEAP_SAMPLE_BYTES: u64 = 1 << HEAP_LG_SAMPLE;

/// jemalloc's start-up options, NUL-terminated, as the orderer binary
/// exports them in the `_rjem_malloc_conf` symbol: profiling on (allocation
/// sites can be recorded), sampling inactive until
/// [`activate_heap_profiling`], one sample per [`HEAP_SAMPLE_BYTES`].
pub const JEMALLOC_CONF: &[u8; 46] = b"prof:true,prof_active:false,lg_prof_sample:19\0";

/// Bytes per heap sample once [`activate_heap_profiling`] turned sampling
/// on, as jemalloc reports it (`_RJEM_MALLOC_CONF` in the environment can
/// override [`JEMALLOC_CONF`]).
static HEAP_SAMPLING: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// The first value of `name` in a query string (`a=1&b`: `b` has the value
/// `""`), not percent-decoded (no parameter here needs it).
fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `seconds` from the query string: absent means [`DEFAULT_SECONDS`].
pub fn profile_seconds(query: Option<&str>) -> Result<u64, String> {
    let Some(v) = query_param(query, "seconds") else {
        return Ok(DEFAULT_SECONDS);
    };
    match v.parse::<u64>() {
        Ok(0) => Err("seconds must be at least 1".into()),
        Ok(n) if n > MAX_SECONDS => Err(format!("seconds must be at most {MAX_SECONDS}")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("seconds {v:?} is not a number")),
    }
}

/// Checks `/debug/pprof/heap`'s query string against what is served: the
/// protobuf form of the memory in use now. Read as Go's handler reads it:
/// `gc` may have any value (Go collects garbage first when it is a positive
/// number; here nothing is collected, nothing needs to be); `debug` that is
/// absent, empty, not a number or 0 means the protobuf form, another number
/// Go's text form, which is not served; a non-empty `seconds` asks for Go's
/// delta profile, which is not served either. Other parameters are ignored.
pub fn heap_query(query: Option<&str>) -> Result<(), String> {
    if let Some(d) = query_param(query, "debug") {
        if d.parse::<i64>().is_ok_and(|n| n != 0) {
            return Err(format!(
                "debug={d}: only the protobuf form (debug=0) of the heap profile is served, not Go's text form"
            ));
        }
    }
    if query_param(query, "seconds").is_some_and(|s| !s.is_empty()) {
        return Err(
            "seconds: delta heap profiles are not served; take two profiles and compare them with go tool pprof -diff_base"
                .into(),
        );
    }
    Ok(())
}

/// jemalloc's profiling controller, or why this process has none (its
/// allocator is not the orderer binary's jemalloc with [`JEMALLOC_CONF`]).
fn heap_ctl() -> Result<&'static Arc<tokio::sync::Mutex<JemallocProfCtl>>, &'static str> {
    jemalloc_pprof::PROF_CTL.as_ref().ok_or(
        "jemalloc profiling is not enabled in this process (its allocator is not the orderer binary's jemalloc with prof:true)",
    )
}

/// Turns jemalloc's allocation sampling on (`prof.active`), once at start-up
/// when `General.Profile.Enabled`; until then a sampled jemalloc costs what
/// an unsampled one does. Returns the sampling interval in bytes that
/// jemalloc reports.
pub async fn activate_heap_profiling() -> Result<u64, String> {
    let mut ctl = heap_ctl()?.lock().await;
    if !ctl.activated() {
        ctl.activate()
            .map_err(|e| format!("turning jemalloc's prof.active on: {e}"))?;
    }
    let every = 1u64 << ctl.lg_sample();
    let _ = HEAP_SAMPLING.set(every);
    Ok(every)
}

/// Binds `address` and serves until `shutdown`; returns the bound address.
pub async fn start(address: &str, shutdown: CancellationToken) -> Result<SocketAddr> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding General.Profile.Address {address}"))?;
    let addr = listener.local_addr()?;
    match activate_heap_profiling().await {
        Ok(every) => info!(
            address = %addr,
            heap_sample_bytes = every,
            "serving CPU and heap profiles (pprof) on /debug/pprof/profile and /debug/pprof/heap"
        ),
        Err(e) => warn!(
            address = %addr,
            "serving CPU profiles (pprof) on /debug/pprof/profile; no heap profiles: {e}"
        ),
    }
    let app = Router::new()
        .route("/debug/pprof/", get(index))
        .route("/debug/pprof/profile", get(cpu_profile))
        .route("/debug/pprof/heap", get(heap));
    let incoming = serve::plain_incoming(listener, shutdown.clone());
    tokio::spawn(serve::serve(incoming, app, shutdown));
    Ok(addr)
}

async fn index() -> String {
    let heap = match (heap_ctl(), HEAP_SAMPLING.get()) {
        (Err(e), _) => format!("not available: {e}"),
        (Ok(_), None) => "not available: jemalloc's allocation sampling is off".to_string(),
        (Ok(_), Some(every)) => format!(
            "memory in use by allocation stack (inuse_space), one sample per {} KiB allocated on average; ?gc accepted and ignored, no ?debug=N text form, no ?seconds=N delta",
            every / 1024
        ),
    };
    format!(
        "/debug/pprof/\n\nprofile: CPU profile (?seconds=N, default {DEFAULT_SECONDS}, at most {MAX_SECONDS})\nheap: {heap}\n"
    )
}

async fn heap(RawQuery(query): RawQuery) -> Response {
    if let Err(e) = heap_query(query.as_deref()) {
        return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
    }
    let ctl = match heap_ctl() {
        Ok(ctl) => ctl,
        Err(e) => return (StatusCode::NOT_IMPLEMENTED, format!("{e}\n")).into_response(),
    };
    let Ok(mut ctl) = Arc::clone(ctl).try_lock_owned() else {
        return (
            StatusCode::CONFLICT,
            "a heap profile is already being taken\n",
        )
            .into_response();
    };
    if !ctl.activated() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "jemalloc's allocation sampling (prof.active) is off\n",
        )
            .into_response();
    }
    // jemalloc writes the profile to a file, which is read, symbolised and
    // encoded: a blocking thread, which keeps the lock until it is done.
    let result = tokio::task::spawn_blocking(move || ctl.dump_pprof()).await;
    match result {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"heap\""),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("heap profile: {e:#}\n"),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn cpu_profile(RawQuery(query): RawQuery) -> Response {
    let seconds = match profile_seconds(query.as_deref()) {
        Ok(s) => s,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    if RUNNING.swap(true, Ordering::AcqRel) {
        return (
            StatusCode::CONFLICT,
            "a CPU profile is already being taken\n",
        )
            .into_response();
    }
    // Sampling and symbolising are synchronous: a blocking thread. The flag
    // is cleared there, when the sampling really ends, even if the client
    // went away and this handler was dropped meanwhile.
    let result = tokio::task::spawn_blocking(move || {
        let _running = ClearOnDrop;
        take_cpu_profile(Duration::from_secs(seconds))
    })
    .await;
    match result {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"profile\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// Clears [`RUNNING`] when dropped (also on a panic).
struct ClearOnDrop;

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::Release);
    }
}

/// Samples the process for `duration`; the profile as pprof protobuf.
fn take_cpu_profile(duration: Duration) -> Result<Vec<u8>, String> {
    use pprof::protos::Message;
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        // Unwinding through these from a signal handler can deadlock.
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| format!("could not start CPU profiling: {e}"))?;
    std::thread::sleep(duration);
    let report = guard
        .report()
        .build()
        .map_err(|e| format!("CPU profile report: {e}"))?;
    drop(guard);
    let profile = report
        .pprof()
        .map_err(|e| format!("CPU profile encoding: {e}"))?;
    Ok(profile.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_default_bounds_and_garbage() {
        assert_eq!(profile_seconds(None), Ok(DEFAULT_SECONDS));
        assert_eq!(profile_seconds(Some("debug=1")), Ok(DEFAULT_SECONDS));
        assert_eq!(profile_seconds(Some("seconds=5")), Ok(5));
        assert_eq!(profile_seconds(Some("x=1&seconds=60")), Ok(60));
        assert!(profile_seconds(Some("seconds=61")).is_err());
        assert!(profile_seconds(Some("seconds=0")).is_err());
        assert!(profile_seconds(Some("seconds=-1")).is_err());
        assert!(profile_seconds(Some("seconds=")).is_err());
        assert!(profile_seconds(Some("seconds=1e9")).is_err());
    }

    #[test]
    fn query_param_first_value_and_bare_names() {
        assert_eq!(query_param(None, "gc"), None);
        assert_eq!(query_param(Some(""), "gc"), None);
        assert_eq!(query_param(Some("gc"), "gc"), Some(""));
        assert_eq!(query_param(Some("gc=1&gc=2"), "gc"), Some("1"));
        assert_eq!(query_param(Some("xgc=1&gc=0"), "gc"), Some("0"));
        assert_eq!(query_param(Some("debug=1"), "gc"), None);
    }

    #[test]
    fn heap_query_accepts_gc_and_protobuf_refuses_text_and_delta() {
        for ok in [
            None,
            Some(""),
            Some("gc=1"),
            Some("gc"),
            Some("gc=yes"),
            Some("debug=0"),
            Some("debug="),
            Some("debug=abc"),
            Some("gc=1&debug=0"),
            Some("seconds="),
            Some("sample_index=inuse_space"),
        ] {
            assert_eq!(heap_query(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            Some("debug=1"),
            Some("debug=2"),
            Some("gc=1&debug=-1"),
            Some("seconds=30"),
            Some("seconds=x"),
            Some("debug=0&seconds=5"),
        ] {
            assert!(heap_query(bad).is_err(), "{bad:?}");
        }
        assert!(heap_query(Some("debug=1"))
            .unwrap_err()
            .contains("text form"));
        assert!(heap_query(Some("seconds=5")).unwrap_err().contains("delta"));
    }

    #[test]
    fn jemalloc_conf_samples_at_the_declared_rate_and_starts_inactive() {
        let (conf, nul) = JEMALLOC_CONF.split_at(JEMALLOC_CONF.len() - 1);
        assert_eq!(nul, b"\0");
        assert!(!conf.contains(&0));
        let conf = std::str::from_utf8(conf).unwrap();
        let opts: Vec<(&str, &str)> = conf
            .split(',')
            .map(|kv| kv.split_once(':').unwrap())
            .collect();
        assert_eq!(
            opts,
            [
                ("prof", "true"),
                ("prof_active", "false"),
                ("lg_prof_sample", HEAP_LG_SAMPLE.to_string().as_str()),
            ]
        );
        assert_eq!(HEAP_SAMPLE_BYTES, 512 * 1024);
    }

    #[tokio::test]
    async fn without_the_binarys_malloc_conf_there_is_no_heap_profiler() {
        // This test binary's allocator is the system's and it exports no
        // `_rjem_malloc_conf`: jemalloc (linked, unused) has prof off, and
        // the heap endpoint says so instead of serving an empty profile.
        assert!(heap_ctl().is_err());
        assert!(activate_heap_profiling().await.is_err());
        let resp = heap(RawQuery(None)).await;
        assert_eq!(resp.status(), StatusCode::NOT_IMPLEMENTED);
        let resp = heap(RawQuery(Some("debug=1".into()))).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(index()
            .await
            .contains("heap: not available: jemalloc profiling"));
    }
}
