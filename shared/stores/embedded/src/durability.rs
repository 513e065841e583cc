//! How far the embedded stores flush their writes before a call returns.

use deskshift_core::{Error, Result};

/// Environment variable choosing [`Durability`] for stores opened without an explicit one:
/// `process` (the default) or `power`.
pub const DURABILITY_ENV: &str = "DESKSHIFT_DURABILITY";

/// What a completed write survives.
///
/// Resume after a killed or crashed deskshift process needs [`Durability::Process`]: every
/// returned write is in the operating system's page cache (SQLite WAL with `synchronous=NORMAL`,
/// stage files renamed into place), which outlives the process. [`Durability::Power`] also
/// survives a power cut or kernel crash (SQLite `synchronous=FULL`, stage files and their folder
/// fsynced) at the price of one or more fsyncs per write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    #[default]
    Process,
    Power,
}

impl Durability {
    pub fn parse(s: &str) -> Option<Durability> {
        match s.trim().to_ascii_lowercase().as_str() {
            "process" => Some(Durability::Process),
            "power" => Some(Durability::Power),
            _ => None,
        }
    }

    /// The durability named by [`DURABILITY_ENV`], or the default when it is unset.
    pub fn from_env() -> Result<Durability> {
        match std::env::var(DURABILITY_ENV) {
            Err(_) => Ok(Durability::default()),
            Ok(v) => Durability::parse(&v).ok_or_else(|| {
                Error::Config(format!(
                    "{DURABILITY_ENV}={v:?} is not a durability; use \"process\" (survives a \
                     crashed run, the default) or \"power\" (also survives a power cut, slower)"
                ))
            }),
        }
    }
}
