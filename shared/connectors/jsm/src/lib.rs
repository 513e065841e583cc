//! Jira Service Management as a migration destination: [`Jsm`] implements
//! [`deskshift_core::ports::Destination`] over the platform REST API v3 and the servicedeskapi.
//!
//! HTML -> ADF: [`adf::html_to_doc`] is the single switch point (see [`adf::CONVERTER`]).

pub mod adf;
mod client;
pub mod config;
pub mod convert;
pub mod dest;

pub use adf::MediaRef;
pub use config::{CategoryMode, JsmConfig, RetryConfig, Secret};
pub use dest::{CustomerReuse, InlineImage, Jsm, ServiceDesk};
