//! The Zoho access-token cache shared across function processes, on the emulator: several
//! clients built as separate cold starts (each its own DynamoDB client and Zoho client), started
//! together, take ONE token from the Zoho Desk sandbox; a token the sandbox expires is refreshed
//! once for all of them. Token grants are counted by the sandbox (`/__sandbox/stats`).

use std::sync::Arc;

use deskshift_core::model::ObjectKind;
use deskshift_core::ports::Destination;
use deskshift_core::util::Secret;
use deskshift_functions::token_cache::{DynamoTokenCache, ensure_token_table};
use deskshift_store_aws::emulator::Emulator;
use deskshift_zohodesk::{SharedTokenCache, ZohoDesk, ZohoDeskConfig};
use sandbox_zohodesk::ZohoConfig;
use serde_json::Value;

const TABLE: &str = "deskshift-tokens-test";
const COLD_STARTS: usize = 6;

async fn token_grants(base: &str) -> u64 {
    let stats: Value = reqwest::get(format!("{base}/__sandbox/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["requests"]["POST /oauth/v2/token"]
        .as_u64()
        .unwrap_or(0)
}

/// One "cold start": its own SDK client, token cache and Zoho client.
async fn cold_start(emulator: &Emulator, base: &str, sb: &ZohoConfig, org: &str) -> ZohoDesk {
    let sdk = emulator.sdk_config().await;
    let cache = DynamoTokenCache::new(deskshift_store_aws::dynamodb_client(&sdk), TABLE);
    let mut cfg = ZohoDeskConfig::for_dc("com").unwrap();
    cfg.api_base = base.to_string();
    cfg.accounts_base = base.to_string();
    cfg.org_id = org.to_string();
    cfg.client_id = sb.client_id.clone();
    cfg.client_secret = Secret::new(sb.client_secret.clone());
    cfg.refresh_token = Secret::new(sb.refresh_token.clone());
    cfg.retry.base_delay_ms = 5;
    cfg.token_cache = SharedTokenCache::new(Arc::new(cache));
    ZohoDesk::connect(cfg).await.expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cold_starts_share_one_token_and_refresh_once() {
    let emulator = Emulator::start().expect("moto");
    let sdk = emulator.sdk_config().await;
    ensure_token_table(&deskshift_store_aws::dynamodb_client(&sdk), TABLE)
        .await
        .unwrap();
    let sb = sandbox_zohodesk::start(ZohoConfig::default())
        .await
        .unwrap();
    let base = sb.base_url().to_string();
    let cfg = sb.config().clone();
    let org = sb.org_id().to_string();

    let clients: Vec<ZohoDesk> = futures::future::join_all(
        (0..COLD_STARTS).map(|_| cold_start(&emulator, &base, &cfg, &org)),
    )
    .await;
    assert_eq!(
        token_grants(&base).await,
        1,
        "{COLD_STARTS} cold starts took more than one access token"
    );
    let refreshed: u64 = clients.iter().map(ZohoDesk::token_refreshes).sum();
    assert_eq!(refreshed, 1);

    // The sandbox expires every token: each client's next call gets INVALID_OAUTH, and one of
    // them refreshes while the others wait for the new token.
    sb.expire_tokens();
    let counts =
        futures::future::join_all(clients.iter().map(|c| c.count(ObjectKind::Account))).await;
    for c in counts {
        c.expect("a call after the expiry succeeds");
    }
    assert_eq!(
        token_grants(&base).await,
        2,
        "the expired token was refreshed more than once"
    );

    // The token is in the table under a digest key, never in the clear as a key.
    let items = deskshift_store_aws::dynamodb_client(&sdk)
        .scan()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();
    let items = items.items();
    assert_eq!(items.len(), 1, "one item per refresh token");
    let pk = items[0]["pk"].as_s().unwrap();
    assert!(pk.starts_with("zoho-token#") && !pk.contains(&cfg.refresh_token));
    assert!(
        !items[0].contains_key("lease_holder"),
        "no lease left behind"
    );

    sb.stop().await;
    emulator.stop();
}
