//! moto server with Step Functions execution and its Lambda invokes sent to a [`crate::Bridge`]:
//! `localstack/moto_bridge.py` on 127.0.0.1, configured through `/moto-api/config`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The configuration that makes moto execute state machines and use the no-Docker Lambda.
pub const EXECUTE_CONFIG: &str =
    r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#;

/// A moto server started by [`MotoBridge::start`]; killed on drop.
pub struct MotoBridge {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

/// `localstack/moto_bridge.py` of the checkout being run: looked for upward from the running
/// package's directory (cargo sets `CARGO_MANIFEST_DIR` for tests and `cargo run`), else beside
/// this crate where it was built (a build directory shared by two checkouts keeps the first's).
pub fn launcher() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../moto_bridge.py");
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|dir| {
            dir.ancestors()
                .map(|d| d.join("localstack/moto_bridge.py"))
                .find(|p| p.is_file())
        })
        .unwrap_or(built)
}

impl MotoBridge {
    /// Starts moto on a free port, its Lambda invokes going to `invoke_endpoint`.
    pub fn start(invoke_endpoint: &str) -> anyhow::Result<MotoBridge> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::env::temp_dir().join(format!(
            "deskshift-moto-bridge-{}-{port}.log",
            std::process::id()
        ));
        let out = std::fs::File::create(&log)?;
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(&python)
            .arg(launcher())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", port.to_string())
            .env("DESKSHIFT_INVOKE_ENDPOINT", invoke_endpoint)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start {python} {} ({e}): install Python 3 and `pip install 'moto[server]>=5.2,<5.3'`",
                    launcher().display()
                )
            })?;
        let mut moto = MotoBridge {
            child: Some(child),
            port,
            log,
        };
        let started = Instant::now();
        loop {
            if let Some(c) = moto.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                anyhow::bail!(
                    "moto (with the Lambda bridge) exited ({status}) before answering: {}; install moto with `pip install 'moto[server]>=5.2,<5.3'`",
                    moto.log_tail()
                );
            }
            if let Ok((200, _)) = http(port, "GET", "/moto-api/", "") {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                anyhow::bail!(
                    "moto did not answer on port {port} within 60 s: {}",
                    moto.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (status, body) = http(port, "POST", "/moto-api/config", EXECUTE_CONFIG)?;
        anyhow::ensure!(
            (200..300).contains(&status),
            "moto refused the execution configuration: HTTP {status} {body}"
        );
        Ok(moto)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for clients and function processes that talk to this moto.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
            ("MOTO_PORT".into(), self.port.to_string()),
        ]
    }

    /// The last lines of moto's output (for test failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for MotoBridge {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
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
