//! `FileStage`: staged payloads, attachment binaries and reports as files under `<job_dir>/stage/`.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use deskshift_core::ports::Stage;
use deskshift_core::{Error, Result};

use crate::Durability;

/// Directory name of the stage inside a job directory.
pub const STAGE_DIR: &str = "stage";

/// File names starting with this are writes in progress (or left by a killed process): never keys.
pub use deskshift_core::ports::stage_key::TEMP_MARKER;
use deskshift_core::ports::stage_key::{validate_key, validate_prefix};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A [`Stage`] over a local directory, with S3-like semantics: a key is a relative path with `/`
/// separators, `list` is a plain string-prefix match, and every write is atomic (temp file in the
/// same directory, rename; fsync of file and folder with [`Durability::Power`]), so a reader sees
/// the old bytes or the new, never a half file.
///
/// Unlike S3, a key cannot also be a "directory" of other keys (`a` and `a/b` together): the
/// second write fails with `Error::Store` naming the key.
#[derive(Clone, Debug)]
pub struct FileStage {
    root: Arc<PathBuf>,
    durability: Durability,
}

impl FileStage {
    /// Opens (creating if needed) a stage rooted at `dir`, with the durability named by
    /// `DESKSHIFT_DURABILITY` (default [`Durability::Process`]).
    pub fn open(dir: impl AsRef<Path>) -> Result<Arc<FileStage>> {
        FileStage::open_with(dir, Durability::from_env()?)
    }

    /// Opens a stage rooted at `dir` with the given durability.
    pub fn open_with(dir: impl AsRef<Path>, durability: Durability) -> Result<Arc<FileStage>> {
        let root = dir.as_ref().to_path_buf();
        fs::create_dir_all(&root).map_err(|e| {
            Error::Store(format!(
                "cannot create the stage directory {}: {e}; check the path and that it is writable",
                root.display()
            ))
        })?;
        Ok(Arc::new(FileStage {
            root: Arc::new(root),
            durability,
        }))
    }

    /// Opens `<job_dir>/stage/`.
    pub fn open_in_job(job_dir: impl AsRef<Path>) -> Result<Arc<FileStage>> {
        FileStage::open(job_dir.as_ref().join(STAGE_DIR))
    }

    /// Opens `<job_dir>/stage/` with the given durability.
    pub fn open_in_job_with(
        job_dir: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<Arc<FileStage>> {
        FileStage::open_with(job_dir.as_ref().join(STAGE_DIR), durability)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file a key is (or would be) stored in; fails for keys the stage refuses.
    pub fn path_of(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    /// Deletes the temp files that interrupted writes left behind; returns how many. Call it only
    /// while no other process writes to this stage, or it may remove a write in progress.
    pub async fn remove_leftovers(&self) -> Result<usize> {
        let root = Arc::clone(&self.root);
        blocking(move || {
            let mut removed = 0;
            let files = walk(&root).map_err(|e| {
                Error::Store(format!(
                    "cannot scan the stage directory {}: {e}; check that it is readable",
                    root.display()
                ))
            })?;
            for (path, name) in files {
                if name.starts_with(TEMP_MARKER) {
                    match fs::remove_file(&path) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(Error::Store(format!(
                                "cannot remove the leftover temp file {}: {e}; check that this \
                                 user can write to the stage directory",
                                path.display()
                            )));
                        }
                    }
                }
            }
            Ok(removed)
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Error::Store(format!(
            "stage operation did not complete ({e}); resume the job to retry"
        ))
    })?
}

fn io_error(root: &Path, action: &str, key: &str, e: std::io::Error) -> Error {
    let advice = match e.kind() {
        ErrorKind::StorageFull => {
            "the disk is full; free some space, then resume the job".to_string()
        }
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            "check that this user can write to the stage directory".to_string()
        }
        ErrorKind::NotADirectory
        | ErrorKind::IsADirectory
        | ErrorKind::AlreadyExists
        | ErrorKind::DirectoryNotEmpty => format!(
            "a file stage cannot hold a key that is also the folder of other keys (like `a` and \
             `a/b`); choose keys so that '{key}' is not both"
        ),
        _ => "check the disk, then resume the job".to_string(),
    };
    Error::Store(format!(
        "stage {}: {action} key '{key}' failed: {e}; {advice}",
        root.display()
    ))
}

/// Every regular file under `dir` with its file name (non-UTF-8 names skipped: they cannot be keys).
fn walk(dir: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            // Missing: nothing staged there, or removed by a concurrent delete.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                continue;
            }
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let file_type = match entry.file_type() {
                Ok(t) => t,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if file_type.is_dir() {
                pending.push(entry.path());
            } else if file_type.is_file() {
                out.push((entry.path(), name));
            }
        }
    }
    Ok(out)
}

