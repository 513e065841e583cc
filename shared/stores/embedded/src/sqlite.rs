//! `SqliteStore`: the crosswalk, checkpoints and audit log of one job, in `<job_dir>/state.db`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deskshift_core::model::ObjectKind;
use deskshift_core::ports::{
    AuditEntry, AuditLog, AuditOp, Checkpoint, Checkpoints, Crosswalk, Link, LinkStatus,
};
use deskshift_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::Durability;

/// File name of the state database inside a job directory.
pub const STATE_DB_FILE: &str = "state.db";

/// Schema version this build writes; older files are migrated on open, newer ones refused.
pub const SCHEMA_VERSION: u32 = 1;

/// How long a write waits for another connection's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// `MIGRATIONS[i]` takes a database from schema version `i` to `i + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [r#"
CREATE TABLE crosswalk (
    kind         TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    dest_id      TEXT,
    status       TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    dest_hash    TEXT,
    reason       TEXT,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (kind, source_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX crosswalk_by_status ON crosswalk (kind, status);

CREATE TABLE checkpoints (
    phase      TEXT NOT NULL,
    partition  TEXT NOT NULL,
    cursor     TEXT,
    done       INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (phase, partition)
) STRICT, WITHOUT ROWID;

-- AUTOINCREMENT so a sequence number is never handed out twice, even after a crash mid-append.
CREATE TABLE audit (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    op           TEXT NOT NULL,
    kind         TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    dest_id      TEXT,
    outcome      TEXT NOT NULL,
    payload_hash TEXT NOT NULL
) STRICT;
"#];

/// Crosswalk, checkpoints and audit log in one SQLite file (WAL, IMMEDIATE write transactions,
/// fsync per commit only with [`Durability::Power`]).
///
/// One connection behind a mutex; every call runs on tokio's blocking pool so async callers are
/// never blocked. Several `SqliteStore`s (or processes) may open the same file: writes then
/// serialise on SQLite's lock, waiting up to [`BUSY_TIMEOUT`].
pub struct SqliteStore {
    path: Arc<PathBuf>,
    conn: Arc<Mutex<Connection>>,
    durability: Durability,
    /// With [`Durability::Process`]: a second connection that moves the WAL into the database on
    /// the blocking pool, so no call on the async threads ever waits for that checkpoint's fsync.
    checkpointer: Option<Arc<Checkpointer>>,
}

/// Calls between two WAL checkpoints (each call writes at most a few pages; SQLite's own
/// automatic checkpoint, turned off here, runs at 1,000 pages).
const CHECKPOINT_EVERY: u64 = 500;

/// Calls after which a writer waits for the running checkpoint, so writes faster than the disk
/// cannot grow the WAL without bound.
const CHECKPOINT_BEHIND: u64 = 2 * CHECKPOINT_EVERY;

struct Checkpointer {
    conn: Mutex<Connection>,
    calls: AtomicU64,
    /// Calls since the last checkpoint finished.
    behind: AtomicU64,
    running: AtomicBool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the state database at `path`, migrating its schema, with the
    /// durability named by `DESKSHIFT_DURABILITY` (default [`Durability::Process`]).
    ///
    /// Blocking (file I/O and possibly a migration): call it before starting work, or from
    /// `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<Arc<SqliteStore>> {
        SqliteStore::open_with(path, Durability::from_env()?)
    }

    /// Opens the state database at `path` with the given durability.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Arc<SqliteStore>> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::Store(format!(
                    "cannot create the directory {} for the state database: {e}; check the path and \
                     that it is writable",
                    parent.display()
                ))
            })?;
        }
        let mut conn = Connection::open(&path).map_err(|e| sql_error(&path, "opening", e))?;
        configure(&conn, &path, durability)?;
        migrate(&mut conn, &path)?;
        let checkpointer = match durability {
            Durability::Power => None,
            Durability::Process => {
                let err = |e| sql_error(&path, "opening", e);
                conn.pragma_update(None, "wal_autocheckpoint", 0)
                    .map_err(err)?;
                let second = Connection::open(&path).map_err(err)?;
                configure(&second, &path, durability)?;
                Some(Arc::new(Checkpointer {
                    conn: Mutex::new(second),
                    calls: AtomicU64::new(0),
                    behind: AtomicU64::new(0),
                    running: AtomicBool::new(false),
                }))
            }
        };
        Ok(Arc::new(SqliteStore {
            path: Arc::new(path),
            conn: Arc::new(Mutex::new(conn)),
            durability,
            checkpointer,
        }))
    }

    /// Opens `<job_dir>/state.db`.
    pub fn open_in_job(job_dir: impl AsRef<Path>) -> Result<Arc<SqliteStore>> {
        SqliteStore::open(job_dir.as_ref().join(STATE_DB_FILE))
    }

    /// Opens `<job_dir>/state.db` with the given durability.
    pub fn open_in_job_with(
        job_dir: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<Arc<SqliteStore>> {
        SqliteStore::open_with(job_dir.as_ref().join(STATE_DB_FILE), durability)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Schema version recorded in the file.
    pub async fn schema_version(&self) -> Result<u32> {
        self.run("reading the schema version", |conn| {
            Ok(read_version(conn)?.unwrap_or(0))
        })
        .await
    }

    /// Runs `f` on the connection, mapping failures to `Error::Store` that names the file and
    /// `what` was being done.
    ///
    /// With [`Durability::Process`] a call never waits for the disk (no fsync per commit, the WAL
    /// checkpoint runs elsewhere), so it runs right here: tens of microseconds, cheaper than the
    /// two thread switches of the blocking pool. With [`Durability::Power`] each commit waits for
    /// an fsync, so it runs on the blocking pool.
    async fn run<T, F>(&self, what: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> std::result::Result<T, Failure> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let path = Arc::clone(&self.path);
        let call = move || {
            // A panic while holding the lock leaves no open transaction (rusqlite rolls back on
            // drop), so the connection is still usable.
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard).map_err(|failure| failure.into_error(&path, what))
        };
        let joined = match self.durability {
            Durability::Power => tokio::task::spawn_blocking(call)
                .await
                .map_err(|e| e.to_string()),
            Durability::Process => {
                let result = match &self.checkpointer {
                    Some(cp) if cp.behind.load(Ordering::Relaxed) >= CHECKPOINT_BEHIND => {
                        // The checkpoint holds its connection while it runs: wait for it off the
                        // async threads, then write.
                        let cp = Arc::clone(cp);
                        tokio::task::spawn_blocking(move || {
                            drop(cp.conn.lock().unwrap_or_else(|p| p.into_inner()));
                            call()
                        })
                        .await
                        .map_err(|e| e.to_string())
                    }
                    _ => std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
                        .map_err(|_| "it panicked".to_string()),
                };
                self.maybe_checkpoint();
                result
            }
        };
        match joined {
            Ok(result) => result,
            Err(e) => Err(Error::Store(format!(
                "{}: {what} did not complete ({e}); resume the job to retry",
                self.path.display()
            ))),
        }
    }

    /// Every [`CHECKPOINT_EVERY`] calls, copies the WAL into the database on the blocking pool,
    /// so the WAL stays small.
    fn maybe_checkpoint(&self) {
        let Some(cp) = &self.checkpointer else {
            return;
        };
        cp.behind.fetch_add(1, Ordering::Relaxed);
        if cp.calls.fetch_add(1, Ordering::Relaxed) % CHECKPOINT_EVERY != CHECKPOINT_EVERY - 1 {
            return;
        }
        if cp.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            cp.running.store(false, Ordering::Release);
            return;
        };
        let cp = Arc::clone(cp);
        rt.spawn_blocking(move || {
            let conn = cp
                .conn
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // PASSIVE copies the bulk while writers go on; RESTART then copies the few frames
            // written meanwhile (writers wait that long) so the next commit starts the WAL over.
            // A failed checkpoint loses nothing (the WAL keeps the data); the next one retries.
            for mode in ["PASSIVE", "RESTART"] {
                let _ = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()));
            }
            cp.behind.store(0, Ordering::Relaxed);
            cp.running.store(false, Ordering::Release);
        });
    }
}

