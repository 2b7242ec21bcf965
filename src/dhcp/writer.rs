//! The lease writer: every lease is on disk before its ACK goes out, and one write
//! serves a whole burst.
//!
//! Why: the lease file used to be flushed every 500 ms, so a pxelab killed within that
//! half second of an ACK came back without the lease and gave the same address to
//! another machine (two hosts, one IP). Writing and fsyncing per ACK would cap server
//! mode at the disk's fsync rate, so commits are grouped: an ACK that bound a lease asks
//! for a commit ([`LeaseWriter::commit`]) and waits on its ticket while the listener goes
//! on; the writer task takes every commit queued so far, appends the leases that
//! changed to the journal once ([`super::journal`]: a few lines and an `fdatasync`) and
//! releases all their ACKs. Under perfdhcp a write carries dozens of ACKs. When the
//! journal outgrows the lease file (or holds anything at start or at shutdown) the whole
//! table is written instead ([`crate::config::atomic::write_private_with`]: temp file,
//! fsync, rename) and the journal emptied.
//!
//! A write that fails (disk full, read-only file system, the folder gone) fails every
//! ACK waiting on it: they are not sent (the client asks again and gets its ACK once the
//! disk works), and a `lease-write-failed` event (at most one a second) says why on
//! every face. The same 500 ms tick as before saves changes no ACK waits for (releases,
//! declines, expiries) and reports expiries.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::journal;
use super::leases::{self, Leases};
use super::settings::now;
use crate::config::Lab;
use crate::engine::{Engine, EventKind};

/// Where the lease file lives.
pub fn leases_path(lab: &Lab) -> PathBuf {
    match &lab.file.dhcp.leases_file {
        Some(p) => lab.resolve(p),
        None => lab.state_dir().join("leases.json"),
    }
}

/// The outcome of the write a commit waited for: `Err` carries the OS error's text.
pub type Committed = Result<(), String>;

/// A commit's ticket: resolves once the lease table as it was when the commit was asked
/// for is on disk, or failed to get there.
pub struct Ticket(oneshot::Receiver<Committed>);

impl Ticket {
    /// Waits for the write. A writer that went away (shutdown) counts as a failure.
    pub async fn wait(self) -> Committed {
        self.0
            .await
            .unwrap_or_else(|_| Err("the lease writer stopped".to_string()))
    }
}

/// The handle servers ask for commits through.
#[derive(Clone)]
pub struct LeaseWriter {
    tx: mpsc::UnboundedSender<oneshot::Sender<Committed>>,
}

impl LeaseWriter {
    /// Starts the writer task for `table` and `path`. It saves what is left and ends
    /// when `stop` fires.
    pub fn start(
        engine: Engine,
        table: Arc<Mutex<Leases>>,
        path: PathBuf,
        stop: CancellationToken,
    ) -> (LeaseWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(writer_task(engine, table, path, rx, stop));
        (LeaseWriter { tx }, task)
    }

    /// Asks for the table (as it is now) to be written. Call after changing the table.
    pub fn commit(&self) -> Ticket {
        let (tx, rx) = oneshot::channel();
        // A stopped writer drops `tx`: the ticket then reports failure.
        let _ = self.tx.send(tx);
        Ticket(rx)
    }
}

/// A journal smaller than this is never compacted (nor one under twice the snapshot).
const COMPACT_MIN: u64 = 4 << 20;

/// Where the lease file and its journal stand, kept by the writer between writes.
#[derive(Debug, Clone)]
pub struct Store {
    /// The lease file (the snapshot).
    pub path: PathBuf,
    journal: PathBuf,
    /// The last batch number used.
    seq: u64,
    journal_bytes: u64,
    snapshot_bytes: u64,
    /// The next write is a snapshot: after a load with a journal (whose tail may be
    /// torn), after a failed write, or at shutdown.
    snapshot_due: bool,
}

impl Store {
    /// Goes on from what `table` was loaded from.
    pub fn new(path: PathBuf, table: &Leases) -> Store {
        let loaded = table.loaded();
        Store {
            journal: journal::path_of(&path),
            path,
            seq: loaded.seq,
            journal_bytes: loaded.journal.bytes,
            snapshot_bytes: loaded.snapshot_bytes,
            snapshot_due: loaded.journal.bytes > 0,
        }
    }

    fn compaction_due(&self) -> bool {
        self.snapshot_due || self.journal_bytes >= COMPACT_MIN.max(2 * self.snapshot_bytes)
    }
}

