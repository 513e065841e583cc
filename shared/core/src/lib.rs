//! deskshift's engine: the canonical helpdesk model, the ports (Source, Destination, Crosswalk,
//! Checkpoints, Stage, AuditLog), the field mapping, the phases as plain async functions over those
//! ports, and the flow that orders them.

pub mod error;
pub mod flow;
pub mod http;
pub mod job;
pub mod lifecycle;
pub mod mapping;
pub mod model;
pub mod phases;
pub mod ports;
pub mod runner;
pub mod transform;
pub mod util;

pub use error::{Error, Result};
