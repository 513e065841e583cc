//! The source's view of the shared Zoho Desk client ([`deskshift_zohodesk::client`]): GET-only
//! reads, credits priced per endpoint and capped by the configured daily budget (calls in flight
//! count), and the spend of a replaced client (the probe that read the edition) carried over.

use std::sync::Mutex;

use deskshift_core::http::Answer;
use deskshift_core::ports::Spend;
use deskshift_core::{Error, Result};
use deskshift_zohodesk::client::{Payload, ZohoClient, describe_error_body};
use reqwest::{Method, Url};
use serde_json::Value;

use crate::config::ZohoSourceConfig;

pub(crate) use deskshift_zohodesk::client::{PLATFORM, error_code};

pub(crate) struct ZohoReader {
    cfg: ZohoSourceConfig,
    client: ZohoClient,
    /// Spend of clients this one replaced (the probe that read the edition).
    carried: Spend,
    /// Credits of calls in flight, held against `daily_credit_budget`.
    reserved: Mutex<u64>,
}

/// Credits held for a call in flight; released when the call's spend is counted.
struct Reservation<'a> {
    reader: &'a ZohoReader,
    cost: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.cost > 0 {
            *self.reader.reserved.lock().unwrap() -= self.cost;
        }
    }
}

impl ZohoReader {
    pub(crate) fn new(cfg: ZohoSourceConfig, concurrency_cap: usize) -> Result<ZohoReader> {
        cfg.validate()?;
        Ok(ZohoReader {
            client: ZohoClient::new(cfg.connection.clone(), concurrency_cap)?,
            cfg,
            carried: Spend::default(),
            reserved: Mutex::new(0),
        })
    }

    /// The same reader with another concurrency cap, keeping its token and its spend so far.
    pub(crate) fn rebuild(self, concurrency_cap: usize) -> Result<ZohoReader> {
        let carried = self.spend();
        Ok(ZohoReader {
            client: self.client.rebuild(concurrency_cap)?,
            cfg: self.cfg,
            carried,
            reserved: Mutex::new(0),
        })
    }

    pub(crate) fn config(&self) -> &ZohoSourceConfig {
        &self.cfg
    }

    pub(crate) fn concurrency_cap(&self) -> usize {
        self.client.concurrency_cap()
    }

    pub(crate) fn token_refreshes(&self) -> u64 {
        self.client.token_refreshes()
    }

    pub(crate) fn credits_remaining(&self) -> Option<u64> {
        self.client.credits_remaining()
    }

    /// Calls (API and token grants) and credits. Zoho charges every API answer except throttling
    /// (429) and authentication failures (401); token grants cost no credits.
    pub(crate) fn spend(&self) -> Spend {
        let api = self.client.api_spend();
        let oauth = self.client.oauth_spend();
        let mut out =
            deskshift_core::http::merge_spend(&[api.clone(), oauth, self.carried.clone()]);
        let charged: u64 = api
            .calls_by_endpoint
            .iter()
            .map(|(ep, n)| self.cfg.credit_cost(ep) * n)
            .sum();
        let uncharged: u64 = self
            .client
            .unauthorized_by_endpoint()
            .iter()
            .map(|(ep, n)| self.cfg.credit_cost(ep) * n)
            .sum();
        // ApiClient does not say which endpoint a 429 answered; they are priced at the default.
        let throttled = api.throttled * self.cfg.default_credit_cost;
        out.credits = charged.saturating_sub(throttled + uncharged) + self.carried.credits;
        out
    }

    /// Reserves the credits of one call within the configured budget; calls in flight count,
    /// so concurrent callers cannot overshoot it together.
    fn reserve(&self, endpoint: &str) -> Result<Reservation<'_>> {
        let cost = self.cfg.credit_cost(endpoint);
        let Some(budget) = self.cfg.daily_credit_budget else {
            return Ok(Reservation {
                reader: self,
                cost: 0,
            });
        };
        let mut reserved = self.reserved.lock().unwrap();
        let spent = self.spend().credits;
        if spent + *reserved + cost > budget {
            return Err(Error::BudgetExhausted {
                platform: PLATFORM.into(),
                message: format!(
                    "this source's daily_credit_budget of {budget} credits is spent ({spent} used); \
                     raise source.daily_credit_budget or resume when the budget renews"
                ),
            });
        }
        *reserved += cost;
        Ok(Reservation { reader: self, cost })
    }

    /// GET `url` with the token and orgId, refreshing the token once on `INVALID_OAUTH`.
    /// Every answer the retry layer did not absorb comes back, whatever its status.
    pub(crate) async fn get_url(
        &self,
        endpoint: &str,
        url: &Url,
        query: &[(&str, String)],
    ) -> Result<Answer> {
        let reservation = self.reserve(endpoint)?;
        let answer = self
            .client
            .call_url(Method::GET, endpoint, url, query, &Payload::None, true)
            .await;
        drop(reservation);
        answer
    }

    /// GET an API path (under `/api/v1`); the JSON of a success, `Null` for 204, else the error.
    pub(crate) async fn get(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value> {
        let url = self.api_url(path)?;
        let answer = self.get_url(endpoint, &url, query).await?;
        json_of(endpoint, &answer)
    }

    pub(crate) fn api_url(&self, path: &str) -> Result<Url> {
        self.client.api_url(path)
    }
}

/// The answer's JSON if it is a success (`Null` for 204 No Content), else the mapped error.
pub(crate) fn json_of(endpoint: &str, answer: &Answer) -> Result<Value> {
    if answer.status.is_success() {
        return deskshift_zohodesk::client::json_of(endpoint, answer);
    }
    Err(api_error(endpoint, answer))
}

/// An error for a non-success answer, naming the endpoint template only (source scopes on 401).
pub(crate) fn api_error(endpoint: &str, answer: &Answer) -> Error {
    if answer.status.as_u16() == 401 {
        return Error::Config(format!(
            "Zoho Desk refused the source credentials on {endpoint} ({}); check org_id, the OAuth scopes \
             (Desk.tickets.READ Desk.contacts.READ Desk.basic.READ Desk.settings.READ Desk.search.READ \
             Desk.tasks.READ Desk.products.READ Desk.custommodule.READ) and that api_base is the account's data centre",
            describe_error_body(&answer.body)
        ));
    }
    deskshift_zohodesk::client::api_error(endpoint, answer)
}

/// Items of a list answer (`data`), empty for 204.
pub(crate) fn items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Object(o) => o
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}
