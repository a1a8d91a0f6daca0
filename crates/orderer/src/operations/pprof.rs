//! `General.Profile`: CPU profiles in pprof's protobuf format on Go's paths,
//! for `go tool pprof http://HOST:6060/debug/pprof/profile?seconds=30`
//! (the `pprof` crate samples the process with `SIGPROF` at 100 Hz, as Go).
//!
//! | path | answer |
//! |---|---|
//! | `/debug/pprof/` | the list of profiles |
//! | `/debug/pprof/profile?seconds=N` | a CPU profile over N seconds (default 30, at most [`MAX_SECONDS`]); one at a time (409 while one runs) |
//! | `/debug/pprof/heap` | 501: this orderer has no heap profiler (its allocator is mimalloc, which records no allocation sites) |
//!
//! Off unless `General.Profile.Enabled` (Fabric's default); plain HTTP
//! without authentication, as Fabric's: bind it to a loopback or management
//! address (SECURITY.md). Connections have the operations endpoint's bounds
//! ([`super::serve`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::RawQuery;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

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

/// `seconds` from the query string: absent means [`DEFAULT_SECONDS`].
pub fn profile_seconds(query: Option<&str>) -> Result<u64, String> {
    let value = query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == "seconds")
        .map(|(_, v)| v);
    let Some(v) = value else {
        return Ok(DEFAULT_SECONDS);
    };
    match v.parse::<u64>() {
        Ok(0) => Err("seconds must be at least 1".into()),
        Ok(n) if n > MAX_SECONDS => Err(format!("seconds must be at most {MAX_SECONDS}")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("seconds {v:?} is not a number")),
    }
}

/// Binds `address` and serves until `shutdown`; returns the bound address.
pub async fn start(address: &str, shutdown: CancellationToken) -> Result<SocketAddr> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding General.Profile.Address {address}"))?;
    let addr = listener.local_addr()?;
    info!(address = %addr, "serving CPU profiles (pprof) on /debug/pprof/profile");
    let app = Router::new()
        .route("/debug/pprof/", get(index))
        .route("/debug/pprof/profile", get(cpu_profile))
        .route("/debug/pprof/heap", get(heap));
    let incoming = serve::plain_incoming(listener, shutdown.clone());
    tokio::spawn(serve::serve(incoming, app, shutdown));
    Ok(addr)
}

async fn index() -> &'static str {
    "/debug/pprof/\n\nprofile: CPU profile (?seconds=N, default 30)\nheap: not available in this orderer\n"
}

async fn heap() -> Response {
    (
        StatusCode::NOT_IMPLEMENTED,
        "heap profiles are not available: this orderer's allocator (mimalloc) records no allocation sites\n",
    )
        .into_response()
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
}
