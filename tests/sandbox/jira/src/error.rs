//! The two error styles: platform `ErrorCollection` and servicedeskapi `{errorMessage, i18nErrorMessage}`.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Handlers answer `Ok(response)` or `Err(error response)`.
pub type Answer = Result<Response, Response>;

pub fn platform(status: StatusCode, messages: &[&str]) -> Response {
    (
        status,
        Json(json!({"errorMessages": messages, "errors": {}})),
    )
        .into_response()
}

pub fn platform_fields(status: StatusCode, errors: BTreeMap<String, String>) -> Response {
    (status, Json(json!({"errorMessages": [], "errors": errors}))).into_response()
}

pub fn field(status: StatusCode, field: &str, message: &str) -> Response {
    let mut errors = BTreeMap::new();
    errors.insert(field.to_string(), message.to_string());
    platform_fields(status, errors)
}

pub fn issue_not_found() -> Response {
    platform(
        StatusCode::NOT_FOUND,
        &["Issue does not exist or you do not have permission to see it."],
    )
}

pub fn jsm(status: StatusCode, message: &str) -> Response {
    let key = match status.as_u16() {
        400 => "sd.validation.error",
        401 => "sd.auth.required",
        403 => "sd.permission.denied",
        404 => "sd.resource.not.found",
        409 => "sd.conflict",
        _ => "sd.error",
    };
    (status, Json(json!({"errorMessage": message, "i18nErrorMessage": {"i18nKey": key, "parameters": []}}))).into_response()
}

/// Parses a JSON body, answering Jira's 400 for malformed input.
pub fn platform_json(body: &[u8]) -> Result<Value, Response> {
    if body.is_empty() {
        return Err(platform(
            StatusCode::BAD_REQUEST,
            &["No content to map due to end-of-input"],
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        platform(
            StatusCode::BAD_REQUEST,
            &[&format!("Unexpected character in request body: {e}")],
        )
    })
}

pub fn jsm_json(body: &[u8]) -> Result<Value, Response> {
    if body.is_empty() {
        return Err(jsm(
            StatusCode::BAD_REQUEST,
            "No content to map due to end-of-input",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        jsm(
            StatusCode::BAD_REQUEST,
            &format!("The request body is not valid JSON: {e}"),
        )
    })
}
