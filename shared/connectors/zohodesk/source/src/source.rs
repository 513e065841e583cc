//! [`ZohoDeskSource`]: discovery, paged reads, delta reads through search, attachment downloads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use deskshift_core::model::{AttachmentRef, RawRecord, SourceCollection, SourceSchema};
use deskshift_core::ports::{PageRequest, RawPage, Source, Spend};
use deskshift_core::util::check_fetch_url;
use deskshift_core::{Error, Result};
use deskshift_zohodesk::Edition;
use futures::{StreamExt, TryStreamExt};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::client::{PLATFORM, ZohoReader, api_error, items, json_of};
use crate::config::ZohoSourceConfig;
use crate::cursor::{Cursor, Step, Window, advance};
use crate::estimate::{ReadCounts, estimate_calls_with};
use crate::records::*;

/// Search windows end this far after now: Zoho stamps changes with its own clock.
const CLOCK_SKEW_MS: i64 = 10 * 60 * 1000;
const MODULES_WITH_FIELDS: [(&str, &str); 5] = [
    (TICKETS, "tickets"),
    (CONTACTS, "contacts"),
    (ACCOUNTS, "accounts"),
    (TASKS, "tasks"),
    (PRODUCTS, "products"),
];

/// Measured work of the reads so far (calls are in [`ZohoDeskSource::spend`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadStats {
    /// Delta search calls, and how many windows were split because they held over 1000 results.
    pub searches: u64,
    pub windows_split: u64,
    /// Thread bodies read by id (the N+1 of conversations), and `fullContent` reads of truncated ones.
    pub thread_bodies: u64,
    pub full_contents: u64,
}

/// Zoho Desk as a migration source. Collections: `Departments`, `Agents`, `Accounts`, `Contacts`,
/// `Products`, `Tickets`, `Conversations` (threads and comments), `Tasks`, and
/// `CustomModule:<apiName>` per custom module.
pub struct ZohoDeskSource {
    reader: ZohoReader,
    edition: Option<Edition>,
    allowed: Vec<Url>,
    meta: OnceCell<Meta>,
    schema: OnceCell<SourceSchema>,
    stats: Mutex<ReadStats>,
}

impl ZohoDeskSource {
    /// A source with the configured concurrency cap (or the Free edition's 5 when none is set).
    pub fn new(config: ZohoSourceConfig) -> Result<Self> {
        let cap = config
            .connection
            .concurrency_cap
            .unwrap_or(Edition::Free.concurrency_cap());
        Self::from_reader(ZohoReader::new(config, cap)?, None)
    }

    /// Reads the portal's edition (`GET /organizations`) and caps concurrency at its limit
    /// unless the configuration sets one.
    pub async fn connect(config: ZohoSourceConfig) -> Result<Self> {
        let configured = config.connection.concurrency_cap;
        let probe = ZohoReader::new(config, 1)?;
        let orgs = items(
            &probe
                .get("GET /organizations", "/organizations", &[])
                .await?,
        );
        let org_id = probe.config().connection.org_id.clone();
        let edition = orgs
            .iter()
            .find(|o| s(o, "id").as_deref() == Some(org_id.as_str()))
            .or_else(|| orgs.first())
            .and_then(|o| s(o, "edition"))
            .and_then(|e| Edition::parse(&e));
        let cap = configured
            .or(edition.map(Edition::concurrency_cap))
            .unwrap_or(Edition::Free.concurrency_cap());
        Self::from_reader(probe.rebuild(cap)?, edition)
    }

    fn from_reader(reader: ZohoReader, edition: Option<Edition>) -> Result<Self> {
        let c = reader.config();
        let mut allowed = vec![
            Url::parse(&c.connection.api_base)
                .map_err(|e| Error::Config(format!("zohodesk api_base is not a URL ({e})")))?,
        ];
        for h in &c.attachment_hosts {
            allowed.push(Url::parse(h).map_err(|e| {
                Error::Config(format!(
                    "zohodesk source attachment_hosts entry {h:?} is not a URL ({e})"
                ))
            })?);
        }
        Ok(ZohoDeskSource {
            reader,
            edition,
            allowed,
            meta: OnceCell::new(),
            schema: OnceCell::new(),
            stats: Mutex::new(ReadStats::default()),
        })
    }

    pub fn edition(&self) -> Option<Edition> {
        self.edition
    }

    pub fn concurrency_cap(&self) -> usize {
        self.reader.concurrency_cap()
    }

