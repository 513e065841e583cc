//! Conformance suites for the store ports. Every implementation (SQLite and files here, DynamoDB
//! and S3 later) runs these same functions against a fresh, empty store; a failed `assert!`
//! panics with what the port got wrong.
//!
//! ```no_run
//! # async fn demo(dir: &std::path::Path) {
//! use deskshift_store_embedded::{SqliteStore, conformance};
//! let store = SqliteStore::open(dir.join("state.db")).unwrap();
//! conformance::crosswalk_suite(store.as_ref()).await;
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use deskshift_core::Error;
use deskshift_core::model::ObjectKind;
use deskshift_core::ports::{
    AuditEntry, AuditLog, AuditOp, Checkpoint, Checkpoints, Crosswalk, Link, LinkStatus, Stage,
};
use futures::future::join_all;

const ALL_STATUSES: [LinkStatus; 6] = [
    LinkStatus::Pending,
    LinkStatus::Created,
    LinkStatus::Existing,
    LinkStatus::Failed,
    LinkStatus::Skipped,
    LinkStatus::RolledBack,
];

/// A crosswalk entry with every optional field filled in where the status calls for it.
pub fn sample_link(kind: ObjectKind, source_id: &str, status: LinkStatus) -> Link {
    let dest_id = match status {
        LinkStatus::Pending | LinkStatus::Failed | LinkStatus::Skipped => None,
        _ => Some(format!("dest-{source_id}")),
    };
    let reason = match status {
        LinkStatus::Failed => Some(format!("HTTP 422 for {source_id}: “subject” is required")),
        LinkStatus::Skipped => Some("unchanged since the last run".to_string()),
        _ => None,
    };
    Link {
        kind,
        source_id: source_id.to_string(),
        dest_hash: dest_id.as_ref().map(|d| format!("dh-{d}")),
        dest_id,
        status,
        payload_hash: format!("ph-{source_id}-{}", status.as_str()),
        reason,
        updated_at: "2026-03-01T10:00:00Z".to_string(),
    }
}

fn status_count(counts: &BTreeMap<String, u64>, status: LinkStatus) -> u64 {
    counts.get(status.as_str()).copied().unwrap_or(0)
}

/// Crosswalk contract: round trips, conditional writes, batches, paging, counts, and a race.
pub async fn crosswalk_suite(c: &dyn Crosswalk) {
    crosswalk_starts_empty(c).await;
    crosswalk_put_if_rules(c).await;
    crosswalk_kinds_are_separate(c).await;
    crosswalk_batches_and_get_many(c).await;
    crosswalk_list_paging(c).await;
    crosswalk_counts(c).await;
    crosswalk_put_if_race(c).await;
}

async fn crosswalk_starts_empty(c: &dyn Crosswalk) {
    for kind in ObjectKind::ALL {
        assert!(
            c.list(kind, None, 10).await.expect("list").is_empty(),
            "the suite needs an empty crosswalk ({kind} has entries)"
        );
        let counts = c.counts(kind).await.expect("counts");
        assert!(
            counts.values().all(|n| *n == 0),
            "empty crosswalk counted {counts:?} for {kind}"
        );
    }
    assert_eq!(
        c.get(ObjectKind::Ticket, "absent").await.expect("get"),
        None
    );
    assert!(
        c.get_many(ObjectKind::Ticket, &[])
            .await
            .expect("get_many of nothing")
            .is_empty()
    );
    assert!(
        c.get_many(ObjectKind::Ticket, &["absent".to_string()])
            .await
            .expect("get_many")
            .is_empty(),
        "get_many must leave absent ids out"
    );
    c.put_batch(&[]).await.expect("an empty batch is a no-op");
}

