//! The platform's limits: access tokens, the edition's concurrency cap, the daily credit budget,
//! faults, attachment hosts, and errors that name the setting without showing secrets.

mod common;

use common::*;
use deskshift_core::Error;
use deskshift_core::model::AttachmentRef;
use deskshift_core::ports::Source;
use deskshift_zohodesk_source::records::*;
use deskshift_zohodesk_source::{Edition, ZohoDeskSource};
use sandbox_zohodesk::FaultConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_token_serves_concurrent_reads_until_it_expires() {
    let sb = sandbox(8, 40, |_| {}).await;
    let src = ZohoDeskSource::connect(config(&sb)).await.unwrap();
    let (a, b, c) = tokio::join!(
        read_all(&src, TICKETS, None),
        read_all(&src, CONVERSATIONS, None),
        read_all(&src, CONTACTS, None)
    );
    assert!(!a.is_empty() && !b.is_empty() && !c.is_empty());
    assert_eq!(
        token_grants(&sb).await,
        1,
        "the cached token serves every call"
    );

    // Every token the sandbox issued expires: concurrent callers refresh once between them.
    sb.expire_tokens();
    let (a2, b2) = tokio::join!(
        read_all(&src, TICKETS, None),
        read_all(&src, ACCOUNTS, None)
    );
    assert_eq!(a2.len(), a.len());
    assert!(!b2.is_empty());
    assert_eq!(token_grants(&sb).await, 2, "one refresh after expiry");
    assert_eq!(src.token_refreshes(), 2);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_follows_the_edition_and_never_exceeds_its_cap() {
    let sb = sandbox(9, 60, |c| c.edition = "Express".into()).await;
    let src = ZohoDeskSource::connect(config(&sb)).await.unwrap();
    assert_eq!(src.edition(), Some(Edition::Express));
    assert_eq!(src.concurrency_cap(), 10);
    let (a, b) = tokio::join!(
        read_all(&src, CONVERSATIONS, None),
        read_all(&src, TICKETS, None)
    );
    assert_eq!(b.len(), 60);
    assert!(!a.is_empty());
    let counters = &inspect(&sb, "stats").await["counters"];
    assert_eq!(counters["throttledConcurrency"], 0);
    assert!(counters["peakInFlight"].as_u64().unwrap() <= 10);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spent_daily_budget_pauses_the_read() {
    // Zoho's own daily limit: THRESHOLD_EXCEEDED stops the read at once, as BudgetExhausted.
    let sb = sandbox(10, 60, |c| c.daily_credits = Some(60)).await;
    let src = ZohoDeskSource::connect(config(&sb)).await.unwrap();
    let mut cursor = None;
    let err = loop {
        match src
            .read_page(
                TICKETS,
                &deskshift_core::ports::PageRequest {
                    cursor: cursor.clone(),
                    modified_since: None,
                    page_size: 100,
                },
            )
            .await
        {
            Ok(p) => cursor = Some(p.next.expect("the budget runs out before the last page")),
            Err(e) => break e,
        }
    };
    assert_eq!(err.name(), "BudgetExhausted", "{err}");
    assert!(err.is_transient());
    let counters = &inspect(&sb, "stats").await["counters"];
    assert!(
        counters["throttledThreshold"].as_u64().unwrap() <= src.concurrency_cap() as u64,
        "no retrying against a spent budget: {counters}"
    );

    // The source's own cap stops it before Zoho has to.
    let sb2 = sandbox(10, 60, |_| {}).await;
    let mut cfg = config(&sb2);
    cfg.daily_credit_budget = Some(40);
    let src2 = ZohoDeskSource::connect(cfg).await.unwrap();
    let err = src2.discover().await.and(Ok(())).and(
        src2.read_page(TICKETS, &Default::default())
            .await
            .map(|_| ()),
    );
    let err = err.expect_err("40 credits do not cover discovery and a page of tickets");
    assert!(matches!(err, Error::BudgetExhausted { .. }), "{err}");
    assert!(err.to_string().contains("daily_credit_budget"));
    let counters = &inspect(&sb2, "stats").await["counters"];
    assert!(
        counters["creditsUsed"].as_u64().unwrap() <= 40,
        "{counters}"
    );
    assert_eq!(counters["throttledThreshold"], 0);
    assert!(src2.spend().credits <= 40);
    sb.stop().await;
    sb2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_are_retried_and_every_record_still_comes_once() {
    let sb = sandbox(12, 40, |c| {
        c.faults = FaultConfig {
            seed: 3,
            error_5xx_rate: 0.05,
            burst_429_rate: 0.02,
            burst_len: 2,
            retry_after_secs: 0,
            reset_rate: 0.02,
            ..FaultConfig::default()
        }
    })
    .await;
    let src = ZohoDeskSource::connect(config(&sb)).await.unwrap();
    let dump = inspect(&sb, "dump").await;
    let tickets = read_all(&src, TICKETS, None).await;
    let convs = read_all(&src, CONVERSATIONS, None).await;
    let n = |k: &str| dump[k].as_array().unwrap().len();
    assert_eq!(tickets.len(), n("tickets"));
    assert_eq!(convs.len(), n("threads") + n("comments"));
    let ids: std::collections::BTreeSet<&str> = convs.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), convs.len());
    let faults = &dump["faults"]["counters"];
    let spend = src.spend();
    assert!(spend.retries > 0, "faults were met and retried: {faults}");
    sb.stop().await;
}

#[tokio::test]
async fn attachments_are_fetched_only_from_the_configured_zoho_hosts() {
    let sb = sandbox(13, 5, |_| {}).await;
    let src = ZohoDeskSource::new(config(&sb)).unwrap();
    let other_port = format!(
        "http://127.0.0.1:{}/api/v1/x",
        sb.addr().port().wrapping_add(1)
    );
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "https://evil.example/api/v1/tickets/1/attachments/2/content",
        other_port.as_str(),
        "cid:image001.png",
    ] {
        assert!(src.may_fetch(url).is_err(), "{url}");
        let err = src
            .download(&AttachmentRef {
                id: "1".into(),
                file_name: "x".into(),
                url: url.into(),
                size: None,
                md5: None,
                inline: false,
            })
            .await
            .unwrap_err();
        assert_eq!(err.name(), "RefusedUrl", "{url}: {err}");
    }
    assert!(
        src.may_fetch(&format!("{}/tickets/1/attachments/2/content", sb.api_url()))
            .is_ok()
    );
    assert_eq!(
        token_grants(&sb).await,
        0,
        "nothing was sent for refused URLs"
    );
    sb.stop().await;
}

#[tokio::test]
async fn bad_credentials_name_the_setting_and_never_show_a_secret() {
    let sb = sandbox(14, 5, |_| {}).await;
    let mut cfg = config(&sb);
    cfg.connection.client_secret = "wrong-secret-123".into();
    let err = match ZohoDeskSource::connect(cfg).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a wrong client secret is refused"),
    };
    assert!(
        err.contains("client_secret") && !err.contains("wrong-secret-123"),
        "{err}"
    );

    let mut cfg = config(&sb);
    cfg.connection.org_id = "999".into();
    let err = match ZohoDeskSource::connect(cfg).await {
        Ok(src) => src.discover().await.unwrap_err().to_string(),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("org_id") && err.contains("OAUTH_ORG_MISMATCH"),
        "{err}"
    );
    assert!(
        !err.contains(sb.config().refresh_token.as_str()) && !err.contains("1000."),
        "{err}"
    );
    sb.stop().await;
}
