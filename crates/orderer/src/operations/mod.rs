//! The operations endpoint (`Operations.ListenAddress`, Fabric's
//! `core/operations`): an HTTP/1.1 server with
//!
//! | path | methods | answer |
//! |---|---|---|
//! | `/healthz` | GET | 200 `{"status":"OK","time":…}` when every chain is ready; 503 `{"status":"Service Unavailable","time":…,"failed_checks":[{"component":…,"reason":…}]}` otherwise; 405 for other methods |
//! | `/metrics` | GET | Prometheus text format, only when `Metrics.Provider` is `prometheus` (as Fabric; 404 otherwise) |
//! | `/logspec` | GET, PUT | GET `{"spec":"…"}`; PUT `{"spec":"…"}` → 204, or 400 `{"error":"…"}`; 400 for other methods |
//! | `/version` | GET | `{"CommitSHA":…,"Version":…}` (empty fields left out); 400 `{"Error":…}` for other methods |
//!
//! Health checks: one per channel. A Kafka chain's component is Fabric's
//! `<channel>/0` (topic/partition); a solo chain's is the channel ID (Fabric
//! registers none for solo; here a halted solo chain is reported too). A
//! chain that is still connecting to Kafka or has halted fails its check.
//!
//! `Operations.TLS` ([`tls`]): HTTPS, optionally mutual; with TLS on,
//! `/metrics` and `/logspec` need a verified client certificate (401
//! otherwise), as in Fabric.
//!
//! The endpoint cannot starve the data path: connections get Fabric's
//! `fabhttp` timeouts and a connection limit ([`serve`]); a `/logspec` body
//! over [`LOGSPEC_MAX_BODY`] is refused (413), a spec naming more than
//! [`LOGSPEC_MAX_LOGGERS`] loggers too (400); applying a spec and rendering
//! `/metrics` run on the blocking pool, one at a time, never on the
//! runtime's workers that serve gRPC.

pub mod logformat;
pub mod logspec;
pub mod serve;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::channels::Registrar;
use crate::consensus::ChainState;
use crate::limits::{LOGSPEC_MAX_BODY, LOGSPEC_MAX_LOGGERS, OPS_READ_TIMEOUT};

/// `/logspec` PUTs and `/metrics` renderings run one at a time.
static HEAVY: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Runs `f` on the blocking pool, after the other heavy operations.
async fn off_workers<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let _turn = HEAVY.acquire().await.ok()?;
    tokio::task::spawn_blocking(f).await.ok()
}
pub use logspec::{LogControl, LogSpec};

/// `Operations.*` and `Metrics.Provider`, resolved at start.
#[derive(Debug, Clone)]
pub struct OperationsSettings {
    /// `Operations.ListenAddress` (`host:port`; port 0 picks a free port).
    pub listen: String,
    /// `Operations.TLS` when `Operations.TLS.Enabled`.
    pub tls: Option<tls::OperationsTls>,
    /// `Metrics.Provider` is `prometheus`: record metrics and serve `/metrics`.
    pub prometheus: bool,
    /// Whether a bind failure stops start-up (the address was configured
    /// explicitly), or only logs (the built-in default address).
    pub required: bool,
    /// The logging control behind `/logspec` (none: `/logspec` answers 503).
    pub log: Option<Arc<LogControl>>,
    /// `/version` `Version`.
    pub version: String,
    /// `/version` `CommitSHA` (left out when empty).
    pub commit_sha: String,
}

/// A running operations server.
#[derive(Debug)]
pub struct OperationsServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// The server task; ends after the shutdown token is cancelled.
    pub task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Ctx {
    registrar: Arc<Registrar>,
    settings: Arc<OperationsSettings>,
}

