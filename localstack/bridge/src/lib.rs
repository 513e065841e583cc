//! Runs already-built Lambda binaries on this machine, without Docker:
//!
//! - the Lambda **Invoke API** (`POST /2015-03-31/functions/{name}/invocations`), which moto's
//!   Step Functions interpreter reaches through `localstack/moto_bridge.py`;
//! - the Lambda **Runtime API** (`/2018-06-01/runtime/...`) that each function process polls, under
//!   a per-worker prefix `/rt/{function}/{worker}` given to it in `AWS_LAMBDA_RUNTIME_API`.
//!
//! A function process is started on the first invoke and kept warm (clients built once per cold
//! start, as on Lambda); more are started while invokes queue, up to `max_workers` per function.
//! A handler error comes back as HTTP 200 with `X-Amz-Function-Error: Unhandled` and the
//! `{errorType, errorMessage}` body, as real Lambda answers, so Step Functions Retry/Catch match on
//! `errorType`. Everything binds to 127.0.0.1; [`Bridge::stop`] (or drop) kills every process.

pub mod moto;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Notify, oneshot};

/// What the bridge runs.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    /// Function name (as invoked: a plain name or an ARN's last part) -> binary.
    pub functions: BTreeMap<String, PathBuf>,
    /// Environment of every function process (endpoint, region, table, bucket, ...).
    pub env: Vec<(String, String)>,
    /// The function timeout: the deadline handed to each invocation.
    pub timeout: Duration,
    /// Processes per function at most (concurrent invocations of one function).
    pub max_workers: usize,
    /// Where each process's output goes (`<function>-<worker>.log`); None discards it.
    pub log_dir: Option<PathBuf>,
    /// 0 = a free port.
    pub port: u16,
    /// Called before each invocation is handed to a process and after its outcome, before the
    /// caller is answered (tests change the world at exact points of an execution).
    pub hook: Option<Hook>,
    /// Every invocation in a fresh process: Lambda may recycle a process at any time, so no
    /// handler may count on what an earlier invocation left in memory.
    pub cold_starts: bool,
}

/// Where a [`Hook`] is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookPoint {
    Before,
    /// After the outcome; `error_type` is set when the handler failed.
    After,
}

/// One invocation as the bridge saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct InvocationRecord {
    pub function: String,
    pub payload: serde_json::Value,
    /// The handler's `errorType` when it failed.
    pub error_type: Option<String>,
}

type HookFn = dyn Fn(
        HookPoint,
        InvocationRecord,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    + Send
    + Sync;

/// A callback at [`HookPoint`]s of every invocation.
#[derive(Clone)]
pub struct Hook(pub Arc<HookFn>);

impl Hook {
    pub fn new<F, Fut>(f: F) -> Hook
    where
        F: Fn(HookPoint, InvocationRecord) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        Hook(Arc::new(move |p, r| Box::pin(f(p, r))))
    }
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            functions: BTreeMap::new(),
            env: vec![],
            timeout: Duration::from_secs(900),
            max_workers: 4,
            log_dir: None,
            port: 0,
            hook: None,
            cold_starts: false,
        }
    }
}

impl BridgeConfig {
    /// Maps every `<prefix>*` executable in `dir` to a function of the same name.
    pub fn with_binaries_in(mut self, dir: &std::path::Path, prefix: &str) -> Self {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let path = e.path();
                if name.starts_with(prefix)
                    && path.is_file()
                    && !name.contains('.')
                    && is_executable(&path)
                {
                    self.functions.insert(name, path);
                }
            }
        }
        self
    }
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// An invocation's outcome: the response body, or the error body.
type Outcome = Result<Bytes, Bytes>;

