//! Embedded stores for one-machine runs in a job directory:
//!
//! - [`SqliteStore`] implements `Crosswalk`, `Checkpoints` and `AuditLog` in
//!   `<job_dir>/state.db`;
//! - [`FileStage`] implements `Stage` over `<job_dir>/stage/`;
//! - [`conformance`] holds the suites every implementation of those ports must pass (the cloud stores
//!   run the very same functions).

pub mod conformance;
mod durability;
mod sqlite;
mod stage;

pub use durability::{DURABILITY_ENV, Durability};
pub use sqlite::{BUSY_TIMEOUT, SCHEMA_VERSION, STATE_DB_FILE, SqliteStore};
pub use stage::{FileStage, STAGE_DIR, TEMP_MARKER};
