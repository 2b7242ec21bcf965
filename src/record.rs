//! `--record FILE`: every event as a JSON line, written by one more subscriber of the
//! engine's bus (the engine itself touches no files).
//!
//! The file is flushed after each burst (whenever no further event is waiting), so
//! `tail -f` shows events as they happen and a SIGKILL loses at most the burst being
//! written, not everything since start. Log lines streamed from nodes stay out, as in
//! the headless face. A writer too slow for the bus gets a
//! `{"event":"lagged","skipped":N}` line where events were lost.

use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, Event};

/// Events written between two flushes at most.
const BURST_MAX: usize = 1024;

/// The record file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot write event record {path}: {source}")]
pub struct RecordError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    pub source: std::io::Error,
}

/// A running recorder; [`Recorder::finish`] writes what is left and closes the file.
pub struct Recorder {
    finish: CancellationToken,
    join: tokio::task::JoinHandle<()>,
}

/// Starts recording every event emitted from now on to `path` (appended).
pub fn start(engine: &Engine, path: &Path) -> Result<Recorder, RecordError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| RecordError {
            path: path.to_path_buf(),
            source,
        })?;
    let rx = engine.subscribe();
    let finish = CancellationToken::new();
    let join = tokio::spawn(write_events(
        rx,
        std::io::BufWriter::new(file),
        finish.clone(),
        path.to_path_buf(),
    ));
    Ok(Recorder { finish, join })
}

impl Recorder {
    /// Writes every event already emitted, flushes and stops.
    pub async fn finish(self) {
        self.finish.cancel();
        let _ = self.join.await;
    }
}

async fn write_events(
    mut rx: tokio::sync::broadcast::Receiver<Event>,
    mut out: std::io::BufWriter<std::fs::File>,
    finish: CancellationToken,
    path: PathBuf,
) {
    let mut failed = false;
    loop {
        let first = tokio::select! {
            biased;
            r = rx.recv() => r,
            _ = finish.cancelled() => {
                // Drain what is already on the bus, then close.
                while let Some(r) = waiting(&mut rx) {
                    write_one(&mut out, r);
                }
                let _ = out.flush();
                return;
            }
        };
        if matches!(first, Err(RecvError::Closed)) {
            let _ = out.flush();
            return;
        }
        write_one(&mut out, first);
        for _ in 0..BURST_MAX {
            match waiting(&mut rx) {
                Some(r) => write_one(&mut out, r),
                None => break,
            }
        }
        if let Err(e) = out.flush() {
            if !failed {
                tracing::error!("cannot write event record {}: {e}", path.display());
                failed = true;
            }
        }
    }
}

fn write_one(out: &mut impl Write, r: Result<Event, RecvError>) {
    let line = match r {
        Ok(ev) if ev.kind.is_node_local() => return,
        Ok(ev) => match serde_json::to_string(&ev) {
            Ok(l) => l,
            Err(_) => return,
        },
        Err(RecvError::Lagged(n)) => format!("{{\"event\":\"lagged\",\"skipped\":{n}}}"),
        Err(RecvError::Closed) => return,
    };
    let _ = writeln!(out, "{line}");
}

fn waiting(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Option<Result<Event, RecvError>> {
    match rx.try_recv() {
        Ok(ev) => Some(Ok(ev)),
        Err(TryRecvError::Empty) | Err(TryRecvError::Closed) => None,
        Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EventKind;

    #[tokio::test]
    async fn events_reach_the_file_while_running_and_the_rest_at_finish() {
        let d = tempfile::tempdir().unwrap();
        let text = "name: t\nboot: {kernel: k}\nnodes: []\n";
        let lab = crate::config::Lab::parse(&d.path().join("lab.yaml"), text).unwrap();
        let engine = Engine::new(lab);
        let path = d.path().join("events.jsonl");
        let rec = start(&engine, &path).unwrap();
        engine.emit(None, EventKind::ConfigLoaded { nodes: 0 });
        // Readable while pxelab runs, without waiting for the end.
        let mut seen = String::new();
        for _ in 0..100 {
            seen = std::fs::read_to_string(&path).unwrap();
            if seen.contains("config-loaded") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(seen.contains("\"event\":\"config-loaded\""), "{seen:?}");
        engine.emit(
            None,
            EventKind::LogLine {
                file: "k3s.log".into(),
                line: "x".into(),
            },
        );
        engine.emit(None, EventKind::ConfigLoaded { nodes: 1 });
        rec.finish().await;
        let all = std::fs::read_to_string(&path).unwrap();
        assert_eq!(all.lines().count(), 2, "{all}");
        assert!(!all.contains("log-line"));
    }
}