/// Binds and serves until `shutdown` is cancelled. `Ok(None)` when the
/// endpoint is off (empty address) or the default address is taken.
pub async fn start(
    settings: OperationsSettings,
    registrar: Arc<Registrar>,
    shutdown: CancellationToken,
) -> Result<Option<OperationsServer>> {
    if settings.listen.is_empty() {
        info!("Operations.ListenAddress is empty: the operations endpoint is off");
        return Ok(None);
    }
    // Unreadable TLS files stop start-up, before anything is bound.
    let tls_config = match &settings.tls {
        Some(t) => Some(tls::server_config(t)?),
        None => None,
    };
    let listener = match TcpListener::bind(&settings.listen).await {
        Ok(l) => l,
        Err(e) if !settings.required => {
            warn!(address = %settings.listen, error = %e,
                  "cannot bind the default operations address; the operations endpoint is off");
            return Ok(None);
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "binding the operations endpoint Operations.ListenAddress {}",
                    settings.listen
                )
            })
        }
    };
    let addr = listener.local_addr()?;
    let prometheus = settings.prometheus;
    let ctx = Ctx {
        registrar,
        settings: Arc::new(settings),
    };
    let secure = tls_config.is_some();
    // Fabric's "secure" handlers: a verified client certificate when TLS is on.
    let guarded = |r: axum::routing::MethodRouter<Ctx>| {
        if secure {
            r.layer(axum::middleware::from_fn(require_client_cert))
        } else {
            r
        }
    };
    let mut app = Router::new()
        .route("/healthz", any(healthz))
        .route("/logspec", guarded(any(logspec)))
        .route("/version", any(version));
    if prometheus {
        app = app.route("/metrics", guarded(any(metrics)));
    }
    let app = app.with_state(ctx);
    info!(%addr, metrics = prometheus, tls = secure, "operations endpoint serving /healthz /logspec /version{}",
          if prometheus { " /metrics" } else { "" });
    let task = match tls_config {
        Some(cfg) => {
            let listener = tls::TlsListener::new(listener, cfg, shutdown.clone())?;
            tokio::spawn(serve::serve(listener.into_receiver(), app, shutdown))
        }
        None => {
            let incoming = serve::plain_incoming(listener, shutdown.clone());
            tokio::spawn(serve::serve(incoming, app, shutdown))
        }
    };
    Ok(Some(OperationsServer { addr, task }))
}

/// 401 unless the TLS client presented a verified certificate.
async fn require_client_cert(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<tls::OpsPeer>>()
        .map(|c| c.0);
    if peer.is_some_and(|p| p.verified_client) {
        return next.run(req).await;
    }
    warn!(path = %req.uri().path(), method = %req.method(), remote = ?peer.map(|p| p.addr),
          "client request not authorized: a valid client certificate is required for this operation");
    StatusCode::UNAUTHORIZED.into_response()
}

fn json_response(code: StatusCode, body: serde_json::Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// One failed health check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedCheck {
    /// The component (`<channel>/0` for Kafka, the channel for solo).
    pub component: String,
    /// Why.
    pub reason: String,
}

/// Runs every channel's check; the failures, sorted by component.
pub async fn run_checks(registrar: &Registrar) -> Vec<FailedCheck> {
    let mut failed = Vec::new();
    for id in registrar.channel_ids() {
        let Some(support) = registrar.get(&id) else {
            continue;
        };
        let component = if support.config().consensus_type == "kafka" {
            format!("{id}/{}", crate::consensus::kafka::PARTITION)
        } else {
            id.clone()
        };
        let reason = match support.chain.state() {
            ChainState::Ready => match support.chain.check_health().await {
                None => continue,
                Some(why) => why,
            },
            ChainState::Starting => "consenter has not completed booting".to_string(),
            ChainState::Halted(why) => format!("consenter halted: {why}"),
            ChainState::Stalled(why) => format!("ledger write failing, retrying: {why}"),
            // The reason starts with "catching up: ".
            ChainState::CatchingUp(why) => why,
        };
        failed.push(FailedCheck { component, reason });
    }
    failed.sort_by(|a, b| a.component.cmp(&b.component));
    failed
}

async fn healthz(State(ctx): State<Ctx>, method: Method) -> Response {
    if method != Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let failed = run_checks(&ctx.registrar).await;
    let time = rfc3339_nano(SystemTime::now());
    if failed.is_empty() {
        json_response(StatusCode::OK, json!({"status": "OK", "time": time}))
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "Service Unavailable", "time": time, "failed_checks": failed}),
        )
    }
}