/// Writes what changed in the table since the last successful write: a journal batch, or
/// the whole table when [`Store`] says a snapshot is due.
pub fn flush(table: &Mutex<Leases>, store: &mut Store) -> Committed {
    let snapshot = store.compaction_due();
    let (macs, data, changes) = {
        let mut t = crate::engine::lock(table);
        let macs = t.take_changed();
        if macs.is_empty() && !store.snapshot_due {
            return Ok(());
        }
        if snapshot {
            (macs, t.bound(), Vec::new())
        } else {
            let changes = t.changes_of(&macs);
            (macs, Vec::new(), changes)
        }
    };
    store.seq += 1;
    let seq = store.seq;
    let result = if snapshot {
        write_snapshot(store, seq, data)
    } else {
        journal::append(&store.journal, &journal::encode(seq, changes))
            .map(|len| store.journal_bytes = len)
    };
    result.map_err(|e| {
        // Try again next round, as a snapshot: a failed append may have left a torn line
        // that nothing may follow.
        crate::engine::lock(table).restore_changed(macs);
        store.snapshot_due = true;
        e.to_string()
    })
}

fn write_snapshot(store: &mut Store, seq: u64, data: Vec<leases::Lease>) -> std::io::Result<()> {
    if let Some(d) = store.path.parent() {
        // `.pxelab/` holds secrets too: 0700 whoever creates it first.
        crate::config::atomic::create_private_dir(d)?;
    }
    // Streamed into the file: 60,000 leases are 6 MB of JSON, held at every write
    // when encoded first (bench/run.sh memory).
    crate::config::atomic::write_private_with(&store.path, |w| leases::encode_to(seq, data, w))?;
    store.snapshot_bytes = std::fs::metadata(&store.path)?.len();
    journal::truncate(&store.journal)?;
    store.journal_bytes = 0;
    store.snapshot_due = false;
    Ok(())
}

/// How often unrequested changes are saved and expiries checked (every 10th tick).
const TICK: Duration = Duration::from_millis(500);

async fn writer_task(
    engine: Engine,
    table: Arc<Mutex<Leases>>,
    path: PathBuf,
    mut rx: mpsc::UnboundedReceiver<oneshot::Sender<Committed>>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u32;
    let mut last_report: Option<Instant> = None;
    let mut waiting = Vec::new();
    let mut store = Store::new(path.clone(), &crate::engine::lock(&table));
    report_torn_journal(&store, &crate::engine::lock(&table));
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            w = rx.recv() => match w {
                Some(w) => {
                    waiting.push(w);
                    false
                }
                // Every handle is gone: the server is ending, and may drop them before
                // it fires `stop`. Still the last save, not a silent return: changes no
                // ACK waited for (releases, expiries) and the clean stop's snapshot.
                None => true,
            },
            _ = tick.tick() => {
                ticks += 1;
                if ticks.is_multiple_of(10) {
                    report_expiries(&engine, &table);
                }
                false
            }
        };
        // Every commit queued so far rides on this one write.
        while let Ok(w) = rx.try_recv() {
            waiting.push(w);
        }
        if stopping && (store.journal_bytes > 0 || crate::engine::lock(&table).has_changed()) {
            // Leave one plain lease file behind, journal empty.
            store.snapshot_due = true;
        }
        // fsync can take seconds on a busy disk: never on a runtime worker.
        let t = table.clone();
        let mut s = store.clone();
        let (result, s) = tokio::task::spawn_blocking(move || (flush(&t, &mut s), s))
            .await
            .unwrap_or_else(|e| (Err(format!("lease writer panicked: {e}")), store.clone()));
        store = s;
        if let Err(error) = &result {
            tracing::warn!("cannot write leases to {}: {error}", path.display());
            if last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                last_report = Some(Instant::now());
                engine.emit(
                    None,
                    EventKind::LeaseWriteFailed {
                        path: path.display().to_string(),
                        error: error.clone(),
                        waiting: waiting.len(),
                    },
                );
            }
        }
        for w in waiting.drain(..) {
            let _ = w.send(result.clone());
        }
        if stopping {
            return;
        }
    }
}

/// A journal cut short (a crash mid-write) is expected and costs only its last batch,
/// which no ACK waited for; anything else unreadable is worth a look. Either way the
/// first write replaces it.
fn report_torn_journal(store: &Store, table: &Leases) {
    if let Some((line, bytes)) = table.loaded().journal.torn {
        tracing::warn!(
            "lease journal {}:{line}: {bytes} bytes from this line on are not whole lines \
             (a write cut short by a crash?) and were not read",
            store.journal.display()
        );
    }
}

