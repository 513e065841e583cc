//! Connection settings of the Zoho Desk destination, the data-centre hosts and the edition table.

use deskshift_core::{Error, Result};
use serde::{Deserialize, Serialize};

pub use deskshift_core::util::Secret;

pub use deskshift_core::http::RetryConfig;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZohoDeskConfig {
    /// Desk host, e.g. `https://desk.zoho.com`; the API lives under `/api/v1`.
    pub api_base: String,
    /// OAuth host, e.g. `https://accounts.zoho.com` (must be the same data centre as `api_base`).
    pub accounts_base: String,
    pub org_id: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    /// Simultaneous calls; None = the edition's cap (read from `GET /organizations` by [`crate::ZohoDesk::connect`]).
    #[serde(default)]
    pub concurrency_cap: Option<usize>,
    /// Department (name or id) for tickets and tasks whose department is not mapped; None = the org's default.
    #[serde(default)]
    pub default_department: Option<String>,
    /// Email of the placeholder contact used for tickets without a requester (Zoho requires one).
    #[serde(default = "default_placeholder_email")]
    pub placeholder_contact_email: String,
    #[serde(default)]
    pub retry: RetryConfig,
    /// Where access tokens are kept: per client unless a shared cache is wired in (Lambda).
    #[serde(skip)]
    pub token_cache: crate::client::SharedTokenCache,
}

fn default_placeholder_email() -> String {
    "unknown-requester@deskshift.invalid".to_string()
}

/// (desk host, accounts host) of a Zoho data centre.
pub fn dc_hosts(dc: &str) -> Option<(String, String)> {
    let dc = dc.trim().trim_start_matches('.').to_ascii_lowercase();
    match dc.as_str() {
        "com" | "us" => Some((
            "https://desk.zoho.com".into(),
            "https://accounts.zoho.com".into(),
        )),
        "eu" | "in" | "com.au" | "com.cn" | "jp" | "sa" | "uk" => Some((
            format!("https://desk.zoho.{dc}"),
            format!("https://accounts.zoho.{dc}"),
        )),
        "au" => dc_hosts("com.au"),
        "cn" => dc_hosts("com.cn"),
        "ca" | "zohocloud.ca" => Some((
            "https://desk.zohocloud.ca".into(),
            "https://accounts.zohocloud.ca".into(),
        )),
        _ => None,
    }
}

impl ZohoDeskConfig {
    /// A configuration for a data centre (`com`, `eu`, `in`, `com.au`, `com.cn`, `jp`, `sa`, `zohocloud.ca`),
    /// with the org and credentials left empty for the caller to fill in.
    pub fn for_dc(dc: &str) -> Result<ZohoDeskConfig> {
        let (api_base, accounts_base) = dc_hosts(dc).ok_or_else(|| {
            Error::Config(format!(
                "unknown Zoho data centre '{dc}': use one of com, eu, in, com.au, com.cn, jp, sa, zohocloud.ca"
            ))
        })?;
        Ok(ZohoDeskConfig {
            api_base,
            accounts_base,
            org_id: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            refresh_token: Secret::default(),
            concurrency_cap: None,
            default_department: None,
            placeholder_contact_email: default_placeholder_email(),
            retry: RetryConfig::default(),
            token_cache: Default::default(),
        })
    }

