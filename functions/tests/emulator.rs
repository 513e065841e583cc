//! The AWS shape end to end on an emulator: the generated migration state machine executed by
//! moto's Step Functions, each Lambda task running the real function binary through the invoke
//! bridge, DynamoDB / S3 / Secrets Manager in moto, Ivinex and Zoho Desk sandboxes on 127.0.0.1.
//! Arrival is decided by reading the destination sandbox (Zoho Desk, or Jira Service Management for
//! the Zoho Desk -> JSM path).
//!
//! - `migration_runs_on_the_state_machine_like_the_local_runner`: Ivinex -> Zoho Desk, approval by
//!   task token, compared with the local runner on a twin tenant;
//! - `throttling_is_retried_by_the_state_machine`: the Zoho Desk sandbox answers 429 to a whole
//!   load task (longer than the function's in-process retries), the task fails with `Throttled`,
//!   the state machine's Retry runs it again, and every record arrives exactly once;
//! - `zoho_to_jsm_runs_on_the_state_machine_like_the_local_runner`: the second path.
//!
//! moto is started here (localstack/moto_bridge.py) unless `AWS_ENDPOINT_URL` names a running
//! moto started with that launcher; then `DESKSHIFT_BRIDGE_PORT` must be the port its
//! `DESKSHIFT_INVOKE_ENDPOINT` points at, and the bridge is started on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use std::sync::atomic::{AtomicU8, Ordering};

use deskshift_core::job::Job;
use deskshift_core::ports::Stage;
use deskshift_core::util::Secret;
use deskshift_functions::config::{DestinationConfig, JobConfig, SourceConfig};
use deskshift_functions::handlers::APPROVAL_TOKEN_KEY;
use deskshift_functions::{Function, SecretRef};
use deskshift_jobspec::{BuildOptions, Credentials, ZohoConnection};
use deskshift_lambda_bridge::moto::MotoBridge;
use deskshift_lambda_bridge::{Bridge, BridgeConfig, Hook, HookPoint, InvocationRecord};
use deskshift_sandbox::SandboxOptions;
use deskshift_statemachine::substitutions_for;
use serde_json::{Value, json};

