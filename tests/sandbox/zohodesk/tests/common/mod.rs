//! Test helpers: a started sandbox plus an HTTP client that authenticates like a Zoho client.
#![allow(dead_code)]

use reqwest::{Method, Response};
use sandbox_zohodesk::{ZohoConfig, ZohoSandbox};
use serde_json::Value;

pub struct Ctx {
    pub sb: ZohoSandbox,
    pub http: reqwest::Client,
    pub token: String,
}

/// Obtains an access token through the refresh grant, parameters in the query string.
pub async fn refresh(http: &reqwest::Client, sb: &ZohoSandbox) -> Response {
    let c = sb.config();
    http.post(format!("{}/oauth/v2/token", sb.base_url()))
        .query(&[
            ("refresh_token", c.refresh_token.as_str()),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("grant_type", "refresh_token"),
        ])
        .send()
        .await
        .expect("token request")
}

impl Ctx {
    pub async fn start(cfg: ZohoConfig) -> Ctx {
        let sb = sandbox_zohodesk::start(cfg).await.expect("sandbox starts");
        let http = reqwest::Client::new();
        let resp = refresh(&http, &sb).await;
        assert_eq!(resp.status(), 200, "refresh grant");
        let body: Value = resp.json().await.unwrap();
        let token = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        Ctx { sb, http, token }
    }

    pub async fn default() -> Ctx {
        Ctx::start(ZohoConfig::default()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sb.api_url(), path)
    }

    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("Authorization", format!("Zoho-oauthtoken {}", self.token))
            .header("orgId", self.sb.org_id())
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.req(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.req(Method::PATCH, path)
            .json(body)
            .send()
            .await
            .expect("PATCH")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.req(Method::DELETE, path).send().await.expect("DELETE")
    }

    /// POSTs and expects 200/201 with a JSON body.
    pub async fn create(&self, path: &str, body: &Value) -> Value {
        let r = self.post(path, body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status == 200 || status == 201,
            "POST {path} -> {status}: {v}"
        );
        v
    }

    pub async fn ok_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    pub async fn sandbox(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let mut rb = self
            .http
            .request(method, format!("{}/__sandbox/{path}", self.sb.base_url()));
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.expect("sandbox call");
        assert!(r.status().is_success(), "/__sandbox/{path}: {}", r.status());
        r.json().await.expect("sandbox json")
    }

    pub async fn default_department(&self) -> String {
        let d = self.ok_json("/departments").await;
        d["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["isDefault"] == true)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn new_contact(&self, last: &str, email: &str) -> String {
        let c = self
            .create(
                "/contacts",
                &serde_json::json!({"lastName": last, "email": email}),
            )
            .await;
        c["id"].as_str().unwrap().to_string()
    }

    pub async fn new_ticket(&self, subject: &str) -> Value {
        let dept = self.default_department().await;
        let contact = self
            .new_contact("Doe", &format!("{}@example.org", subject.replace(' ', ".")))
            .await;
        self.create(
            "/tickets",
            &serde_json::json!({"subject": subject, "departmentId": dept, "contactId": contact}),
        )
        .await
    }

    pub async fn stop(self) {
        self.sb.stop().await;
    }
}

pub async fn error_of(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}
