//! A local AWS endpoint for tests and local runs: moto server on 127.0.0.1, or whatever
//! `AWS_ENDPOINT_URL` already points at (LocalStack under Docker, a shared moto).
//!
//! ```no_run
//! # async fn demo() -> deskshift_core::Result<()> {
//! use deskshift_store_aws::{emulator::Emulator, DynamoStore, ensure_table, dynamodb_client};
//! let emulator = Emulator::start()?; // moto on a free port, stopped when `emulator` drops
//! let config = emulator.sdk_config().await;
//! let client = dynamodb_client(&config);
//! ensure_table(&client, "deskshift-test").await?;
//! let store = DynamoStore::new(client, "deskshift-test", "job-1")?;
//! // Child processes (Lambda binaries) get the same endpoint and credentials:
//! let mut cmd = std::process::Command::new("my-handler");
//! cmd.envs(emulator.env());
//! # Ok(()) }
//! ```
//!
//! moto is started through `localstack/moto.sh run <port>` (which installs `moto[server]` with
//! pip when python3 cannot import it, and serialises moto's DynamoDB requests so that single-item
//! writes are atomic as in DynamoDB; see `localstack/moto_atomic.py`), or `moto_server` directly
//! when the script is not beside this crate (concurrent counter updates may then be lost). The process is killed when the [`Emulator`] is dropped, including when a test
//! panics. Nothing here changes this process's environment: configure clients with
//! [`Emulator::sdk_config`] and children with [`Emulator::env`].

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use deskshift_core::{Error, Result};

/// Region used with the emulator when nothing else is configured.
pub const REGION: &str = "us-east-1";
/// Dummy credentials the emulator accepts (moto and LocalStack take any).
pub const ACCESS_KEY_ID: &str = "test";
pub const SECRET_ACCESS_KEY: &str = "test";

/// How long moto may take to answer, including a first-time `pip install`.
const START_TIMEOUT: Duration = Duration::from_secs(240);
/// Attempts with a fresh port when another process grabbed the chosen one first.
const PORT_ATTEMPTS: usize = 3;

const INSTALL_HINT: &str = "install moto server with `pip install 'moto[server]>=5.2,<5.3'` \
    (Python 3; `bash localstack/moto.sh install` does the same), or set AWS_ENDPOINT_URL to a \
    running LocalStack or moto endpoint";

/// A running local AWS endpoint; see the module documentation.
#[derive(Debug)]
pub struct Emulator {
    endpoint: String,
    /// The moto process this emulator started (None when `AWS_ENDPOINT_URL` was given).
    child: Option<Child>,
    port: Option<u16>,
    log: Option<PathBuf>,
}

impl Emulator {
    /// Uses `AWS_ENDPOINT_URL` when it is set, otherwise starts moto server on a free port.
    pub fn start() -> Result<Emulator> {
        match std::env::var("AWS_ENDPOINT_URL") {
            Ok(url) if !url.trim().is_empty() => Emulator::external(url.trim()),
            _ => Emulator::start_moto(),
        }
    }

    /// Starts a new moto server on 127.0.0.1 whatever the environment says.
    pub fn start_moto() -> Result<Emulator> {
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            match spawn_moto(port) {
                Ok(emulator) => return Ok(emulator),
                Err(Failure::PortTaken(message)) => last_error = Some(message),
                Err(Failure::Fatal(e)) => return Err(e),
            }
        }
        Err(Error::Config(format!(
            "moto server could not bind a free port in {PORT_ATTEMPTS} attempts ({}); retry",
            last_error.unwrap_or_default()
        )))
    }

    fn external(url: &str) -> Result<Emulator> {
        let address = socket_address(url)?;
        TcpStream::connect_timeout(&address, Duration::from_secs(5)).map_err(|e| {
            Error::Config(format!(
                "AWS_ENDPOINT_URL={url} does not answer ({e}): start LocalStack or moto there, or \
                 unset AWS_ENDPOINT_URL so the tests start moto themselves"
            ))
        })?;
        Ok(Emulator {
            endpoint: url.trim_end_matches('/').to_string(),
            child: None,
            port: None,
            log: None,
        })
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:45123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The port of the moto server this emulator started (None for an external endpoint).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether this emulator started (and will stop) its own moto server.
    pub fn owns_server(&self) -> bool {
        self.child.is_some()
    }

    fn region(&self) -> String {
        if self.owns_server() {
            return REGION.to_string();
        }
        ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
            .unwrap_or_else(|| REGION.to_string())
    }

    /// Environment for a child process that should talk to this endpoint: `AWS_ENDPOINT_URL`,
    /// dummy credentials, the region, and `MOTO_PORT` for a moto server this emulator started
    /// (moto's Step Functions interpreter calls services on that port).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let region = self.region();
        let mut env = vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", region.clone()),
            ("AWS_DEFAULT_REGION", region),
        ];
        if self.owns_server() || std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            env.push(("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_string()));
            env.push(("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_string()));
        }
        if let Some(port) = self.port {
            env.push(("MOTO_PORT", port.to_string()));
        }
        env
    }

    /// SDK configuration for this endpoint (dummy credentials unless the environment has some
    /// and the endpoint is external). Build S3 clients with [`crate::s3_client`].
    pub async fn sdk_config(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(self.region()));
        if self.owns_server() || std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "deskshift-emulator",
            ));
        }
        loader.load().await
    }

    /// Posts a moto configuration (e.g. `{"stepfunctions":{"execute_state_machine":true}}`) to
    /// `/moto-api/config`; returns moto's answer (its configuration). Only for a moto endpoint.
    pub fn configure_moto(&self, json: &str) -> Result<String> {
        let address = socket_address(&self.endpoint)?;
        let (status, body) = http(&address, "POST", "/moto-api/config", json).map_err(|e| {
            Error::Config(format!(
                "moto at {} did not take the configuration: {e}",
                self.endpoint
            ))
        })?;
        if !(200..300).contains(&status) {
            return Err(Error::Config(format!(
                "moto at {} answered HTTP {status} to POST /moto-api/config: {body}; is this \
                 endpoint a moto server?",
                self.endpoint
            )));
        }
        Ok(body)
    }

    /// Stops the moto server now (dropping the emulator does the same).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(log) = self.log.take() {
            let _ = std::fs::remove_file(log);
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