async fn metrics(State(ctx): State<Ctx>, method: Method) -> Response {
    if method != Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    for id in ctx.registrar.channel_ids() {
        if let Some(s) = ctx.registrar.get(&id) {
            crate::metrics::set_ledger_height(&id, s.ledger.height());
        }
    }
    crate::metrics::set_deliver_blocks_buffered(crate::net::streams::blocks_held_total());
    crate::metrics::set_deliver_bytes_buffered(crate::net::streams::bytes_held_total());
    crate::metrics::set_received_bytes_held(crate::net::ingress::bytes_held_total());
    let Some(rendered) = off_workers(crate::metrics::render_text).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    match rendered {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct SpecBody {
    #[serde(default)]
    spec: String,
}

async fn logspec(State(ctx): State<Ctx>, method: Method, body: axum::body::Body) -> Response {
    let err = |code: StatusCode, e: String| json_response(code, json!({ "error": e }));
    let Some(log) = &ctx.settings.log else {
        return err(
            StatusCode::SERVICE_UNAVAILABLE,
            "logging is not controllable in this process".into(),
        );
    };
    match method {
        Method::GET => json_response(StatusCode::OK, json!({ "spec": log.spec() })),
        Method::PUT => {
            let body: Bytes = match tokio::time::timeout(
                OPS_READ_TIMEOUT,
                axum::body::to_bytes(body, LOGSPEC_MAX_BODY),
            )
            .await
            {
                Ok(Ok(b)) => b,
                Ok(Err(_)) => {
                    crate::metrics::refused("logspec_too_large");
                    return err(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("request body larger than {LOGSPEC_MAX_BODY} bytes"),
                    );
                }
                Err(_) => {
                    return err(
                        StatusCode::REQUEST_TIMEOUT,
                        "request body not received in time".into(),
                    )
                }
            };
            let body: SpecBody = match serde_json::from_slice(&body) {
                Ok(b) => b,
                Err(e) => return err(StatusCode::BAD_REQUEST, e.to_string()),
            };
            let loggers = body.spec.split([':', ',']).count();
            if loggers > LOGSPEC_MAX_LOGGERS + 1 {
                crate::metrics::refused("logspec_too_large");
                return err(
                    StatusCode::BAD_REQUEST,
                    format!("spec names {loggers} loggers or levels; at most {LOGSPEC_MAX_LOGGERS} loggers are accepted"),
                );
            }
            let log = Arc::clone(log);
            let spec = body.spec;
            let Some(applied) = off_workers(move || log.activate(&spec).map(|()| log.spec())).await
            else {
                return err(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the spec could not be applied".into(),
                );
            };
            match applied {
                Ok(spec) => {
                    info!(%spec, "logging spec changed through /logspec");
                    StatusCode::NO_CONTENT.into_response()
                }
                Err(e) => err(StatusCode::BAD_REQUEST, e),
            }
        }
        other => err(
            StatusCode::BAD_REQUEST,
            format!("invalid request method: {other}"),
        ),
    }
}

async fn version(State(ctx): State<Ctx>, method: Method) -> Response {
    if method != Method::GET {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({ "Error": format!("invalid request method: {method}") }),
        );
    }
    let mut body = serde_json::Map::new();
    if !ctx.settings.commit_sha.is_empty() {
        body.insert("CommitSHA".into(), json!(ctx.settings.commit_sha));
    }
    if !ctx.settings.version.is_empty() {
        body.insert("Version".into(), json!(ctx.settings.version));
    }
    json_response(StatusCode::OK, serde_json::Value::Object(body))
}

/// `time` as Go's `time.Time` JSON form (RFC 3339 with nanoseconds, trailing
/// zeros of the fraction dropped), in UTC.
pub fn rfc3339_nano(time: SystemTime) -> String {
    let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut s = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn go_time_format() {
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_709_251_199, 120_000_000);
        assert_eq!(rfc3339_nano(t), "2024-02-29T23:59:59.12Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400, 1);
        assert_eq!(rfc3339_nano(t), "2000-02-29T00:00:00.000000001Z");
    }
}
