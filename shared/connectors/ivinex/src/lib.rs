//! Ivinex source: the call API (`POST /API/<Call>`, Basic auth) as modelled in ivinex-api.md.
//!
//! Tabs and fields are tenant-defined, so nothing here knows a tab's fields: `discover` reads them
//! with GetTabs / GetFields and the mapping phase decides what they mean. Dates arrive in the
//! site's timezone without offset; records leave with UTC `created_at` / `modified_at` and the
//! original stamp as the delta cursor value.

use async_trait::async_trait;
use bytes::Bytes;
use deskshift_core::error::{Error, Result};
use deskshift_core::http::{Answer, ApiClient, HttpPolicy};
use deskshift_core::model::{
    AttachmentRef, FieldDef, FieldType, RawRecord, SourceCollection, SourceSchema,
};
use deskshift_core::ports::{PageRequest, RawPage, Source};
use deskshift_core::util::{Secret, check_fetch_url, local_to_utc, utc_to_local};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const PLATFORM: &str = "Ivinex";

/// Fields every Ivinex record carries besides its tab's own.
pub const DEFAULT_FIELDS: [(&str, &str); 5] = [
    ("collection_id", "number"),
    ("created_by", "user_link"),
    ("created_date", "datetime"),
    ("modified_by", "user_link"),
    ("modified_date", "datetime"),
];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvinexConfig {
    /// `https://<siteID>.ivinex.com` (or a sandbox URL).
    pub base_url: String,
    pub user: String,
    pub password: Secret,
    /// The site's IANA timezone: Ivinex dates carry no offset.
    pub timezone: String,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Further hosts attachments may be fetched from (the base URL's host always is).
    #[serde(default)]
    pub attachment_hosts: Vec<String>,
    /// Upper bound of concurrent calls; the client adapts below it (Ivinex publishes no limits).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
}

fn default_page_size() -> u32 {
    200
}
fn default_concurrency() -> usize {
    8
}

pub struct IvinexSource {
    config: IvinexConfig,
    client: ApiClient,
    zone: jiff::tz::TimeZone,
    allowed: Vec<reqwest::Url>,
}

impl IvinexSource {
    pub fn new(config: IvinexConfig) -> Result<Self> {
        let zone = jiff::tz::TimeZone::get(&config.timezone).map_err(|e| {
            Error::Config(format!(
                "source.timezone = {:?} is not an IANA timezone ({e}); set it to the Ivinex site's zone, e.g. America/New_York",
                config.timezone
            ))
        })?;
        let base = reqwest::Url::parse(&config.base_url).map_err(|e| {
            Error::Config(format!(
                "source.base_url = {:?} is not a URL ({e})",
                config.base_url
            ))
        })?;
        if config.page_size == 0 || config.page_size > 200 {
            return Err(Error::Config(format!(
                "source.page_size = {} is outside 1..=200 (GetRecords' maximum)",
                config.page_size
            )));
        }
        let mut allowed = vec![base];
        for h in &config.attachment_hosts {
            allowed.push(reqwest::Url::parse(h).map_err(|e| {
                Error::Config(format!(
                    "source.attachment_hosts entry {h:?} is not a URL ({e})"
                ))
            })?);
        }
        let policy = HttpPolicy {
            max_concurrency: config.max_concurrency.max(1),
            initial_concurrency: config.max_concurrency.clamp(1, 4),
            ..HttpPolicy::default()
        };
        Ok(IvinexSource {
            client: ApiClient::new(PLATFORM, policy)?,
            zone,
            allowed,
            config,
        })
    }

    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    pub fn timezone(&self) -> &jiff::tz::TimeZone {
        &self.zone
    }

    async fn call(&self, call: &str, body: Value) -> Result<Value> {
        let url = format!("{}/API/{call}", self.config.base_url.trim_end_matches('/'));
        let endpoint = format!("POST /API/{call}");
        // Every call of the model is a read or, for writes we never send, keyed: safe to repeat.
        let answer = self
            .client
            .send(&endpoint, true, |http| {
                http.post(&url)
                    .basic_auth(&self.config.user, Some(self.config.password.expose()))
                    .json(&body)
            })
            .await?;
        self.check(&endpoint, &answer, &body)?;
        answer.json(PLATFORM, &endpoint)
    }

    fn check(&self, endpoint: &str, answer: &Answer, body: &Value) -> Result<()> {
        if answer.status.is_success() {
            return Ok(());
        }
        let message = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("Message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| deskshift_core::http::snippet(&answer.body));
        Err(match answer.status.as_u16() {
            401 => Error::Config(format!(
                "Ivinex rejected the credentials of API user {:?} ({message}); check source.user and the password in the environment",
                self.config.user
            )),
            403 => Error::Config(format!(
                "Ivinex API user {:?} lacks API permission for {endpoint} ({message}); grant \"API permissions\" to the user or its group",
                self.config.user
            )),
            status => Error::Api {
                platform: PLATFORM.into(),
                endpoint: format!(
                    "{endpoint} {}",
                    body.get("Tab").and_then(Value::as_str).unwrap_or("")
                ),
                status,
                message,
            },
        })
    }

    fn to_raw(&self, tab: &str, mut record: serde_json::Map<String, Value>) -> Result<RawRecord> {
        let id = match record.get("collection_id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            other => {
                return Err(Error::Api {
                    platform: PLATFORM.into(),
                    endpoint: format!("POST /API/GetRecords {tab}"),
                    status: 200,
                    message: format!(
                        "a record without collection_id ({other:?}); the tenant does not follow the GetRecords contract"
                    ),
                });
            }
        };
        let attachments = match record.remove("attachments") {
            Some(Value::Array(items)) => items.iter().filter_map(attachment_ref).collect(),
            _ => Vec::new(),
        };
        let stamp = |f: &str| record.get(f).and_then(Value::as_str).map(str::to_string);
        let created_local = stamp("created_date");
        let modified_local = stamp("modified_date");
        Ok(RawRecord {
            collection: tab.to_string(),
            created_at: created_local
                .as_deref()
                .and_then(|d| local_to_utc(d, &self.zone)),
            modified_at: modified_local
                .as_deref()
                .and_then(|d| local_to_utc(d, &self.zone)),
            cursor_value: modified_local,
            id,
            fields: record,
            attachments,
        })
    }
}

fn attachment_ref(a: &Value) -> Option<AttachmentRef> {
    let url = a.get("url")?.as_str()?.to_string();
    let id = reqwest::Url::parse(&url)
        .map(|u| u.path().to_string())
        .unwrap_or_else(|_| url.clone());
    Some(AttachmentRef {
        id,
        file_name: a
            .get("file_name")
            .and_then(Value::as_str)
            .unwrap_or("attachment")
            .to_string(),
        size: a.get("size").and_then(|s| {
            s.as_u64()
                .or_else(|| s.as_str().and_then(|x| x.parse().ok()))
        }),
        md5: a
            .get("md5")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_ascii_lowercase),
        url,
        inline: false,
    })
}