fn report_expiries(engine: &Engine, table: &Mutex<Leases>) {
    let expired = crate::engine::lock(table).expire(now());
    for l in expired {
        engine.emit(
            Some(l.mac),
            EventKind::DhcpLease {
                action: "expire".into(),
                ip: l.ip,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::leases::Lease;
    use super::*;
    use std::path::Path;

    fn lab(dir: &Path) -> Lab {
        let path = dir.join("lab.yaml");
        let text = "name: t\nboot: {kernel: k}\n";
        Lab::parse(&path, text).unwrap()
    }

    fn bind(table: &Mutex<Leases>, n: u8) {
        crate::engine::lock(table).insert(Lease {
            mac: crate::Mac([2, 0, 0, 0, 0, n]),
            ip: std::net::Ipv4Addr::new(10, 0, 0, n),
            expires: now() + 3600,
            bound: true,
            hostname: None,
        });
    }

    /// Every commit resolves only once its lease is in the file, and a burst of commits
    /// shares writes.
    #[tokio::test]
    async fn a_ticket_resolves_once_the_lease_is_on_disk() {
        let d = tempfile::tempdir().unwrap();
        let engine = Engine::new(lab(d.path()));
        let path = d.path().join(".pxelab/leases.json");
        let table = Arc::new(Mutex::new(Leases::default()));
        let stop = CancellationToken::new();
        let (w, task) = LeaseWriter::start(engine, table.clone(), path.clone(), stop.clone());
        let mut tickets = Vec::new();
        for n in 1..=50 {
            bind(&table, n);
            tickets.push((n, w.commit()));
        }
        for (n, t) in tickets {
            t.wait().await.unwrap();
            let on_disk = Leases::load(&path).unwrap();
            assert!(
                on_disk.of_mac(&crate::Mac([2, 0, 0, 0, 0, n])).is_some(),
                "lease {n} acknowledged before it was written"
            );
        }
        stop.cancel();
        task.await.unwrap();
    }

    /// A file that cannot be written fails the waiting commits and says so once a
    /// second on the event bus.
    #[tokio::test]
    async fn an_unwritable_lease_file_fails_the_commit_and_is_an_event() {
        let d = tempfile::tempdir().unwrap();
        let engine = Engine::new(lab(d.path()));
        let mut rx = engine.subscribe();
        // A path under a regular file: refused even to root (EEXIST/ENOTDIR).
        std::fs::write(d.path().join("blocker"), b"x").unwrap();
        let path = d.path().join("blocker/leases.json");
        let table = Arc::new(Mutex::new(Leases::default()));
        let stop = CancellationToken::new();
        let (w, task) = LeaseWriter::start(engine, table.clone(), path, stop.clone());
        bind(&table, 1);
        let err = w.commit().wait().await.unwrap_err();
        assert!(!err.is_empty());
        let ev = rx.recv().await.unwrap();
        match ev.kind {
            EventKind::LeaseWriteFailed { path, error, .. } => {
                assert!(path.ends_with("blocker/leases.json"), "{path}");
                assert_eq!(error, err);
            }
            k => panic!("expected lease-write-failed, got {k:?}"),
        }
        // Still failing, still dirty: the next commit fails too (no lost change).
        assert!(w.commit().wait().await.is_err());
        stop.cancel();
        task.await.unwrap();
    }

    /// Batches go to the journal, a due snapshot takes them all in and empties it, and a
    /// restart reads the two back as one table and starts with a snapshot.
    #[test]
    fn the_journal_carries_batches_until_a_snapshot_takes_them_in() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(".pxelab/leases.json");
        let jpath = journal::path_of(&path);
        let table = Mutex::new(Leases::default());
        let mut store = Store::new(path.clone(), &crate::engine::lock(&table));
        assert!(!store.compaction_due());
        for n in 1..=3 {
            bind(&table, n);
            flush(&table, &mut store).unwrap();
        }
        crate::engine::lock(&table).remove(&crate::Mac([2, 0, 0, 0, 0, 2]));
        flush(&table, &mut store).unwrap();
        assert!(!path.exists(), "no snapshot yet: every batch was an append");
        let lines = std::fs::read_to_string(&jpath).unwrap();
        assert_eq!(lines.lines().count(), 4, "{lines}");
        assert_eq!(store.journal_bytes, lines.len() as u64);
        // Nothing changed: nothing written.
        flush(&table, &mut store).unwrap();
        assert_eq!(std::fs::read_to_string(&jpath).unwrap(), lines);
        let back = Leases::load(&path).unwrap();
        assert_eq!(back.bound(), crate::engine::lock(&table).bound());
        assert_eq!(back.loaded().seq, 4);
        // A restart: the first write is a snapshot, even with nothing new.
        let mut store = Store::new(path.clone(), &back);
        assert!(store.compaction_due());
        flush(&table, &mut store).unwrap();
        assert_eq!(std::fs::metadata(&jpath).unwrap().len(), 0);
        let snap: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(snap["seq"], 5);
        assert_eq!(snap["leases"].as_array().unwrap().len(), 2);
        // A crash between the snapshot's rename and the journal's truncation: the old
        // lines are at or below the snapshot's number and change nothing.
        std::fs::write(&jpath, &lines).unwrap();
        let again = Leases::load(&path).unwrap();
        assert_eq!(again.bound(), crate::engine::lock(&table).bound());
        assert_eq!(again.loaded().journal.applied, 0);
    }

    /// A journal that grows to twice the lease file (and past the floor) is folded into
    /// a snapshot by the next write.
    #[test]
    fn a_journal_past_twice_the_snapshot_is_compacted() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("leases.json");
        let table = Mutex::new(Leases::default());
        let mut store = Store::new(path.clone(), &crate::engine::lock(&table));
        store.snapshot_bytes = COMPACT_MIN;
        store.journal_bytes = 2 * COMPACT_MIN - 1;
        assert!(!store.compaction_due());
        store.journal_bytes += 1;
        assert!(store.compaction_due());
        bind(&table, 7);
        flush(&table, &mut store).unwrap();
        assert_eq!(store.journal_bytes, 0);
        assert!(
            !journal::path_of(&path).exists()
                || std::fs::metadata(journal::path_of(&path)).unwrap().len() == 0
        );
        assert!(Leases::load(&path)
            .unwrap()
            .of_mac(&crate::Mac([2, 0, 0, 0, 0, 7]))
            .is_some());
    }

    /// The server drops its handles as it ends, maybe before it fires `stop`: the
    /// writer still makes its last save, a snapshot with the journal emptied.
    #[tokio::test]
    async fn the_last_save_happens_when_every_handle_is_gone() {
        let d = tempfile::tempdir().unwrap();
        let engine = Engine::new(lab(d.path()));
        let path = d.path().join(".pxelab/leases.json");
        let table = Arc::new(Mutex::new(Leases::default()));
        let (w, task) = LeaseWriter::start(
            engine,
            table.clone(),
            path.clone(),
            CancellationToken::new(),
        );
        bind(&table, 1);
        w.commit().wait().await.unwrap();
        // A release no ACK waits for, then the server goes away.
        crate::engine::lock(&table).remove(&crate::Mac([2, 0, 0, 0, 0, 1]));
        bind(&table, 2);
        drop(w);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the writer ended")
            .unwrap();
        let snap: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let macs: Vec<&str> = snap["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mac"].as_str().unwrap())
            .collect();
        assert_eq!(macs, vec!["02:00:00:00:00:02"]);
        assert_eq!(std::fs::metadata(journal::path_of(&path)).unwrap().len(), 0);
    }

    /// A change nothing has written yet, with the journal empty, still ends in the
    /// lease file at a clean stop, not in a journal left behind.
    #[tokio::test]
    async fn a_clean_stop_with_only_unwritten_changes_leaves_a_lease_file() {
        let d = tempfile::tempdir().unwrap();
        let engine = Engine::new(lab(d.path()));
        let path = d.path().join(".pxelab/leases.json");
        let table = Arc::new(Mutex::new(Leases::default()));
        let stop = CancellationToken::new();
        let (w, task) = LeaseWriter::start(engine, table.clone(), path.clone(), stop.clone());
        bind(&table, 3);
        stop.cancel();
        task.await.unwrap();
        drop(w);
        let back = Leases::load(&path).unwrap();
        assert!(back.of_mac(&crate::Mac([2, 0, 0, 0, 0, 3])).is_some());
        // (The writer's first tick may have journalled it before the stop.)
        let journal = std::fs::metadata(journal::path_of(&path)).map_or(0, |m| m.len());
        assert_eq!(journal, 0, "a journal left behind");
    }
}