    /// Access tokens obtained from the accounts server so far.
    pub fn token_refreshes(&self) -> u64 {
        self.reader.token_refreshes()
    }

    /// Calls (per endpoint, token grants included) and credits spent by this source.
    pub fn spend(&self) -> Spend {
        self.reader.spend()
    }

    /// Credits left today as the last answer's `X-API-CREDITS-REMAINING` said, if sent.
    pub fn credits_remaining(&self) -> Option<u64> {
        self.reader.credits_remaining()
    }

    pub fn read_stats(&self) -> ReadStats {
        self.stats.lock().unwrap().clone()
    }

    /// [`crate::estimate_calls`] with this source's page sizes and options.
    pub fn estimate_calls(&self, counts: &ReadCounts) -> u64 {
        estimate_calls_with(counts, self.reader.config())
    }

    fn cfg(&self) -> &ZohoSourceConfig {
        self.reader.config()
    }

    fn parallel(&self) -> usize {
        self.reader.concurrency_cap().max(1)
    }

    // -----------------------------------------------------------------------------------------
    // metadata

    async fn meta(&self) -> Result<&Meta> {
        self.meta
            .get_or_try_init(|| async {
                let mut meta = Meta::default();
                for d in self
                    .list_all("GET /departments", "/departments", 200)
                    .await?
                {
                    if let (Some(id), Some(name)) = (s(&d, "id"), s(&d, "name")) {
                        meta.departments.insert(id, name);
                    }
                }
                for a in self.list_all("GET /agents", "/agents", 200).await? {
                    if let Some(id) = s(&a, "id") {
                        let name = s(&a, "name").unwrap_or_default();
                        meta.agents.insert(id, (s(&a, "emailId"), name));
                    }
                }
                for p in self.list_all("GET /products", "/products", 100).await? {
                    if let (Some(id), Some(name)) = (s(&p, "id"), s(&p, "productName")) {
                        meta.products.insert(id, name);
                    }
                }
                // Tags may not be exposed to every scope; without them tickets simply carry none.
                match self.list_all("GET /tags", "/tags", 100).await {
                    Ok(tags) => meta.tags = tags.iter().filter_map(|t| s(t, "name")).collect(),
                    Err(Error::Api {
                        status: 403 | 404, ..
                    }) => {}
                    Err(e) => return Err(e),
                }
                Ok(meta)
            })
            .await
    }

