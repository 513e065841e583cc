//! Zoho Desk as a migration source (REST API v1): every department, agent, account, contact,
//! product, ticket, thread and comment (with full bodies), task and custom-module record, the
//! custom fields and picklists, attachments and inline images; delta reads through
//! `tickets/search`. OAuth refresh, `orgId`, data-centre hosts, the daily credit budget and the
//! edition's concurrency cap are handled here; the spend is counted and estimated.

mod client;
pub mod config;
mod cursor;
pub mod estimate;
pub mod records;
mod source;

pub use config::ZohoSourceConfig;
pub use deskshift_zohodesk::{Edition, ZohoDeskConfig, dc_hosts};
pub use estimate::{ReadCounts, estimate_calls, estimate_calls_with};
pub use source::{ReadStats, ZohoDeskSource};
