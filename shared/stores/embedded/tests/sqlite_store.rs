//! SqliteStore behaviour beyond the shared suites: races, reopening, the file's format, errors.

use std::sync::Arc;
use std::time::Instant;

use deskshift_core::Error;
use deskshift_core::model::ObjectKind;
use deskshift_core::ports::{
    AuditEntry, AuditLog, AuditOp, Checkpoint, Checkpoints, Crosswalk, Link, LinkStatus,
};
use deskshift_store_embedded::conformance::sample_link;
use deskshift_store_embedded::{SCHEMA_VERSION, STATE_DB_FILE, SqliteStore};
use tokio::sync::Barrier;

fn contender(source_id: &str, n: usize) -> Link {
    Link {
        dest_id: Some(format!("dest-from-task-{n}")),
        ..sample_link(ObjectKind::Ticket, source_id, LinkStatus::Pending)
    }
}

fn store_error(result: Result<Arc<SqliteStore>, Error>) -> String {
    match result {
        Err(Error::Store(message)) => message,
        Err(other) => panic!("expected Error::Store, got {other:?}"),
        Ok(store) => panic!("expected the open to fail, but it opened {store:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_put_if_from_many_tasks_has_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_job(dir.path()).unwrap();
    let tasks = 32;
    let barrier = Arc::new(Barrier::new(tasks));
    let handles: Vec<_> = (0..tasks)
        .map(|n| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                (
                    n,
                    store
                        .put_if(&contender("T-race", n), &[None])
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    for handle in handles {
        let (n, won) = handle.await.unwrap();
        if won {
            winners.push(n);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = Crosswalk::get(store.as_ref(), ObjectKind::Ticket, "T-race")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, contender("T-race", winners[0]));
}

/// Separate connections (as separate processes would have) race through SQLite's own lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_put_if_across_connections_has_exactly_one_winner_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<Arc<SqliteStore>> = (0..6)
        .map(|_| SqliteStore::open_in_job(dir.path()).unwrap())
        .collect();
    let keys: Vec<String> = (0..25).map(|k| format!("T-{k:02}")).collect();
    let tasks = stores.len() * 3;
    let barrier = Arc::new(Barrier::new(tasks));
    let handles: Vec<_> = (0..tasks)
        .map(|n| {
            let store = Arc::clone(&stores[n % stores.len()]);
            let (barrier, keys) = (Arc::clone(&barrier), keys.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut won = Vec::new();
                for key in &keys {
                    if store.put_if(&contender(key, n), &[None]).await.unwrap() {
                        won.push(key.clone());
                    }
                }
                (n, won)
            })
        })
        .collect();
    let mut winner_of = std::collections::BTreeMap::new();
    for handle in handles {
        let (n, won) = handle.await.unwrap();
        for key in won {
            assert!(
                winner_of.insert(key.clone(), n).is_none(),
                "{key} was won twice"
            );
        }
    }
    assert_eq!(winner_of.len(), keys.len(), "every key has a winner");
    let reader = &stores[0];
    for (key, n) in &winner_of {
        assert_eq!(
            Crosswalk::get(reader.as_ref(), ObjectKind::Ticket, key)
                .await
                .unwrap(),
            Some(contender(key, *n))
        );
    }
    let counts = reader.counts(ObjectKind::Ticket).await.unwrap();
    assert_eq!(counts.get("pending"), Some(&25));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let links: Vec<Link> = (0..40)
        .map(|i| {
            sample_link(
                ObjectKind::Contact,
                &format!("C-{i:03}"),
                if i % 2 == 0 {
                    LinkStatus::Created
                } else {
                    LinkStatus::Failed
                },
            )
        })
        .collect();
    let checkpoint = Checkpoint {
        phase: "load".into(),
        partition: "contacts".into(),
        cursor: Some("C-039".into()),
        done: false,
        updated_at: "2026-03-01T11:00:00Z".into(),
    };
    let entry = |n: u32| AuditEntry {
        at: "2026-03-01T11:00:00Z".into(),
        op: AuditOp::Create,
        kind: ObjectKind::Contact,
        source_id: format!("C-{n:03}"),
        dest_id: Some(format!("Z-{n}")),
        outcome: "ok".into(),
        payload_hash: format!("h{n}"),
    };
    let first_seqs: Vec<u64> = {
        let store = SqliteStore::open_in_job(dir.path()).unwrap();
        store.put_batch(&links).await.unwrap();
        Checkpoints::put(store.as_ref(), &checkpoint).await.unwrap();
        store.append(&[entry(1), entry(2)]).await.unwrap();
        store
            .entries(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    };

    let store = SqliteStore::open(dir.path().join(STATE_DB_FILE)).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(
        Crosswalk::list(store.as_ref(), ObjectKind::Contact, None, 100)
            .await
            .unwrap(),
        links
    );
    let counts = store.counts(ObjectKind::Contact).await.unwrap();
    assert_eq!(
        (counts.get("created"), counts.get("failed")),
        (Some(&20), Some(&20))
    );
    assert_eq!(
        Checkpoints::get(store.as_ref(), "load", "contacts")
            .await
            .unwrap(),
        Some(checkpoint)
    );
    let audit = store.entries(0, 10).await.unwrap();
    assert_eq!(
        audit.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        first_seqs
    );
    assert_eq!(
        audit.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
        vec![entry(1), entry(2)]
    );

    store.append(&[entry(3)]).await.unwrap();
    let after = store.entries(first_seqs[1], 10).await.unwrap();
    assert_eq!(after.len(), 1);
    assert!(
        after[0].0 > first_seqs[1],
        "sequence numbers keep increasing after a reopen"
    );
    assert!(
        !store.put_if(&links[0], &[None]).await.unwrap(),
        "a reopened crosswalk still knows its keys"
    );
}

#[tokio::test]
async fn the_file_is_wal_with_a_versioned_schema() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("jobs/acme");
    let store = SqliteStore::open_in_job(&job).unwrap();
    assert_eq!(store.path(), job.join("state.db"));
    store
        .put_batch(&[sample_link(ObjectKind::Ticket, "T-1", LinkStatus::Created)])
        .await
        .unwrap();

    let raw = rusqlite::Connection::open(job.join("state.db")).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: String = raw
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION.to_string());
    let (kind, status): (String, String) = raw
        .query_row(
            "SELECT kind, status FROM crosswalk WHERE source_id = 'T-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), status.as_str()), ("ticket", "created"));
}

#[tokio::test]
async fn a_file_from_a_newer_deskshift_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STATE_DB_FILE);
    drop(SqliteStore::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
    let message = store_error(SqliteStore::open(&path));
    assert!(
        message.contains(&path.display().to_string()),
        "names the file: {message}"
    );
    assert!(
        message.contains("upgrade deskshift"),
        "says what to do: {message}"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STATE_DB_FILE);
    std::fs::write(&path, "ticket_id,subject\n".repeat(400)).unwrap();
    let message = store_error(SqliteStore::open(&path));
    assert!(
        message.contains(&path.display().to_string()),
        "names the file: {message}"
    );
    assert!(
        message.contains("not a usable deskshift state database"),
        "says what is wrong: {message}"
    );
}

#[tokio::test]
async fn another_applications_database_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE invoices (id INTEGER)")
        .unwrap();
    let message = store_error(SqliteStore::open(&path));
    assert!(
        message.contains("not a deskshift state database"),
        "{message}"
    );
    let tables: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "nothing was created in the foreign file");
}

