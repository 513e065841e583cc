//! Clients sharing a token cache take one access token, and a token Zoho expired is refreshed
//! once for all of them; the lease keeps a second refresher waiting.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use deskshift_core::model::ObjectKind;
use deskshift_core::ports::Destination;
use deskshift_zohodesk::ZohoDesk;
use deskshift_zohodesk::client::{MemoryTokenCache, SharedTokenCache, TokenCache};

async fn grants(sb: &ZohoSandbox) -> u64 {
    let stats: serde_json::Value = reqwest::get(format!("{}/__sandbox/stats", sb.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["requests"]["POST /oauth/v2/token"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn clients_sharing_a_cache_take_one_token() {
    let sb = start(sandbox_config()).await;
    let cache = SharedTokenCache::new(Arc::new(MemoryTokenCache::default()));
    let mut cfg = dest_config(&sb);
    cfg.token_cache = cache;
    let clients = futures::future::join_all((0..4).map(|_| ZohoDesk::connect(cfg.clone()))).await;
    let clients: Vec<ZohoDesk> = clients.into_iter().map(Result::unwrap).collect();
    assert_eq!(grants(&sb).await, 1);

    sb.expire_tokens();
    for r in futures::future::join_all(clients.iter().map(|c| c.count(ObjectKind::Contact))).await {
        r.unwrap();
    }
    assert_eq!(grants(&sb).await, 2, "the expired token was refreshed once");

    // Without a shared cache each client takes its own.
    let _alone = ZohoDesk::connect(dest_config(&sb)).await.unwrap();
    assert_eq!(grants(&sb).await, 3);
    sb.stop().await;
}

#[tokio::test]
async fn the_lease_admits_one_holder_until_it_ends_or_expires() {
    let cache = MemoryTokenCache::default();
    assert!(
        cache
            .lease("k", "a", Duration::from_secs(30))
            .await
            .unwrap()
    );
    assert!(
        !cache
            .lease("k", "b", Duration::from_secs(30))
            .await
            .unwrap()
    );
    cache.release("k", "b").await.unwrap();
    assert!(
        !cache
            .lease("k", "b", Duration::from_secs(30))
            .await
            .unwrap(),
        "only the holder ends its lease"
    );
    cache.release("k", "a").await.unwrap();
    assert!(cache.lease("k", "b", Duration::ZERO).await.unwrap());
    assert!(
        cache
            .lease("k", "c", Duration::from_secs(30))
            .await
            .unwrap(),
        "an expired lease is taken over"
    );
}
