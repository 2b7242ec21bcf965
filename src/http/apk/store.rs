//! The cache's files on disk, and the one upstream fetch per file however many nodes
//! ask for it at once.
//!
//! Each file has a slot: `Fetching` while one download runs (every other request for
//! it waits for that download's result: single-flight), then `FreshUntil` (served from
//! disk without asking upstream). Packages are immutable by name, so a package on disk
//! is fresh for ever; an APKINDEX is fresh for the plan's `index_ttl`, then fetched
//! again; if upstream fails then, the cached one is served (an offline lab still boots)
//! and upstream is asked again after [`RETRY_STALE`].
//!
//! A download is streamed into a temporary file beside its place (never held in
//! memory); the requests waiting for it read that file as it grows ([`Growth`],
//! [`super::growing`]), so a slow mirror never leaves a node's connection silent. It is
//! checked ([`super::verify`]) and only then renamed into place; a failed, cut
//! or damaged download leaves nothing behind (one cut by a crash leaves a temporary file,
//! removed when that folder is next written to). The download runs in a task of its own,
//! so a node that gives up waiting does not cancel it for the others.

use std::collections::{HashMap, HashSet};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::verify::{self, Index};
use crate::config::atomic::Staged;
use crate::fetch::download::Client;

/// How soon upstream is asked again after a failed APKINDEX refresh (the stale index is
/// served meanwhile, without a slow upstream attempt per request).
pub const RETRY_STALE: Duration = Duration::from_secs(30);
/// Upstream connect timeout: an unreachable mirror must not hold a boot long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest upstream silence while a file downloads.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Age past which a temporary file in a cache folder is a crashed download's.
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// Largest file fetched (Alpine's largest packages are a few hundred MB).
const MAX_FILE: u64 = 2 << 30;

/// What the cache keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A repository's `APKINDEX.tar.gz`: refreshed after its TTL.
    Index,
    /// An `.apk`: immutable.
    Package,
}

/// How a request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// From disk, no upstream fetch.
    Hit,
    /// This request's upstream fetch.
    Fetched,
    /// Another request's upstream fetch, waited for.
    Coalesced,
    /// Upstream failed; the cached (expired) APKINDEX was served.
    Stale,
}

/// One file asked for.
#[derive(Debug, Clone)]
pub struct Want {
    /// The upstream URL.
    pub url: String,
    /// Its key (`host/path/…`).
    pub key: String,
    /// Where it is kept.
    pub path: PathBuf,
    /// Index or package.
    pub kind: FileKind,
    /// The index TTL.
    pub ttl: Duration,
}

/// A download under way, as the requests waiting for it see it.
#[derive(Debug, Clone, Default)]
pub struct Growth {
    /// The file being written (readable; still the same file once renamed into place).
    pub file: Option<Arc<std::fs::File>>,
    /// Content-Length upstream announced.
    pub announced: Option<u64>,
    /// Bytes written so far.
    pub written: u64,
    /// Whether waiters may read it while it grows (not an index refresh: those wait
    /// for the result, since a failure serves the cached index instead).
    pub streamable: bool,
    /// The result, once the file is whole and checked (or not).
    pub done: Option<Result<How, String>>,
}

/// What [`Store::get`] gives a request.
pub enum Answer {
    /// The file is on disk, whole and checked.
    File(How),
    /// The file is being downloaded: serve it as it grows (see [`super::growing`]).
    Growing(watch::Receiver<Growth>, How),
}

#[derive(Clone)]
enum Slot {
    Fetching(watch::Receiver<Growth>),
    FreshUntil(Instant),
}

/// The cache's state: slots and parsed indexes (both bounded by the files cached).
pub struct Store {
    slots: Mutex<HashMap<String, Slot>>,
    indexes: Mutex<HashMap<PathBuf, (SystemTime, Arc<Index>)>>,
    /// Folders already swept of temporary files a crashed download left.
    swept: Mutex<HashSet<PathBuf>>,
    client: Client,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            slots: Mutex::new(HashMap::new()),
            indexes: Mutex::new(HashMap::new()),
            swept: Mutex::new(HashSet::new()),
            client: Client::with_timeouts(CONNECT_TIMEOUT, READ_TIMEOUT),
        }
    }
}

/// How long a file on disk is still fresh: `None` if it must be fetched.
fn fresh_for(want: &Want, modified: Option<SystemTime>) -> Option<Duration> {
    let modified = modified?;
    match want.kind {
        FileKind::Package => Some(Duration::from_secs(365 * 24 * 3600)),
        FileKind::Index => {
            let age = SystemTime::now()
                .duration_since(modified)
                .unwrap_or_default();
            want.ttl.checked_sub(age).filter(|d| !d.is_zero())
        }
    }
}

/// The staged file as the download writes it: every write is announced to the waiters.
struct Growing<'a> {
    file: &'a mut std::fs::File,
    growth: &'a watch::Sender<Growth>,
}

