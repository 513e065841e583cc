//! FileStage behaviour beyond the shared suite: on-disk layout, interrupted writes, refused keys.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use deskshift_core::Error;
use deskshift_core::ports::Stage;
use deskshift_store_embedded::{FileStage, STAGE_DIR, TEMP_MARKER};

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                out.push(
                    entry
                        .path()
                        .strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn keys_are_files_under_the_job_stage_directory() {
    let job = tempfile::tempdir().unwrap();
    let stage = FileStage::open_in_job(job.path()).unwrap();
    assert_eq!(stage.root(), job.path().join(STAGE_DIR));
    stage
        .put("tickets/T-1.json", Bytes::from_static(b"{\"id\":1}"))
        .await
        .unwrap();
    stage
        .put("tickets/T-1.json", Bytes::from_static(b"{\"id\":2}"))
        .await
        .unwrap();
    stage
        .put("reports/run.csv", Bytes::from_static(b"a,b\n"))
        .await
        .unwrap();
    assert_eq!(
        stage.path_of("tickets/T-1.json").unwrap(),
        job.path().join("stage/tickets/T-1.json")
    );
    assert_eq!(
        std::fs::read(job.path().join("stage/tickets/T-1.json")).unwrap(),
        b"{\"id\":2}"
    );
    assert_eq!(
        files_under(&job.path().join(STAGE_DIR)),
        vec!["reports/run.csv", "tickets/T-1.json"],
        "no temp file is left behind by completed writes"
    );

    let reopened = FileStage::open(job.path().join(STAGE_DIR)).unwrap();
    assert_eq!(
        reopened.list("").await.unwrap(),
        vec!["reports/run.csv", "tickets/T-1.json"]
    );
    assert_eq!(
        reopened.get("reports/run.csv").await.unwrap(),
        Some(Bytes::from_static(b"a,b\n"))
    );
}

#[tokio::test]
async fn an_interrupted_write_is_not_visible_as_a_key() {
    let job = tempfile::tempdir().unwrap();
    let stage = FileStage::open_in_job(job.path()).unwrap();
    stage
        .put("tickets/T-1.json", Bytes::from_static(b"complete v1"))
        .await
        .unwrap();
    // What a process killed mid-write leaves: a temp file beside the key, and one in a new folder.
    let root = stage.root().to_path_buf();
    std::fs::write(root.join(format!("tickets/{TEMP_MARKER}4242-0")), b"compl").unwrap();
    std::fs::create_dir_all(root.join("attachments/T-1")).unwrap();
    std::fs::write(
        root.join(format!("attachments/T-1/{TEMP_MARKER}4242-1")),
        b"\x89PN",
    )
    .unwrap();

    assert_eq!(stage.list("").await.unwrap(), vec!["tickets/T-1.json"]);
    assert_eq!(
        stage.list("attachments/").await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        stage.get("tickets/T-1.json").await.unwrap(),
        Some(Bytes::from_static(b"complete v1"))
    );
    let temp_key = format!("tickets/{TEMP_MARKER}4242-0");
    assert!(
        matches!(stage.get(&temp_key).await, Err(Error::Store(m)) if m.contains(&temp_key)),
        "a temp file cannot be read as a key"
    );

    assert_eq!(stage.remove_leftovers().await.unwrap(), 2);
    assert_eq!(files_under(&root), vec!["tickets/T-1.json"]);
    stage
        .put("attachments/T-1/logo.png", Bytes::from_static(b"\x89PNG"))
        .await
        .unwrap();
    assert_eq!(
        stage.list("").await.unwrap(),
        vec!["attachments/T-1/logo.png", "tickets/T-1.json"]
    );
}

const KILL_DIR_ENV: &str = "DESKSHIFT_STAGE_KILL_TEST_DIR";
const BIG: usize = 96 * 1024 * 1024;

fn big_payload() -> Vec<u8> {
    (0..BIG).map(|i| (i % 251) as u8).collect()
}

/// Runs only as the child process of the test below, which kills it in the middle of a write.
#[tokio::test]
#[ignore = "child process of a_killed_writer_leaves_the_old_bytes_or_the_whole_new_ones"]
async fn child_writes_a_big_object_until_killed() {
    let dir = std::env::var(KILL_DIR_ENV).expect("run by the parent test");
    let stage = FileStage::open(dir).unwrap();
    loop {
        stage
            .put("big/blob.bin", Bytes::from(big_payload()))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_leaves_the_old_bytes_or_the_whole_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let stage = FileStage::open(dir.path()).unwrap();
    stage
        .put("big/blob.bin", Bytes::from_static(b"old"))
        .await
        .unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writes_a_big_object_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(KILL_DIR_ENV, dir.path())
        .spawn()
        .unwrap();
    // Kill it as soon as a write is under way (a temp file exists), or give up waiting.
    let deadline = Instant::now() + Duration::from_secs(120);
    let saw_temp_file = loop {
        let writing = std::fs::read_dir(dir.path().join("big"))
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(TEMP_MARKER))
            })
            .unwrap_or(false);
        if writing || Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break writing;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(saw_temp_file, "the child never started writing");

    assert_eq!(
        stage.list("").await.unwrap(),
        vec!["big/blob.bin"],
        "only the real key is listed"
    );
    let got = stage.get("big/blob.bin").await.unwrap().unwrap();
    let whole =
        got.as_ref() == b"old" || (got.len() == BIG && got.as_ref() == big_payload().as_slice());
    assert!(
        whole,
        "the key holds a half-written value ({} bytes)",
        got.len()
    );
    eprintln!("after the kill the key held {} bytes", got.len());
}

