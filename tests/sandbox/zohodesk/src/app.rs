//! Shared server state: the tenant, tokens, credit and concurrency counters, request statistics.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use sandbox_kit::Faults;
use serde_json::{Value, json};

use crate::config::ZohoConfig;
use crate::model::Db;

pub struct Auth {
    /// access token -> expiry
    pub tokens: HashMap<String, Instant>,
    /// refresh grants per refresh token inside the rolling 10-minute window
    pub grants: HashMap<String, VecDeque<Instant>>,
    pub issued: u64,
}

pub struct Credits {
    pub day: jiff::civil::Date,
    pub used: u64,
    pub throttled_threshold: u64,
    pub throttled_concurrency: u64,
    pub peak_in_flight: u32,
    /// Per endpoint (`METHOD /template`): calls in flight now, and the most at once.
    pub endpoint_in_flight: BTreeMap<String, (u32, u32)>,
}

pub struct App {
    pub cfg: ZohoConfig,
    pub db: Mutex<Db>,
    pub auth: Mutex<Auth>,
    pub credits: Mutex<Credits>,
    pub stats: Mutex<BTreeMap<String, u64>>,
    pub in_flight: AtomicU32,
    pub frozen: AtomicBool,
    pub faults: Faults,
    pub base_url: OnceLock<String>,
}

/// Refresh grants allowed per refresh token inside [`REFRESH_WINDOW`].
pub const REFRESH_LIMIT: usize = 10;
pub const REFRESH_WINDOW: Duration = Duration::from_secs(600);

pub fn today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

impl App {
    pub fn new(cfg: ZohoConfig, faults: Faults) -> App {
        let db = Db::new(&cfg.org_id, &cfg.edition);
        let mut tokens = HashMap::new();
        if let Some(t) = &cfg.access_token {
            tokens.insert(
                t.clone(),
                Instant::now() + Duration::from_secs(cfg.access_token_ttl_secs),
            );
        }
        App {
            db: Mutex::new(db),
            auth: Mutex::new(Auth {
                tokens,
                grants: HashMap::new(),
                issued: 0,
            }),
            credits: Mutex::new(Credits {
                day: today(),
                used: 0,
                throttled_threshold: 0,
                throttled_concurrency: 0,
                peak_in_flight: 0,
                endpoint_in_flight: BTreeMap::new(),
            }),
            stats: Mutex::new(BTreeMap::new()),
            in_flight: AtomicU32::new(0),
            frozen: AtomicBool::new(false),
            faults,
            base_url: OnceLock::new(),
            cfg,
        }
    }

    pub fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn base(&self) -> &str {
        self.base_url
            .get()
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1")
    }

    pub fn api(&self) -> String {
        format!("{}/api/v1", self.base())
    }

    /// Mints an access token the way a refresh grant would, without counting against the refresh limit.
    pub fn mint_token(&self) -> String {
        let mut auth = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        auth.issued += 1;
        let token = format!("1000.{:032x}.{:08x}", rand_token(auth.issued), auth.issued);
        auth.tokens.insert(
            token.clone(),
            Instant::now() + Duration::from_secs(self.cfg.access_token_ttl_secs),
        );
        token
    }

    pub fn token_valid(&self, token: &str) -> bool {
        let auth = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        auth.tokens
            .get(token)
            .is_some_and(|exp| *exp > Instant::now())
    }

    pub fn expire_tokens(&self) -> usize {
        let mut auth = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        let past = Instant::now() - Duration::from_millis(1);
        let n = auth.tokens.len();
        for exp in auth.tokens.values_mut() {
            *exp = past;
        }
        n
    }

    pub fn credits_remaining(&self) -> u64 {
        let mut c = self.credits.lock().unwrap_or_else(|e| e.into_inner());
        roll_day(&mut c);
        self.cfg.effective_daily_credits().saturating_sub(c.used)
    }

    /// Charges `cost` credits; `None` when the day's budget is spent.
    pub fn charge(&self, cost: u64) -> Option<u64> {
        let mut c = self.credits.lock().unwrap_or_else(|e| e.into_inner());
        roll_day(&mut c);
        let limit = self.cfg.effective_daily_credits();
        if c.used + cost > limit {
            c.throttled_threshold += 1;
            return None;
        }
        c.used += cost;
        Some(limit - c.used)
    }

    pub fn count(&self, key: String) {
        *self
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(0) += 1;
    }

    pub fn counters(&self) -> Value {
        let c = self.credits.lock().unwrap_or_else(|e| e.into_inner());
        json!({
            "day": c.day.to_string(),
            "dailyCredits": self.cfg.effective_daily_credits(),
            "creditsUsed": c.used,
            "creditsRemaining": self.cfg.effective_daily_credits().saturating_sub(c.used),
            "concurrencyCap": self.cfg.effective_concurrency_cap(),
            "inFlight": self.in_flight.load(Ordering::SeqCst),
            "peakInFlight": c.peak_in_flight,
            "peakInFlightByEndpoint": c
                .endpoint_in_flight
                .iter()
                .map(|(k, (_, peak))| (k.clone(), json!(peak)))
                .collect::<serde_json::Map<String, Value>>(),
            "throttledThreshold": c.throttled_threshold,
            "throttledConcurrency": c.throttled_concurrency,
            "frozen": self.frozen.load(Ordering::SeqCst),
        })
    }
}

fn roll_day(c: &mut Credits) {
    let d = today();
    if d != c.day {
        c.day = d;
        c.used = 0;
    }
}

fn rand_token(n: u64) -> u128 {
    use rand::{RngExt, SeedableRng};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(nanos as u64 ^ n.rotate_left(17));
    rng.random::<u128>()
}