/// Why a call failed, before it is given the file name and the action.
enum Failure {
    Sql(rusqlite::Error),
    /// A row this build cannot read back.
    Decode(String),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sql(e)
    }
}

impl Failure {
    fn into_error(self, path: &Path, what: &str) -> Error {
        match self {
            Failure::Sql(e) => sql_error(path, what, e),
            Failure::Decode(message) => Error::Store(format!(
                "{}: {what}: {message}; the file was probably written by a newer deskshift, so \
                 upgrade deskshift or use another job directory",
                path.display()
            )),
        }
    }
}

fn sql_error(path: &Path, what: &str, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    let advice = match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => {
            "another process kept the database locked; stop any other deskshift run on this job \
             directory, then resume"
        }
        Some(C::NotADatabase | C::DatabaseCorrupt) => {
            "the file is not a usable deskshift state database; restore it from a backup, or point \
             the job at a fresh directory"
        }
        Some(C::DiskFull) => "the disk is full; free some space, then resume the job",
        Some(C::ReadOnly | C::CannotOpen | C::PermissionDenied) => {
            "check that the job directory exists and that this user can write to it and to the file"
        }
        Some(C::SystemIoFailure) => "the disk reported an I/O error; check it, then resume the job",
        _ => "resume the job to retry; if it fails again, keep a copy of the file for diagnosis",
    };
    Error::Store(format!("{}: {what} failed: {e}; {advice}", path.display()))
}

