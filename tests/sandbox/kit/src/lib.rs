//! Plumbing shared by the sandbox servers: loopback binding with clean shutdown, seeded fault
//! injection (latency, 5xx, 429 bursts, connection resets, truncated bodies) and small helpers.
//!
//! Every server mounts its platform routes, then `/__sandbox/faults` from [`faults_router`], and
//! wraps the whole router with [`Faults::layer`]. Paths under `/__sandbox/` are never faulted.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server bound to 127.0.0.1; stopped by [`RunningServer::stop`] or when dropped.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting connections and waits for the server task to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(join) = self.join.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), join).await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(join) = self.join.take() {
            join.abort();
        }
    }
}

/// Binds `router` on 127.0.0.1:`port` (0 = an ephemeral port) and serves it in a background task.
pub async fn serve(router: Router, port: u16) -> anyhow::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot bind 127.0.0.1:{port}: {e}; choose another port or 0 for any free one"
            )
        })?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let join = tokio::spawn(async move {
        let _ = axum::serve(listener, router.into_make_service())
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(RunningServer {
        addr,
        base_url: format!("http://{addr}"),
        shutdown: Some(tx),
        join: Some(join),
    })
}

/// Fault knobs. Rates are probabilities per request in [0, 1]; all draws come from one seeded RNG,
/// so the same request sequence meets the same faults.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    pub seed: u64,
    /// Added to every answer.
    pub latency_ms: u64,
    /// Uniform extra latency in [0, jitter_ms].
    pub jitter_ms: u64,
    /// Answer 500/502/503 instead of running the handler.
    pub error_5xx_rate: f64,
    /// Start a burst of `burst_len` consecutive 429 answers.
    pub burst_429_rate: f64,
    /// Length of a 429 burst (at least 1).
    pub burst_len: u32,
    /// Seconds advertised in Retry-After during a burst (0 = no header).
    pub retry_after_secs: u64,
    /// Abort the connection before the handler runs: the request has no effect.
    pub reset_rate: f64,
    /// Run the handler, then cut the answer's body half-way: the request HAS taken effect.
    pub truncate_rate: f64,
}

/// How a platform words the faults it answers with.
pub trait FaultResponder: Send + Sync + 'static {
    fn too_many_requests(&self, retry_after_secs: Option<u64>) -> Response;
    fn server_error(&self, status: StatusCode) -> Response;
}

struct FaultState {
    config: FaultConfig,
    rng: ChaCha8Rng,
    burst_left: u32,
    counters: FaultCounters,
}

/// What the fault layer has done so far (read at `GET /__sandbox/faults`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FaultCounters {
    pub requests: u64,
    pub errors_5xx: u64,
    pub throttled_429: u64,
    pub resets: u64,
    pub truncated: u64,
}

enum Decision {
    Pass,
    Error(StatusCode),
    Throttle(Option<u64>),
    Reset,
    Truncate,
}

/// Shared, runtime-adjustable fault injection for one server.
#[derive(Clone)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
    responder: Arc<dyn FaultResponder>,
}

impl Faults {
    pub fn new(config: FaultConfig, responder: impl FaultResponder) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Faults {
            state: Arc::new(Mutex::new(FaultState {
                config,
                rng,
                burst_left: 0,
                counters: FaultCounters::default(),
            })),
            responder: Arc::new(responder),
        }
    }

    pub fn config(&self) -> FaultConfig {
        self.state.lock().unwrap().config.clone()
    }

    pub fn counters(&self) -> FaultCounters {
        self.state.lock().unwrap().counters.clone()
    }

    /// Replaces the knobs and reseeds the RNG from the new seed.
    pub fn set(&self, config: FaultConfig) {
        let mut st = self.state.lock().unwrap();
        st.rng = ChaCha8Rng::seed_from_u64(config.seed);
        st.burst_left = 0;
        st.config = config;
    }

    /// Wraps a router so that every request outside `/__sandbox/` goes through the fault layer.
    pub fn layer(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(
            self.clone(),
            fault_middleware,
        ))
    }

    fn decide(&self) -> (Duration, Decision) {
        let mut st = self.state.lock().unwrap();
        st.counters.requests += 1;
        let c = st.config.clone();
        let jitter = if c.jitter_ms > 0 {
            st.rng.random_range(0..=c.jitter_ms)
        } else {
            0
        };
        let delay = Duration::from_millis(c.latency_ms + jitter);
        let retry_after = (c.retry_after_secs > 0).then_some(c.retry_after_secs);
        if st.burst_left > 0 {
            st.burst_left -= 1;
            st.counters.throttled_429 += 1;
            return (delay, Decision::Throttle(retry_after));
        }
        let draw: f64 = st.rng.random();
        let mut edge = c.error_5xx_rate;
        if draw < edge {
            st.counters.errors_5xx += 1;
            let status = [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
            ][st.rng.random_range(0..3usize)];
            return (delay, Decision::Error(status));
        }
        edge += c.burst_429_rate;
        if draw < edge {
            st.burst_left = c.burst_len.max(1) - 1;
            st.counters.throttled_429 += 1;
            return (delay, Decision::Throttle(retry_after));
        }
        edge += c.reset_rate;
        if draw < edge {
            st.counters.resets += 1;
            return (delay, Decision::Reset);
        }
        edge += c.truncate_rate;
        if draw < edge {
            st.counters.truncated += 1;
            return (delay, Decision::Truncate);
        }
        (delay, Decision::Pass)
    }
}

async fn fault_middleware(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/__sandbox") {
        return next.run(req).await;
    }
    let (delay, decision) = faults.decide();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match decision {
        Decision::Pass => next.run(req).await,
        Decision::Error(status) => faults.responder.server_error(status),
        Decision::Throttle(retry_after) => faults.responder.too_many_requests(retry_after),
        Decision::Reset => aborted_body(Vec::new()),
        Decision::Truncate => {
            let resp = next.run(req).await;
            let (mut parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let half = bytes.slice(..bytes.len() / 2).to_vec();
            parts.headers.remove(http::header::CONTENT_LENGTH);
            let mut cut = aborted_body(half);
            *cut.status_mut() = parts.status;
            *cut.headers_mut() = parts.headers;
            cut
        }
    }
}

/// An answer whose body stream fails after `prefix`: hyper aborts the connection, so the client
/// sees a reset or an incomplete body.
fn aborted_body(prefix: Vec<u8>) -> Response {
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from(prefix)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox fault: connection reset",
        )),
    ];
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap()
}

/// `GET /__sandbox/faults` -> {config, counters}; `PUT /__sandbox/faults` with a [`FaultConfig`].
pub fn faults_router(faults: Faults) -> Router {
    async fn show(State(f): State<Faults>) -> Response {
        axum::Json(serde_json::json!({"config": f.config(), "counters": f.counters()}))
            .into_response()
    }
    async fn put(State(f): State<Faults>, body: axum::body::Bytes) -> Response {
        match serde_json::from_slice::<FaultConfig>(&body) {
            Ok(cfg) => {
                f.set(cfg);
                axum::Json(serde_json::json!({"config": f.config()})).into_response()
            }
            Err(e) => (
                StatusCode::BAD_REQUEST,
                format!("invalid fault config: {e}"),
            )
                .into_response(),
        }
    }
    Router::new()
        .route("/__sandbox/faults", get(show).put(put))
        .with_state(faults)
}

/// Decodes `Authorization: Basic ...` into (user, password).
pub fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// A deterministic RNG for generators: the same (seed, stream) always gives the same sequence.
pub fn seeded_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

pub use rand;
pub use rand_chacha;
