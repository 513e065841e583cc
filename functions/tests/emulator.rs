//! The AWS shape end to end on an emulator: the generated migration state machine executed by
//! moto's Step Functions, each Lambda task running the real function binary through the invoke
//! bridge, DynamoDB / S3 / Secrets Manager in moto, Ivinex and Zoho Desk sandboxes on 127.0.0.1.
//! Arrival is decided by reading the Zoho Desk sandbox.
//!
//! moto is started here (localstack/moto_bridge.py) unless `AWS_ENDPOINT_URL` names a running
//! moto started with that launcher; then `DESKSHIFT_BRIDGE_PORT` must be the port its
//! `DESKSHIFT_INVOKE_ENDPOINT` points at, and the bridge is started on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use deskshift_core::job::Job;
use deskshift_core::ports::Stage;
use deskshift_functions::config::{DestinationConfig, JobConfig, SourceConfig};
use deskshift_functions::handlers::APPROVAL_TOKEN_KEY;
use deskshift_functions::{Function, SecretRef};
use deskshift_lambda_bridge::moto::MotoBridge;
use deskshift_lambda_bridge::{Bridge, BridgeConfig};
use deskshift_sandbox::{SandboxOptions, Sandboxes};
use deskshift_statemachine::substitutions_for;
use serde_json::{Value, json};

const TABLE: &str = "deskshift-e2e";
const BUCKET: &str = "deskshift-e2e-stage";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// moto (ours, or the one in AWS_ENDPOINT_URL) and the bridge running the function binaries.
struct Aws {
    moto: Option<MotoBridge>,
    bridge: Bridge,
    endpoint: String,
    sdk: aws_config::SdkConfig,
    logs: tempfile::TempDir,
}

fn binaries_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_deskshift-preflight"))
        .parent()
        .unwrap()
        .to_path_buf()
}

impl Aws {
    async fn start() -> Aws {
        let logs = tempfile::tempdir().unwrap();
        let external = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|v| !v.is_empty());
        let bridge_port = match &external {
            Some(_) => std::env::var("DESKSHIFT_BRIDGE_PORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .expect("AWS_ENDPOINT_URL is set: also set DESKSHIFT_BRIDGE_PORT to the port its moto_bridge.py forwards invokes to"),
            None => 0,
        };
        let mut config = BridgeConfig {
            timeout: Duration::from_secs(300),
            // One process per function: each cold start spends a Zoho OAuth refresh (10 per 10 min).
            max_workers: 1,
            log_dir: Some(logs.path().to_path_buf()),
            port: bridge_port,
            ..Default::default()
        };
        for f in Function::ALL {
            let bin = binaries_dir().join(f.binary());
            config.functions.insert(f.binary(), bin);
        }
        // The endpoint must be known before the bridge (its env) and moto (the bridge's URL)
        // start: the bridge binds first, moto learns its URL, then the env is completed.
        let bridge_probe = Bridge::start(BridgeConfig {
            port: bridge_port,
            ..Default::default()
        })
        .await
        .unwrap();
        let bridge_endpoint = bridge_probe.endpoint();
        let port = bridge_probe.port();
        bridge_probe.stop().await;
        let (moto, endpoint) = match external {
            Some(url) => (None, url),
            None => {
                let m = MotoBridge::start(&bridge_endpoint).expect("moto with the Lambda bridge");
                let e = m.endpoint();
                (Some(m), e)
            }
        };
        config.port = port;
        config.env = vec![
            ("AWS_ENDPOINT_URL".into(), endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_REGION".into(), REGION.into()),
            ("DESKSHIFT_TABLE".into(), TABLE.into()),
            ("DESKSHIFT_BUCKET".into(), BUCKET.into()),
            ("RUST_LOG".into(), "info".into()),
        ];
        let bridge = Bridge::start(config).await.unwrap();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_sfn::config::Credentials::new(
                "test", "test", None, None, "e2e",
            ))
            .load()
            .await;
        let dynamo = deskshift_store_aws::dynamodb_client(&sdk);
        deskshift_store_aws::ensure_table(&dynamo, TABLE)
            .await
            .unwrap();
        let s3 = deskshift_store_aws::s3_client(&sdk);
        deskshift_store_aws::ensure_bucket(&s3, BUCKET)
            .await
            .unwrap();
        Aws {
            moto,
            bridge,
            endpoint,
            sdk,
            logs,
        }
    }