fn configure(conn: &Connection, path: &Path, durability: Durability) -> Result<()> {
    let err = |e| sql_error(path, "opening", e);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Store(format!(
            "{}: the file system refused write-ahead logging (journal mode stayed {mode}); put \
             the job directory on a local disk",
            path.display()
        )));
    }
    // A `pending` crosswalk entry must outlive a crash before the create it guards is sent: in WAL
    // mode NORMAL makes each commit survive a process crash (the OS holds it), FULL a power cut too.
    let synchronous = match durability {
        Durability::Process => "NORMAL",
        Durability::Power => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(err)?;
    Ok(())
}

fn read_version(conn: &Connection) -> rusqlite::Result<Option<u32>> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(None);
    }
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()))
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let err = |e| sql_error(path, "creating the schema", e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let current = match read_version(&tx).map_err(err)? {
        Some(v) => v,
        None => {
            let foreign: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                    [],
                    |r| r.get(0),
                )
                .map_err(err)?;
            if foreign > 0 {
                return Err(Error::Store(format!(
                    "{}: this SQLite file holds tables but is not a deskshift state database; \
                     point the job at a fresh directory",
                    path.display()
                )));
            }
            tx.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
                 INSERT INTO meta (key, value) VALUES ('schema_version', '0');",
            )
            .map_err(err)?;
            0
        }
    };
    if current > SCHEMA_VERSION {
        return Err(Error::Store(format!(
            "{}: schema version {current} was written by a newer deskshift (this one knows up to \
             {SCHEMA_VERSION}); upgrade deskshift to continue this job",
            path.display()
        )));
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).map_err(err)?;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            [(version as u32 + 1).to_string()],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Crosswalk

const LINK_COLUMNS: &str =
    "kind, source_id, dest_id, status, payload_hash, dest_hash, reason, updated_at";

const UPSERT_LINK: &str = "INSERT INTO crosswalk
    (kind, source_id, dest_id, status, payload_hash, dest_hash, reason, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT (kind, source_id) DO UPDATE SET
        dest_id = excluded.dest_id, status = excluded.status,
        payload_hash = excluded.payload_hash, dest_hash = excluded.dest_hash,
        reason = excluded.reason, updated_at = excluded.updated_at";

fn upsert_link(conn: &Connection, link: &Link) -> rusqlite::Result<()> {
    conn.prepare_cached(UPSERT_LINK)?.execute(params![
        link.kind.as_str(),
        link.source_id,
        link.dest_id,
        link.status.as_str(),
        link.payload_hash,
        link.dest_hash,
        link.reason,
        link.updated_at,
    ])?;
    Ok(())
}

fn read_link(row: &Row<'_>) -> std::result::Result<Link, Failure> {
    let kind: String = row.get(0)?;
    let source_id: String = row.get(1)?;
    let status: String = row.get(3)?;
    let parsed_kind = ObjectKind::parse(&kind).ok_or_else(|| {
        Failure::Decode(format!(
            "crosswalk entry {kind}/{source_id} has an unknown kind"
        ))
    })?;
    let parsed_status = LinkStatus::parse(&status).ok_or_else(|| {
        Failure::Decode(format!(
            "crosswalk entry {kind}/{source_id} has an unknown status {status:?}"
        ))
    })?;
    Ok(Link {
        kind: parsed_kind,
        source_id,
        dest_id: row.get(2)?,
        status: parsed_status,
        payload_hash: row.get(4)?,
        dest_hash: row.get(5)?,
        reason: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

fn get_link(
    conn: &Connection,
    kind: ObjectKind,
    source_id: &str,
) -> std::result::Result<Option<Link>, Failure> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LINK_COLUMNS} FROM crosswalk WHERE kind = ?1 AND source_id = ?2"
    ))?;
    let mut rows = stmt.query(params![kind.as_str(), source_id])?;
    match rows.next()? {
        Some(row) => Ok(Some(read_link(row)?)),
        None => Ok(None),
    }
}