#[tokio::test]
async fn keys_that_would_alias_or_escape_are_refused_naming_the_key() {
    let job = tempfile::tempdir().unwrap();
    let stage = FileStage::open_in_job(job.path()).unwrap();
    let refused = [
        "a//b",
        "a/./b",
        "./a",
        "a/",
        "..",
        "tickets/..",
        ".deskshift-tmp-1-1",
        "x/.deskshift-tmp-1-1",
        "a\\..\\b",
        "nul\0byte",
    ];
    for key in refused {
        for result in [
            stage.put(key, Bytes::from_static(b"x")).await,
            stage.get(key).await.map(|_| ()),
            stage.delete(key).await,
        ] {
            match result {
                Err(Error::Store(message)) => assert!(message.contains(key), "{message}"),
                other => panic!("key {key:?} must be refused, got {other:?}"),
            }
        }
    }
    assert!(matches!(stage.list("/").await, Err(Error::Store(_))));
    assert!(matches!(stage.list("a//").await, Err(Error::Store(_))));
    assert!(stage.list("").await.unwrap().is_empty());
    assert_eq!(
        files_under(job.path()),
        Vec::<String>::new(),
        "nothing was written anywhere"
    );
    // Dots inside a name are fine.
    stage
        .put("reports/run..final.csv", Bytes::from_static(b"ok"))
        .await
        .unwrap();
    stage
        .put(".hidden/notes.txt", Bytes::from_static(b"ok"))
        .await
        .unwrap();
    assert_eq!(
        stage.list("").await.unwrap(),
        vec![".hidden/notes.txt", "reports/run..final.csv"]
    );
}

#[tokio::test]
async fn a_key_that_is_also_a_folder_is_refused_naming_the_key() {
    let job = tempfile::tempdir().unwrap();
    let stage = FileStage::open_in_job(job.path()).unwrap();
    stage
        .put("a/b", Bytes::from_static(b"inner"))
        .await
        .unwrap();
    match stage.put("a", Bytes::from_static(b"outer")).await {
        Err(Error::Store(message)) => assert!(
            message.contains("'a'") && message.contains("folder"),
            "{message}"
        ),
        other => panic!("expected Error::Store, got {other:?}"),
    }
    assert_eq!(stage.get("a").await.unwrap(), None, "a folder is not a key");
    stage.put("c", Bytes::from_static(b"file")).await.unwrap();
    assert!(
        matches!(stage.put("c/d", Bytes::from_static(b"x")).await, Err(Error::Store(m)) if m.contains("'c/d'"))
    );
    assert_eq!(stage.get("c/d").await.unwrap(), None);
    assert_eq!(stage.list("").await.unwrap(), vec!["a/b", "c"]);

    stage.delete("a/b").await.unwrap();
    stage
        .put("a", Bytes::from_static(b"outer"))
        .await
        .expect("the folder went away with its last key");
    assert_eq!(stage.list("").await.unwrap(), vec!["a", "c"]);
    assert_eq!(files_under(stage.root()), vec!["a", "c"]);
}
