//! A small org with a custom module (see [`custom_module_org`]).

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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

/// A small Zoho Desk org (Enterprise, org id 77, client `cid` / `secret`, refresh token `refresh`,
/// access token `tok`) with one custom module, `cm_assets` (records 900 "Laptop 7" and 901
/// "Printer 2"), and one ticket, 100, whose lookup field `cf_asset` names record 900: the parts the
/// full sandbox does not model.
pub fn custom_module_org() -> Router {
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