struct Invocation {
    id: String,
    body: Bytes,
    done: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct FunctionState {
    queue: VecDeque<Invocation>,
    /// Workers blocked in `/next`.
    idle: usize,
    workers: usize,
    /// Request id -> where its outcome goes (taken by a worker, not answered yet).
    in_flight: HashMap<String, (u64, oneshot::Sender<Outcome>)>,
    /// Workers that exited before asking for work (init failures in a row).
    init_failures: usize,
    /// Workers that took an invocation (cold starts: the next `/next` retires them).
    served: HashSet<u64>,
    /// Workers the bridge stopped after their invocation (cold starts), not failures.
    retired: HashSet<u64>,
}

struct Shared {
    config: BridgeConfig,
    addr: SocketAddr,
    functions: Mutex<HashMap<String, FunctionState>>,
    notify: HashMap<String, Notify>,
    next_id: AtomicU64,
    invocations: Mutex<BTreeMap<String, u64>>,
    log: Mutex<Vec<InvocationRecord>>,
    children: Mutex<Vec<tokio::process::Child>>,
    /// Worker -> its process id.
    pids: Mutex<HashMap<u64, u32>>,
    /// Function processes started so far.
    started: AtomicU64,
}

/// A running bridge; see the crate documentation.
pub struct Bridge {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Bridge {
    pub async fn start(config: BridgeConfig) -> anyhow::Result<Bridge> {
        // A port just released by an earlier bridge may take a moment to be free again.
        let mut attempt = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await {
                Ok(l) => break l,
                Err(_) if config.port != 0 && attempt < 40 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => anyhow::bail!(
                    "the Lambda bridge cannot bind 127.0.0.1:{} ({e}): choose another port",
                    config.port
                ),
            }
        };
        let addr = listener.local_addr()?;
        let notify = config
            .functions
            .keys()
            .map(|k| (k.clone(), Notify::new()))
            .collect();
        let shared = Arc::new(Shared {
            config,
            addr,
            functions: Mutex::new(HashMap::new()),
            notify,
            next_id: AtomicU64::new(1),
            invocations: Mutex::new(BTreeMap::new()),
            log: Mutex::new(vec![]),
            children: Mutex::new(vec![]),
            pids: Mutex::new(HashMap::new()),
            started: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            .route(
                "/rt/{name}/{worker}/2018-06-01/runtime/invocation/next",
                get(next),
            )
            .route(
                "/rt/{name}/{worker}/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route(
                "/rt/{name}/{worker}/2018-06-01/runtime/invocation/{id}/error",
                post(fail),
            )
            .route(
                "/rt/{name}/{worker}/2018-06-01/runtime/init/error",
                post(init_error),
            )
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("the Lambda bridge stopped: {e}");
            }
        });
        Ok(Bridge { shared, server })
    }

    /// `http://127.0.0.1:<port>`: the Invoke API endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn port(&self) -> u16 {
        self.shared.addr.port()
    }

    /// Invocations received per function so far.
    pub fn invocations(&self) -> BTreeMap<String, u64> {
        self.shared.invocations.lock().unwrap().clone()
    }

    /// Function processes started so far (cold starts).
    pub fn processes_started(&self) -> u64 {
        self.shared.started.load(Ordering::Relaxed)
    }

    /// Every finished invocation in order: function, payload and error type.
    pub fn log(&self) -> Vec<InvocationRecord> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Stops the server and kills every function process.
    pub async fn stop(self) {
        self.server.abort();
        let children: Vec<_> = std::mem::take(&mut *self.shared.children.lock().unwrap());
        for mut c in children {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.server.abort();
        for c in self.shared.children.lock().unwrap().iter_mut() {
            let _ = c.start_kill();
        }
    }
}

/// `arn:aws:lambda:r:a:function:name[:qualifier]` or `name` -> `name`.
pub fn function_name(invoked: &str) -> &str {
    match invoked.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => invoked,
    }
}

fn error_body(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string())
}

