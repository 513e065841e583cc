//! Connection and mapping settings of the Jira Service Management destination.

use std::collections::BTreeMap;

use deskshift_core::{Error, Result};
use serde::{Deserialize, Serialize};

pub use deskshift_core::util::Secret;

pub use deskshift_core::http::RetryConfig;

/// Where a ticket's category and sub-category go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoryMode {
    /// One cascading select field (parent = category, child = sub-category).
    #[default]
    Cascading,
    /// Labels `category:<value>` and `subcategory:<value>`.
    Labels,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsmConfig {
    /// Site URL, e.g. `https://acme.atlassian.net` (the APIs live under `/rest/...`).
    pub base_url: String,
    /// Account e-mail of the API token's owner (Basic auth user); needs Jira and JSM admin rights.
    pub email: String,
    pub api_token: Secret,
    /// Service desk (id, project key or project name) for tickets whose department is not mapped;
    /// None = the first service desk of the site.
    pub service_desk: Option<String>,
    /// Department name -> service desk (id, project key or project name). Departments not listed
    /// go to the desk of the same project name, else to `service_desk`.
    pub department_desks: BTreeMap<String, String>,
    /// Request type (name or id) for tickets; None = the first "Get IT help"-like type of the desk.
    pub request_type: Option<String>,
    /// Request type per department, overriding `request_type`.
    pub department_request_types: BTreeMap<String, String>,
    pub category_mode: CategoryMode,
    /// Name of the cascading select field created for category / sub-category.
    pub category_field: String,
    /// Name of the text field holding `<source platform>:<source id>` (idempotency and audit).
    pub legacy_id_field: String,
    /// Issue link type for related tickets (e.g. `Relates`).
    pub link_type: String,
    /// Simultaneous calls. Atlassian publishes no cap for API-token traffic; 10 stays far below the
    /// burst limits seen in practice.
    pub concurrency_cap: usize,
    /// Writes per second to one issue (Jira's `jira-per-issue-on-write` limit is unpublished);
    /// 0 = no spacing.
    pub per_issue_writes_per_second: f64,
    /// Attachments up to this size are downloaded back after upload and compared by MD5; larger
    /// ones are checked by size only.
    pub verify_download_max_bytes: u64,
    pub retry: RetryConfig,
}

impl Default for JsmConfig {
    fn default() -> Self {
        JsmConfig {
            base_url: String::new(),
            email: String::new(),
            api_token: Secret::default(),
            service_desk: None,
            department_desks: BTreeMap::new(),
            request_type: None,
            department_request_types: BTreeMap::new(),
            category_mode: CategoryMode::Cascading,
            category_field: "Category / Sub-category".into(),
            legacy_id_field: "Legacy Ticket ID".into(),
            link_type: "Relates".into(),
            concurrency_cap: 10,
            per_issue_writes_per_second: 5.0,
            verify_download_max_bytes: 5 * 1024 * 1024,
            retry: RetryConfig::default(),
        }
    }
}

impl JsmConfig {
    /// Checks what can be checked without a call: the site URL and the credentials.
    pub fn validate(&self) -> Result<()> {
        let parsed = reqwest::Url::parse(&self.base_url).map_err(|_| {
            Error::Config(
                "jsm base_url is not a URL; expected the site, e.g. https://acme.atlassian.net"
                    .into(),
            )
        })?;
        let loopback = matches!(
            parsed.host_str(),
            Some("127.0.0.1") | Some("localhost") | Some("[::1]")
        );
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(Error::Config(
                    "jsm base_url must use https (plain http is only allowed on loopback)".into(),
                ));
            }
        }
        if self.email.trim().is_empty() || !self.email.contains('@') {
            return Err(Error::Config(
                "jsm email must be the Atlassian account e-mail that owns the API token".into(),
            ));
        }
        if self.api_token.is_empty() {
            return Err(Error::Config(
                "jsm api_token is empty: create one at id.atlassian.com > Security > API tokens"
                    .into(),
            ));
        }
        if self.concurrency_cap == 0 {
            return Err(Error::Config(
                "jsm concurrency_cap must be at least 1".into(),
            ));
        }
        if self.per_issue_writes_per_second.is_nan() || self.per_issue_writes_per_second < 0.0 {
            return Err(Error::Config(
                "jsm per_issue_writes_per_second must be 0 (off) or a positive rate".into(),
            ));
        }
        for (name, v) in [
            ("legacy_id_field", &self.legacy_id_field),
            ("category_field", &self.category_field),
            ("link_type", &self.link_type),
        ] {
            if v.trim().is_empty() {
                return Err(Error::Config(format!("jsm {name} must not be empty")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> JsmConfig {
        JsmConfig {
            base_url: "https://acme.atlassian.net".into(),
            email: "admin@acme.test".into(),
            api_token: Secret::new("ATATT3xFfGF0-token-value"),
            ..JsmConfig::default()
        }
    }

    #[test]
    fn secrets_are_hidden_from_debug_and_serialization() {
        let c = valid();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("token-value"), "{dbg}");
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("token-value"), "{json}");
    }

    #[test]
    fn settings_are_checked() {
        assert!(valid().validate().is_ok());
        let mut c = valid();
        c.base_url = "http://acme.atlassian.net".into();
        assert!(matches!(c.validate(), Err(Error::Config(_))));
        c.base_url = "http://127.0.0.1:8080".into();
        assert!(c.validate().is_ok());
        c.api_token = Secret::default();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("api_token"), "{e}");
        let mut c = valid();
        c.concurrency_cap = 0;
        assert!(c.validate().is_err());
        let mut c = valid();
        c.per_issue_writes_per_second = f64::NAN;
        assert!(c.validate().is_err());
    }

    #[test]
    fn config_reads_from_toml_with_defaults() {
        let c: JsmConfig = serde_json::from_value(serde_json::json!({
            "base_url": "https://acme.atlassian.net",
            "email": "a@b.test",
            "api_token": "t",
            "category_mode": "labels",
            "department_desks": {"Billing": "BIL"}
        }))
        .unwrap();
        assert_eq!(c.category_mode, CategoryMode::Labels);
        assert_eq!(c.legacy_id_field, "Legacy Ticket ID");
        assert_eq!(c.department_desks["Billing"], "BIL");
        assert_eq!(c.concurrency_cap, 10);
    }
}
