//! The shared conformance suites, run against the embedded implementations.

use deskshift_store_embedded::{FileStage, SqliteStore, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_crosswalk_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_job(dir.path()).unwrap();
    conformance::crosswalk_suite(store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpoints_conform() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_job(dir.path()).unwrap();
    conformance::checkpoints_suite(store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_audit_log_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_job(dir.path()).unwrap();
    conformance::audit_suite(store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_stage_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let stage = FileStage::open_in_job(dir.path()).unwrap();
    conformance::stage_suite(stage.as_ref()).await;
}

/// The suites only need the ports, so they also run on a single-threaded runtime.
#[tokio::test(flavor = "current_thread")]
async fn suites_run_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_job(dir.path()).unwrap();
    conformance::crosswalk_suite(store.as_ref()).await;
    conformance::checkpoints_suite(store.as_ref()).await;
    conformance::audit_suite(store.as_ref()).await;
    conformance::stage_suite(FileStage::open_in_job(dir.path()).unwrap().as_ref()).await;
}