async fn crosswalk_put_if_rules(c: &dyn Crosswalk) {
    let kind = ObjectKind::Ticket;
    let pending = sample_link(kind, "T-1", LinkStatus::Pending);
    assert!(
        c.put_if(&pending, &[None]).await.expect("put_if absent"),
        "put_if [None] on an absent key must write"
    );
    assert_eq!(
        c.get(kind, "T-1").await.expect("get"),
        Some(pending.clone()),
        "entry must round-trip unchanged"
    );

    let mut other = sample_link(kind, "T-1", LinkStatus::Pending);
    other.payload_hash = "someone-else".to_string();
    assert!(
        !c.put_if(&other, &[None]).await.expect("put_if present"),
        "put_if [None] on a present key must refuse"
    );
    assert_eq!(
        c.get(kind, "T-1").await.expect("get"),
        Some(pending.clone()),
        "a refused put_if must not write"
    );

    let created = sample_link(kind, "T-1", LinkStatus::Created);
    assert!(
        !c.put_if(&created, &[]).await.expect("put_if empty expect"),
        "put_if with no expected state never writes"
    );
    assert!(
        !c.put_if(
            &created,
            &[Some(LinkStatus::Failed), Some(LinkStatus::Skipped)]
        )
        .await
        .expect("put_if"),
        "put_if must refuse when the current status is not expected"
    );
    assert!(
        c.put_if(
            &created,
            &[None, Some(LinkStatus::Failed), Some(LinkStatus::Pending)]
        )
        .await
        .expect("put_if"),
        "put_if must write when the current status is one of several expected"
    );
    assert_eq!(
        c.get(kind, "T-1").await.expect("get"),
        Some(created.clone())
    );
    assert!(
        !c.put_if(&pending, &[Some(LinkStatus::Pending)])
            .await
            .expect("put_if"),
        "a stale expectation (pending, now created) must be refused"
    );

    let rolled_back = Link {
        status: LinkStatus::RolledBack,
        ..created.clone()
    };
    assert!(
        c.put_if(&rolled_back, &[Some(LinkStatus::Created)])
            .await
            .expect("put_if")
    );
    assert_eq!(
        c.get(kind, "T-1").await.expect("get").map(|l| l.status),
        Some(LinkStatus::RolledBack)
    );

    // Every status survives the trip, including optional fields being cleared again.
    for (i, status) in ALL_STATUSES.into_iter().enumerate() {
        let link = sample_link(kind, &format!("T-status-{i}"), status);
        assert!(c.put_if(&link, &[None]).await.expect("put_if"));
        assert_eq!(c.get(kind, &link.source_id).await.expect("get"), Some(link));
    }
    let cleared = Link {
        dest_id: None,
        dest_hash: None,
        reason: None,
        ..sample_link(kind, "T-status-3", LinkStatus::Failed)
    };
    assert!(
        c.put_if(&cleared, &[Some(LinkStatus::Failed)])
            .await
            .expect("put_if")
    );
    assert_eq!(
        c.get(kind, "T-status-3").await.expect("get"),
        Some(cleared),
        "None must overwrite Some"
    );

    let odd_ids = [
        "with space",
        "ünïcödé/≠",
        "a:b#c?d&e",
        "x".repeat(300).as_str(),
    ]
    .map(str::to_string);
    for id in &odd_ids {
        let link = sample_link(kind, id, LinkStatus::Existing);
        assert!(c.put_if(&link, &[None]).await.expect("put_if odd id"));
        assert_eq!(
            c.get(kind, id).await.expect("get odd id"),
            Some(link),
            "source id {id:?} must round-trip"
        );
    }
}

async fn crosswalk_kinds_are_separate(c: &dyn Crosswalk) {
    let account = sample_link(ObjectKind::Account, "shared-1", LinkStatus::Created);
    let contact = sample_link(ObjectKind::Contact, "shared-1", LinkStatus::Failed);
    c.put_batch(std::slice::from_ref(&account))
        .await
        .expect("put_batch");
    assert_eq!(
        c.get(ObjectKind::Contact, "shared-1").await.expect("get"),
        None,
        "a key is (kind, source id)"
    );
    assert!(
        c.put_if(&contact, &[None]).await.expect("put_if"),
        "the same id under another kind is absent"
    );
    assert_eq!(
        c.get(ObjectKind::Account, "shared-1").await.expect("get"),
        Some(account)
    );
    assert_eq!(
        c.get(ObjectKind::Contact, "shared-1").await.expect("get"),
        Some(contact)
    );
}

