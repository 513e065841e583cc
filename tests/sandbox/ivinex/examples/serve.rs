//! Runs a sandbox until Ctrl-C: `cargo run -p sandbox-ivinex --example serve -- [tickets] [seed] [port]`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let tickets: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(42);
    let port: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let config = sandbox_ivinex::IvinexConfig {
        seed: Some(seed),
        tickets,
        port,
        ..Default::default()
    };
    let sandbox = sandbox_ivinex::start(config).await?;
    println!("{}", serde_json::to_string_pretty(&sandbox.credentials())?);
    tokio::signal::ctrl_c().await?;
    sandbox.stop().await;
    Ok(())
}
