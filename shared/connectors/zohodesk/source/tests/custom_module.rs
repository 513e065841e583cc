//! Custom-module records (which the full Zoho sandbox does not model) against a small org
//! (`sandbox_zohodesk::custom_module_org`):
//! exported as their own `CustomModule:<apiName>` collection, and the ticket field that looks them
//! up announced as a link to it.

use deskshift_core::mapping::{propose, propose_kind};
use deskshift_core::model::{CanonicalRecord, ObjectKind};
use deskshift_core::ports::Source;
use deskshift_core::transform::{Lookups, Transformer, lookup_name};
use deskshift_zohodesk_source::{ZohoDeskSource, ZohoSourceConfig};

#[tokio::test]
async fn custom_module_records_are_their_own_collection_and_tickets_link_to_them() {
    let server = sandbox_kit::serve(sandbox_zohodesk::custom_module_org(), 0)
        .await
        .unwrap();
    let mut cfg = ZohoSourceConfig::for_dc("com").unwrap();
    cfg.connection.api_base = server.base_url.clone();
    cfg.connection.accounts_base = server.base_url.clone();
    cfg.connection.org_id = "77".into();
    cfg.connection.client_id = "cid".into();
    cfg.connection.client_secret = "secret".into();
    cfg.connection.refresh_token = "refresh".into();
    cfg.scan_description_thread = false;
    let src = ZohoDeskSource::connect(cfg).await.unwrap();
    assert_eq!(src.concurrency_cap(), 25, "Enterprise");

    let schema = src.discover().await.unwrap();
    let col = schema
        .collection("CustomModule:cm_assets")
        .expect("custom module collection");
    assert!(col.readable());
    assert!(col.field("name").is_some() && col.field("cf_serial").is_some_and(|f| f.custom));
    assert_eq!(
        propose_kind(&col.name),
        None,
        "not loaded as a helpdesk kind"
    );
    let lookup = schema
        .collection("Tickets")
        .unwrap()
        .field("cf_asset")
        .unwrap();
    assert_eq!(
        lookup.linked_collection.as_deref(),
        Some("CustomModule:cm_assets")
    );

    let page = src
        .read_page("CustomModule:cm_assets", &Default::default())
        .await
        .unwrap();
    let ids: Vec<&str> = page.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["900", "901"]);
    assert_eq!(page.records[0].fields["name"], "Laptop 7");
    assert_eq!(
        page.records[0].fields["owner"], "5",
        "lookups keep the record id"
    );
    assert_eq!(page.records[1].fields["cf_serial"], "SN2");
    assert_eq!(
        page.records[1].modified_at.as_deref(),
        Some("2024-01-03T00:00:00.000Z")
    );

    let tickets = src.read_page("Tickets", &Default::default()).await.unwrap();
    assert_eq!(
        tickets.records[0].fields["cf_asset"], "900",
        "the ticket's lookup is the record id"
    );

    // The proposed map names the linked record in a text field on the ticket, and the job
    // stages the module for the migration package.
    let samples = std::collections::BTreeMap::from([
        ("Tickets".to_string(), tickets.records.clone()),
        ("CustomModule:cm_assets".to_string(), page.records.clone()),
    ]);
    let map = propose("zohodesk", &schema, &samples, &Default::default());
    assert_eq!(
        map.lookup_collections().into_iter().collect::<Vec<_>>(),
        ["CustomModule:cm_assets"]
    );
    let lookups = Lookups::from([(
        "CustomModule:cm_assets".to_string(),
        page.records
            .iter()
            .map(|r| (r.id.clone(), lookup_name(r)))
            .collect(),
    )]);
    let t = Transformer::new(&map, Default::default(), None).with_lookups(lookups);
    let CanonicalRecord::Ticket(ticket) = t
        .transform(ObjectKind::Ticket, &tickets.records[0])
        .unwrap()
        .record
    else {
        panic!("a ticket")
    };
    assert_eq!(
        ticket.custom.get("Asset").map(|v| v.as_text()).as_deref(),
        Some("Laptop 7 (900)"),
        "{:?}",
        ticket.custom
    );

    let err = src
        .read_page("CustomModule:../secrets", &Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ConfigError");
    server.stop().await;
}