async fn crosswalk_batches_and_get_many(c: &dyn Crosswalk) {
    let kind = ObjectKind::Activity;
    // Larger than any cloud batch size (DynamoDB writes 25, reads 100), so chunking is exercised.
    let links: Vec<Link> = (0..250)
        .map(|i| sample_link(kind, &format!("act-{i:04}"), LinkStatus::Created))
        .collect();
    c.put_batch(&links).await.expect("put_batch of 250");
    let ids: Vec<String> = links.iter().map(|l| l.source_id.clone()).collect();
    let got = c.get_many(kind, &ids).await.expect("get_many of 250");
    assert_eq!(got.len(), 250, "get_many must return every present id");
    for link in &links {
        assert_eq!(
            got.get(&link.source_id),
            Some(link),
            "get_many is keyed by source id"
        );
    }

    let mut asked = vec![
        "act-0003".to_string(),
        "missing-1".to_string(),
        "act-0200".to_string(),
    ];
    asked.push("act-0003".to_string());
    let some = c
        .get_many(kind, &asked)
        .await
        .expect("get_many with gaps and repeats");
    assert_eq!(
        some.keys().cloned().collect::<Vec<_>>(),
        vec!["act-0003".to_string(), "act-0200".to_string()]
    );
    assert!(
        c.get_many(ObjectKind::Task, &ids[..5])
            .await
            .expect("get_many")
            .is_empty(),
        "get_many is per kind"
    );

    // Unconditional overwrite, and last write wins inside one batch.
    let first = sample_link(kind, "act-0001", LinkStatus::Failed);
    let last = sample_link(kind, "act-0001", LinkStatus::Skipped);
    let fresh = sample_link(kind, "act-new", LinkStatus::Pending);
    c.put_batch(&[first, fresh.clone(), last.clone()])
        .await
        .expect("put_batch with a repeated key");
    assert_eq!(
        c.get(kind, "act-0001").await.expect("get"),
        Some(last),
        "the later entry of a batch wins"
    );
    assert_eq!(c.get(kind, "act-new").await.expect("get"), Some(fresh));
    assert_eq!(
        c.get(kind, "act-0002").await.expect("get"),
        Some(links[2].clone()),
        "other entries untouched"
    );
}

async fn crosswalk_list_paging(c: &dyn Crosswalk) {
    let kind = ObjectKind::Task;
    // Source-id order is plain byte order of the UTF-8 id: "10" before "9", upper case first.
    let mut ids: Vec<String> = [
        "9", "10", "a", "B", "é", "a/b", "a-b", "task-2", "task-10", "task-1",
    ]
    .into_iter()
    .map(str::to_string)
    .chain((0..57).map(|i| format!("bulk-{i:03}")))
    .collect();
    let links: Vec<Link> = ids
        .iter()
        .map(|id| sample_link(kind, id, LinkStatus::Created))
        .collect();
    c.put_batch(&links).await.expect("put_batch");
    ids.sort();

    let all = c.list(kind, None, 1000).await.expect("list all");
    assert_eq!(
        all.iter().map(|l| l.source_id.clone()).collect::<Vec<_>>(),
        ids,
        "list must be in source-id byte order"
    );
    assert!(all.iter().all(|l| l.kind == kind), "list is per kind");
    assert_eq!(
        all[0],
        sample_link(kind, &ids[0], LinkStatus::Created),
        "list returns whole entries"
    );

    for page_size in [1, 7, 10, 67, 68] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = c
                .list(kind, after.as_deref(), page_size)
                .await
                .expect("list page");
            assert!(
                page.len() <= page_size,
                "list returned {} entries for limit {page_size}",
                page.len()
            );
            let Some(last) = page.last() else { break };
            after = Some(last.source_id.clone());
            seen.extend(page.into_iter().map(|l| l.source_id));
            assert!(
                seen.len() <= ids.len(),
                "paging with limit {page_size} never ends"
            );
        }
        assert_eq!(
            seen, ids,
            "paging with limit {page_size} must visit every entry once, in order"
        );
    }

    let after_gap = c
        .list(kind, Some("bulk-0505"), 3)
        .await
        .expect("list after an absent id");
    assert_eq!(
        after_gap
            .iter()
            .map(|l| l.source_id.as_str())
            .collect::<Vec<_>>(),
        vec!["bulk-051", "bulk-052", "bulk-053"],
        "`after` need not exist; entries strictly after it follow"
    );
    assert!(
        c.list(kind, Some("é"), 10)
            .await
            .expect("list past the end")
            .is_empty()
    );
    assert!(
        c.list(kind, None, 0)
            .await
            .expect("list limit 0")
            .is_empty(),
        "limit 0 returns nothing"
    );
}