    fn stage(&self, job: &str) -> deskshift_store_aws::S3Stage {
        deskshift_store_aws::S3Stage::new(deskshift_store_aws::s3_client(&self.sdk), BUCKET, job)
            .unwrap()
    }

    /// The function logs and moto's, for a failure message.
    fn diagnostics(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.logs.path()) {
            for e in entries.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                out += &format!(
                    "--- {}\n{}\n",
                    e.file_name().to_string_lossy(),
                    lines[lines.len().saturating_sub(15)..].join("\n")
                );
            }
        }
        if let Some(m) = &self.moto {
            out += &format!("--- moto\n{}\n", m.log_tail());
        }
        out
    }

    async fn stop(self) {
        self.bridge.stop().await;
        drop(self.moto);
        let _ = self.endpoint;
    }
}

/// Writes the job configuration (credentials into Secrets Manager) for the sandboxes.
async fn configure_job(aws: &Aws, sb: &Sandboxes, job: &str) {
    let info = sb.info();
    let secrets = aws_sdk_secretsmanager::Client::new(&aws.sdk);
    let name = format!("deskshift/{job}");
    secrets
        .create_secret()
        .name(&name)
        .secret_string(
            json!({
                "ivinex_password": info.ivinex["password"],
                "zoho_client_secret": info.zoho["client_secret"],
                "zoho_refresh_token": info.zoho["refresh_token"],
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let s = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
    let secret = |key: &str| SecretRef {
        secret: name.clone(),
        key: Some(key.into()),
    };
    let config = JobConfig {
        source: SourceConfig::Ivinex {
            base_url: s(&info.ivinex, "base_url"),
            user: s(&info.ivinex, "user"),
            password: secret("ivinex_password"),
            timezone: s(&info.ivinex, "timezone"),
            attachment_hosts: vec![],
            max_concurrency: None,
        },
        destination: DestinationConfig::Zohodesk {
            dc: None,
            api_base: Some(s(&info.zoho, "api_base")),
            accounts_base: Some(s(&info.zoho, "accounts_base")),
            org_id: s(&info.zoho, "org_id"),
            client_id: s(&info.zoho, "client_id"),
            client_secret: secret("zoho_client_secret"),
            refresh_token: secret("zoho_refresh_token"),
            concurrency_cap: None,
            default_department: None,
        },
        settings: settings(),
    };
    config.write(&aws.stage(job)).await.unwrap();
    let text = String::from_utf8(
        aws.stage(job)
            .get(deskshift_functions::config::CONFIG_KEY)
            .await
            .unwrap()
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        !text.contains(info.zoho["refresh_token"].as_str().unwrap()),
        "no credential in the job configuration"
    );
}

fn settings() -> deskshift_core::job::Settings {
    deskshift_core::job::Settings {
        page_size: 25,
        validation_sample: 10,
        ..Default::default()
    }
}

async fn create_state_machine(aws: &Aws, name: &str) -> String {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../statemachine/migration.inline.asl.json"),
    )
    .unwrap();
    let subs = substitutions_for(REGION, ACCOUNT, "deskshift-", BUCKET, "deskshift-delta");
    let definition = deskshift_statemachine::substitute(&text, &subs);
    let sfn = aws_sdk_sfn::Client::new(&aws.sdk);
    sfn.create_state_machine()
        .name(name)
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/deskshift-e2e"))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string()
}

async fn wait_for_token(aws: &Aws, job: &str, execution: &str) {
    let started = Instant::now();
    let sfn = aws_sdk_sfn::Client::new(&aws.sdk);
    loop {
        if aws
            .stage(job)
            .get(APPROVAL_TOKEN_KEY)
            .await
            .unwrap()
            .is_some()
        {
            return;
        }
        let d = sfn
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .unwrap();
        assert_eq!(
            d.status().as_str(),
            "RUNNING",
            "the execution ended before the approval: {:?}\n{}",
            d.error(),
            aws.diagnostics()
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no approval token after 300 s\n{}",
            aws.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_for_end(aws: &Aws, execution: &str) -> (String, Option<String>) {
    let sfn = aws_sdk_sfn::Client::new(&aws.sdk);
    let started = Instant::now();
    loop {
        let d = sfn
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .unwrap();
        let status = d.status().as_str().to_string();
        if status != "RUNNING" {
            return (status, d.error().map(str::to_string));
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "the execution still runs after 900 s\n{}",
            aws.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Invokes a function through the bridge's Invoke API (what `aws lambda invoke` does on AWS).
async fn invoke(aws: &Aws, function: Function, payload: Value) -> (bool, Value) {
    let r = reqwest::Client::new()
        .post(format!(
            "{}/2015-03-31/functions/{}/invocations",
            aws.bridge.endpoint(),
            function.binary()
        ))
        .json(&payload)
        .send()
        .await
        .unwrap();
    let error = r.headers().contains_key("x-amz-function-error");
    (!error, r.json().await.unwrap())
}

/// Destination records per kind: source id -> (count, subject or name), read from the sandbox.
fn destination_state(dump: &Value) -> BTreeMap<String, BTreeMap<String, (usize, String)>> {
    let mut out = BTreeMap::new();
    for kind in ["accounts", "contacts", "tickets", "tasks"] {
        let mut m: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for r in dump[kind].as_array().cloned().unwrap_or_default() {
            if r["isTrashed"].as_bool() == Some(true) {
                continue;
            }
            if let Some(v) = r["cf"]["cf_migrated_from_id"].as_str() {
                let id = v.rsplit(':').next().unwrap().to_string();
                let label = ["subject", "accountName", "lastName", "email"]
                    .iter()
                    .find_map(|k| r[*k].as_str())
                    .unwrap_or_default()
                    .to_string();
                let e = m.entry(id).or_insert((0, label));
                e.0 += 1;
            }
        }
        out.insert(kind.to_string(), m);
    }
    out
}

fn opts() -> SandboxOptions {
    SandboxOptions {
        seed: 11,
        tickets: 60,
        ..Default::default()
    }
}

async fn dump(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// The local runner on the embedded stores, for the same tenant.
async fn run_locally(sb: &Sandboxes, dir: &std::path::Path) {
    let info = sb.info();
    let s = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
    let source = deskshift_ivinex::IvinexSource::new(deskshift_ivinex::IvinexConfig {
        base_url: s(&info.ivinex, "base_url"),
        user: s(&info.ivinex, "user"),
        password: deskshift_core::util::Secret::new(s(&info.ivinex, "password")),
        timezone: s(&info.ivinex, "timezone"),
        page_size: settings().page_size,
        attachment_hosts: vec![],
        max_concurrency: 8,
    })
    .unwrap();
    let zone = source.timezone().clone();
    let mut cfg = deskshift_zohodesk::ZohoDeskConfig::for_dc("com").unwrap();
    cfg.api_base = s(&info.zoho, "api_base");
    cfg.accounts_base = s(&info.zoho, "accounts_base");
    cfg.org_id = s(&info.zoho, "org_id");
    cfg.client_id = s(&info.zoho, "client_id");
    cfg.client_secret = deskshift_core::util::Secret::new(s(&info.zoho, "client_secret"));
    cfg.refresh_token = deskshift_core::util::Secret::new(s(&info.zoho, "refresh_token"));
    let dest = deskshift_zohodesk::ZohoDesk::connect(cfg).await.unwrap();
    let store = deskshift_store_embedded::SqliteStore::open_in_job(dir).unwrap();
    let job = Job {
        settings: settings(),
        source: Arc::new(source),
        dest: Arc::new(dest),
        crosswalk: store.clone(),
        checkpoints: store.clone(),
        audit: store,
        stage: deskshift_store_embedded::FileStage::open_in_job(dir).unwrap(),
        progress: Arc::new(deskshift_core::job::NoProgress),
        source_zone: Some(zone),
        dest_info: Default::default(),
    };
    deskshift_core::runner::run_flow(
        &job,
        &deskshift_core::runner::RunOptions {
            auto_approve: Some("e2e reviewer".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_runs_on_the_state_machine_like_the_local_runner() {
    let aws = Aws::start().await;
    let sb = deskshift_sandbox::start_all(&opts()).await.unwrap();
    let job = "e2e-acme";
    configure_job(&aws, &sb, job).await;
    let machine = create_state_machine(&aws, "deskshift-e2e-migration").await;
    let sfn = aws_sdk_sfn::Client::new(&aws.sdk);
    let execution = sfn
        .start_execution()
        .state_machine_arn(&machine)
        .name("run-1")
        .input(json!({"job": job, "concurrency": 2, "budget_wait_seconds": 1}).to_string())
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_string();

    // Nothing moves before a person approves the map: the execution waits on its task token.
    wait_for_token(&aws, job, &execution).await;
    let zoho_url = format!("{}/__sandbox/dump", sb.zoho.base_url());
    let before = dump(zoho_url.clone()).await;
    assert_eq!(
        before["tickets"].as_array().map_or(0, Vec::len),
        0,
        "no ticket before approval"
    );
    let (ok, answer) = invoke(
        &aws,
        Function::Approve,
        json!({"job": job, "by": "Dana Reviewer"}),
    )
    .await;
    assert!(ok, "approve failed: {answer}\n{}", aws.diagnostics());
    assert_eq!(answer["summary"]["resumed_execution"], true, "{answer}");

    let (status, error) = wait_for_end(&aws, &execution).await;
    assert_eq!(
        status,
        "SUCCEEDED",
        "execution ended {status} ({error:?})\n{}",
        aws.diagnostics()
    );
    let calls = aws.bridge.invocations();
    assert!(
        calls.get("deskshift-load-partition").copied().unwrap_or(0) >= 5,
        "{calls:?}"
    );

    // Arrival, read from the destination: every in-scope ticket exactly once.
    let on_aws = destination_state(&dump(zoho_url).await);
    let ivinex = dump(format!("{}/__sandbox/dump", sb.ivinex.base_url())).await;
    let source_tickets = ivinex["records"]["Tickets"].as_array().unwrap().len();
    let tickets = &on_aws["tickets"];
    assert!(
        tickets.len() > source_tickets / 2,
        "{} of {source_tickets} tickets arrived",
        tickets.len()
    );
    for (id, (n, _)) in tickets {
        assert_eq!(*n, 1, "ticket {id} is in Zoho Desk {n} times");
    }

    // The same job on the local runner, against a second copy of the same tenant.
    let twin = deskshift_sandbox::start_all(&opts()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    run_locally(&twin, dir.path()).await;
    let locally =
        destination_state(&dump(format!("{}/__sandbox/dump", twin.zoho.base_url())).await);
    for kind in ["accounts", "contacts", "tickets", "tasks"] {
        let a: BTreeSet<_> = on_aws[kind].iter().collect();
        let b: BTreeSet<_> = locally[kind].iter().collect();
        assert_eq!(
            a, b,
            "{kind} differ between the state machine and the local runner"
        );
    }
    twin.stop().await;
    sb.stop().await;
    aws.stop().await;
}
