//! The accounts server's token endpoint: refresh grant only, with Zoho's refresh-rate limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::{App, REFRESH_LIMIT, REFRESH_WINDOW};

fn oauth_error(status: StatusCode, error: &str, description: Option<&str>) -> Response {
    let mut body = json!({"error": error});
    if let Some(d) = description {
        body["error_description"] = json!(d);
    }
    (status, axum::Json(body)).into_response()
}

/// `POST /oauth/v2/token`; parameters in the query string or a form body.
pub async fn token(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let mut params: HashMap<String, String> = HashMap::new();
    if let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
        params.extend(form);
    }
    if let Some(q) = query
        && let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(&q)
    {
        params.extend(pairs);
    }
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");

    if get("grant_type") != "refresh_token" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", None);
    }
    if get("client_id") != app.cfg.client_id || get("client_secret") != app.cfg.client_secret {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", None);
    }
    let refresh = get("refresh_token").to_string();
    if refresh != app.cfg.refresh_token {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_code", None);
    }
    {
        let mut auth = app.auth.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let window = auth.grants.entry(refresh).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= REFRESH_WINDOW)
        {
            window.pop_front();
        }
        if window.len() >= REFRESH_LIMIT {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "Access Denied",
                Some(
                    "You have made too many requests continuously. Please try again after some time.",
                ),
            );
        }
        window.push_back(now);
    }
    let token = app.mint_token();
    axum::Json(json!({
        "access_token": token,
        "scope": "Desk.tickets.ALL Desk.contacts.ALL Desk.basic.ALL Desk.settings.ALL Desk.search.READ Desk.tasks.ALL Desk.products.ALL",
        "api_domain": app.base(),
        "token_type": "Bearer",
        "expires_in": app.cfg.access_token_ttl_secs,
    }))
    .into_response()
}