async fn crosswalk_counts(c: &dyn Crosswalk) {
    let kind = ObjectKind::Group;
    let plan = [
        (LinkStatus::Created, 5),
        (LinkStatus::Failed, 2),
        (LinkStatus::Pending, 1),
        (LinkStatus::Existing, 3),
    ];
    let mut links = Vec::new();
    for (status, n) in plan {
        for i in 0..n {
            links.push(sample_link(
                kind,
                &format!("g-{}-{i}", status.as_str()),
                status,
            ));
        }
    }
    c.put_batch(&links).await.expect("put_batch");
    let counts = c.counts(kind).await.expect("counts");
    for (status, n) in plan {
        assert_eq!(
            status_count(&counts, status),
            n,
            "count of {} in {counts:?}",
            status.as_str()
        );
    }
    for status in [LinkStatus::Skipped, LinkStatus::RolledBack] {
        assert_eq!(
            status_count(&counts, status),
            0,
            "absent statuses count zero"
        );
    }
    assert!(
        counts.keys().all(|k| LinkStatus::parse(k).is_some()),
        "counts are keyed by LinkStatus::as_str, got {counts:?}"
    );

    // A status change moves the entry between counts.
    let moved = sample_link(kind, "g-failed-0", LinkStatus::Created);
    assert!(
        c.put_if(&moved, &[Some(LinkStatus::Failed)])
            .await
            .expect("put_if")
    );
    let counts = c.counts(kind).await.expect("counts");
    assert_eq!(status_count(&counts, LinkStatus::Created), 6);
    assert_eq!(status_count(&counts, LinkStatus::Failed), 1);
    assert_eq!(
        counts.values().sum::<u64>(),
        11,
        "counts cover every entry of the kind once"
    );
}

async fn crosswalk_put_if_race(c: &dyn Crosswalk) {
    let kind = ObjectKind::Agent;
    let contenders: Vec<Link> = (0..16)
        .map(|i| Link {
            dest_id: Some(format!("winner-{i}")),
            ..sample_link(kind, "race-1", LinkStatus::Pending)
        })
        .collect();
    let results = join_all(contenders.iter().map(|l| c.put_if(l, &[None]))).await;
    let won: Vec<usize> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.expect("put_if in a race").then_some(i))
        .collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one of 16 racing put_if [None] must win, winners: {won:?}"
    );
    assert_eq!(
        c.get(kind, "race-1").await.expect("get"),
        Some(contenders[won[0]].clone()),
        "the winner's entry is stored"
    );

    // The pending -> created step races the same way (two workers resuming the same record).
    let finishers: Vec<Link> = (0..16)
        .map(|i| Link {
            dest_id: Some(format!("finisher-{i}")),
            ..sample_link(kind, "race-1", LinkStatus::Created)
        })
        .collect();
    let results = join_all(
        finishers
            .iter()
            .map(|l| c.put_if(l, &[Some(LinkStatus::Pending)])),
    )
    .await;
    let won: Vec<usize> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.expect("put_if in a race").then_some(i))
        .collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one pending -> created transition must win, winners: {won:?}"
    );
    assert_eq!(
        c.get(kind, "race-1").await.expect("get"),
        Some(finishers[won[0]].clone())
    );
}

