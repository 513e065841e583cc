//! Zoho Desk connectors that connect on first use: a process that never calls Zoho (a Lambda
//! function for partitions, the failure report, the approval wait) then spends no OAuth token
//! grant, which Zoho Desk limits to 10 per refresh token in 10 minutes.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use deskshift_core::Result;
use deskshift_core::model::SourceSchema;
use deskshift_core::model::{AttachmentRef, CanonicalRecord, ObjectKind};
use deskshift_core::ports::{
    Created, CustomFieldSpec, DestField, Destination, DestinationInfo, LoadContext, Spend,
};
use deskshift_core::ports::{PageRequest, RawPage, Source};
use deskshift_zohodesk::{ZohoDesk, ZohoDeskConfig};
use deskshift_zohodesk_source::{ZohoDeskSource, ZohoSourceConfig};
use tokio::sync::OnceCell;

pub struct LazyZohoDesk {
    config: ZohoDeskConfig,
    client: OnceCell<Arc<ZohoDesk>>,
}

impl LazyZohoDesk {
    pub fn new(config: ZohoDeskConfig) -> Self {
        LazyZohoDesk {
            config,
            client: OnceCell::new(),
        }
    }

    async fn get(&self) -> Result<&Arc<ZohoDesk>> {
        self.client
            .get_or_try_init(|| async {
                ZohoDesk::connect(self.config.clone()).await.map(Arc::new)
            })
            .await
    }
}

#[async_trait]
impl Destination for LazyZohoDesk {
    fn platform(&self) -> &'static str {
        "zohodesk"
    }
    async fn describe(&self) -> Result<DestinationInfo> {
        self.get().await?.describe().await
    }
    async fn ensure_custom_field(&self, spec: &CustomFieldSpec) -> Result<DestField> {
        self.get().await?.ensure_custom_field(spec).await
    }
    async fn create(&self, record: &CanonicalRecord, ctx: &LoadContext) -> Result<Created> {
        self.get().await?.create(record, ctx).await
    }
    async fn update(
        &self,
        dest_id: &str,
        record: &CanonicalRecord,
        ctx: &LoadContext,
    ) -> Result<()> {
        self.get().await?.update(dest_id, record, ctx).await
    }
    async fn find_existing(
        &self,
        record: &CanonicalRecord,
        ctx: &LoadContext,
    ) -> Result<Option<String>> {
        self.get().await?.find_existing(record, ctx).await
    }
    async fn attach(
        &self,
        parent_kind: ObjectKind,
        parent_dest_id: &str,
        attachment: &AttachmentRef,
        bytes: Bytes,
    ) -> Result<String> {
        self.get()
            .await?
            .attach(parent_kind, parent_dest_id, attachment, bytes)
            .await
    }
    async fn find_attachment(
        &self,
        parent_kind: ObjectKind,
        parent_dest_id: &str,
        attachment: &AttachmentRef,
        size: u64,
    ) -> Result<Option<String>> {
        self.get()
            .await?
            .find_attachment(parent_kind, parent_dest_id, attachment, size)
            .await
    }
    async fn delete(&self, kind: ObjectKind, dest_id: &str) -> Result<()> {
        self.get().await?.delete(kind, dest_id).await
    }
    async fn read_back(
        &self,
        kind: ObjectKind,
        dest_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>> {
        self.get().await?.read_back(kind, dest_id).await
    }
    async fn count(&self, kind: ObjectKind) -> Result<Option<u64>> {
        self.get().await?.count(kind).await
    }
    fn spend(&self) -> Spend {
        self.client.get().map(|c| c.spend()).unwrap_or_default()
    }
    async fn prepare_agents(&self, agents: &[deskshift_core::model::Agent]) -> Result<()> {
        self.get().await?.prepare_agents(agents).await
    }
    async fn finish(&self) -> Result<()> {
        match self.client.get() {
            Some(c) => c.finish().await,
            None => Ok(()),
        }
    }
}

/// The Zoho Desk source, connected (edition read, token taken) on the first call that needs the
/// API; host checks and cursor arithmetic answer from the configuration.
pub struct LazyZohoSource {
    config: ZohoSourceConfig,
    offline: ZohoDeskSource,
    client: OnceCell<Arc<ZohoDeskSource>>,
}

impl LazyZohoSource {
    pub fn new(config: ZohoSourceConfig) -> Result<Self> {
        Ok(LazyZohoSource {
            offline: ZohoDeskSource::new(config.clone())?,
            config,
            client: OnceCell::new(),
        })
    }

    async fn get(&self) -> Result<&Arc<ZohoDeskSource>> {
        self.client
            .get_or_try_init(|| async {
                ZohoDeskSource::connect(self.config.clone())
                    .await
                    .map(Arc::new)
            })
            .await
    }
}

#[async_trait]
impl Source for LazyZohoSource {
    fn platform(&self) -> &'static str {
        self.offline.platform()
    }
    async fn discover(&self) -> Result<SourceSchema> {
        self.get().await?.discover().await
    }
    async fn read_page(&self, collection: &str, request: &PageRequest) -> Result<RawPage> {
        self.get().await?.read_page(collection, request).await
    }
    async fn download(&self, attachment: &AttachmentRef) -> Result<Bytes> {
        self.get().await?.download(attachment).await
    }
    fn may_fetch(&self, url: &str) -> std::result::Result<(), String> {
        self.offline.may_fetch(url)
    }
    async fn cursor_now(&self) -> Result<String> {
        self.get().await?.cursor_now().await
    }
    fn cursor_after(&self, cursor: Option<&str>, pages: u64) -> Option<String> {
        match self.client.get() {
            Some(c) => c.cursor_after(cursor, pages),
            None => self.offline.cursor_after(cursor, pages),
        }
    }
    fn credits_spent(&self) -> Option<u64> {
        match self.client.get() {
            Some(c) => c.credits_spent(),
            None => self.offline.credits_spent(),
        }
    }
}