enum Failure {
    /// Another process took the port between our probe and moto's bind.
    PortTaken(String),
    Fatal(Error),
}

/// `localstack/moto.sh` of this repository, when this crate sits in it.
fn script_path() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../localstack/moto.sh");
    path.is_file().then_some(path)
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| {
        Error::Config(format!(
            "cannot bind a local port for moto server ({e}); check that 127.0.0.1 is usable"
        ))
    })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::Config(format!("cannot read the local port for moto server: {e}")))
}

fn spawn_moto(port: u16) -> std::result::Result<Emulator, Failure> {
    let fatal = |m: String| Failure::Fatal(Error::Config(m));
    let log =
        std::env::temp_dir().join(format!("deskshift-moto-{}-{port}.log", std::process::id()));
    let log_file = File::create(&log)
        .map_err(|e| fatal(format!("cannot create the moto log {}: {e}", log.display())))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| fatal(format!("cannot open the moto log {}: {e}", log.display())))?;
    let mut command = match script_path() {
        Some(script) => {
            let mut c = Command::new("bash");
            c.arg(script).arg("run").arg(port.to_string());
            c
        }
        None => {
            let mut c = Command::new("moto_server");
            c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            c
        }
    };
    command
        .env("MOTO_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err);
    let child = command.spawn().map_err(|e| {
        let _ = std::fs::remove_file(&log);
        fatal(format!(
            "moto server could not be started ({e}); {INSTALL_HINT}"
        ))
    })?;
    let mut emulator = Emulator {
        endpoint: format!("http://127.0.0.1:{port}"),
        child: Some(child),
        port: Some(port),
        log: Some(log.clone()),
    };
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    loop {
        if let Some(child) = emulator.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            let tail = tail(&output, 30);
            emulator.child = None;
            if output.contains("Address already in use") {
                return Err(Failure::PortTaken(tail));
            }
            return Err(fatal(format!(
                "moto server exited ({status}) before answering on port {port}; its output \
                 ends:\n{tail}\n{INSTALL_HINT}"
            )));
        }
        if let Ok((200, _)) = http(&address, "GET", "/moto-api/", "") {
            return Ok(emulator);
        }
        if started.elapsed() > START_TIMEOUT {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(fatal(format!(
                "moto server did not answer on port {port} within {} s; its output ends:\n{}\n\
                 {INSTALL_HINT}",
                START_TIMEOUT.as_secs(),
                tail(&output, 30)
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `host:port` of an `http://` or `https://` URL.
fn socket_address(url: &str) -> Result<SocketAddr> {
    let bad = || {
        Error::Config(format!(
            "AWS_ENDPOINT_URL={url} is not an http(s)://host[:port] URL: fix or unset it"
        ))
    };
    let (rest, default_port) = if let Some(r) = url.strip_prefix("http://") {
        (r, 80)
    } else if let Some(r) = url.strip_prefix("https://") {
        (r, 443)
    } else {
        return Err(bad());
    };
    let host_port = rest.split('/').next().unwrap_or_default();
    if host_port.is_empty() {
        return Err(bad());
    }
    let with_port = if host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host_port.to_string()
    } else {
        format!("{host_port}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(bad)
}

/// A minimal HTTP/1.0 exchange (no TLS); returns the status and the body.
fn http(
    address: &SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls() {
        assert_eq!(
            socket_address("http://127.0.0.1:4566").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 4566))
        );
        assert_eq!(socket_address("http://127.0.0.1/").unwrap().port(), 80);
        assert!(socket_address("127.0.0.1:4566").is_err());
        assert!(socket_address("http://").is_err());
    }
}
