//! Settings of the Zoho Desk source: the connection (shared with the destination connector) plus
//! what only a reader needs: page sizes, credit budget and prices, extra attachment hosts,
//! custom modules.

use std::collections::BTreeMap;

use deskshift_core::{Error, Result};
use deskshift_zohodesk::ZohoDeskConfig;
use serde::{Deserialize, Serialize};

/// Zoho's `from` cannot pass 999 on search endpoints, so a search window holds at most this many.
pub const SEARCH_REACH: u64 = 1000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZohoSourceConfig {
    /// Hosts, org id, OAuth client and refresh token, concurrency cap, retries.
    #[serde(flatten)]
    pub connection: ZohoDeskConfig,
    /// Tickets per page of `Tickets` and per page of `Conversations` (`GET /tickets`, 1..=100).
    #[serde(default = "default_ticket_page")]
    pub ticket_page_size: u32,
    /// Tickets whose threads and comments make one `Conversations` page.
    #[serde(default = "default_conversation_tickets")]
    pub conversation_tickets_per_page: u32,
    /// Accounts, contacts, tasks and custom-module records per page (the API allows 1..=99).
    #[serde(default = "default_small_page")]
    pub record_page_size: u32,
    /// Stop before this source has spent this many credits in this process (None = no own cap;
    /// Zoho's daily limit still applies and pauses the run with `BudgetExhausted`).
    #[serde(default)]
    pub daily_credit_budget: Option<u64>,
    /// Credits per call keyed by endpoint template (e.g. `GET /tickets/{ticketId}`); others cost
    /// `default_credit_cost`. Zoho does not publish its per-endpoint table.
    #[serde(default)]
    pub credit_costs: BTreeMap<String, u64>,
    #[serde(default = "one")]
    pub default_credit_cost: u64,
    /// Further hosts attachments and inline images may be fetched from (the desk host always is),
    /// e.g. `https://desk.zoho.com` for ImageDisplay links when the API host differs.
    #[serde(default)]
    pub attachment_hosts: Vec<String>,
    /// API names of custom modules to export (`cm_...`); None = every custom module that
    /// `GET /organizationModules` lists.
    #[serde(default)]
    pub custom_modules: Option<Vec<String>>,
    /// Reads each ticket's first (description) thread for links to other tickets, which fill
    /// `related_tickets` (2 calls per ticket with threads).
    #[serde(default = "yes")]
    pub scan_description_thread: bool,
}

fn default_ticket_page() -> u32 {
    100
}
fn default_conversation_tickets() -> u32 {
    20
}
fn default_small_page() -> u32 {
    99
}
fn one() -> u64 {
    1
}
fn yes() -> bool {
    true
}

impl ZohoSourceConfig {
    /// A source configuration around a connection, with the default reading options.
    pub fn new(connection: ZohoDeskConfig) -> Self {
        ZohoSourceConfig {
            connection,
            ticket_page_size: default_ticket_page(),
            conversation_tickets_per_page: default_conversation_tickets(),
            record_page_size: default_small_page(),
            daily_credit_budget: None,
            credit_costs: BTreeMap::new(),
            default_credit_cost: 1,
            attachment_hosts: Vec::new(),
            custom_modules: None,
            scan_description_thread: true,
        }
    }

    /// The reading options' defaults around an empty US connection (for estimates).
    pub fn defaults() -> Self {
        Self::for_dc("com").expect("com is a known data centre")
    }

    /// A configuration for a data centre (`com`, `eu`, `in`, `com.au`, `jp`, ...), credentials empty.
    pub fn for_dc(dc: &str) -> Result<Self> {
        Ok(Self::new(ZohoDeskConfig::for_dc(dc)?))
    }

    pub fn validate(&self) -> Result<()> {
        self.connection.validate()?;
        let check = |name: &str, v: u32, max: u32| {
            if v == 0 || v > max {
                Err(Error::Config(format!(
                    "zohodesk source {name} = {v} is outside 1..={max} (the API's page limit)"
                )))
            } else {
                Ok(())
            }
        };
        check("ticket_page_size", self.ticket_page_size, 100)?;
        check(
            "conversation_tickets_per_page",
            self.conversation_tickets_per_page,
            100,
        )?;
        check("record_page_size", self.record_page_size, 99)?;
        for h in &self.attachment_hosts {
            reqwest::Url::parse(h).map_err(|e| {
                Error::Config(format!(
                    "zohodesk source attachment_hosts entry {h:?} is not a URL ({e}); write it as https://host"
                ))
            })?;
        }
        Ok(())
    }

    pub fn credit_cost(&self, endpoint: &str) -> u64 {
        self.credit_costs
            .get(endpoint)
            .copied()
            .unwrap_or(self.default_credit_cost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> ZohoSourceConfig {
        let mut c = ZohoSourceConfig::for_dc("eu").unwrap();
        c.connection.org_id = "123".into();
        c.connection.client_id = "id".into();
        c.connection.client_secret = "very-secret".into();
        c.connection.refresh_token = "1000.refresh".into();
        c
    }

    #[test]
    fn page_sizes_stay_within_the_api_limits() {
        let mut c = valid();
        assert!(c.validate().is_ok());
        c.record_page_size = 100;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("record_page_size"), "{e}");
    }

    #[test]
    fn reads_from_a_job_file_section_without_showing_secrets() {
        let c: ZohoSourceConfig = serde_json::from_value(serde_json::json!({
            "api_base": "https://desk.zoho.eu", "accounts_base": "https://accounts.zoho.eu",
            "org_id": "42", "client_id": "cid", "client_secret": "very-secret",
            "refresh_token": "1000.refresh", "record_page_size": 50,
            "credit_costs": {"GET /tickets/search": 3}
        }))
        .unwrap();
        assert_eq!(c.record_page_size, 50);
        assert_eq!(c.ticket_page_size, 100);
        assert_eq!(c.credit_cost("GET /tickets/search"), 3);
        assert_eq!(c.credit_cost("GET /tickets"), 1);
        let shown = format!("{c:?}") + &serde_json::to_string(&c).unwrap();
        assert!(!shown.contains("very-secret") && !shown.contains("1000.refresh"));
    }
}