async fn invoke(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let name = function_name(&name).to_string();
    if !shared.config.functions.contains_key(&name) {
        let mut r = (
            StatusCode::NOT_FOUND,
            serde_json::json!({"Type": "User", "Message": format!("Function not found: {name} (the bridge runs {:?})", shared.config.functions.keys().collect::<Vec<_>>())}).to_string(),
        )
            .into_response();
        r.headers_mut().insert(
            "x-amzn-errortype",
            HeaderValue::from_static("ResourceNotFoundException"),
        );
        return r;
    }
    *shared
        .invocations
        .lock()
        .unwrap()
        .entry(name.clone())
        .or_insert(0) += 1;
    let mut record = InvocationRecord {
        function: name.clone(),
        payload: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        error_type: None,
    };
    if let Some(hook) = &shared.config.hook {
        (hook.0)(HookPoint::Before, record.clone()).await;
    }
    let (tx, rx) = oneshot::channel();
    let id = format!(
        "bridge-{}-{}",
        std::process::id(),
        shared.next_id.fetch_add(1, Ordering::Relaxed)
    );
    let spawn = {
        let mut fns = shared.functions.lock().unwrap();
        let st = fns.entry(name.clone()).or_default();
        st.queue.push_back(Invocation { id, body, done: tx });
        let spawn = st.queue.len() > st.idle && st.workers < shared.config.max_workers.max(1);
        if spawn {
            st.workers += 1;
        }
        spawn
    };
    if spawn && let Err(e) = spawn_worker(&shared, &name) {
        let mut fns = shared.functions.lock().unwrap();
        let st = fns.entry(name.clone()).or_default();
        st.workers -= 1;
        if let Some(inv) = st.queue.pop_back() {
            let _ = inv
                .done
                .send(Err(error_body("Runtime.InvalidEntrypoint", &e.to_string())));
        }
    }
    shared.notify[&name].notify_waiters();
    let outcome = tokio::time::timeout(shared.config.timeout + Duration::from_secs(5), rx).await;
    let (error, body) = match outcome {
        Ok(Ok(Ok(b))) => (false, b),
        Ok(Ok(Err(b))) => (true, b),
        Ok(Err(_)) => (
            true,
            error_body(
                "Runtime.ExitError",
                "the function process ended without answering",
            ),
        ),
        Err(_) => (
            true,
            error_body(
                "Sandbox.Timedout",
                &format!(
                    "{name} did not answer within {} s",
                    shared.config.timeout.as_secs()
                ),
            ),
        ),
    };
    if error {
        record.error_type = Some(
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["errorType"].as_str().map(str::to_string))
                .unwrap_or_else(|| "Unknown".into()),
        );
    }
    if let Some(hook) = &shared.config.hook {
        (hook.0)(HookPoint::After, record.clone()).await;
    }
    shared.log.lock().unwrap().push(record);
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    if error {
        headers.insert(
            "x-amz-function-error",
            HeaderValue::from_static("Unhandled"),
        );
    }
    (StatusCode::OK, headers, body).into_response()
}

fn spawn_worker(shared: &Arc<Shared>, name: &str) -> anyhow::Result<()> {
    static WORKER: AtomicU64 = AtomicU64::new(1);
    let worker = WORKER.fetch_add(1, Ordering::Relaxed);
    let binary = &shared.config.functions[name];
    let mut cmd = tokio::process::Command::new(binary);
    cmd.envs(
        shared
            .config
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .env(
        "AWS_LAMBDA_RUNTIME_API",
        // The Rust runtime takes a base URL with a path; it needs the scheme to parse one.
        format!("http://{}/rt/{name}/{worker}", shared.addr),
    )
    .env("AWS_LAMBDA_FUNCTION_NAME", name)
    .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
    .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    .env(
        "AWS_LAMBDA_FUNCTION_TIMEOUT",
        shared.config.timeout.as_secs().to_string(),
    )
    .stdin(Stdio::null())
    .kill_on_drop(true);
    match &shared.config.log_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let log = std::fs::File::create(dir.join(format!("{name}-{worker}.log")))?;
            cmd.stdout(log.try_clone()?).stderr(log);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    let child = cmd.spawn().map_err(|e| {
        anyhow::anyhow!(
            "cannot start {} for function {name}: {e}; build it first (cargo build -p deskshift-functions)",
            binary.display()
        )
    })?;
    let pid = child.id();
    shared.started.fetch_add(1, Ordering::Relaxed);
    if let Some(pid) = pid {
        shared.pids.lock().unwrap().insert(worker, pid);
    }
    // The exit is watched by polling so the Child stays in `children` for stop() to kill.
    let shared2 = shared.clone();
    let name2 = name.to_string();
    let status = async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut children = shared2.children.lock().unwrap();
            let Some(pos) = children.iter().position(|c| c.id() == pid) else {
                return;
            };
            if let Ok(Some(_)) = children[pos].try_wait() {
                children.remove(pos);
                drop(children);
                worker_exited(&shared2, &name2, worker);
                return;
            }
        }
    };
    shared.children.lock().unwrap().push(child);
    tokio::spawn(status);
    Ok(())
}