#[tokio::test]
async fn an_unreadable_row_fails_with_the_file_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_job(dir.path()).unwrap();
    rusqlite::Connection::open(store.path())
        .unwrap()
        .execute(
            "INSERT INTO crosswalk (kind, source_id, status, payload_hash, updated_at) \
             VALUES ('ticket', 'T-9', 'quarantined', 'h', 'now')",
            [],
        )
        .unwrap();
    for result in [
        Crosswalk::get(store.as_ref(), ObjectKind::Ticket, "T-9")
            .await
            .map(|_| ()),
        Crosswalk::list(store.as_ref(), ObjectKind::Ticket, None, 10)
            .await
            .map(|_| ()),
        store
            .put_if(
                &sample_link(ObjectKind::Ticket, "T-9", LinkStatus::Created),
                &[None],
            )
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(Error::Store(message)) => {
                assert!(
                    message.contains(&store.path().display().to_string()),
                    "names the file: {message}"
                );
                assert!(
                    message.contains("quarantined"),
                    "names the value: {message}"
                );
                assert!(
                    message.contains("upgrade deskshift"),
                    "says what to do: {message}"
                );
            }
            other => panic!("expected Error::Store, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_another_connections_lock_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_job(dir.path()).unwrap();
    let path = store.path().to_path_buf();
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    // Another process's write transaction, held for a moment (well under the busy timeout).
    let holder = tokio::task::spawn_blocking(move || {
        let mut other = rusqlite::Connection::open(path).unwrap();
        let tx = other
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        tx.execute(
            "INSERT INTO crosswalk (kind, source_id, status, payload_hash, updated_at) \
             VALUES ('ticket', 'T-1', 'failed', 'theirs', 'then')",
            [],
        )
        .unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        tx.commit().unwrap();
    });
    locked_rx.await.unwrap();
    let ours = sample_link(ObjectKind::Ticket, "T-1", LinkStatus::Created);
    store
        .put_batch(std::slice::from_ref(&ours))
        .await
        .expect("the write waits for the lock, then succeeds");
    holder.await.unwrap();
    assert_eq!(
        Crosswalk::get(store.as_ref(), ObjectKind::Ticket, "T-1")
            .await
            .unwrap(),
        Some(ours),
        "ours ran after theirs committed"
    );
}

/// Not a benchmark gate: prints how long a 10,000-record load's crosswalk traffic takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_of_crosswalk_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_job(dir.path()).unwrap();
    let n = 10_000;
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<Link> = chunk
            .iter()
            .map(|i| {
                sample_link(
                    ObjectKind::Ticket,
                    &format!("T-{i:05}"),
                    LinkStatus::Pending,
                )
            })
            .collect();
        store.put_batch(&batch).await.unwrap();
    }
    let batched = started.elapsed();

    let started = Instant::now();
    for i in 0..n {
        let link = sample_link(
            ObjectKind::Ticket,
            &format!("T-{i:05}"),
            LinkStatus::Created,
        );
        assert!(
            store
                .put_if(&link, &[Some(LinkStatus::Pending)])
                .await
                .unwrap()
        );
    }
    let conditional = started.elapsed();

    let started = Instant::now();
    let mut after: Option<String> = None;
    let mut seen = 0;
    loop {
        let page = Crosswalk::list(store.as_ref(), ObjectKind::Ticket, after.as_deref(), 1000)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.source_id.clone());
        seen += page.len();
    }
    let listed = started.elapsed();
    assert_eq!(seen, n);
    assert_eq!(
        store
            .counts(ObjectKind::Ticket)
            .await
            .unwrap()
            .get("created"),
        Some(&(n as u64))
    );
    eprintln!(
        "10,000 tickets: put_batch (500 a batch) {batched:?}, one put_if each {conditional:?}, list in pages of 1000 {listed:?}"
    );
}