    /// Every item of a small list (metadata), paging with `from`/`limit`.
    async fn list_all(&self, endpoint: &str, path: &str, limit: u32) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut from = 0u64;
        loop {
            let q = [("from", from.to_string()), ("limit", limit.to_string())];
            let page = items(&self.reader.get(endpoint, path, &q).await?);
            let n = page.len() as u64;
            out.extend(page);
            if n < u64::from(limit) {
                return Ok(out);
            }
            from += n;
        }
    }

    /// Whether the API user may list a collection (a permission gap shows as no fields).
    async fn readable(&self, endpoint: &str, path: &str) -> Result<bool> {
        let url = self.reader.api_url(path)?;
        let answer = self
            .reader
            .get_url(
                endpoint,
                &url,
                &[("from", "0".into()), ("limit", "1".into())],
            )
            .await?;
        let code = crate::client::error_code(&answer.body);
        match answer.status.as_u16() {
            403 => Ok(false),
            401 if matches!(code.as_deref(), Some("SCOPE_MISMATCH")) => Ok(false),
            // A custom module without records or a module the portal does not have.
            404 => Ok(false),
            _ => json_of(endpoint, &answer).map(|_| true),
        }
    }

    /// Custom modules to export: configured, or those `/organizationModules` lists.
    async fn custom_modules(&self) -> Result<Vec<String>> {
        if let Some(list) = &self.cfg().custom_modules {
            return Ok(list.clone());
        }
        let url = self.reader.api_url("/organizationModules")?;
        let answer = self
            .reader
            .get_url("GET /organizationModules", &url, &[])
            .await?;
        if matches!(answer.status.as_u16(), 403 | 404 | 422) {
            return Ok(Vec::new());
        }
        let v = json_of("GET /organizationModules", &answer)?;
        Ok(items(&v)
            .iter()
            .filter(|m| {
                m.get("isCustomModule").and_then(Value::as_bool) == Some(true)
                    || s(m, "apiName").is_some_and(|a| a.starts_with("cm_"))
            })
            .filter_map(|m| s(m, "apiName"))
            .collect())
    }

    /// `/fields?module=` of a module: (system picklist values, custom fields); None if refused.
    async fn module_fields(
        &self,
        module: &str,
    ) -> Result<Option<(BTreeMap<String, Vec<String>>, Vec<CustomField>)>> {
        let url = self.reader.api_url("/fields")?;
        let answer = self
            .reader
            .get_url("GET /fields", &url, &[("module", module.to_string())])
            .await?;
        if matches!(answer.status.as_u16(), 403 | 404 | 422) {
            return Ok(None);
        }
        let fields = items(&json_of("GET /fields", &answer)?);
        Ok(Some((system_options(&fields), custom_fields(&fields))))
    }

    async fn build_schema(&self) -> Result<SourceSchema> {
        let meta = self.meta().await?.clone();
        let dept_names: Vec<String> = meta.departments.values().cloned().collect();
        let mut collections = vec![
            SourceCollection {
                name: DEPARTMENTS.into(),
                source_key: Some("departments".into()),
                fields: builtin_fields(DEPARTMENTS, &BTreeMap::new()),
            },
            SourceCollection {
                name: AGENTS.into(),
                source_key: Some("agents".into()),
                fields: builtin_fields(
                    AGENTS,
                    &BTreeMap::from([("departments".to_string(), dept_names.clone())]),
                ),
            },
        ];
        for (collection, module) in MODULES_WITH_FIELDS {
            let readable = self
                .readable(&format!("GET /{module}"), &format!("/{module}"))
                .await?;
            let (system, custom) = self.module_fields(module).await?.unwrap_or_default();
            let mut options = BTreeMap::new();
            for (ours, theirs) in [
                ("status", "status"),
                ("priority", "priority"),
                ("channel", "channel"),
                ("category", "category"),
                ("sub_category", "subCategory"),
                ("classification", "classification"),
            ] {
                if let Some(v) = system.get(theirs) {
                    options.insert(ours.to_string(), v.clone());
                }
            }
            options.insert("department".into(), dept_names.clone());
            options.insert("departments".into(), dept_names.clone());
            options.insert(
                "product".into(),
                meta.products.values().cloned().collect::<Vec<_>>(),
            );
            options.insert("tags".into(), meta.tags.clone());
            let mut fields = Vec::new();
            if readable {
                fields = builtin_fields(collection, &options);
                fields.extend(custom_defs(&custom));
            }
            collections.push(SourceCollection {
                name: collection.into(),
                source_key: Some(module.into()),
                fields,
            });
            if collection == TICKETS {
                collections.push(SourceCollection {
                    name: CONVERSATIONS.into(),
                    source_key: Some("threads+comments".into()),
                    fields: if readable {
                        builtin_fields(CONVERSATIONS, &BTreeMap::new())
                    } else {
                        vec![]
                    },
                });
            }
        }
        for module in self.custom_modules().await? {
            check_module_name(&module)?;
            let name = format!("{CUSTOM_MODULE_PREFIX}{module}");
            let readable = self
                .readable("GET /{customModule}", &format!("/{module}"))
                .await?;
            let fields = match self.module_fields(&module).await? {
                Some((_, custom)) if readable => {
                    let mut f = vec![deskshift_core::model::FieldDef {
                        name: "id".into(),
                        label: "Id".into(),
                        field_type: deskshift_core::model::FieldType::Text,
                        required: true,
                        options: vec![],
                        linked_collection: None,
                        custom: false,
                    }];
                    f.extend(custom_defs(&custom));
                    f
                }
                None if readable => self.inferred_fields(&module).await?,
                _ => vec![],
            };
            collections.push(SourceCollection {
                name,
                source_key: Some(module),
                fields,
            });
        }
        Ok(SourceSchema { collections })
    }

    /// Fields of a custom module whose `/fields` Zoho refused: the keys of its first records.
    async fn inferred_fields(&self, module: &str) -> Result<Vec<deskshift_core::model::FieldDef>> {
        let q = [("from", "0".to_string()), ("limit", "10".to_string())];
        let recs = items(
            &self
                .reader
                .get("GET /{customModule}", &format!("/{module}"), &q)
                .await?,
        );
        let mut names = BTreeSet::new();
        for r in &recs {
            if let Some(o) = r.as_object() {
                names.extend(o.keys().filter(|k| *k != "cf").cloned());
                if let Some(cf) = o.get("cf").and_then(Value::as_object) {
                    names.extend(cf.keys().cloned());
                }
            }
        }
        names.insert("id".into());
        Ok(names
            .into_iter()
            .map(|n| deskshift_core::model::FieldDef {
                label: n.clone(),
                field_type: deskshift_core::model::FieldType::Text,
                required: n == "id",
                options: vec![],
                linked_collection: None,
                custom: n.starts_with("cf_"),
                name: n,
            })
            .collect())
    }

    // -----------------------------------------------------------------------------------------
    // reading

    /// One list page at `cursor.from`; `next` when the page was full.
    async fn list_page(
        &self,
        endpoint: &str,
        path: &str,
        cursor: &Cursor,
        limit: u32,
        extra: &[(&str, String)],
    ) -> Result<(Vec<Value>, Option<String>)> {
        let mut q: Vec<(&str, String)> = extra.to_vec();
        q.push(("from", cursor.from.to_string()));
        q.push(("limit", limit.to_string()));
        let page = items(&self.reader.get(endpoint, path, &q).await?);
        let next = (page.len() as u64 == u64::from(limit)).then(|| {
            Cursor {
                from: cursor.from + u64::from(limit),
                windows: vec![],
            }
            .encode()
        });
        Ok((page, next))
    }

    /// One page of a descending-by-`modifiedTime` list, kept while at or after `since`.
    async fn changed_page(
        &self,
        endpoint: &str,
        path: &str,
        cursor: &Cursor,
        limit: u32,
        since: i64,
    ) -> Result<(Vec<Value>, Option<String>)> {
        let (page, next) = self
            .list_page(
                endpoint,
                path,
                cursor,
                limit,
                &[("sortBy", "-modifiedTime".into())],
            )
            .await?;
        let n = page.len();
        let kept: Vec<Value> = page
            .into_iter()
            .filter(|r| millis(r.get("modifiedTime")).is_none_or(|t| t >= since))
            .collect();
        let next = if kept.len() < n { None } else { next };
        Ok((kept, next))
    }

    /// One page of a `modifiedTimeRange` search over `module` (tickets, contacts or accounts).
    async fn search_page(
        &self,
        module: &str,
        cursor: &mut Cursor,
        limit: u32,
    ) -> Result<Vec<Value>> {
        let endpoint = format!("GET /{module}/search");
        let path = format!("/{module}/search");
        loop {
            let Some(w) = cursor.windows.last() else {
                return Ok(Vec::new());
            };
            let range = format!("{},{}", fmt_ms(w.start)?, fmt_ms(w.end)?);
            let q = [
                ("modifiedTimeRange", range),
                ("sortBy", "modifiedTime".to_string()),
                ("from", w.from.to_string()),
                ("limit", limit.to_string()),
            ];
            let start = w.start;
            let answer = self.reader.get(&endpoint, &path, &q).await?;
            self.stats.lock().unwrap().searches += 1;
            let found = items(&answer);
            let total = match answer.get("count") {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(t)) => t.parse().ok(),
                _ => None,
            };
            let stamps: Vec<(String, i64)> = found
                .iter()
                .map(|r| {
                    (
                        s(r, "id").unwrap_or_default(),
                        millis(r.get("modifiedTime")).unwrap_or(start),
                    )
                })
                .collect();
            match advance(&mut cursor.windows, &stamps, total, limit as usize)? {
                Step::Split => {
                    self.stats.lock().unwrap().windows_split += 1;
                }
                Step::Emit(keep) => {
                    let out: Vec<Value> = keep.into_iter().map(|i| found[i].clone()).collect();
                    if !out.is_empty() || cursor.windows.is_empty() {
                        return Ok(out);
                    }
                }
            }
        }
    }

    /// The delta cursor: the saved one, or a fresh window from `since` to a little after now.
    fn delta_cursor(request: &PageRequest, since: &str) -> Result<(Cursor, i64)> {
        let since_ms = parse_ts(since)
            .ok_or_else(|| {
                Error::Config(format!(
                    "modified_since {since:?} is not an ISO-8601 time; use the value cursor_now returned"
                ))
            })?
            .as_millisecond();
        match &request.cursor {
            Some(c) => Ok((Cursor::parse(Some(c))?, since_ms)),
            None => {
                let end = jiff::Timestamp::now().as_millisecond() + CLOCK_SKEW_MS;
                Ok((
                    Cursor {
                        from: 0,
                        windows: vec![Window::new(since_ms, end)],
                    },
                    since_ms,
                ))
            }
        }
    }

    /// GETs each record by id unless the list item already carries its custom fields.
    async fn complete(
        &self,
        list: Vec<Value>,
        endpoint: &str,
        path_of: impl Fn(&str) -> String,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>> {
        futures::stream::iter(list)
            .map(|item| {
                let path = s(&item, "id").map(|id| path_of(&id));
                async move {
                    match path {
                        Some(p) if !item.get("cf").is_some_and(Value::is_object) => {
                            self.reader.get(endpoint, &p, query).await
                        }
                        _ => Ok(item),
                    }
                }
            })
            .buffered(self.parallel())
            .try_filter(|v| futures::future::ready(!v.is_null()))
            .try_collect()
            .await
    }

    async fn tickets(&self, list: Vec<Value>) -> Result<Vec<RawRecord>> {
        let meta = self.meta().await?;
        futures::stream::iter(list)
            .map(|item| self.ticket(item, meta))
            .buffered(self.parallel())
            .try_collect()
            .await
    }

    async fn ticket(&self, item: Value, meta: &Meta) -> Result<RawRecord> {
        let id = s(&item, "id").unwrap_or_default();
        let full =
            if item.get("cf").is_some_and(Value::is_object) && item.get("description").is_some() {
                item
            } else {
                self.reader
                    .get(
                        "GET /tickets/{ticketId}",
                        &format!("/tickets/{id}"),
                        &[("include", "departments,products,assignee".into())],
                    )
                    .await?
            };
        let tags = if count(&full, "tagCount") > 0 {
            let url = self.reader.api_url(&format!("/tickets/{id}/tags"))?;
            let answer = self
                .reader
                .get_url("GET /tickets/{ticketId}/tags", &url, &[])
                .await?;
            if answer.status == StatusCode::NOT_FOUND {
                vec![]
            } else {
                items(&json_of("GET /tickets/{ticketId}/tags", &answer)?)
                    .iter()
                    .filter_map(|t| s(t, "name"))
                    .collect()
            }
        } else {
            vec![]
        };
        let mut attachments = Vec::new();
        if count(&full, "attachmentCount") > 0 {
            let mut from = 0u64;
            loop {
                let q = [("from", from.to_string()), ("limit", "100".to_string())];
                let v = self
                    .reader
                    .get(
                        "GET /tickets/{ticketId}/attachments",
                        &format!("/tickets/{id}/attachments"),
                        &q,
                    )
                    .await?;
                let page = items(&v);
                attachments.extend(attachment_refs(
                    Some(&Value::Array(page.clone())),
                    &self.allowed,
                ));
                if page.len() < 100 {
                    break;
                }
                from += 100;
            }
        }
        let base = self.reader.api_url("/")?;
        let description = s(&full, "description").unwrap_or_default();
        let links = body_links(&description, &base, &self.allowed, &id);
        let mut related = links.tickets;
        add_images(&mut attachments, links.images);
        if self.cfg().scan_description_thread && count(&full, "threadCount") > 0 {
            let first = items(
                &self
                    .reader
                    .get(
                        "GET /tickets/{ticketId}/threads",
                        &format!("/tickets/{id}/threads"),
                        &[
                            ("sortBy", "sendDateTime".into()),
                            ("from", "0".into()),
                            ("limit", "1".into()),
                        ],
                    )
                    .await?,
            );
            if let Some(summary) = first.first() {
                let thread = self.thread_body(&id, summary).await?;
                let content = s(&thread, "content").unwrap_or_default();
                for t in body_links(&content, &base, &self.allowed, &id).tickets {
                    if !related.contains(&t) {
                        related.push(t);
                    }
                }
            }
        }
        Ok(ticket_record(&full, meta, tags, related, attachments))
    }

    /// Threads and comments of tickets, in order (chronological within a ticket); with `since`,
    /// only those created or edited since.
    async fn conversations(
        &self,
        tickets: Vec<Value>,
        since: Option<i64>,
    ) -> Result<Vec<RawRecord>> {
        let per_ticket: Vec<Vec<RawRecord>> = futures::stream::iter(tickets)
            .map(|t| self.conversations_of(t, since))
            .buffered(self.parallel())
            .try_collect()
            .await?;
        Ok(per_ticket.into_iter().flatten().collect())
    }

    async fn conversations_of(&self, ticket: Value, since: Option<i64>) -> Result<Vec<RawRecord>> {
        let tid = s(&ticket, "id").unwrap_or_default();
        let base = self.reader.api_url("/")?;
        let mut out = Vec::new();
        let has = |k: &str| ticket.get(k).is_none() || count(&ticket, k) > 0;
        if has("threadCount") {
            let summaries = self
                .list_children(
                    "GET /tickets/{ticketId}/threads",
                    &format!("/tickets/{tid}/threads"),
                    "sendDateTime",
                )
                .await?;
            let wanted: Vec<Value> = summaries
                .into_iter()
                .filter(|t| {
                    since
                        .is_none_or(|since| millis(t.get("createdTime")).is_none_or(|c| c >= since))
                })
                .collect();
            let threads: Vec<RawRecord> = futures::stream::iter(wanted)
                .map(|summary| {
                    let tid = tid.clone();
                    let base = base.clone();
                    async move { self.thread(&tid, &summary, &base).await }
                })
                .buffered(self.parallel())
                .try_collect()
                .await?;
            out.extend(threads);
        }
        if has("commentCount") {
            let comments = self
                .list_children(
                    "GET /tickets/{ticketId}/comments",
                    &format!("/tickets/{tid}/comments"),
                    "commentedTime",
                )
                .await?;
            for c in comments {
                let changed = millis(c.get("modifiedTime")).max(millis(c.get("commentedTime")));
                if since.is_some_and(|since| changed.is_some_and(|t| t < since)) {
                    continue;
                }
                let content = s(&c, "content").unwrap_or_default();
                let links = body_links(&content, &base, &self.allowed, &tid);
                let mut attachments = attachment_refs(c.get("attachments"), &self.allowed);
                add_images(&mut attachments, links.images);
                out.push(comment_record(&tid, &c, attachments, links.tickets));
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(out)
    }

    /// Every thread summary or comment of a ticket, oldest first.
    async fn list_children(&self, endpoint: &str, path: &str, sort: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut from = 0u64;
        loop {
            let q = [
                ("sortBy", sort.to_string()),
                ("from", from.to_string()),
                ("limit", "100".to_string()),
            ];
            let page = items(&self.reader.get(endpoint, path, &q).await?);
            let n = page.len();
            out.extend(page);
            if n < 100 {
                return Ok(out);
            }
            from += 100;
        }
    }

    /// A thread by id, with `fullContent` when Zoho truncated its body.
    async fn thread(&self, ticket: &str, summary: &Value, base: &Url) -> Result<RawRecord> {
        let thread = self.thread_body(ticket, summary).await?;
        let content = s(&thread, "content").unwrap_or_default();
        let links = body_links(&content, base, &self.allowed, ticket);
        let mut attachments = attachment_refs(thread.get("attachments"), &self.allowed);
        add_images(&mut attachments, links.images);
        Ok(thread_record(
            ticket,
            &thread,
            content,
            attachments,
            links.tickets,
        ))
    }

    /// A thread read by id, its body completed from `fullContent` when Zoho truncated it.
    async fn thread_body(&self, ticket: &str, summary: &Value) -> Result<Value> {
        let th = s(summary, "id").unwrap_or_default();
        let path = format!("/tickets/{ticket}/threads/{th}");
        let mut thread = self
            .reader
            .get("GET /tickets/{ticketId}/threads/{threadId}", &path, &[])
            .await?;
        self.stats.lock().unwrap().thread_bodies += 1;
        if thread.get("isContentTruncated").and_then(Value::as_bool) == Some(true) {
            let full = self
                .reader
                .get(
                    "GET /tickets/{ticketId}/threads/{threadId}/fullContent",
                    &format!("{path}/fullContent"),
                    &[],
                )
                .await?;
            self.stats.lock().unwrap().full_contents += 1;
            if let Some(c) = full.get("content").cloned() {
                thread["content"] = c;
            }
            if thread.get("attachments").is_none_or(Value::is_null) {
                thread["attachments"] = full.get("attachments").cloned().unwrap_or(Value::Null);
            }
        }
        Ok(thread)
    }

    fn page_limit(&self, request: &PageRequest, configured: u32) -> u32 {
        match request.page_size {
            0 => configured,
            n => n.min(configured),
        }
    }

    async fn read(&self, collection: &str, request: &PageRequest) -> Result<RawPage> {
        let since = request.modified_since.as_deref();
        let small = self.page_limit(request, self.cfg().record_page_size);
        match collection {
            DEPARTMENTS | AGENTS => {
                let path = if collection == DEPARTMENTS {
                    "/departments"
                } else {
                    "/agents"
                };
                let cursor = Cursor::parse(request.cursor.as_deref())?;
                let limit = self.page_limit(request, 200).max(10);
                let (page, next) = self
                    .list_page(&format!("GET {path}"), path, &cursor, limit, &[])
                    .await?;
                let meta = self.meta().await?;
                let records = page
                    .iter()
                    .map(|r| {
                        if collection == DEPARTMENTS {
                            department_record(r)
                        } else {
                            agent_record(r, meta)
                        }
                    })
                    .collect();
                Ok(RawPage { records, next })
            }
            ACCOUNTS | CONTACTS => {
                let module = if collection == ACCOUNTS {
                    "accounts"
                } else {
                    "contacts"
                };
                let (found, next) = match since {
                    Some(since) => {
                        let (mut cursor, _) = Self::delta_cursor(request, since)?;
                        let found = self.search_page(module, &mut cursor, small).await?;
                        (found, (!cursor.windows.is_empty()).then(|| cursor.encode()))
                    }
                    None => {
                        let cursor = Cursor::parse(request.cursor.as_deref())?;
                        self.list_page(
                            &format!("GET /{module}"),
                            &format!("/{module}"),
                            &cursor,
                            small,
                            &[("sortBy", "createdTime".into())],
                        )
                        .await?
                    }
                };
                let id_endpoint = if collection == ACCOUNTS {
                    "GET /accounts/{accountId}"
                } else {
                    "GET /contacts/{contactId}"
                };
                let full = self
                    .complete(found, id_endpoint, |id| format!("/{module}/{id}"), &[])
                    .await?;
                let records = full
                    .iter()
                    .map(|r| {
                        if collection == ACCOUNTS {
                            account_record(r)
                        } else {
                            contact_record(r)
                        }
                    })
                    .collect();
                Ok(RawPage { records, next })
            }
            TICKETS | CONVERSATIONS => {
                let limit = if collection == TICKETS {
                    self.page_limit(request, self.cfg().ticket_page_size)
                } else {
                    self.page_limit(request, self.cfg().conversation_tickets_per_page)
                };
                let (found, next, since_ms) = match since {
                    Some(since) => {
                        let (mut cursor, since_ms) = Self::delta_cursor(request, since)?;
                        let found = self.search_page("tickets", &mut cursor, limit).await?;
                        let next = (!cursor.windows.is_empty()).then(|| cursor.encode());
                        (found, next, Some(since_ms))
                    }
                    None => {
                        let cursor = Cursor::parse(request.cursor.as_deref())?;
                        let (found, next) = self
                            .list_page(
                                "GET /tickets",
                                "/tickets",
                                &cursor,
                                limit,
                                &[("sortBy", "createdTime".into())],
                            )
                            .await?;
                        (found, next, None)
                    }
                };
                let records = if collection == TICKETS {
                    self.tickets(found).await?
                } else {
                    self.conversations(found, since_ms).await?
                };
                Ok(RawPage { records, next })
            }
            TASKS | PRODUCTS => {
                let (path, limit) = if collection == TASKS {
                    ("/tasks", small)
                } else {
                    ("/products", self.page_limit(request, 100))
                };
                let endpoint = format!("GET {path}");
                let cursor = Cursor::parse(request.cursor.as_deref())?;
                let (found, next) = match since {
                    Some(since) => {
                        let since_ms = parse_ts(since)
                            .ok_or_else(|| {
                                Error::Config(format!(
                                    "modified_since {since:?} is not an ISO-8601 time"
                                ))
                            })?
                            .as_millisecond();
                        self.changed_page(&endpoint, path, &cursor, limit, since_ms)
                            .await?
                    }
                    None => {
                        self.list_page(
                            &endpoint,
                            path,
                            &cursor,
                            limit,
                            &[("sortBy", "createdTime".into())],
                        )
                        .await?
                    }
                };
                let meta = self.meta().await?;
                let records = if collection == TASKS {
                    found.iter().map(|t| task_record(t, meta)).collect()
                } else {
                    let full = self
                        .complete(
                            found,
                            "GET /products/{productId}",
                            |id| format!("/products/{id}"),
                            &[],
                        )
                        .await?;
                    full.iter().map(|p| product_record(p, meta)).collect()
                };
                Ok(RawPage { records, next })
            }
            other => match other.strip_prefix(CUSTOM_MODULE_PREFIX) {
                Some(module) => {
                    check_module_name(module)?;
                    let cursor = Cursor::parse(request.cursor.as_deref())?;
                    let (found, next) = self
                        .list_page(
                            "GET /{customModule}",
                            &format!("/{module}"),
                            &cursor,
                            small,
                            &[],
                        )
                        .await?;
                    let records = found
                        .iter()
                        .map(|r| custom_module_record(other, r))
                        .collect();
                    Ok(RawPage { records, next })
                }
                None => Err(Error::Config(format!(
                    "Zoho Desk has no collection {other:?}; use one that discover lists (Tickets, Conversations, ...)"
                ))),
            },
        }
    }
}

/// Adds inline images that are not already listed attachments.
fn add_images(attachments: &mut Vec<AttachmentRef>, images: Vec<AttachmentRef>) {
    for img in images {
        match attachments
            .iter_mut()
            .find(|a| a.url == img.url || a.id == img.id)
        {
            // A listed file the body also shows at the same address is one file, shown inline.
            Some(listed) if listed.url == img.url => listed.inline = true,
            Some(_) => {}
            None => attachments.push(img),
        }
    }
}

fn fmt_ms(ms: i64) -> Result<String> {
    jiff::Timestamp::from_millisecond(ms)
        .map(fmt_ts)
        .map_err(|e| Error::Config(format!("search window bound {ms} is not a time ({e})")))
}

/// Custom module names go into URL paths: only Zoho's API-name characters are accepted.
fn check_module_name(module: &str) -> Result<()> {
    if !module.is_empty()
        && module
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "custom module {module:?} is not a Zoho API name (letters, digits, underscores); fix source.custom_modules"
        )))
    }
}

