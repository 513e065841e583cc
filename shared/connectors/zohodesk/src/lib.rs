//! The Zoho Desk destination of deskshift, in two modes:
//! - [`ZohoDesk`]: REST API v1 (OAuth refresh-token grant, credits and concurrency caps by edition,
//!   provenance lines because REST cannot back-date);
//! - [`ZohoImportPackage`]: Zoho's migration CSV package, which keeps original times exactly.
//!
//! Both implement [`deskshift_core::ports::Destination`].

pub mod client;
pub mod config;
pub mod convert;
pub mod package;
pub mod rest;

pub use client::{MemoryTokenCache, SharedTokenCache, StoredToken, TokenCache, ZohoClient};
pub use config::{Edition, RetryConfig, Secret, ZohoDeskConfig, dc_hosts};
pub use package::{Manifest, Module, PackageLimits, ZohoImportPackage};
pub use rest::ZohoDesk;
