//! Test client for the Jira sandbox: one server per test, talked to over HTTP only.
#![allow(dead_code)]

use reqwest::Method;
use reqwest::header::HeaderMap;
use sandbox_jira::{JiraConfig, JiraSandbox};
use serde_json::{Value, json};

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

pub struct Env {
    pub sandbox: JiraSandbox,
    pub http: reqwest::Client,
    pub base: String,
    pub auth: String,
}

pub async fn start(config: JiraConfig) -> Env {
    let sandbox = sandbox_jira::start(config).await.expect("sandbox starts");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let base = sandbox.base_url().to_string();
    let auth = sandbox.auth_header();
    Env {
        sandbox,
        http,
        base,
        auth,
    }
}

pub async fn start_default() -> Env {
    start(JiraConfig::default()).await
}

async fn finish(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.expect("body").to_vec();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        bytes,
        json,
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("Authorization", &self.auth);
        if let Some(b) = body {
            req = req.json(&b);
        }
        finish(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }
    pub async fn delete_with(&self, path: &str, body: Value) -> Resp {
        self.call(Method::DELETE, path, Some(body)).await
    }

    /// An unauthenticated call, as the inspection API is used.
    pub async fn raw(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = self.http.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        finish(req.send().await.expect("request sent")).await
    }

    pub async fn upload(&self, path: &str, files: &[(&str, &[u8])], xsrf: bool) -> Resp {
        let mut form = reqwest::multipart::Form::new();
        for (name, data) in files {
            let part = reqwest::multipart::Part::bytes(data.to_vec())
                .file_name(name.to_string())
                .mime_str("application/octet-stream")
                .unwrap();
            form = form.part("file", part);
        }
        let mut req = self
            .http
            .post(self.url(path))
            .header("Authorization", &self.auth)
            .multipart(form);
        if xsrf {
            req = req.header("X-Atlassian-Token", "no-check");
        }
        finish(req.send().await.expect("request sent")).await
    }

    pub async fn dump(&self) -> Value {
        self.raw(Method::GET, "/__sandbox/dump", None).await.json
    }

    /// Creates an issue in SUP and answers its key.
    pub async fn issue(&self, summary: &str) -> String {
        let r = self
            .post("/rest/api/3/issue", json!({"fields": {"project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": summary}}))
            .await;
        assert_eq!(r.status, 201, "create issue: {}", r.json);
        r.json["key"].as_str().expect("key").to_string()
    }

    pub async fn stop(self) {
        self.sandbox.stop().await
    }
}

pub fn doc(text: &str) -> Value {
    json!({"version": 1, "type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}]})
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}
