//! Custom-module records (which the Zoho sandbox does not model) against a small stand-in server:
//! exported as their own `CustomModule:<apiName>` collection, and the ticket field that looks them
//! up announced as a link to it.

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use deskshift_core::mapping::propose_kind;
use deskshift_core::ports::Source;
use deskshift_zohodesk_source::{ZohoDeskSource, ZohoSourceConfig};
use serde_json::{Value, json};

fn authorised(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Zoho-oauthtoken tok")
        && h.get("orgId").and_then(|v| v.to_str().ok()) == Some("77")
}

fn answer(h: &HeaderMap, body: Option<Value>) -> Response {
    if !authorised(h) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"errorCode": "INVALID_OAUTH"})),
        )
            .into_response();
    }
    match body {
        Some(b) => axum::Json(b).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

fn stand_in() -> Router {
    Router::new()
        .route(
            "/oauth/v2/token",
            post(|| async { axum::Json(json!({"access_token": "tok", "expires_in": 3600})) }),
        )
        .route(
            "/api/v1/organizations",
            get(|h: HeaderMap| async move { answer(&h, Some(json!({"data": [{"id": "77", "edition": "ENTERPRISE"}]}))) }),
        )
        .route(
            "/api/v1/organizationModules",
            get(|h: HeaderMap| async move {
                answer(&h, Some(json!({"data": [
                    {"apiName": "tickets", "displayLabel": "Ticket"},
                    {"apiName": "cm_assets", "displayLabel": "Asset", "pluralLabel": "Assets", "isCustomModule": true}
                ]})))
            }),
        )
        .route(
            "/api/v1/fields",
            get(|h: HeaderMap, Query(q): Query<HashMap<String, String>>| async move {
                match q.get("module").map(String::as_str) {
                    Some("tickets") => answer(&h, Some(json!({"data": [
                        {"apiName": "cf_asset", "displayLabel": "Asset", "type": "LookUp", "isCustomField": true, "lookupModule": "cm_assets"}
                    ]}))),
                    Some("cm_assets") => (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"errorCode": "UNPROCESSABLE_ENTITY"}))).into_response(),
                    _ => answer(&h, Some(json!({"data": []}))),
                }
            }),
        )
        .route(
            "/api/v1/cm_assets",
            get(|h: HeaderMap, Query(q): Query<HashMap<String, String>>| async move {
                let from: usize = q.get("from").and_then(|f| f.parse().ok()).unwrap_or(0);
                let all = [
                    json!({"id": "900", "name": "Laptop 7", "owner": {"id": "5", "name": "Ann"}, "cf": {"cf_serial": "SN1"},
                        "createdTime": "2024-01-01T00:00:00.000Z", "modifiedTime": "2024-01-02T00:00:00.000Z"}),
                    json!({"id": "901", "name": "Printer 2", "owner": null, "cf": {"cf_serial": "SN2"},
                        "createdTime": "2024-01-01T00:00:00.000Z", "modifiedTime": "2024-01-03T00:00:00.000Z"}),
                ];
                let page: Vec<Value> = all.iter().skip(from).cloned().collect();
                answer(&h, (!page.is_empty()).then(|| json!({"data": page})))
            }),
        )
        .route(
            "/api/v1/tickets",
            get(|h: HeaderMap, Query(q): Query<HashMap<String, String>>| async move {
                let first = q.get("from").is_none_or(|f| f == "0") && q.get("limit").is_some_and(|l| l != "1");
                answer(&h, first.then(|| json!({"data": [{"id": "100", "threadCount": "0", "commentCount": "0"}]})))
            }),
        )
        .route(
            "/api/v1/tickets/100",
            get(|h: HeaderMap| async move {
                answer(&h, Some(json!({"id": "100", "subject": "Broken laptop", "description": "<p>x</p>",
                    "threadCount": "0", "tagCount": "0", "attachmentCount": "0",
                    "cf": {"cf_asset": {"id": "900", "name": "Laptop 7"}}})))
            }),
        )
        .fallback(|h: HeaderMap| async move { answer(&h, None) })
}

#[tokio::test]
async fn custom_module_records_are_their_own_collection_and_tickets_link_to_them() {
    let server = sandbox_kit::serve(stand_in(), 0).await.unwrap();
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

    let err = src
        .read_page("CustomModule:../secrets", &Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ConfigError");
    server.stop().await;
}