// ---------------------------------------------------------------------------------------------

fn checkpoint(phase: &str, partition: &str, cursor: Option<&str>, done: bool) -> Checkpoint {
    Checkpoint {
        phase: phase.to_string(),
        partition: partition.to_string(),
        cursor: cursor.map(str::to_string),
        done,
        updated_at: format!("2026-03-01T10:{:02}:00Z", partition.len() % 60),
    }
}

/// Checkpoints contract: keyed (phase, partition), overwrite, list per phase, clear per phase.
pub async fn checkpoints_suite(c: &dyn Checkpoints) {
    for phase in ["extract", "load", "load_delta"] {
        assert!(
            c.list(phase).await.expect("list").is_empty(),
            "the suite needs empty checkpoints ({phase})"
        );
    }
    assert_eq!(c.get("load", "tickets").await.expect("get"), None);

    let written = [
        checkpoint("load", "tickets", Some("cursor-t-1"), false),
        checkpoint("load", "accounts", None, true),
        checkpoint("load", "contacts", Some("c/2026-01-01T00:00:00Z"), false),
        // A phase whose name extends another must not show up under it.
        checkpoint("load_delta", "tickets", Some("delta-1"), false),
        checkpoint("extract", "tickets", Some("x"), false),
    ];
    for cp in &written {
        c.put(cp).await.expect("put");
    }
    for cp in &written {
        assert_eq!(
            c.get(&cp.phase, &cp.partition).await.expect("get"),
            Some(cp.clone()),
            "checkpoint must round-trip"
        );
    }
    assert_eq!(
        c.get("load", "tasks").await.expect("get"),
        None,
        "other partitions stay absent"
    );

    let load = c.list("load").await.expect("list");
    assert_eq!(
        load.iter()
            .map(|cp| cp.partition.as_str())
            .collect::<Vec<_>>(),
        vec!["accounts", "contacts", "tickets"],
        "list returns the phase's checkpoints only, in partition order"
    );
    assert!(load.iter().all(|cp| cp.phase == "load"));

    let advanced = checkpoint("load", "tickets", Some("cursor-t-2"), false);
    c.put(&advanced).await.expect("put over");
    assert_eq!(c.get("load", "tickets").await.expect("get"), Some(advanced));
    let finished = checkpoint("load", "tickets", None, true);
    c.put(&finished).await.expect("put over");
    assert_eq!(
        c.get("load", "tickets").await.expect("get"),
        Some(finished),
        "a cursor can be cleared to None"
    );
    assert_eq!(
        c.list("load").await.expect("list").len(),
        3,
        "overwriting must not add a checkpoint"
    );

    c.clear("load").await.expect("clear");
    assert!(
        c.list("load").await.expect("list").is_empty(),
        "clear removes every checkpoint of the phase"
    );
    assert_eq!(c.get("load", "accounts").await.expect("get"), None);
    assert_eq!(
        c.list("load_delta").await.expect("list"),
        vec![written[3].clone()],
        "clear leaves other phases"
    );
    assert_eq!(
        c.list("extract").await.expect("list"),
        vec![written[4].clone()]
    );
    c.clear("never-written")
        .await
        .expect("clearing an empty phase is not an error");
    c.clear("load")
        .await
        .expect("clearing twice is not an error");

    c.put(&written[0]).await.expect("put after clear");
    assert_eq!(
        c.list("load").await.expect("list"),
        vec![written[0].clone()],
        "a cleared phase can start again"
    );
}

