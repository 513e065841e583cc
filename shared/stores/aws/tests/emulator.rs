//! The emulator harness: answers while alive, is stopped on drop, hands its settings to children.

use std::net::TcpStream;
use std::time::Duration;

use deskshift_store_aws::emulator::Emulator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_is_reachable_while_alive_and_stopped_on_drop() {
    let emulator = Emulator::start_moto()
        .unwrap_or_else(|e| panic!("moto server must start for this test: {e}"));
    let port = emulator.port().expect("a started moto has a port");
    assert!(emulator.owns_server());
    assert_eq!(emulator.endpoint(), format!("http://127.0.0.1:{port}"));
    let env = emulator.env();
    for (name, value) in [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("MOTO_PORT", port.to_string()),
    ] {
        assert!(
            env.contains(&(name, value.clone())),
            "{name}={value} missing from {env:?}"
        );
    }

    // A child process configured with env() reaches the same server.
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, urllib.request; print(urllib.request.urlopen(os.environ['AWS_ENDPOINT_URL'] + '/moto-api/').status)",
        ])
        .envs(emulator.env())
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "200",
        "{output:?}"
    );

    emulator
        .configure_moto(r#"{"stepfunctions":{"execute_state_machine":true}}"#)
        .expect("moto takes configuration");

    let client = deskshift_store_aws::dynamodb_client(&emulator.sdk_config().await);
    client.list_tables().send().await.expect("DynamoDB answers");

    drop(emulator);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err(),
        "moto must be gone once the emulator is dropped"
    );
}