#[async_trait]
impl Source for ZohoDeskSource {
    fn platform(&self) -> &'static str {
        "Zoho Desk"
    }

    fn credits_spent(&self) -> Option<u64> {
        Some(self.spend().credits)
    }

    async fn discover(&self) -> Result<SourceSchema> {
        self.schema
            .get_or_try_init(|| self.build_schema())
            .await
            .cloned()
    }

    async fn read_page(&self, collection: &str, request: &PageRequest) -> Result<RawPage> {
        self.read(collection, request).await
    }

    async fn download(&self, attachment: &AttachmentRef) -> Result<Bytes> {
        let endpoint = "GET attachment content";
        let mut url =
            check_fetch_url(&attachment.url, &self.allowed).map_err(|reason| Error::Refused {
                url: attachment.url.clone(),
                reason,
            })?;
        for _ in 0..4 {
            let answer = self.reader.get_url(endpoint, &url, &[]).await?;
            if answer.status.is_redirection() {
                // Followed only onto the configured hosts, so the token never leaves Zoho.
                let next = answer
                    .headers
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| Error::Api {
                        platform: PLATFORM.into(),
                        endpoint: endpoint.into(),
                        status: answer.status.as_u16(),
                        message: format!(
                            "redirect without a location for {}",
                            attachment.file_name
                        ),
                    })?;
                url = check_fetch_url(next.as_str(), &self.allowed).map_err(|reason| {
                    Error::Refused {
                        url: attachment.url.clone(),
                        reason: format!("it redirects off the configured hosts ({reason})"),
                    }
                })?;
                continue;
            }
            if !answer.status.is_success() {
                let e = api_error(endpoint, &answer);
                return Err(match e {
                    Error::Api {
                        platform,
                        endpoint,
                        status,
                        message,
                    } => Error::Api {
                        platform,
                        endpoint,
                        status,
                        message: format!(
                            "{message} (attachment {} id {})",
                            attachment.file_name, attachment.id
                        ),
                    },
                    other => other,
                });
            }
            return Ok(answer.body);
        }
        Err(Error::Refused {
            url: attachment.url.clone(),
            reason: "too many redirects".into(),
        })
    }

    fn may_fetch(&self, url: &str) -> std::result::Result<(), String> {
        check_fetch_url(url, &self.allowed).map(|_| ())
    }

    async fn cursor_now(&self) -> Result<String> {
        Ok(deskshift_core::util::now_iso())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: &str, url: &str, inline: bool) -> AttachmentRef {
        AttachmentRef {
            id: id.into(),
            file_name: format!("{id}.png"),
            url: url.into(),
            size: None,
            md5: None,
            inline,
        }
    }

    #[test]
    fn a_listed_file_the_body_shows_is_marked_inline_and_kept_once() {
        let mut list = vec![file("1", "https://d.test/a/1/content", false)];
        add_images(
            &mut list,
            vec![
                file("1", "https://d.test/a/1/content", true),
                file("inline:/img/2", "https://d.test/img/2", true),
                file("inline:/img/2", "https://d.test/img/2", true),
            ],
        );
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|a| a.inline));
        assert_eq!(list[0].file_name, "1.png");
    }
}