const TABLE: &str = "deskshift-e2e";
const TOKEN_TABLE: &str = "deskshift-e2e-tokens";
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
    /// `cold_starts`: every invocation in a fresh function process (see `BridgeConfig`).
    async fn start(hook: Option<Hook>, cold_starts: bool) -> Aws {
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
            // One process per function keeps this 2-core machine responsive; the token cache lets
            // more share one Zoho access token.
            max_workers: 1,
            log_dir: Some(logs.path().to_path_buf()),
            port: bridge_port,
            hook,
            cold_starts,
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
            ("DESKSHIFT_TOKEN_TABLE".into(), TOKEN_TABLE.into()),
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
        deskshift_functions::token_cache::ensure_token_table(&dynamo, TOKEN_TABLE)
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

/// Credentials of a job: the Secrets Manager secret `deskshift/<job>` (a JSON object) on AWS,
/// the same values in memory for the local run.
struct TestSecrets(BTreeMap<String, String>);

#[async_trait::async_trait]
impl Credentials<SecretRef> for TestSecrets {
    async fn read(&self, setting: &str, r: &SecretRef) -> anyhow::Result<Secret> {
        let key = r.key.clone().unwrap_or_default();
        self.0
            .get(&key)
            .map(|v| Secret::new(v.clone()))
            .ok_or_else(|| anyhow::anyhow!("{setting}: no test secret {key}"))
    }
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap().to_string()
}

fn secret(job: &str, key: &str) -> SecretRef {
    SecretRef {
        secret: format!("deskshift/{job}"),
        key: Some(key.into()),
    }
}

/// Ivinex -> Zoho Desk for the sandboxes in `info`; `retry` sets the function's in-process
/// retries of Zoho calls.
fn ivinex_zoho(
    job: &str,
    info: &deskshift_sandbox::SandboxInfo,
    retry: Option<deskshift_zohodesk::RetryConfig>,
) -> (JobConfig, TestSecrets) {
    let config = JobConfig {
        source: SourceConfig::Ivinex {
            base_url: s(&info.ivinex, "base_url"),
            user: s(&info.ivinex, "user"),
            password: secret(job, "ivinex_password"),
            timezone: s(&info.ivinex, "timezone"),
            attachment_hosts: vec![],
            max_concurrency: None,
        },
        destination: DestinationConfig::Zohodesk {
            mode: "rest".into(),
            dc: None,
            api_base: Some(s(&info.zoho, "api_base")),
            accounts_base: Some(s(&info.zoho, "accounts_base")),
            org_id: s(&info.zoho, "org_id"),
            client_id: s(&info.zoho, "client_id"),
            client_secret: secret(job, "zoho_client_secret"),
            refresh_token: secret(job, "zoho_refresh_token"),
            concurrency_cap: None,
            default_department: None,
            package_dir: None,
            retry,
        },
        settings: settings(),
    };
    let secrets = TestSecrets(BTreeMap::from([
        ("ivinex_password".into(), s(&info.ivinex, "password")),
        ("zoho_client_secret".into(), s(&info.zoho, "client_secret")),
        ("zoho_refresh_token".into(), s(&info.zoho, "refresh_token")),
    ]));
    (config, secrets)
}

/// Zoho Desk -> Jira Service Management for the sandboxes in `info`.
fn zoho_jsm(job: &str, info: &deskshift_sandbox::SandboxInfo) -> (JobConfig, TestSecrets) {
    let config = JobConfig {
        source: SourceConfig::Zohodesk {
            zoho: ZohoConnection {
                dc: None,
                api_base: Some(s(&info.zoho, "api_base")),
                accounts_base: Some(s(&info.zoho, "accounts_base")),
                org_id: s(&info.zoho, "org_id"),
                client_id: s(&info.zoho, "client_id"),
                client_secret: secret(job, "zoho_client_secret"),
                refresh_token: secret(job, "zoho_refresh_token"),
                concurrency_cap: None,
                retry: None,
            },
        },
        destination: DestinationConfig::jsm(
            s(&info.jira, "base_url"),
            s(&info.jira, "email"),
            secret(job, "jira_api_token"),
            Some("Report a system problem".into()),
        ),
        settings: settings(),
    };
    let secrets = TestSecrets(BTreeMap::from([
        ("zoho_client_secret".into(), s(&info.zoho, "client_secret")),
        ("zoho_refresh_token".into(), s(&info.zoho, "refresh_token")),
        ("jira_api_token".into(), s(&info.jira, "api_token")),
    ]));
    (config, secrets)
}

/// Writes the job configuration into the stage and its credentials into Secrets Manager.
async fn configure_job(aws: &Aws, job: &str, config: &JobConfig, secrets: &TestSecrets) {
    let client = aws_sdk_secretsmanager::Client::new(&aws.sdk);
    client
        .create_secret()
        .name(format!("deskshift/{job}"))
        .secret_string(serde_json::to_string(&secrets.0).unwrap())
        .send()
        .await
        .unwrap();
    deskshift_functions::config::write(config, &aws.stage(job))
        .await
        .unwrap();
    let text = String::from_utf8(
        aws.stage(job)
            .get(deskshift_functions::config::CONFIG_KEY)
            .await
            .unwrap()
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    for value in secrets.0.values() {
        assert!(
            !text.contains(value.as_str()),
            "no credential in the job configuration"
        );
    }
}

fn settings() -> deskshift_core::job::Settings {
    deskshift_core::job::Settings {
        page_size: 25,
        validation_sample: 10,
        ..Default::default()
    }
}

/// The inline-Map variant (what moto ran first) or the production one with Distributed Maps
/// reading the partition manifests from S3.
const INLINE_ASL: &str = "migration.inline.asl.json";
const DISTRIBUTED_ASL: &str = "migration.asl.json";

async fn create_state_machine(aws: &Aws, name: &str, asl: &str) -> String {
    let text = std::fs::read_to_string(
        PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../statemachine")
        .join(asl),
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

/// `text` with every `127.0.0.1:<port>` written `127.0.0.1:PORT` (twin sandboxes differ in ports).
fn without_ports(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..i + "127.0.0.1:".len()]);
        rest = rest[i + "127.0.0.1:".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str("PORT");
    }
    out.push_str(rest);
    out
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
    // Activities as comments, per source ticket: how many and their text in creation order.
    let source_of: BTreeMap<String, String> = dump["tickets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| {
            let id = t["id"].as_str()?.to_string();
            let from = t["cf"]["cf_migrated_from_id"].as_str()?;
            Some((id, from.rsplit(':').next().unwrap().to_string()))
        })
        .collect();
    let mut comments: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for c in dump["comments"].as_array().cloned().unwrap_or_default() {
        let Some(ticket) = c["_ticketId"].as_str().and_then(|t| source_of.get(t)) else {
            continue;
        };
        let e = comments.entry(ticket.clone()).or_default();
        e.0 += 1;
        e.1.push_str(&without_ports(c["content"].as_str().unwrap_or_default()));
        e.1.push('\n');
    }
    out.insert("comments".to_string(), comments);
    // Files on tickets, per source ticket: how many and their digests.
    let mut files: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in dump["attachments"].as_array().cloned().unwrap_or_default() {
        let Some(ticket) = a["_ticketId"].as_str().and_then(|t| source_of.get(t)) else {
            continue;
        };
        digests
            .entry(ticket.clone())
            .or_default()
            .push(a["md5"].as_str().unwrap_or_default().to_string());
    }
    for (ticket, mut d) in digests {
        d.sort();
        files.insert(ticket, (d.len(), d.join(",")));
    }
    out.insert("attachments".to_string(), files);
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

/// The same job on the local runner: the same specification, built by the same builder, on the
/// embedded stores.
async fn run_locally(config: &JobConfig, secrets: &TestSecrets, dir: &std::path::Path) {
    let opts = BuildOptions {
        base_dir: Some(dir.to_path_buf()),
        job_dir: Some(dir.to_path_buf()),
        ..Default::default()
    };
    let (source, zone, dest) = config.connectors(secrets, &opts).await.unwrap();
    let store = deskshift_store_embedded::SqliteStore::open_in_job(dir).unwrap();
    let job = Job {
        settings: config.settings.clone(),
        source,
        dest,
        crosswalk: store.clone(),
        checkpoints: store.clone(),
        audit: store,
        stage: deskshift_store_embedded::FileStage::open_in_job(dir).unwrap(),
        progress: Arc::new(deskshift_core::job::NoProgress),
        source_zone: zone,
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

/// Starts the migration state machine for `job`, approves the map when the execution waits for
/// it (checking nothing reached `dest_dump` before), and waits for the end.
async fn migrate_on_aws(
    aws: &Aws,
    job: &str,
    dest_dump: &str,
    count_key: &str,
    asl: &str,
) -> String {
    let machine = create_state_machine(aws, &format!("deskshift-{job}"), asl).await;
    let sfn = aws_sdk_sfn::Client::new(&aws.sdk);
    let execution = sfn
        .start_execution()
        .state_machine_arn(&machine)
        .name(format!("{job}-run-1"))
        .input(json!({"job": job, "concurrency": 2, "budget_wait_seconds": 1}).to_string())
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_string();

    // Nothing moves before a person approves the map: the execution waits on its task token.
    wait_for_token(aws, job, &execution).await;
    let before = dump(dest_dump.to_string()).await;
    assert_eq!(
        before[count_key].as_array().map_or(0, Vec::len),
        0,
        "nothing in the destination before approval"
    );
    let (ok, answer) = invoke(
        aws,
        Function::Approve,
        json!({"job": job, "by": "Dana Reviewer"}),
    )
    .await;
    assert!(ok, "approve failed: {answer}\n{}", aws.diagnostics());
    assert_eq!(answer["summary"]["resumed_execution"], true, "{answer}");

    let (status, error) = wait_for_end(aws, &execution).await;
    assert_eq!(
        status,
        "SUCCEEDED",
        "execution ended {status} ({error:?})\n{}",
        aws.diagnostics()
    );
    execution
}

/// Zoho Desk token grants so far, read from the sandbox.
async fn zoho_token_grants(zoho_base: &str) -> u64 {
    dump(format!("{zoho_base}/__sandbox/stats")).await["requests"]["POST /oauth/v2/token"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_runs_on_the_state_machine_like_the_local_runner() {
    let aws = Aws::start(None, false).await;
    let sb = deskshift_sandbox::start_all(&opts()).await.unwrap();
    let job = "e2e-acme";
    let (config, secrets) = ivinex_zoho(job, &sb.info(), None);
    configure_job(&aws, job, &config, &secrets).await;
    let zoho_url = format!("{}/__sandbox/dump", sb.zoho.base_url());
    migrate_on_aws(&aws, job, &zoho_url, "tickets", INLINE_ASL).await;
    let calls = aws.bridge.invocations();
    assert!(
        calls.get("deskshift-load-partition").copied().unwrap_or(0) >= 5,
        "{calls:?}"
    );
    // Attachments fan out over partitions of records with files.
    let attachment_partitions: BTreeSet<String> = aws
        .bridge
        .log()
        .iter()
        .filter(|r| r.function == "deskshift-attachments")
        .map(|r| {
            r.payload["partition"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(
        attachment_partitions.len() > 1
            && attachment_partitions
                .iter()
                .all(|p| p.starts_with(deskshift_functions::handlers::ATTACHMENT_PARTITIONS)),
        "{attachment_partitions:?}"
    );
    // Activities fan out over partitions of whole tickets, each read on its own.
    let activity_partitions: BTreeSet<String> = aws
        .bridge
        .log()
        .iter()
        .filter(|r| r.function == "deskshift-load-partition" && r.payload["kind"] == "activity")
        .map(|r| {
            r.payload["partition"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(
        activity_partitions.len() > 1
            && activity_partitions
                .iter()
                .all(|p| p.starts_with(deskshift_functions::handlers::ACTIVITY_PARTITIONS)),
        "{activity_partitions:?}"
    );
    // Every function process that called Zoho Desk shared one access token.
    assert_eq!(
        zoho_token_grants(sb.zoho.base_url()).await,
        1,
        "function cold starts took their own Zoho tokens"
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
    let (twin_config, twin_secrets) = ivinex_zoho(job, &twin.info(), None);
    run_locally(&twin_config, &twin_secrets, dir.path()).await;
    let locally =
        destination_state(&dump(format!("{}/__sandbox/dump", twin.zoho.base_url())).await);
    assert!(
        !on_aws["comments"].is_empty(),
        "activities arrived as comments"
    );
    assert!(!on_aws["attachments"].is_empty(), "attachments arrived");
    // The partitions' reports merged into one, as the local run's single report.
    let report_of = |bytes: Option<bytes::Bytes>| -> Value {
        let r: Value = serde_json::from_slice(&bytes.expect("an attachments report")).unwrap();
        json!([
            r["total"],
            r["uploaded"],
            r["already"],
            r["over_limit"],
            r["failed"],
            r["problems"].as_array().map(Vec::len)
        ])
    };
    let merged = report_of(
        aws.stage(job)
            .get("reports/attachments.json")
            .await
            .unwrap(),
    );
    let local = report_of(
        deskshift_store_embedded::FileStage::open_in_job(dir.path())
            .unwrap()
            .get("reports/attachments.json")
            .await
            .unwrap(),
    );
    assert_eq!(
        merged, local,
        "attachments report [total, uploaded, already, over limit, failed, problems]"
    );
    assert!(merged[1].as_u64().unwrap_or(0) > 0, "{merged}");
    for kind in [
        "accounts",
        "contacts",
        "tickets",
        "tasks",
        "comments",
        "attachments",
    ] {
        let keys: BTreeSet<&String> = on_aws[kind].keys().chain(locally[kind].keys()).collect();
        for id in keys {
            let (a, b) = (on_aws[kind].get(id), locally[kind].get(id));
            assert!(
                a == b,
                "{kind} of {id} differ between the state machine and the local runner:\n{:.400}\n{:.400}",
                format!("{a:?}"),
                format!("{b:?}")
            );
        }
    }
    twin.stop().await;
    sb.stop().await;
    aws.stop().await;
}

/// Sets the Zoho Desk sandbox's fault knobs.
async fn zoho_faults(zoho_base: &str, faults: Value) {
    let r = reqwest::Client::new()
        .put(format!("{zoho_base}/__sandbox/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "faults refused: {}", r.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_is_retried_by_the_state_machine() {
    let sb = deskshift_sandbox::start_all(&SandboxOptions {
        seed: 5,
        tickets: 30,
        ..Default::default()
    })
    .await
    .unwrap();
    let zoho_base = sb.zoho.base_url().to_string();
    // The first load task meets a Zoho Desk that answers every call with 429 (longer than the
    // function's 2 in-process attempts); the bridge restores it after the task failed and
    // before the state machine learns of the failure, so the Retry is the only way forward.
    const ARMED: u8 = 0;
    const THROTTLING: u8 = 1;
    const RESTORED: u8 = 2;
    let state = Arc::new(AtomicU8::new(ARMED));
    let target: Arc<std::sync::Mutex<Option<Value>>> = Arc::default();
    let hook = {
        let (state, target, zoho_base) = (state.clone(), target.clone(), zoho_base.clone());
        Hook::new(move |point: HookPoint, inv: InvocationRecord| {
            let (state, target, zoho_base) = (state.clone(), target.clone(), zoho_base.clone());
            async move {
                if inv.function != "deskshift-load-partition" {
                    return;
                }
                match point {
                    HookPoint::Before
                        if state
                            .compare_exchange(ARMED, THROTTLING, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok() =>
                    {
                        *target.lock().unwrap() = Some(inv.payload.clone());
                        zoho_faults(&zoho_base, json!({"burst_429_rate": 1.0, "burst_len": 1}))
                            .await;
                    }
                    HookPoint::After
                        if state.load(Ordering::SeqCst) == THROTTLING
                            && target.lock().unwrap().as_ref() == Some(&inv.payload) =>
                    {
                        zoho_faults(&zoho_base, json!({})).await;
                        state.store(RESTORED, Ordering::SeqCst);
                    }
                    _ => {}
                }
            }
        })
    };
    let aws = Aws::start(Some(hook), false).await;
    let job = "e2e-throttled";
    let retry = deskshift_zohodesk::RetryConfig {
        max_attempts: 2,
        base_delay_ms: 10,
        max_delay_ms: 20,
        timeout_secs: 10,
    };
    let (config, secrets) = ivinex_zoho(job, &sb.info(), Some(retry));
    configure_job(&aws, job, &config, &secrets).await;
    let zoho_url = format!("{zoho_base}/__sandbox/dump");
    let execution = migrate_on_aws(&aws, job, &zoho_url, "tickets", INLINE_ASL).await;
    assert_eq!(state.load(Ordering::SeqCst), RESTORED, "the throttle ran");

    // The bridge saw the task twice: throttled, then done.
    let target = target.lock().unwrap().clone().unwrap();
    let runs: Vec<Option<String>> = aws
        .bridge
        .log()
        .into_iter()
        .filter(|r| r.function == "deskshift-load-partition" && r.payload == target)
        .map(|r| r.error_type)
        .collect();
    assert_eq!(
        runs,
        vec![Some("Throttled".to_string()), None],
        "the throttled task failed once with Throttled and succeeded on the state machine's retry ({target})"
    );
    // The execution history agrees: one failed Lambda task, and the run succeeded.
    let sfn = aws_sdk_sfn::Client::new(&aws.sdk);
    let history = sfn
        .get_execution_history()
        .execution_arn(&execution)
        .max_results(1000)
        .send()
        .await
        .unwrap();
    let failed = history
        .events()
        .iter()
        .filter(|e| matches!(e.r#type().as_str(), "TaskFailed" | "LambdaFunctionFailed"))
        .count();
    assert_eq!(failed, 1, "one failed task in the execution history");
    assert!(
        history
            .events()
            .iter()
            .any(|e| e.r#type().as_str() == "ExecutionSucceeded"),
        "the execution history ends in success"
    );

    // Every record arrived exactly once, read from the Zoho Desk sandbox.
    let state = destination_state(&dump(zoho_url).await);
    let ivinex = dump(format!("{}/__sandbox/dump", sb.ivinex.base_url())).await;
    let source_tickets = ivinex["records"]["Tickets"].as_array().unwrap().len();
    assert!(state["tickets"].len() > source_tickets / 2, "{state:?}");
    for kind in ["accounts", "contacts", "tickets", "tasks"] {
        for (id, (n, _)) in &state[kind] {
            assert_eq!(*n, 1, "{kind} {id} is in Zoho Desk {n} times");
        }
    }
    assert_each_activity_once(&dump(format!("{zoho_base}/__sandbox/dump")).await);
    sb.stop().await;
    aws.stop().await;
}

/// Every migrated activity (its provenance marker) is one Zoho Desk comment.
fn assert_each_activity_once(dump: &Value) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in dump["comments"].as_array().cloned().unwrap_or_default() {
        let content = c["content"].as_str().unwrap_or_default();
        if let Some(start) = content.find("[deskshift:")
            && let Some(len) = content[start..].find(']')
        {
            *seen
                .entry(content[start..start + len].to_string())
                .or_default() += 1;
        }
    }
    assert!(!seen.is_empty(), "activities arrived as comments");
    for (marker, n) in seen {
        assert_eq!(n, 1, "{marker}] is in Zoho Desk {n} times");
    }
}

/// Migrated JSM issues: (Zoho Desk id from the legacy field, issue).
fn jsm_issues(dump: &Value) -> Vec<(String, Value)> {
    let legacy = dump["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Legacy Ticket ID")
        .and_then(|f| f["id"].as_str())
        .unwrap_or_default()
        .to_string();
    dump["issues"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| {
            let id = i["fields"][&legacy]
                .as_str()?
                .strip_prefix("Zoho Desk:")?
                .to_string();
            Some((id, i))
        })
        .collect()
}

/// JSM issue links as pairs of Zoho Desk ticket ids, the smaller first.
fn jsm_links(dump: &Value) -> BTreeSet<(String, String)> {
    let by_key: BTreeMap<String, String> = jsm_issues(dump)
        .into_iter()
        .map(|(id, i)| (i["key"].as_str().unwrap().to_string(), id))
        .collect();
    dump["links"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            let end = |side: &str| by_key[l[side].as_str().unwrap()].clone();
            let (a, b) = (end("inwardIssue"), end("outwardIssue"));
            if a < b { (a, b) } else { (b, a) }
        })
        .collect()
}

/// Zoho Desk tickets whose first thread links another ticket (`#Cases/dv/<id>`), as pairs of
/// ticket ids, the smaller first.
fn referenced_pairs(zoho: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for th in zoho["threads"].as_array().unwrap() {
        let content = th["content"].as_str().unwrap_or_default();
        let Some(pos) = content.find("#Cases/dv/") else {
            continue;
        };
        let other: String = content[pos + 10..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let ticket = th["_ticketId"].as_str().unwrap().to_string();
        out.insert(if ticket < other {
            (ticket, other)
        } else {
            (other, ticket)
        });
    }
    out
}

/// JSM requests by legacy ticket id: (requests, comments, attachment digests).
fn jsm_state(dump: &Value) -> BTreeMap<String, (usize, usize, Vec<String>)> {
    let mut out: BTreeMap<String, (usize, usize, Vec<String>)> = BTreeMap::new();
    for (id, i) in jsm_issues(dump) {
        let e = out.entry(id.to_string()).or_default();
        e.0 += 1;
        e.1 += i["comments"].as_array().map_or(0, Vec::len);
        for a in i["attachments"].as_array().cloned().unwrap_or_default() {
            e.2.push(a["md5"].as_str().unwrap_or_default().to_string());
        }
        e.2.sort();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zoho_to_jsm_runs_on_the_state_machine_like_the_local_runner() {
    let options = SandboxOptions {
        seed: 31,
        tickets: 40,
        ..Default::default()
    };
    // No invocation finds what an earlier one left in its process's memory.
    let aws = Aws::start(None, true).await;
    let sb = deskshift_sandbox::start_zoho_jsm(&options).await.unwrap();
    let job = "e2e-zoho-jsm";
    let (config, secrets) = zoho_jsm(job, &sb.info());
    configure_job(&aws, job, &config, &secrets).await;
    let jira_url = format!("{}/__sandbox/dump", sb.jira.base_url());
    migrate_on_aws(&aws, job, &jira_url, "issues", INLINE_ASL).await;
    assert_eq!(
        zoho_token_grants(sb.zoho.base_url()).await,
        1,
        "function cold starts took their own Zoho tokens"
    );

    let jira = dump(jira_url).await;
    let on_aws = jsm_state(&jira);
    let links_on_aws = jsm_links(&jira);
    let zoho = dump(format!("{}/__sandbox/dump", sb.zoho.base_url())).await;
    let tickets = zoho["tickets"].as_array().unwrap();
    for t in tickets {
        let id = t["id"].as_str().unwrap();
        assert!(on_aws.contains_key(id), "Zoho ticket {id} is not in Jira");
    }
    // Tickets and tasks (sub-tasks) carry the legacy id: each exactly once.
    for (id, (n, _, _)) in &on_aws {
        assert_eq!(*n, 1, "Zoho record {id} is in Jira {n} times");
    }
    let tickets = tickets.len();
    assert!(
        on_aws.values().map(|v| v.1).sum::<usize>() > tickets,
        "threads and comments arrived as comments"
    );
    assert!(
        on_aws.values().any(|v| !v.2.is_empty()),
        "attachments arrived"
    );

    let twin = deskshift_sandbox::start_zoho_jsm(&options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (twin_config, twin_secrets) = zoho_jsm(job, &twin.info());
    run_locally(&twin_config, &twin_secrets, dir.path()).await;
    let twin_jira = dump(format!("{}/__sandbox/dump", twin.jira.base_url())).await;
    let locally = jsm_state(&twin_jira);
    assert_eq!(
        on_aws, locally,
        "requests, comment counts and attachments differ between the state machine and the local runner"
    );
    // Related tickets become issue links, also when the two tickets were written by different
    // load invocations (the ticket pages are separate partitions here).
    let ticket_partitions: BTreeSet<String> = aws
        .bridge
        .log()
        .iter()
        .filter(|r| r.function == "deskshift-load-partition" && r.payload["kind"] == "ticket")
        .filter_map(|r| r.payload["partition"].as_str().map(str::to_string))
        .collect();
    assert!(
        ticket_partitions.len() >= 2,
        "the tickets were loaded in one invocation: {ticket_partitions:?}"
    );
    let invocations = aws.bridge.log().len() as u64;
    assert_eq!(
        aws.bridge.processes_started(),
        invocations,
        "each invocation ran in a process of its own"
    );
    let expected = referenced_pairs(&zoho);
    assert!(
        !expected.is_empty(),
        "the sandbox's tickets reference each other"
    );
    assert_eq!(links_on_aws, expected, "issue links on the state machine");
    assert_eq!(
        jsm_links(&twin_jira),
        expected,
        "issue links of the local runner"
    );
    twin.stop().await;
    sb.stop().await;
    aws.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn distributed_map_definition_runs_on_the_emulator() {
    let aws = Aws::start(None, false).await;
    let sb = deskshift_sandbox::start_all(&SandboxOptions {
        seed: 7,
        tickets: 30,
        ..Default::default()
    })
    .await
    .unwrap();
    let job = "e2e-distributed";
    let (config, secrets) = ivinex_zoho(job, &sb.info(), None);
    configure_job(&aws, job, &config, &secrets).await;
    let zoho_url = format!("{}/__sandbox/dump", sb.zoho.base_url());
    migrate_on_aws(&aws, job, &zoho_url, "tickets", DISTRIBUTED_ASL).await;

    // Every partition of the manifests was loaded, once.
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in aws.bridge.log() {
        if r.function == "deskshift-load-partition" || r.function == "deskshift-attachments" {
            let key = (
                r.payload["kind"].as_str().unwrap_or("files").to_string(),
                r.payload["partition"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            *seen.entry(key).or_default() += 1;
        }
    }
    assert!(seen.len() >= 5, "{seen:?}");
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    let state = destination_state(&dump(zoho_url).await);
    let ivinex = dump(format!("{}/__sandbox/dump", sb.ivinex.base_url())).await;
    let source_tickets = ivinex["records"]["Tickets"].as_array().unwrap().len();
    assert!(state["tickets"].len() > source_tickets / 2, "{state:?}");
    for kind in ["accounts", "contacts", "tickets", "tasks"] {
        for (id, (n, _)) in &state[kind] {
            assert_eq!(*n, 1, "{kind} {id} is in Zoho Desk {n} times");
        }
    }
    assert_each_activity_once(&dump(format!("{}/__sandbox/dump", sb.zoho.base_url())).await);
    sb.stop().await;
    aws.stop().await;
}
