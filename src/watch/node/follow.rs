//! A logged-in session's work: follow the node's log files and polls, turn what they say
//! into events (secrets redacted), and tell the session loop in [`super`] how it ended.
//! Apart from the connect/reconnect loop because this is where lines become events.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::super::conn::{self, privileged, shell_quote, Conn};
use super::super::{parse, Target, WatchOptions};
use crate::engine::event::K3sStep;
use crate::engine::{Engine, EventKind};
use crate::mac::Mac;

/// The files followed, by index.
pub(super) const FILES: [&str; 2] = ["messages", "k3s.log"];

/// What the watcher has already reported for the node's current boot (kept across
/// reconnects, reset when the node's kernel boot id changes).
#[derive(Default)]
pub(super) struct Progress {
    boot_id: Option<String>,
    lines: [Arc<AtomicU64>; 2],
    complete: bool,
    reported: HashSet<String>,
}

impl Progress {
    pub(super) fn reset(&mut self, boot_id: Option<String>) {
        *self = Progress {
            boot_id,
            ..Progress::default()
        };
    }
}

/// How a logged-in session ended.
pub(super) enum End {
    Cancelled,
    Lost(String),
    NewTarget,
}

/// What the poll task found.
enum Poll {
    Complete,
    Resources(crate::engine::event::Gauge),
    Nodes(Vec<(String, bool)>),
}

/// Values that must never reach a log ring: the token and this node's password.
fn redactions(engine: &Engine, mac: Mac) -> Vec<String> {
    match crate::secrets::for_node(&engine.lab(), mac) {
        Ok(s) => [
            Some(s.k3s_token),
            crate::secrets::k3s_token(&engine.lab()).ok(),
            s.node_password,
        ]
        .into_iter()
        .flatten()
        .filter(|v| v.len() >= 8)
        .collect(),
        Err(_) => Vec::new(),
    }
}

fn redact(line: String, secrets: &[String]) -> String {
    let mut out = line;
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "<redacted>");
        }
    }
    out
}

pub(super) async fn follow(
    engine: &Engine,
    mac: Mac,
    conn: &Conn,
    opts: &WatchOptions,
    progress: &mut Progress,
    cancel: &CancellationToken,
    rx: &mut watch::Receiver<Target>,
) -> End {
    let boot_id = conn::run(
        conn,
        "cat /proc/sys/kernel/random/boot_id",
        opts.command_timeout,
        128,
    )
    .await
    .ok()
    .map(|(out, _)| String::from_utf8_lossy(&out).trim().to_string())
    .filter(|s| !s.is_empty());
    if boot_id.is_none() || boot_id != progress.boot_id {
        progress.reset(boot_id);
    }
    let secrets = redactions(engine, mac);
    let lab = engine.lab();
    let is_server = lab
        .node_by_mac(&mac)
        .is_some_and(|n| n.role == "k3s-server");
    let mut tasks = JoinSet::new();
    let (ltx, mut lrx) = mpsc::channel::<(usize, String)>(512);
    let paths = [opts.messages_path.clone(), opts.k3s_log_path.clone()];
    for (i, path) in paths.into_iter().enumerate() {
        let (conn, count, ltx) = (conn.clone(), progress.lines[i].clone(), ltx.clone());
        let every = opts.poll_every;
        tasks.spawn(async move {
            let (tx, mut lines) = mpsc::channel::<String>(256);
            let fwd = async {
                while let Some(l) = lines.recv().await {
                    if ltx.send((i, l)).await.is_err() {
                        break;
                    }
                }
            };
            let tail = async move {
                // tail ends only when the file cannot be read at all; try again later.
                for _ in 0..10_000u32 {
                    let start = count.load(Ordering::Acquire) + 1;
                    let cmd = privileged(&format!("tail -n +{start} -F {}", shell_quote(&path)));
                    if let Err(e) = conn::follow(&conn, &cmd, &tx).await {
                        tracing::debug!("tail {path}: {e}");
                    }
                    tokio::time::sleep(every).await;
                }
            };
            tokio::join!(fwd, tail);
        });
    }
    drop(ltx);
    if is_server {
        if let Some(every) = lab.file.k3s.snapshots.interval() {
            let (engine, conn) = (engine.clone(), conn.clone());
            tasks.spawn(super::super::snapshot::scheduled(engine, mac, conn, every));
        }
    }
    let (ptx, mut prx) = mpsc::channel::<Poll>(8);
    {
        let (conn, opts) = (conn.clone(), opts.clone());
        tasks.spawn(poll(conn, opts, is_server, ptx));
    }
    let (lost_tx, mut lost_rx) = mpsc::channel::<String>(1);
    {
        let (conn, every, limit) = (conn.clone(), opts.ping_every, opts.ping_timeout);
        tasks.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let why = match tokio::time::timeout(limit, conn.send_ping()).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(_)) => {
                        "connection closed (node gone or keepalives unanswered)".to_string()
                    }
                    Err(_) => format!("no answer to keepalive within {} s", limit.as_secs()),
                };
                let _ = lost_tx.send(why).await;
                break;
            }
        });
    }
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return End::Cancelled,
            r = rx.changed() => return if r.is_err() { End::Cancelled } else { End::NewTarget },
            why = lost_rx.recv() => return End::Lost(why.unwrap_or_else(|| "watch ended".into())),
            Some((i, line)) = lrx.recv() => {
                on_line(engine, mac, i, redact(line, &secrets), progress);
                progress.lines[i].fetch_add(1, Ordering::AcqRel);
            }
            Some(p) = prx.recv() => on_poll(engine, mac, p, progress),
        }
    }
}

