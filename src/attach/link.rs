//! Keeping the mirror engine current: seed it from the server, apply the server's event
//! stream to it, re-seed when the stream lagged, and when the connection drops say so in
//! the console and connect again (backing off up to [`MAX_BACKOFF`]).
//!
//! Order matters for a seed to be exact: the stream is opened first, then the records
//! are fetched with the number of the last event in them, and streamed events up to that
//! number are skipped (they are in the records already).

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::remote::Streamed;
use super::{AttachError, Remote};
use crate::config::{Lab, LabFile};
use crate::engine::{Engine, Event, EventKind, NodeRecord, Snapshot, Source};

/// Longest wait between two reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the server's counters are read again (some change without an event).
const COUNTERS_EVERY: Duration = Duration::from_secs(10);

/// The server's lab, secrets redacted (`GET /api/lab/file`), as a [`Lab`] here.
pub async fn fetch_lab(remote: &Remote) -> Result<Lab, AttachError> {
    let v = remote.json("GET", "/api/lab/file", None).await?;
    lab_from_answer(&v).map_err(|why| AttachError::Broken {
        server: remote.server.clone(),
        why: format!("its lab: {why}"),
    })
}

/// A [`Lab`] from the answer `{path, lab}` (through lab.yaml's own parser).
pub fn lab_from_answer(v: &serde_json::Value) -> Result<Lab, String> {
    let path = PathBuf::from(v["path"].as_str().unwrap_or("lab.yaml"));
    let file: LabFile = serde_json::from_value(v["lab"].clone()).map_err(|e| e.to_string())?;
    let text = yaml_serde::to_string(&file).map_err(|e| e.to_string())?;
    Lab::parse(&path, &text).map_err(|e| e.to_string())
}

#[derive(serde::Deserialize)]
struct State {
    seq: u64,
    snapshot: Snapshot,
    records: Vec<NodeRecord>,
    #[serde(default)]
    recent: Vec<Event>,
}

/// Makes `engine` a copy of the server's state; returns the number of the last event in
/// it.
pub async fn seed(remote: &Remote, engine: &Engine) -> Result<u64, AttachError> {
    let lab = fetch_lab(remote).await?;
    let v = remote.json("GET", "/api/state", None).await?;
    let st: State = serde_json::from_value(v).map_err(|e| AttachError::Broken {
        server: remote.server.clone(),
        why: format!("its state: {e}"),
    })?;
    engine.mirror_reset(lab, st.seq, st.records, &st.snapshot, st.recent);
    Ok(st.seq)
}

/// One connection: stream, seed, apply, until the stream ends (an error) or `cancel`.
/// `after_loss`: say in the console that the link is back.
async fn session(
    remote: &Remote,
    engine: &Engine,
    cancel: &CancellationToken,
    after_loss: bool,
) -> Result<(), AttachError> {
    let stream = remote.events().await?;
    let mut stream = std::pin::pin!(stream);
    let mut seq = seed(remote, engine).await?;
    if after_loss {
        engine.emit(
            None,
            EventKind::ServerUp {
                source: Source::Admin,
                addr: format!("https://{} (attached again)", remote.server),
            },
        );
    }
    let mut counters =
        tokio::time::interval_at(tokio::time::Instant::now() + COUNTERS_EVERY, COUNTERS_EVERY);
    counters.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            item = stream.next() => match item {
                None => {
                    return Err(AttachError::Broken {
                        server: remote.server.clone(),
                        why: "the event stream ended".into(),
                    })
                }
                // Events were lost on the way: the records are right again.
                Some(Streamed::Lagged(_)) => seq = seed(remote, engine).await?,
                Some(Streamed::Event(ev)) if ev.seq <= seq => {}
                Some(Streamed::Event(ev)) => {
                    let lab_changed = matches!(ev.kind, EventKind::ConfigLoaded { .. });
                    engine.ingest(ev);
                    if lab_changed {
                        engine.mirror_lab(fetch_lab(remote).await?);
                    }
                }
            },
            _ = counters.tick() => {
                let (r, e) = (remote.clone(), engine.clone());
                tokio::spawn(async move {
                    if let Ok(v) = r.json("GET", "/api/nodes", None).await {
                        if let Ok(snap) = serde_json::from_value::<Snapshot>(v) {
                            e.mirror_counters(&snap);
                        }
                    }
                });
            }
        }
    }
}

/// Follows the server until `cancel`: each lost connection is reported (the admin
/// server shown down, with why and when the next try is) and retried with backoff.
pub async fn follow(remote: Remote, engine: Engine, cancel: CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    let mut lost = false;
    while !cancel.is_cancelled() {
        let started = tokio::time::Instant::now();
        let r = session(&remote, &engine, &cancel, lost).await;
        if cancel.is_cancelled() {
            break;
        }
        let why = match r {
            Ok(()) => break,
            Err(e) => e.to_string(),
        };
        // A connection that held a while starts the backoff over.
        if started.elapsed() > MAX_BACKOFF {
            backoff = Duration::from_secs(1);
        }
        lost = true;
        engine.emit(
            None,
            EventKind::ServerDown {
                source: Source::Admin,
                reason: format!("link lost, retry in {} s: {why}", backoff.as_secs()),
            },
        );
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_redacted_lab_becomes_the_same_lab_here() {
        let text = "name: t\nserver_address: 10.0.0.1\ndhcp: {mode: server, range: [10.0.0.100, 10.0.0.200]}\n\
                    boot: {kernel: k, initrds: [i]}\nunknown: {adopt: k3s-agent}\n\
                    k3s: {token: inline-k3s-secret-0123}\nroles:\n  web: {description: a web node}\n\
                    nodes:\n  - {mac: 52:54:00:00:00:01, hostname: a, role: web, ip: 10.0.0.11}\n";
        let lab = Lab::parse(std::path::Path::new("/srv/lab/lab.yaml"), text).unwrap();
        let answer = crate::http::admin::mirror::redacted_answer(&lab);
        let here = lab_from_answer(&answer).unwrap();
        assert_eq!(here.path, lab.path);
        assert_eq!(here.file.nodes, lab.file.nodes);
        assert_eq!(here.file.dhcp, lab.file.dhcp);
        assert_eq!(here.file.unknown, lab.file.unknown);
        assert_eq!(here.role_names(), lab.role_names());
        assert_eq!(here.server_address, lab.server_address);
        assert_ne!(here.file.k3s.token, lab.file.k3s.token);
        // What needs no secret renders the same here as there.
        let mac = "52:54:00:00:00:01".parse().unwrap();
        let (a, b) = (
            here.node_by_mac(&mac).unwrap(),
            lab.node_by_mac(&mac).unwrap(),
        );
        assert_eq!(
            crate::render::ipxe_script(&here, a).unwrap(),
            crate::render::ipxe_script(&lab, b).unwrap()
        );
        assert_eq!(
            crate::render::kernel_cmdline(&here, a).unwrap(),
            crate::render::kernel_cmdline(&lab, b).unwrap()
        );
    }
}