fn worker_exited(shared: &Arc<Shared>, name: &str, worker: u64) {
    shared.pids.lock().unwrap().remove(&worker);
    let mut fns = shared.functions.lock().unwrap();
    let st = fns.entry(name.to_string()).or_default();
    st.workers = st.workers.saturating_sub(1);
    st.served.remove(&worker);
    if st.retired.remove(&worker) {
        // Stopped after its invocation (cold starts): a fresh process takes what is queued.
        if !st.queue.is_empty() && st.workers < shared.config.max_workers.max(1) {
            st.workers += 1;
            drop(fns);
            if let Err(e) = spawn_worker(shared, name) {
                tracing::error!("{e}");
            }
        }
        return;
    }
    let lost: Vec<String> = st
        .in_flight
        .iter()
        .filter(|(_, (w, _))| *w == worker)
        .map(|(id, _)| id.clone())
        .collect();
    for id in lost {
        if let Some((_, tx)) = st.in_flight.remove(&id) {
            let _ = tx.send(Err(error_body(
                "Runtime.ExitError",
                &format!("{name} exited during the invocation; see its log"),
            )));
        }
    }
    st.init_failures += 1;
    // A function that keeps dying before taking work fails its queue instead of respawning.
    if st.workers == 0 && !st.queue.is_empty() {
        if st.init_failures >= 3 {
            while let Some(inv) = st.queue.pop_front() {
                let _ = inv.done.send(Err(error_body(
                    "Runtime.InitError",
                    &format!("{name} exited before taking work three times; see its log"),
                )));
            }
        } else {
            st.workers += 1;
            drop(fns);
            if let Err(e) = spawn_worker(shared, name) {
                tracing::error!("{e}");
            }
        }
    }
}

async fn next(
    State(shared): State<Arc<Shared>>,
    Path((name, worker)): Path<(String, u64)>,
) -> Response {
    let Some(notify) = shared.notify.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    {
        let mut fns = shared.functions.lock().unwrap();
        let st = fns.entry(name.clone()).or_default();
        if shared.config.cold_starts && st.served.contains(&worker) {
            // Its one invocation is answered: the process goes, the next invocation starts cold.
            st.retired.insert(worker);
            drop(fns);
            let pid = shared.pids.lock().unwrap().get(&worker).copied();
            if let Some(child) = shared
                .children
                .lock()
                .unwrap()
                .iter_mut()
                .find(|c| c.id().is_some() && c.id() == pid)
            {
                let _ = child.start_kill();
            }
            return StatusCode::GONE.into_response();
        }
        st.idle += 1;
        st.init_failures = 0;
    }
    let inv = loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut fns = shared.functions.lock().unwrap();
            let st = fns.entry(name.clone()).or_default();
            if let Some(inv) = st.queue.pop_front() {
                st.idle -= 1;
                if shared.config.cold_starts {
                    st.served.insert(worker);
                }
                break inv;
            }
        }
        notified.await;
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + shared.config.timeout;
    let Invocation { id, body, done } = inv;
    shared
        .functions
        .lock()
        .unwrap()
        .entry(name.clone())
        .or_default()
        .in_flight
        .insert(id.clone(), (worker, done));
    let mut headers = HeaderMap::new();
    let h = |v: String| HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""));
    headers.insert("lambda-runtime-aws-request-id", h(id.clone()));
    headers.insert(
        "lambda-runtime-deadline-ms",
        h(deadline.as_millis().to_string()),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        h(format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{name}"
        )),
    );
    headers.insert("lambda-runtime-trace-id", h(format!("Root=1-{id}")));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    (StatusCode::OK, headers, body).into_response()
}

fn complete(shared: &Shared, name: &str, id: &str, outcome: Outcome) -> StatusCode {
    let tx = shared
        .functions
        .lock()
        .unwrap()
        .get_mut(name)
        .and_then(|st| st.in_flight.remove(id));
    match tx {
        Some((_, tx)) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn respond(
    State(shared): State<Arc<Shared>>,
    Path((name, _worker, id)): Path<(String, u64, String)>,
    body: Bytes,
) -> StatusCode {
    complete(&shared, &name, &id, Ok(body))
}

async fn fail(
    State(shared): State<Arc<Shared>>,
    Path((name, _worker, id)): Path<(String, u64, String)>,
    body: Bytes,
) -> StatusCode {
    complete(&shared, &name, &id, Err(body))
}

async fn init_error(
    State(_shared): State<Arc<Shared>>,
    Path((name, worker)): Path<(String, u64)>,
    body: Bytes,
) -> StatusCode {
    tracing::error!(
        "function {name} (worker {worker}) failed to start: {}",
        String::from_utf8_lossy(&body)
    );
    StatusCode::ACCEPTED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_arns() {
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123:function:deskshift-extract"),
            "deskshift-extract"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123:function:deskshift-extract:$LATEST"),
            "deskshift-extract"
        );
        assert_eq!(function_name("deskshift-extract"), "deskshift-extract");
    }
}
