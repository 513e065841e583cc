//! Zoho Desk error answers: `{errorCode, message}` (plus `errors[]` for INVALID_DATA).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ZErr {
    pub status: StatusCode,
    pub body: Value,
}

impl ZErr {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ZErr {
        ZErr {
            status,
            body: json!({"errorCode": code, "message": message.into()}),
        }
    }

    pub fn not_found() -> ZErr {
        ZErr::new(
            StatusCode::NOT_FOUND,
            "URL_NOT_FOUND",
            "The URL you requested could not be found.",
        )
    }

    pub fn method_not_allowed() -> ZErr {
        ZErr::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "The HTTP method is not allowed for the requested URL.",
        )
    }

    pub fn extra_param(name: &str) -> ZErr {
        ZErr::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            format!("Extra query parameter '{name}' is present in the input."),
        )
    }

    pub fn bad_param(name: &str) -> ZErr {
        ZErr::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            format!("The value passed for the '{name}' query parameter is invalid."),
        )
    }

    pub fn missing_param(name: &str) -> ZErr {
        ZErr::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            format!("The '{name}' query parameter is missing in the input."),
        )
    }

    /// 422 INVALID_DATA with `(json pointer, errorType)` pairs; errorType is invalid|duplicate|missing.
    pub fn invalid(errors: &[(&str, &str)]) -> ZErr {
        let list: Vec<Value> = errors
            .iter()
            .map(|(f, t)| json!({"fieldName": f, "errorType": t}))
            .collect();
        ZErr {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({
                "errorCode": "INVALID_DATA",
                "message": "The data does not comply to the validation restrictions defined.",
                "errors": list,
            }),
        }
    }

    pub fn invalid_one(field: &str, kind: &str) -> ZErr {
        ZErr::invalid(&[(field, kind)])
    }

    pub fn empty_payload() -> ZErr {
        ZErr::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "EMPTY_PAYLOAD",
            "The request body is empty.",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> ZErr {
        ZErr::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    pub fn invalid_oauth() -> ZErr {
        ZErr::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_OAUTH",
            "The OAuth Token you provided is invalid.",
        )
    }

    pub fn too_large(limit: usize) -> ZErr {
        ZErr::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RESOURCE_SIZE_EXCEEDED",
            format!("The file exceeds the maximum allowed size of {limit} bytes."),
        )
    }

    pub fn frozen() -> ZErr {
        ZErr::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "You are not authorized to access this resource. The portal is in read-only mode.",
        )
    }
}

impl IntoResponse for ZErr {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body)).into_response();
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        );
        r
    }
}

pub type ZResult = Result<Response, ZErr>;

/// `200 {data:[…]}` or Zoho's `204` with no body when the page is empty.
pub fn list_response(items: Vec<Value>) -> Response {
    if items.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    axum::Json(json!({"data": items})).into_response()
}

pub fn ok(v: Value) -> ZResult {
    Ok(axum::Json(v).into_response())
}