/// The durability setting: its names, its environment variable's refusal of anything else, and
/// both levels passing the shared suites.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_durabilities_conform_and_unknown_names_are_refused() {
    use deskshift_store_embedded::{DURABILITY_ENV, Durability, FileStage, conformance};
    assert_eq!(Durability::parse("process"), Some(Durability::Process));
    assert_eq!(Durability::parse(" Power "), Some(Durability::Power));
    assert_eq!(Durability::parse("fsync"), None);
    assert_eq!(Durability::default(), Durability::Process);
    for durability in [Durability::Process, Durability::Power] {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in_job_with(dir.path(), durability).unwrap();
        conformance::crosswalk_suite(store.as_ref()).await;
        conformance::checkpoints_suite(store.as_ref()).await;
        conformance::audit_suite(store.as_ref()).await;
        let stage = FileStage::open_in_job_with(dir.path(), durability).unwrap();
        conformance::stage_suite(stage.as_ref()).await;
    }
    // Read only in this test binary's process; no other test here sets it.
    let message = match std::panic::catch_unwind(|| {
        // SAFETY: single-threaded access to this variable in this test binary.
        unsafe { std::env::set_var(DURABILITY_ENV, "sometimes") };
        let dir = tempfile::tempdir().unwrap();
        let result = SqliteStore::open_in_job(dir.path());
        unsafe { std::env::remove_var(DURABILITY_ENV) };
        result
    }) {
        Ok(Err(Error::Config(message))) => message,
        other => panic!("expected a configuration error, got {other:?}"),
    };
    assert!(
        message.contains(DURABILITY_ENV) && message.contains("sometimes"),
        "{message}"
    );
}

/// With the default durability the WAL is checkpointed off the async threads, so it stays small
/// however many calls commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_over_many_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_job(dir.path()).unwrap();
    let wal = dir.path().join(format!("{STATE_DB_FILE}-wal"));
    let mut largest = 0;
    for i in 0..10_000 {
        let link = sample_link(
            ObjectKind::Ticket,
            &format!("T-{i:05}"),
            LinkStatus::Pending,
        );
        store.put_batch(&[link]).await.unwrap();
        if i % 100 == 0 {
            // Give the checkpoint on the blocking pool a moment to run.
            tokio::task::yield_now().await;
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
    }
    assert_eq!(
        store
            .counts(ObjectKind::Ticket)
            .await
            .unwrap()
            .get("pending"),
        Some(&10_000)
    );
    // Without checkpoints 10,000 commits leave a WAL of about 100 MB; writers wait for a
    // checkpoint that is 1,000 calls behind, so at most about 1,500 commits' frames pile up.
    assert!(largest < 24 << 20, "the WAL grew to {largest} bytes");
}