impl Write for Growing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.growth.send_modify(|g| g.written += n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Store {
    /// Makes sure `want` is on disk, or on its way there (fetching it once if needed),
    /// and says how.
    pub async fn get(self: &Arc<Self>, want: Want) -> Result<Answer, String> {
        let on_disk = tokio::fs::metadata(&want.path)
            .await
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.modified().unwrap_or(SystemTime::UNIX_EPOCH));
        let (mut rx, how) = {
            let mut slots = crate::engine::lock(&self.slots);
            match slots.get(&want.key).cloned() {
                Some(Slot::Fetching(rx)) => (rx, How::Coalesced),
                Some(Slot::FreshUntil(t)) if Instant::now() < t && on_disk.is_some() => {
                    return Ok(Answer::File(How::Hit))
                }
                _ => {
                    if let Some(left) = fresh_for(&want, on_disk) {
                        slots.insert(want.key.clone(), Slot::FreshUntil(Instant::now() + left));
                        return Ok(Answer::File(How::Hit));
                    }
                    let have_stale = on_disk.is_some();
                    let (tx, rx) = watch::channel(Growth {
                        streamable: !(have_stale && want.kind == FileKind::Index),
                        ..Growth::default()
                    });
                    slots.insert(want.key.clone(), Slot::Fetching(rx.clone()));
                    let store = Arc::clone(self);
                    tokio::spawn(async move { store.fetch(want, have_stale, tx).await });
                    (rx, How::Fetched)
                }
            }
        };
        let ready = rx
            .wait_for(|g| g.done.is_some() || (g.streamable && g.file.is_some()))
            .await
            .map(|g| g.done.clone());
        match ready {
            Err(_) => Err("the download task ended without a result".into()),
            Ok(None) => Ok(Answer::Growing(rx, how)),
            Ok(Some(Ok(How::Stale))) => Ok(Answer::File(How::Stale)),
            Ok(Some(Ok(_))) => Ok(Answer::File(how)),
            Ok(Some(Err(e))) => Err(e),
        }
    }

    /// The leader's download; settles the slot, then tells every waiter.
    async fn fetch(self: Arc<Self>, want: Want, have_stale: bool, tx: watch::Sender<Growth>) {
        let store = Arc::clone(&self);
        let w = want.clone();
        let tx = Arc::new(tx);
        let growth = Arc::clone(&tx);
        let done = tokio::task::spawn_blocking(move || store.download(&w, &growth))
            .await
            .unwrap_or_else(|e| Err(format!("download task failed: {e}")));
        let outcome = match done {
            Ok(()) => Ok(How::Fetched),
            Err(e) if have_stale && want.kind == FileKind::Index => {
                tracing::info!("serving the cached {}: {e}", want.key);
                Ok(How::Stale)
            }
            Err(e) => Err(e),
        };
        {
            let mut slots = crate::engine::lock(&self.slots);
            match &outcome {
                Ok(How::Stale) => {
                    let retry = want.ttl.min(RETRY_STALE);
                    slots.insert(want.key.clone(), Slot::FreshUntil(Instant::now() + retry))
                }
                Ok(_) => {
                    let ttl = match want.kind {
                        FileKind::Index => want.ttl,
                        FileKind::Package => Duration::from_secs(365 * 24 * 3600),
                    };
                    slots.insert(want.key.clone(), Slot::FreshUntil(Instant::now() + ttl))
                }
                Err(_) => slots.remove(&want.key),
            };
        }
        tx.send_modify(|g| g.done = Some(outcome));
    }

    /// Downloads, checks and commits one file (blocking).
    fn download(&self, want: &Want, growth: &watch::Sender<Growth>) -> Result<(), String> {
        let dir = want.path.parent().ok_or("no folder")?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if crate::engine::lock(&self.swept).insert(dir.to_path_buf()) {
            // A download cut by a crash (`kill -9`, power loss) left its temporary file;
            // one an hour old belongs to no download of this process.
            crate::config::atomic::sweep_stale_temps(dir, STALE_TEMP);
        }
        let mut staged =
            Staged::create(&want.path).map_err(|e| format!("{}: {e}", dir.display()))?;
        let reader = staged.file().try_clone().map_err(|e| e.to_string())?;
        let started = |announced| {
            growth.send_modify(|g| {
                g.file = Some(Arc::new(reader));
                g.announced = announced;
            })
        };
        let mut out = Growing {
            file: staged.file(),
            growth,
        };
        let len = self
            .client
            .get_into(&want.url, &mut out, MAX_FILE, started)
            .map_err(|e| e.to_string())?;
        let file = staged.file();
        file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        match want.kind {
            FileKind::Index => {
                verify::read_index(&mut *file).map_err(|e| format!("{}: {e}", want.url))?;
            }
            FileKind::Package => {
                let name = want.key.rsplit('/').next().unwrap_or_default();
                // Not listed (no index cached for the folder): the gzip streams are
                // still checked whole.
                let entry = self
                    .index_beside(&want.path)
                    .and_then(|i| i.entries.get(name).cloned())
                    .unwrap_or(verify::Entry {
                        size: None,
                        q1: None,
                    });
                verify::check_package(&mut *file, len, &entry)
                    .map_err(|e| format!("{}: {e}", want.url))?;
            }
        }
        staged
            .commit()
            .map_err(|e| format!("{}: {e}", want.path.display()))?;
        if want.kind == FileKind::Index {
            crate::engine::lock(&self.indexes).remove(&want.path);
        }
        Ok(())
    }

    /// The parsed APKINDEX of a package's folder, if the cache has it (parsed once per
    /// version of the file).
    fn index_beside(&self, package: &Path) -> Option<Arc<Index>> {
        let path = package.parent()?.join("APKINDEX.tar.gz");
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        if let Some((t, i)) = crate::engine::lock(&self.indexes).get(&path) {
            if *t == modified {
                return Some(Arc::clone(i));
            }
        }
        let index = Arc::new(verify::read_index(std::fs::File::open(&path).ok()?).ok()?);
        crate::engine::lock(&self.indexes).insert(path, (modified, Arc::clone(&index)));
        Some(index)
    }
}
