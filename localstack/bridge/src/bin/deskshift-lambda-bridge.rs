//! Serves the Lambda Invoke and Runtime APIs on 127.0.0.1 for the built function binaries.
//!
//!     deskshift-lambda-bridge --bin-dir target/debug --port 9001
//!     DESKSHIFT_INVOKE_ENDPOINT=http://127.0.0.1:9001 python3 localstack/moto_bridge.py -p 5000

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use deskshift_lambda_bridge::{Bridge, BridgeConfig};

#[derive(Parser)]
struct Args {
    /// Directory holding the function binaries (each `deskshift-*` executable is a function).
    #[arg(long, default_value = "target/debug")]
    bin_dir: PathBuf,
    #[arg(long, default_value = "deskshift-")]
    prefix: String,
    #[arg(long, default_value_t = 9001)]
    port: u16,
    /// Function timeout in seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    #[arg(long, default_value_t = 4)]
    max_workers: usize,
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Every invocation in a fresh process (Lambda may recycle a warm one at any time).
    #[arg(long)]
    cold_starts: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // Function processes inherit this environment (AWS_ENDPOINT_URL, DESKSHIFT_TABLE, ...).
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("AWS_")
                || k.starts_with("DESKSHIFT_")
                || k == "MOTO_PORT"
                || k == "RUST_LOG"
        })
        .collect();
    let mut config = BridgeConfig {
        env,
        timeout: Duration::from_secs(args.timeout),
        max_workers: args.max_workers,
        log_dir: args.log_dir,
        port: args.port,
        cold_starts: args.cold_starts,
        ..Default::default()
    }
    .with_binaries_in(&args.bin_dir, &args.prefix);
    config.functions.remove("deskshift-lambda-bridge");
    anyhow::ensure!(
        !config.functions.is_empty(),
        "no {}* executables in {}: build them with `cargo build -p deskshift-functions`",
        args.prefix,
        args.bin_dir.display()
    );
    let bridge = Bridge::start(config.clone()).await?;
    eprintln!(
        "Lambda Invoke API on {} for {} functions: {:?}",
        bridge.endpoint(),
        config.functions.len(),
        config.functions.keys().collect::<Vec<_>>()
    );
    tokio::signal::ctrl_c().await?;
    bridge.stop().await;
    Ok(())
}
