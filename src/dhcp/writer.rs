//! The lease writer: every lease is on disk before its ACK goes out, and one write
//! serves a whole burst.
//!
//! Why: the lease file used to be flushed every 500 ms, so a pxelab killed within that
//! half second of an ACK came back without the lease and gave the same address to
//! another machine (two hosts, one IP). Writing and fsyncing per ACK would cap server
//! mode at the disk's fsync rate, so commits are grouped: an ACK that bound a lease asks
//! for a commit ([`LeaseWriter::commit`]) and waits on its ticket while the listener goes
//! on; the writer task takes every commit queued so far, writes the table once
//! ([`crate::config::atomic::write_private`]: temp file, fsync, rename) and releases all
//! their ACKs. Under perfdhcp a write carries dozens of ACKs.
//!
//! A write that fails (disk full, read-only file system, the folder gone) fails every
//! ACK waiting on it: they are not sent (the client asks again and gets its ACK once the
//! disk works), and a `lease-write-failed` event (at most one a second) says why on
//! every face. The same 500 ms tick as before saves changes no ACK waits for (releases,
//! declines, expiries) and reports expiries.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

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

/// Writes the table if it changed since the last successful write.
pub fn flush(table: &Mutex<Leases>, path: &Path) -> Committed {
    let data = {
        let mut t = crate::engine::lock(table);
        if !t.take_dirty() {
            return Ok(());
        }
        t.bound()
    };
    let result = (|| {
        if let Some(d) = path.parent() {
            // `.pxelab/` holds secrets too: 0700 whoever creates it first.
            crate::config::atomic::create_private_dir(d)?;
        }
        // Streamed into the file: 60,000 leases are 6 MB of JSON, held at every write
        // when encoded first (bench/run.sh memory).
        crate::config::atomic::write_private_with(path, |w| leases::encode_to(data, w))
    })();
    result.map_err(|e| {
        // Try again next round.
        crate::engine::lock(table).mark_dirty();
        e.to_string()
    })
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
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            w = rx.recv() => {
                match w {
                    Some(w) => waiting.push(w),
                    None => return,
                }
                false
            }
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
        // fsync can take seconds on a busy disk: never on a runtime worker.
        let (t, p) = (table.clone(), path.clone());
        let result = tokio::task::spawn_blocking(move || flush(&t, &p))
            .await
            .unwrap_or_else(|e| Err(format!("lease writer panicked: {e}")));
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
}