// ---------------------------------------------------------------------------------------------

const OPS: [AuditOp; 5] = [
    AuditOp::Create,
    AuditOp::Update,
    AuditOp::Delete,
    AuditOp::Attach,
    AuditOp::Schema,
];

fn audit_entry(n: usize) -> AuditEntry {
    AuditEntry {
        at: format!("2026-03-01T10:00:{:02}Z", n % 60),
        op: OPS[n % OPS.len()],
        kind: ObjectKind::LOADED[n % ObjectKind::LOADED.len()],
        source_id: format!("audit-{n:05}"),
        dest_id: (!n.is_multiple_of(3)).then(|| format!("d-{n}")),
        outcome: if n.is_multiple_of(4) {
            "failed: HTTP 422".to_string()
        } else {
            "ok".to_string()
        },
        payload_hash: format!("ph-{n}"),
    }
}

async fn read_all(a: &dyn AuditLog, page: usize) -> Vec<(u64, AuditEntry)> {
    let mut out: Vec<(u64, AuditEntry)> = Vec::new();
    let mut after = 0;
    loop {
        let batch = a.entries(after, page).await.expect("entries");
        assert!(
            batch.len() <= page,
            "entries returned {} for limit {page}",
            batch.len()
        );
        let Some((last, _)) = batch.last() else { break };
        after = *last;
        out.extend(batch);
        assert!(out.len() < 100_000, "audit paging never ends");
    }
    out
}

/// Audit log contract: append-only, strictly increasing sequence numbers above 0, paging.
pub async fn audit_suite(a: &dyn AuditLog) {
    assert!(
        a.entries(0, 100).await.expect("entries").is_empty(),
        "the suite needs an empty audit log"
    );
    a.append(&[]).await.expect("appending nothing is a no-op");
    assert!(a.entries(0, 100).await.expect("entries").is_empty());

    let first: Vec<AuditEntry> = (0..3).map(audit_entry).collect();
    a.append(&first).await.expect("append");
    let got = a.entries(0, 100).await.expect("entries");
    assert_eq!(
        got.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
        first,
        "entries round-trip in append order"
    );
    assert!(
        got[0].0 >= 1,
        "sequence numbers start above 0, so entries(0, ..) reads from the start"
    );
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "sequence numbers strictly increase: {:?}",
        got.iter().map(|g| g.0).collect::<Vec<_>>()
    );

    let mut expected = first.clone();
    for chunk in (3..123).collect::<Vec<_>>().chunks(7) {
        let batch: Vec<AuditEntry> = chunk.iter().copied().map(audit_entry).collect();
        a.append(&batch).await.expect("append");
        expected.extend(batch);
    }
    for page in [1, 25, 123, 500] {
        let all = read_all(a, page).await;
        assert_eq!(
            all.len(),
            expected.len(),
            "paging by {page} must see every entry once"
        );
        assert_eq!(
            all.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
            expected,
            "append order is kept"
        );
        assert!(
            all.windows(2).all(|w| w[0].0 < w[1].0),
            "sequence numbers strictly increase"
        );
        assert_eq!(all[0], got[0], "earlier entries never change");
    }

    let all = read_all(a, 50).await;
    let (tenth_seq, _) = all[9].clone();
    let tail = a
        .entries(tenth_seq, 5)
        .await
        .expect("entries after a sequence");
    assert_eq!(
        tail,
        all[10..15].to_vec(),
        "entries(after, n) starts strictly after `after`"
    );
    let last_seq = all.last().expect("entries").0;
    assert!(
        a.entries(last_seq, 10).await.expect("entries").is_empty(),
        "nothing after the last entry"
    );
    assert!(
        a.entries(0, 0).await.expect("entries").is_empty(),
        "limit 0 returns nothing"
    );

    // Concurrent writers: nothing lost, nothing duplicated, each batch keeps its own order.
    let batches: Vec<Vec<AuditEntry>> = (0..8)
        .map(|b| (0..5).map(|i| audit_entry(1000 + b * 10 + i)).collect())
        .collect();
    for r in join_all(batches.iter().map(|b| a.append(b))).await {
        r.expect("concurrent append");
    }
    let after = a.entries(last_seq, 1000).await.expect("entries");
    assert_eq!(
        after.len(),
        40,
        "every concurrently appended entry is stored once"
    );
    assert!(
        after.windows(2).all(|w| w[0].0 < w[1].0),
        "sequence numbers strictly increase"
    );
    assert!(after[0].0 > last_seq, "new entries come after the old ones");
    for batch in &batches {
        let order: Vec<&str> = after
            .iter()
            .filter(|(_, e)| batch.iter().any(|b| b.source_id == e.source_id))
            .map(|(_, e)| e.source_id.as_str())
            .collect();
        let wanted: Vec<&str> = batch.iter().map(|e| e.source_id.as_str()).collect();
        assert_eq!(order, wanted, "one append keeps its entries' order");
    }
    let distinct: BTreeSet<u64> = read_all(a, 1000).await.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        distinct.len(),
        expected.len() + 40,
        "sequence numbers are unique"
    );
}