fn write_atomically(root: &Path, key: &str, bytes: &[u8], durability: Durability) -> Result<()> {
    let fsync = durability == Durability::Power;
    let target = root.join(key);
    let dir = target.parent().unwrap_or(root).to_path_buf();
    let err = |e| io_error(root, "writing", key, e);
    let mut attempt = 0;
    let (tmp, mut file) = loop {
        attempt += 1;
        fs::create_dir_all(&dir).map_err(err)?;
        let tmp = dir.join(format!(
            "{TEMP_MARKER}{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match File::create_new(&tmp) {
            Ok(file) => break (tmp, file),
            // A concurrent delete pruned the freshly created folder: make it again.
            Err(e) if e.kind() == ErrorKind::NotFound && attempt < 5 => continue,
            // A temp name left by an earlier process that had the same pid: take the next one.
            Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < 5 => continue,
            Err(e) => return Err(err(e)),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| if fsync { file.sync_all() } else { Ok(()) })
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp, &target)
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    if !fsync {
        // The rename is atomic for readers and survives a process crash without a flush.
        return Ok(());
    }
    // The rename itself must reach the disk too, or a power cut could bring back the old bytes.
    File::open(&dir).and_then(|d| d.sync_all()).map_err(err)
}

#[async_trait]
impl Stage for FileStage {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        validate_key(key)?;
        let (root, key, durability) = (Arc::clone(&self.root), key.to_string(), self.durability);
        blocking(move || write_atomically(&root, &key, &bytes, durability)).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        validate_key(key)?;
        let (root, key) = (Arc::clone(&self.root), key.to_string());
        blocking(move || match fs::read(root.join(&key)) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(io_error(&root, "reading", &key, e)),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        let (root, prefix) = (Arc::clone(&self.root), prefix.to_string());
        blocking(move || {
            let folder = prefix.rfind('/').map_or("", |i| &prefix[..i]);
            let start = root.join(folder);
            let files = walk(&start).map_err(|e| io_error(&root, "listing", &prefix, e))?;
            let mut keys: Vec<String> = files
                .into_iter()
                .filter(|(_, name)| !name.starts_with(TEMP_MARKER))
                .filter_map(|(path, _)| {
                    let relative = path.strip_prefix(root.as_path()).ok()?;
                    let segments: Option<Vec<&str>> = relative.iter().map(|s| s.to_str()).collect();
                    Some(segments?.join("/"))
                })
                .filter(|key| key.starts_with(&prefix))
                .collect();
            keys.sort_unstable();
            Ok(keys)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let (root, key) = (Arc::clone(&self.root), key.to_string());
        blocking(move || {
            let target = root.join(&key);
            match fs::remove_file(&target) {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory
                    ) =>
                {
                    return Ok(());
                }
                Err(e) => return Err(io_error(&root, "deleting", &key, e)),
            }
            // Prune folders left empty, so `a` can be written again once every `a/...` is gone.
            let mut dir = target.parent();
            while let Some(d) = dir.filter(|d| *d != root.as_path()) {
                if fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await
    }
}