fn on_line(engine: &Engine, mac: Mac, file: usize, line: String, progress: &mut Progress) {
    let parsed = if file == 0 {
        parse::messages_line(&line)
    } else {
        parse::k3s_line(&line)
    };
    engine.emit(
        Some(mac),
        EventKind::LogLine {
            file: FILES[file].to_string(),
            line,
        },
    );
    let Some(kind) = parsed else { return };
    let duplicate = match &kind {
        EventKind::TinyCloudComplete => std::mem::replace(&mut progress.complete, true),
        // Waits (while the server starts) and failures are reported once per class and
        // boot: an OOM killer or a full disk repeats itself many times.
        EventKind::NodeWaiting { reason, .. } => !progress.reported.insert(format!("w{reason:?}")),
        EventKind::NodeFailed { reason, .. } => !progress.reported.insert(format!("f{reason:?}")),
        _ => false,
    };
    if !duplicate {
        engine.emit(Some(mac), kind);
    }
}

fn on_poll(engine: &Engine, mac: Mac, p: Poll, progress: &mut Progress) {
    match p {
        Poll::Complete => {
            if !std::mem::replace(&mut progress.complete, true) {
                engine.emit(Some(mac), EventKind::TinyCloudComplete);
            }
        }
        Poll::Resources(gauge) => {
            engine.emit(Some(mac), EventKind::NodeResources { gauge });
            for (what, free_pct, free_kb) in super::super::gauge::low(&gauge) {
                if progress.reported.insert(format!("low {what}")) {
                    engine.emit(
                        Some(mac),
                        EventKind::ResourcesLow {
                            what: what.to_string(),
                            free_pct,
                            free_kb,
                        },
                    );
                }
            }
        }
        Poll::Nodes(nodes) => {
            let lab = engine.lab();
            // Reported against the node's state in the engine, not against the last
            // poll: a node that booted again must be seen Ready again in its new boot
            // (the server may still list it Ready from before, which must not make a
            // node that has not joined yet Ready).
            for (name, ready) in nodes {
                let Some(node) = lab.node_by_hostname(&name) else {
                    continue;
                };
                let state = engine.node(&node.mac).map(|r| r.state);
                let step = match (ready, state) {
                    (true, Some(crate::engine::NodeState::Joined)) => K3sStep::Ready,
                    (false, Some(crate::engine::NodeState::Ready)) => K3sStep::NotReady,
                    _ => continue,
                };
                engine.emit(Some(node.mac), EventKind::K3s { step });
            }
        }
    }
}

async fn poll(conn: Conn, opts: WatchOptions, is_server: bool, tx: mpsc::Sender<Poll>) {
    let marker = privileged(&format!("test -e {}", shell_quote(&opts.bootstrap_marker)));
    let kubectl = privileged(&opts.kubectl);
    let mut complete = false;
    loop {
        if !complete {
            if let Ok((_, Some(0))) = conn::run(&conn, &marker, opts.command_timeout, 64).await {
                complete = true;
                if tx.send(Poll::Complete).await.is_err() {
                    return;
                }
            }
        }
        if is_server {
            match conn::run(&conn, &kubectl, opts.command_timeout, 4 << 20).await {
                Ok((out, Some(0))) => match parse::nodes_ready(&String::from_utf8_lossy(&out)) {
                    Ok(nodes) => {
                        if tx.send(Poll::Nodes(nodes)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::debug!("kubectl: {e}"),
                },
                Ok((_, status)) => tracing::debug!("kubectl exited with {status:?}"),
                Err(e) => tracing::debug!("kubectl: {e}"),
            }
        }
        // Memory and root (a tmpfs: the same RAM) on every poll, on every node.
        let mem = conn::run(&conn, "cat /proc/meminfo", opts.command_timeout, 64 << 10).await;
        let df = conn::run(&conn, "df -k /", opts.command_timeout, 64 << 10).await;
        if let (Ok((m, Some(0))), Ok((d, Some(0)))) = (mem, df) {
            let gauge = super::super::gauge::read(
                &String::from_utf8_lossy(&m),
                &String::from_utf8_lossy(&d),
            );
            if let Some(g) = gauge {
                if tx.send(Poll::Resources(g)).await.is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(opts.poll_every).await;
    }
}