#[async_trait]
impl Source for IvinexSource {
    fn platform(&self) -> &'static str {
        PLATFORM
    }

    async fn discover(&self) -> Result<SourceSchema> {
        let tabs = self.call("GetTabs", json!({})).await?;
        let tabs = tabs
            .get("Tabs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // Every tab's field list at once (the client keeps within its concurrency), in tab order.
        let named: Vec<(Value, String)> = tabs
            .into_iter()
            .filter_map(|t| {
                let name = t.get("Name").and_then(Value::as_str)?.to_string();
                Some((t, name))
            })
            .collect();
        let calls: Vec<_> = named
            .iter()
            .map(|(_, name)| {
                let body = json!({ "Tab": name });
                async move { self.call("GetFields", body).await }
            })
            .collect();
        let answers: Vec<Value> = futures::stream::iter(calls)
            .buffered(self.config.max_concurrency.max(1))
            .try_collect()
            .await?;
        let mut collections = Vec::new();
        for ((tab, name), fields) in named.iter().zip(answers) {
            let name = name.as_str();
            let list = fields
                .get("Fields")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut defs: Vec<FieldDef> = list
                .iter()
                .filter_map(|f| {
                    let field_name = f.get("FieldName")?.as_str()?.to_string();
                    Some(FieldDef {
                        label: f
                            .get("DisplayText")
                            .and_then(Value::as_str)
                            .unwrap_or(&field_name)
                            .to_string(),
                        field_type: FieldType::parse(
                            f.get("Type").and_then(Value::as_str).unwrap_or("text"),
                        ),
                        required: f.get("Required").and_then(Value::as_bool).unwrap_or(false),
                        options: f
                            .get("Options")
                            .and_then(Value::as_array)
                            .map(|o| {
                                o.iter()
                                    .filter_map(|x| x.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        linked_collection: f
                            .get("LinkedTab")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        custom: true,
                        name: field_name,
                    })
                })
                .collect();
            // A readable tab also carries the default fields; an unreadable one stays empty.
            if !defs.is_empty() {
                for (n, t) in DEFAULT_FIELDS {
                    if !defs.iter().any(|d| d.name == n) {
                        defs.push(FieldDef {
                            name: n.to_string(),
                            label: n.replace('_', " "),
                            field_type: FieldType::parse(t),
                            required: false,
                            options: vec![],
                            linked_collection: (t == "user_link").then(|| "Users".to_string()),
                            custom: false,
                        });
                    }
                }
            }
            collections.push(SourceCollection {
                name: name.to_string(),
                source_key: tab
                    .get("TabID")
                    .map(|v| v.to_string().trim_matches('"').to_string()),
                fields: defs,
            });
        }
        Ok(SourceSchema { collections })
    }

    async fn read_page(&self, collection: &str, request: &PageRequest) -> Result<RawPage> {
        let page: u64 = request
            .cursor
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let size = if request.page_size == 0 {
            self.config.page_size
        } else {
            request.page_size.min(200)
        };
        let mut body = json!({"Tab": collection, "Page": page, "PageSize": size});
        if let Some(since) = &request.modified_since {
            body["ModifiedSince"] = json!(since);
        }
        let answer = self.call("GetRecords", body).await?;
        let records = answer
            .get("Records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let has_more = answer
            .get("HasMore")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let records = records
            .into_iter()
            .filter_map(|r| match r {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .map(|m| self.to_raw(collection, m))
            .collect::<Result<Vec<_>>>()?;
        Ok(RawPage {
            next: (has_more && !records.is_empty()).then(|| (page + 1).to_string()),
            records,
        })
    }

    async fn download(&self, attachment: &AttachmentRef) -> Result<Bytes> {
        let url =
            check_fetch_url(&attachment.url, &self.allowed).map_err(|reason| Error::Refused {
                url: attachment.url.clone(),
                reason,
            })?;
        let answer = self
            .client
            .send("GET attachment", true, |http| {
                http.get(url.clone())
                    .basic_auth(&self.config.user, Some(self.config.password.expose()))
            })
            .await?;
        if answer.status.is_redirection() {
            return Err(Error::Refused {
                url: attachment.url.clone(),
                reason: "the server redirected; redirects are not followed off the configured host"
                    .into(),
            });
        }
        if !answer.status.is_success() {
            return Err(Error::Api {
                platform: PLATFORM.into(),
                endpoint: "GET attachment".into(),
                status: answer.status.as_u16(),
                message: format!(
                    "{} for {}",
                    deskshift_core::http::snippet(&answer.body),
                    attachment.file_name
                ),
            });
        }
        Ok(answer.body)
    }

    fn may_fetch(&self, url: &str) -> std::result::Result<(), String> {
        check_fetch_url(url, &self.allowed).map(|_| ())
    }

    fn cursor_after(&self, cursor: Option<&str>, pages: u64) -> Option<String> {
        let page: u64 = cursor.map_or(Some(1), |c| c.parse().ok())?;
        Some((page + pages).to_string())
    }

    async fn cursor_now(&self) -> Result<String> {
        let now = deskshift_core::util::now_iso();
        utc_to_local(&now, &self.zone)
            .ok_or_else(|| Error::Config("cannot express now in the site timezone".into()))
    }
}