// ---------------------------------------------------------------------------------------------

fn assert_refused<T: std::fmt::Debug>(result: deskshift_core::Result<T>, key: &str, op: &str) {
    match result {
        Err(Error::Store(message)) => {
            assert!(
                message.contains(key),
                "{op} of bad key {key:?}: the error must name the key, got {message:?}"
            )
        }
        other => panic!("{op} of bad key {key:?} must fail with Error::Store, got {other:?}"),
    }
}

/// Stage contract (S3 semantics): round trips, overwrite, string-prefix listing in key order,
/// idempotent delete, refused keys, concurrent writers.
pub async fn stage_suite(s: &dyn Stage) {
    assert!(
        s.list("").await.expect("list").is_empty(),
        "the suite needs an empty stage"
    );
    assert_eq!(s.get("tickets/1.json").await.expect("get absent"), None);
    s.delete("tickets/1.json")
        .await
        .expect("deleting a missing key is not an error");

    let json = Bytes::from_static(br#"{"id":"1","subject":"Printer on fire"}"#);
    s.put("tickets/1.json", json.clone()).await.expect("put");
    assert_eq!(s.get("tickets/1.json").await.expect("get"), Some(json));

    let binary = Bytes::from((0..=255u8).cycle().take(4096).collect::<Vec<u8>>());
    s.put("attachments/T-1/a 1 ü.bin", binary.clone())
        .await
        .expect("put binary");
    assert_eq!(
        s.get("attachments/T-1/a 1 ü.bin")
            .await
            .expect("get binary"),
        Some(binary),
        "bytes are kept exactly"
    );

    s.put("empty.txt", Bytes::new()).await.expect("put empty");
    assert_eq!(
        s.get("empty.txt").await.expect("get empty"),
        Some(Bytes::new()),
        "an empty object exists (not None)"
    );

    let big = Bytes::from(
        (0..3 * 1024 * 1024)
            .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    );
    s.put("attachments/T-2/big.bin", big.clone())
        .await
        .expect("put 3 MB");
    assert_eq!(
        s.get("attachments/T-2/big.bin").await.expect("get 3 MB"),
        Some(big)
    );

    s.put("tickets/1.json", Bytes::from_static(b"v2"))
        .await
        .expect("overwrite");
    assert_eq!(
        s.get("tickets/1.json").await.expect("get"),
        Some(Bytes::from_static(b"v2")),
        "a put replaces"
    );

    for key in [
        "tickets/2.json",
        "tickets/10.json",
        "tickets-old/1.json",
        "ticketsx",
        "reports/2024.csv",
        "reports/2/x.csv",
        "a-b",
        "a/b",
    ] {
        s.put(key, Bytes::from(key.as_bytes().to_vec()))
            .await
            .expect("put");
    }
    let mut everything: Vec<String> = [
        "tickets/1.json",
        "attachments/T-1/a 1 ü.bin",
        "empty.txt",
        "attachments/T-2/big.bin",
        "tickets/2.json",
        "tickets/10.json",
        "tickets-old/1.json",
        "ticketsx",
        "reports/2024.csv",
        "reports/2/x.csv",
        "a-b",
        "a/b",
    ]
    .map(str::to_string)
    .to_vec();
    everything.sort();
    assert_eq!(
        s.list("").await.expect("list all"),
        everything,
        "list(\"\") returns every key once, sorted"
    );
    let under = |prefix: &str| {
        everything
            .iter()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect::<Vec<_>>()
    };
    for prefix in [
        "tickets/",
        "tickets",
        "tickets/1",
        "reports/2",
        "reports/2/",
        "a",
        "a/",
        "attachments/T-1/",
        "nope/",
        "zzz",
    ] {
        assert_eq!(
            s.list(prefix).await.expect("list"),
            under(prefix),
            "list({prefix:?}) is a sorted string-prefix match"
        );
    }
    assert_eq!(
        s.list("tickets/").await.expect("list"),
        vec!["tickets/1.json", "tickets/10.json", "tickets/2.json"],
        "keys sort as strings"
    );

    s.delete("tickets/2.json").await.expect("delete");
    assert_eq!(s.get("tickets/2.json").await.expect("get deleted"), None);
    s.delete("tickets/2.json")
        .await
        .expect("deleting twice is not an error");
    assert!(
        !s.list("tickets/")
            .await
            .expect("list")
            .contains(&"tickets/2.json".to_string())
    );
    s.delete("a/b")
        .await
        .expect("delete the last key of a folder");
    assert_eq!(s.list("a/").await.expect("list"), Vec::<String>::new());
    s.put("a/b", Bytes::from_static(b"again"))
        .await
        .expect("a deleted key can be written again");
    assert_eq!(
        s.get("a/b").await.expect("get"),
        Some(Bytes::from_static(b"again"))
    );

    let before = s.list("").await.expect("list");
    for key in [
        "../escape.txt",
        "tickets/../../escape.txt",
        "/etc/passwd-copy",
        "tickets\\1.json",
    ] {
        assert_refused(s.put(key, Bytes::from_static(b"x")).await, key, "put");
        assert_refused(s.get(key).await, key, "get");
        assert_refused(s.delete(key).await, key, "delete");
    }
    assert!(
        matches!(
            s.put("", Bytes::from_static(b"x")).await,
            Err(Error::Store(_))
        ),
        "an empty key is refused"
    );
    assert!(
        matches!(s.list("../").await, Err(Error::Store(_))),
        "a prefix escaping the stage is refused"
    );
    assert_eq!(
        s.list("").await.expect("list"),
        before,
        "refused keys write nothing"
    );

    // Concurrent writers: distinct keys all land; racing writes to one key leave one whole value.
    let keys: Vec<String> = (0..20).map(|i| format!("parallel/{i:02}.json")).collect();
    for r in join_all(
        keys.iter()
            .map(|k| s.put(k, Bytes::from(k.clone().into_bytes()))),
    )
    .await
    {
        r.expect("concurrent put");
    }
    assert_eq!(s.list("parallel/").await.expect("list"), keys);
    let values: Vec<Bytes> = (0..8u8).map(|i| Bytes::from(vec![i; 256 * 1024])).collect();
    for r in join_all(values.iter().map(|v| s.put("contended.bin", v.clone()))).await {
        r.expect("racing put");
    }
    let stored = s
        .get("contended.bin")
        .await
        .expect("get")
        .expect("a racing put must leave the key present");
    assert!(
        values.contains(&stored),
        "racing puts must leave exactly one writer's whole value"
    );
    assert_eq!(
        s.list("contended").await.expect("list"),
        vec!["contended.bin"],
        "racing puts leave one key"
    );
}