    /// Checks what can be checked without a call: hosts, org id, credentials present.
    pub fn validate(&self) -> Result<()> {
        for (name, url) in [
            ("api_base", &self.api_base),
            ("accounts_base", &self.accounts_base),
        ] {
            check_base_url(name, url)?;
        }
        if self.org_id.is_empty() || !self.org_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Config(
                "zohodesk org_id must be the portal's numeric organization id (Setup > Developer Space > API)".into(),
            ));
        }
        if self.client_id.is_empty()
            || self.client_secret.is_empty()
            || self.refresh_token.is_empty()
        {
            return Err(Error::Config(
                "zohodesk client_id, client_secret and refresh_token are all required (self-client or OAuth app)".into(),
            ));
        }
        if self.concurrency_cap == Some(0) {
            return Err(Error::Config(
                "zohodesk concurrency_cap must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Tokens only ever travel over HTTPS, except to a loopback test server.
fn check_base_url(name: &str, url: &str) -> Result<()> {
    let parsed = reqwest::Url::parse(url).map_err(|_| {
        Error::Config(format!(
            "zohodesk {name} is not a URL; expected e.g. https://desk.zoho.com"
        ))
    })?;
    let loopback = matches!(
        parsed.host_str(),
        Some("127.0.0.1") | Some("localhost") | Some("[::1]")
    );
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(Error::Config(format!(
            "zohodesk {name} must use https (plain http is only allowed on loopback)"
        ))),
    }
}

/// Zoho Desk editions, with their published daily credits and concurrency caps (platform-apis.md 1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Edition {
    Free,
    Express,
    Standard,
    Professional,
    Enterprise,
}

impl Edition {
    /// Reads the `edition` of `GET /organizations` (FREE, NEW_FREE, EXPRESS, PROFESSIONAL, ENTERPRISE, ZOHOONE, ...).
    pub fn parse(s: &str) -> Option<Edition> {
        let s = s.trim().to_ascii_uppercase().replace([' ', '-'], "_");
        if s.contains("FREE") || s == "TRIAL" {
            return Some(Edition::Free);
        }
        match s.as_str() {
            "EXPRESS" => Some(Edition::Express),
            "STANDARD" => Some(Edition::Standard),
            "PROFESSIONAL" => Some(Edition::Professional),
            "ENTERPRISE" | "ZOHOONE" | "ZOHO_ONE" | "CRMPLUS" | "CRM_PLUS" | "ULTIMATE" => {
                Some(Edition::Enterprise)
            }
            _ => None,
        }
    }

    pub fn concurrency_cap(self) -> usize {
        match self {
            Edition::Free => 5,
            Edition::Express | Edition::Standard => 10,
            Edition::Professional => 15,
            Edition::Enterprise => 25,
        }
    }

    /// Base daily credits and credits per non-light agent; None where the figure was not published.
    pub fn credits(self) -> Option<(u64, u64)> {
        match self {
            Edition::Free => Some((5_000, 0)),
            Edition::Express => Some((25_000, 100)),
            Edition::Standard => None,
            Edition::Professional => Some((75_000, 500)),
            Edition::Enterprise => Some((100_000, 1_000)),
        }
    }

    pub fn daily_credits(self, agents: u64) -> Option<u64> {
        self.credits()
            .map(|(base, per_agent)| base + per_agent * agents)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Edition::Free => "Free",
            Edition::Express => "Express",
            Edition::Standard => "Standard",
            Edition::Professional => "Professional",
            Edition::Enterprise => "Enterprise",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_from_debug_and_serialization() {
        let mut c = ZohoDeskConfig::for_dc("eu").unwrap();
        c.client_secret = Secret::new("s3cr3t-value");
        c.refresh_token = Secret::new("1000.refresh-value");
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("s3cr3t-value") && !dbg.contains("refresh-value"),
            "{dbg}"
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("s3cr3t-value"), "{json}");
        assert_eq!(c.api_base, "https://desk.zoho.eu");
        assert_eq!(c.accounts_base, "https://accounts.zoho.eu");
    }

    #[test]
    fn data_centres_map_to_matching_hosts() {
        assert_eq!(dc_hosts("com.au").unwrap().0, "https://desk.zoho.com.au");
        assert_eq!(dc_hosts("jp").unwrap().1, "https://accounts.zoho.jp");
        assert_eq!(
            dc_hosts("zohocloud.ca").unwrap().0,
            "https://desk.zohocloud.ca"
        );
        assert!(ZohoDeskConfig::for_dc("mars").is_err());
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        let mut c = ZohoDeskConfig::for_dc("com").unwrap();
        c.org_id = "123".into();
        c.client_id = "id".into();
        c.client_secret = "s".into();
        c.refresh_token = "r".into();
        assert!(c.validate().is_ok());
        c.api_base = "http://desk.zoho.com".into();
        assert!(matches!(c.validate(), Err(Error::Config(_))));
        c.api_base = "http://127.0.0.1:8080".into();
        assert!(c.validate().is_ok());
    }

    #[test]
    fn editions_parse_from_organization_values() {
        assert_eq!(Edition::parse("NEW_FREE"), Some(Edition::Free));
        assert_eq!(Edition::parse("ZOHOONE"), Some(Edition::Enterprise));
        assert_eq!(
            Edition::parse("Professional").unwrap().concurrency_cap(),
            15
        );
        assert_eq!(Edition::Express.daily_credits(3), Some(25_300));
        assert_eq!(Edition::parse("unknown"), None);
    }
}
