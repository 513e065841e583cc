//! The Zoho access-token cache shared by every function process: one DynamoDB item per refresh
//! token (`pk` = [`deskshift_zohodesk::client::token_key`], a digest, never the token), with a
//! conditional-write refresh lease and a TTL.
//!
//! DynamoDB rather than Secrets Manager: the lease is one conditional UpdateItem and reads are
//! cheap and fast on every cold start, where Secrets Manager has no compare-and-set. The table is
//! encrypted with KMS (template), only the Zoho-calling functions may read it, and the token never
//! leaves the item for logs, errors or state-machine input.
//!
//! | attribute | |
//! |---|---|
//! | `pk` (S) | `zoho-token#<digest>` |
//! | `token` (S) | the access token, while one is stored |
//! | `refresh_at`, `expires_at` (N) | milliseconds since the epoch |
//! | `lease_holder` (S), `lease_until` (N, ms) | the process refreshing, while it does |
//! | `ttl` (N) | seconds since the epoch: an hour after the token expires (DynamoDB TTL) |

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use deskshift_core::util::Secret;
use deskshift_core::{Error, Result};
use deskshift_zohodesk::client::{StoredToken, TokenCache};

/// Environment variable naming the token table (the SAM template sets it).
pub const TOKEN_TABLE_ENV: &str = "DESKSHIFT_TOKEN_TABLE";

pub struct DynamoTokenCache {
    client: Client,
    table: String,
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn failure<E: std::error::Error + 'static, R: std::fmt::Debug>(
    request: &str,
    table: &str,
    e: SdkError<E, R>,
) -> Error {
    Error::Transport {
        platform: "dynamodb".into(),
        endpoint: format!("{request} on token table {table}"),
        message: format!(
            "{}; check the table exists and the function's role may use it",
            DisplayErrorContext(&e)
        ),
        ambiguous: false,
    }
}

/// Whether the request failed only because its condition did not hold.
fn condition_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    e: &SdkError<E, R>,
) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

impl DynamoTokenCache {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoTokenCache {
            client,
            table: table.into(),
        }
    }

    fn key(&self, key: &str) -> AttributeValue {
        AttributeValue::S(key.to_string())
    }
}

#[async_trait]
impl TokenCache for DynamoTokenCache {
    async fn get(&self, key: &str) -> Result<Option<StoredToken>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", self.key(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failure("GetItem", &self.table, e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let num = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let (Some(token), Some(refresh_at), Some(expires_at)) = (
            item.get("token").and_then(|v| v.as_s().ok()),
            num("refresh_at"),
            num("expires_at"),
        ) else {
            return Ok(None);
        };
        Ok(Some(StoredToken {
            token: Secret::new(token.clone()),
            refresh_at: UNIX_EPOCH + Duration::from_millis(refresh_at),
            expires_at: UNIX_EPOCH + Duration::from_millis(expires_at),
        }))
    }

    async fn lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let now = SystemTime::now();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", self.key(key))
            .update_expression(
                "SET lease_holder = :h, lease_until = :until, #ttl = if_not_exists(#ttl, :ttl)",
            )
            .condition_expression(
                "attribute_not_exists(lease_until) OR lease_until < :now OR lease_holder = :h",
            )
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":h", AttributeValue::S(holder.to_string()))
            .expression_attribute_values(":until", n(millis(now + ttl)))
            .expression_attribute_values(":now", n(millis(now)))
            .expression_attribute_values(":ttl", n(millis(now) / 1000 + 86_400))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failure("UpdateItem (lease)", &self.table, e)),
        }
    }

    async fn put(&self, key: &str, holder: &str, token: &StoredToken) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", self.key(key))
            .update_expression("SET #token = :t, refresh_at = :r, expires_at = :e, #ttl = :ttl")
            .expression_attribute_names("#token", "token")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":t", AttributeValue::S(token.token.expose().into()))
            .expression_attribute_values(":r", n(millis(token.refresh_at)))
            .expression_attribute_values(":e", n(millis(token.expires_at)))
            .expression_attribute_values(":ttl", n(millis(token.expires_at) / 1000 + 3600))
            .send()
            .await
            .map_err(|e| failure("UpdateItem (store token)", &self.table, e))?;
        self.release(key, holder).await
    }

    async fn release(&self, key: &str, holder: &str) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", self.key(key))
            .update_expression("REMOVE lease_holder, lease_until")
            .condition_expression("lease_holder = :h")
            .expression_attribute_values(":h", AttributeValue::S(holder.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(failure("UpdateItem (release lease)", &self.table, e)),
        }
    }

    async fn invalidate(&self, key: &str, stale: &Secret) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", self.key(key))
            .update_expression("REMOVE #token, refresh_at, expires_at")
            .condition_expression("#token = :stale")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":stale", AttributeValue::S(stale.expose().into()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(failure("UpdateItem (invalidate)", &self.table, e)),
        }
    }
}

/// Creates the token table (key `pk`, on demand) unless it exists: for tests and local runs;
/// the SAM template creates it on AWS with encryption and TTL.
pub async fn ensure_token_table(client: &Client, table: &str) -> Result<()> {
    let exists = client.describe_table().table_name(table).send().await;
    if exists.is_ok() {
        return Ok(());
    }
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| Error::Config(format!("token table definition: {e}")))?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| Error::Config(format!("token table key: {e}")))?,
        )
        .send()
        .await
        .map_err(|e| failure("CreateTable", table, e))?;
    Ok(())
}