#[async_trait]
impl Crosswalk for SqliteStore {
    async fn get(&self, kind: ObjectKind, source_id: &str) -> Result<Option<Link>> {
        let source_id = source_id.to_string();
        self.run("reading a crosswalk entry", move |conn| {
            get_link(conn, kind, &source_id)
        })
        .await
    }

    async fn get_many(
        &self,
        kind: ObjectKind,
        source_ids: &[String],
    ) -> Result<BTreeMap<String, Link>> {
        let source_ids = source_ids.to_vec();
        self.run("reading crosswalk entries", move |conn| {
            // One read transaction so the answer is a single consistent snapshot.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let mut out = BTreeMap::new();
            for id in &source_ids {
                if let Some(link) = get_link(&tx, kind, id)? {
                    out.insert(id.clone(), link);
                }
            }
            tx.finish()?;
            Ok(out)
        })
        .await
    }

    async fn put_batch(&self, links: &[Link]) -> Result<()> {
        if links.is_empty() {
            return Ok(());
        }
        let links = links.to_vec();
        self.run("writing crosswalk entries", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for link in &links {
                upsert_link(&tx, link)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn put_if(&self, link: &Link, expect: &[Option<LinkStatus>]) -> Result<bool> {
        let link = link.clone();
        let expect = expect.to_vec();
        self.run("conditionally writing a crosswalk entry", move |conn| {
            // IMMEDIATE takes the write lock before the read, so no other writer can slip in
            // between the status check and the write.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: Option<String> = tx
                .prepare_cached("SELECT status FROM crosswalk WHERE kind = ?1 AND source_id = ?2")?
                .query_row(params![link.kind.as_str(), link.source_id], |r| r.get(0))
                .optional()?;
            let current = match current {
                None => None,
                Some(s) => Some(LinkStatus::parse(&s).ok_or_else(|| {
                    Failure::Decode(format!(
                        "crosswalk entry {}/{} has an unknown status {s:?}",
                        link.kind, link.source_id
                    ))
                })?),
            };
            if !expect.contains(&current) {
                return Ok(false);
            }
            upsert_link(&tx, &link)?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn list(&self, kind: ObjectKind, after: Option<&str>, limit: usize) -> Result<Vec<Link>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let after = after.map(str::to_string);
        let limit = to_i64(limit as u64);
        self.run("listing crosswalk entries", move |conn| {
            let mut out = Vec::new();
            let mut push_rows = |mut rows: rusqlite::Rows<'_>| -> std::result::Result<(), Failure> {
                while let Some(row) = rows.next()? {
                    out.push(read_link(row)?);
                }
                Ok(())
            };
            match &after {
                Some(after) => {
                    let mut stmt = conn.prepare_cached(&format!(
                        "SELECT {LINK_COLUMNS} FROM crosswalk WHERE kind = ?1 AND source_id > ?2 \
                         ORDER BY source_id LIMIT ?3"
                    ))?;
                    push_rows(stmt.query(params![kind.as_str(), after, limit])?)?;
                }
                None => {
                    let mut stmt = conn.prepare_cached(&format!(
                        "SELECT {LINK_COLUMNS} FROM crosswalk WHERE kind = ?1 ORDER BY source_id LIMIT ?2"
                    ))?;
                    push_rows(stmt.query(params![kind.as_str(), limit])?)?;
                }
            }
            Ok(out)
        })
        .await
    }

    async fn counts(&self, kind: ObjectKind) -> Result<BTreeMap<String, u64>> {
        self.run("counting crosswalk entries", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT status, COUNT(*) FROM crosswalk WHERE kind = ?1 GROUP BY status",
            )?;
            let rows = stmt.query_map([kind.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            let mut out = BTreeMap::new();
            for row in rows {
                let (status, n) = row?;
                out.insert(status, n.max(0) as u64);
            }
            Ok(out)
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

fn read_checkpoint(row: &Row<'_>) -> rusqlite::Result<Checkpoint> {
    Ok(Checkpoint {
        phase: row.get(0)?,
        partition: row.get(1)?,
        cursor: row.get(2)?,
        done: row.get(3)?,
        updated_at: row.get(4)?,
    })
}

#[async_trait]
impl Checkpoints for SqliteStore {
    async fn get(&self, phase: &str, partition: &str) -> Result<Option<Checkpoint>> {
        let (phase, partition) = (phase.to_string(), partition.to_string());
        self.run("reading a checkpoint", move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT phase, partition, cursor, done, updated_at FROM checkpoints \
                     WHERE phase = ?1 AND partition = ?2",
                )?
                .query_row(params![phase, partition], read_checkpoint)
                .optional()?)
        })
        .await
    }

    async fn put(&self, checkpoint: &Checkpoint) -> Result<()> {
        let c = checkpoint.clone();
        self.run("writing a checkpoint", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "INSERT INTO checkpoints (phase, partition, cursor, done, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (phase, partition) DO UPDATE SET
                     cursor = excluded.cursor, done = excluded.done, updated_at = excluded.updated_at",
            )?
            .execute(params![c.phase, c.partition, c.cursor, c.done, c.updated_at])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn list(&self, phase: &str) -> Result<Vec<Checkpoint>> {
        let phase = phase.to_string();
        self.run("listing checkpoints", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT phase, partition, cursor, done, updated_at FROM checkpoints \
                 WHERE phase = ?1 ORDER BY partition",
            )?;
            let rows = stmt.query_map([phase], read_checkpoint)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn clear(&self, phase: &str) -> Result<()> {
        let phase = phase.to_string();
        self.run("clearing checkpoints", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM checkpoints WHERE phase = ?1", [phase])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// Audit log

fn op_str(op: AuditOp) -> &'static str {
    match op {
        AuditOp::Create => "create",
        AuditOp::Update => "update",
        AuditOp::Delete => "delete",
        AuditOp::Attach => "attach",
        AuditOp::Schema => "schema",
    }
}

fn parse_op(s: &str) -> Option<AuditOp> {
    [
        AuditOp::Create,
        AuditOp::Update,
        AuditOp::Delete,
        AuditOp::Attach,
        AuditOp::Schema,
    ]
    .into_iter()
    .find(|op| op_str(*op) == s)
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append(&self, entries: &[AuditEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let entries = entries.to_vec();
        self.run("appending to the audit log", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO audit (at, op, kind, source_id, dest_id, outcome, payload_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for e in &entries {
                    stmt.execute(params![
                        e.at,
                        op_str(e.op),
                        e.kind.as_str(),
                        e.source_id,
                        e.dest_id,
                        e.outcome,
                        e.payload_hash,
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn entries(&self, after_seq: u64, limit: usize) -> Result<Vec<(u64, AuditEntry)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (after, limit) = (to_i64(after_seq), to_i64(limit as u64));
        self.run("reading the audit log", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, at, op, kind, source_id, dest_id, outcome, payload_hash FROM audit \
                 WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after, limit])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let seq: i64 = row.get(0)?;
                let op: String = row.get(2)?;
                let kind: String = row.get(3)?;
                let entry = AuditEntry {
                    at: row.get(1)?,
                    op: parse_op(&op).ok_or_else(|| {
                        Failure::Decode(format!(
                            "audit entry {seq} has an unknown operation {op:?}"
                        ))
                    })?,
                    kind: ObjectKind::parse(&kind).ok_or_else(|| {
                        Failure::Decode(format!("audit entry {seq} has an unknown kind {kind:?}"))
                    })?,
                    source_id: row.get(4)?,
                    dest_id: row.get(5)?,
                    outcome: row.get(6)?,
                    payload_hash: row.get(7)?,
                };
                out.push((seq as u64, entry));
            }
            Ok(out)
        })
        .await
    }
}
