//! `pxelab up`: load lab.yaml, start the engine, the servers and one face, and shut it all
//! down through one cancellation token (Ctrl-C, SIGTERM, `q` in the console).

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{self, plan::DhcpPlan};
use crate::engine::{Engine, EventKind, Source};
use crate::headless::Format;

/// Which face shows the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Face {
    /// The ratatui console, with an optional theme name or path.
    Tui {
        /// Theme override.
        theme: Option<String>,
    },
    /// Headless text or JSON lines.
    Headless(Format),
}

/// Options of `pxelab up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// lab.yaml.
    pub config: PathBuf,
    /// The face.
    pub face: Face,
    /// Write events as JSON lines to this file.
    pub record: Option<PathBuf>,
    /// Keep running when some servers cannot start (else `up` stops and says which).
    pub keep_going: bool,
}

/// Loads and validates lab.yaml, failing with every problem listed.
pub fn load_lab(path: &std::path::Path) -> anyhow::Result<config::Lab> {
    let text = config::limit::read_text(path)?;
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(config::load_validated(&abs, &text)?)
}

/// Cancels `cancel` on Ctrl-C, SIGTERM or SIGHUP (the terminal went away), so each of
/// them ends the run the same orderly way: leases saved, the demo's folder removed.
pub fn cancel_on_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (mut term, mut hup) = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) {
                (Ok(t), Ok(h)) => (t, h),
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                    cancel.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
                _ = hup.recv() => {},
                _ = cancel.cancelled() => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        cancel.cancel();
    });
}

/// An error and its causes on one line, each said once: a message that already quotes
/// its cause (`cannot bind …: Permission denied`) does not repeat it.
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !line.contains(&c) {
            line.push_str(": ");
            line.push_str(&c);
        }
    }
    line
}

/// Starts every server the lab asks for on `engine`, each as its own task. Every server
/// reports `server-down` when it ends: `stopped` at shutdown, the reason when it failed
/// (the others keep running).
pub fn start_servers(
    engine: &Engine,
    cancel: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let lab = engine.lab();
    // First, so a command or a queued adoption never meets a detached surface.
    let mut tasks = vec![start_service(engine, cancel)];
    // Every lab `up` runs came through validation, which built the plan.
    let plan = match lab.plan() {
        Ok(p) => p.clone(),
        Err(e) => {
            tracing::error!("no server started: {e}");
            return tasks;
        }
    };
    let spawn =
        |source: Source,
         fut: std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>,
         engine: Engine| {
            tokio::spawn(async move {
                let reason = match fut.await {
                    Ok(()) => "stopped".to_string(),
                    Err(e) => {
                        let reason = error_chain(&e);
                        tracing::error!("{} server failed: {reason}", source.label());
                        reason
                    }
                };
                engine.emit(None, EventKind::ServerDown { source, reason });
            })
        };
    tasks.push(spawn(
        Source::Http,
        Box::pin(crate::http::serve(
            engine.clone(),
            plan.http,
            cancel.clone(),
        )),
        engine.clone(),
    ));
    tasks.push(spawn(
        Source::Admin,
        Box::pin(crate::http::admin::serve(
            engine.clone(),
            plan.admin,
            cancel.clone(),
        )),
        engine.clone(),
    ));
    if plan.dhcp != DhcpPlan::Off {
        tasks.push(spawn(
            Source::Dhcp,
            Box::pin(crate::dhcp::serve(
                engine.clone(),
                plan.dhcp.clone(),
                cancel.clone(),
            )),
            engine.clone(),
        ));
    }
    // IPv6 router advertisements (server mode on an interface): a server of their own,
    // so a raw socket that cannot open reports `server-down` and DHCP keeps running.
    match crate::dhcp::ra::plan(&lab) {
        crate::dhcp::ra::Plan::Run(cfg) => tasks.push(spawn(
            Source::Ra,
            Box::pin(crate::dhcp::ra::serve(engine.clone(), cfg, cancel.clone())),
            engine.clone(),
        )),
        crate::dhcp::ra::Plan::Off(reason) => {
            engine.emit(
                None,
                EventKind::Ipv6Ra {
                    sending: false,
                    reason,
                },
            );
        }
        crate::dhcp::ra::Plan::Nothing => {}
    }
    if let Some(tftp) = plan.tftp {
        tasks.push(spawn(
            Source::Tftp,
            Box::pin(crate::tftp::serve(engine.clone(), tftp, cancel.clone())),
            engine.clone(),
        ));
    }
    if let Some(syslog) = plan.syslog {
        tasks.push(spawn(
            Source::Syslog,
            Box::pin(crate::syslog::serve(engine.clone(), syslog, cancel.clone())),
            engine.clone(),
        ));
    }
    if plan.watch.is_some() {
        tasks.push(spawn(
            Source::Ssh,
            Box::pin(crate::watch::run(engine.clone(), cancel.clone())),
            engine.clone(),
        ));
    }
    // Stage deadlines: `node-stalled` with a hint when a node stops moving on.
    tasks.push(tokio::spawn(crate::watch::stall::run(
        engine.clone(),
        cancel.clone(),
    )));
    tasks
}

/// Starts the engine service (the one owner of lab.yaml: reloads on change, write-backs,
/// every face's commands), with reboots over SSH and power through each node's driver,
/// and attaches it to `engine`.
pub fn start_service(engine: &Engine, cancel: &CancellationToken) -> tokio::task::JoinHandle<()> {
    crate::engine::service::start(
        engine,
        cancel.clone(),
        std::sync::Arc::new(crate::power::LabControl),
    )
}

/// The listeners `start_servers` starts for this lab (each reports `server-up` once bound).
pub fn listeners(lab: &config::Lab) -> Vec<Source> {
    let Ok(plan) = lab.plan() else {
        return Vec::new();
    };
    let mut v = vec![Source::Http, Source::Admin];
    if plan.dhcp != DhcpPlan::Off {
        v.push(Source::Dhcp);
    }
    if plan.tftp.is_some() {
        v.push(Source::Tftp);
    }
    if plan.syslog.is_some() {
        v.push(Source::Syslog);
    }
    v
}

/// Waits (at most `limit`) until every one of `sources` reported `server-up` or
/// `server-down` on `rx`, which must have been subscribed before the servers started.
/// Returns the servers that could not start, each with its reason (a server still
/// silent at the deadline counts, as "not listening after …").
pub async fn wait_started(
    rx: &mut tokio::sync::broadcast::Receiver<crate::engine::Event>,
    sources: &[Source],
    limit: Duration,
) -> Vec<(Source, String)> {
    let mut waiting: Vec<Source> = sources.to_vec();
    let mut failed = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while !waiting.is_empty() {
        let ev = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => break,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(_)) => break,
            Ok(Ok(ev)) => ev,
        };
        match ev.kind {
            EventKind::ServerUp { source, .. } => waiting.retain(|s| *s != source),
            EventKind::ServerDown { source, reason } if waiting.contains(&source) => {
                waiting.retain(|s| *s != source);
                failed.push((source, reason));
            }
            _ => {}
        }
    }
    for source in waiting {
        failed.push((source, format!("not listening after {limit:?}")));
    }
    failed
}

/// [`wait_started`] as an error naming every server that could not start.
pub async fn wait_listening(
    rx: &mut tokio::sync::broadcast::Receiver<crate::engine::Event>,
    sources: &[Source],
    limit: Duration,
) -> anyhow::Result<()> {
    let failed = wait_started(rx, sources, limit).await;
    if failed.is_empty() {
        return Ok(());
    }
    anyhow::bail!("{}", not_started(&failed))
}

/// "the DHCP server could not start: …; the TFTP server could not start: …".
fn not_started(failed: &[(Source, String)]) -> String {
    failed
        .iter()
        .map(|(s, r)| format!("the {} server could not start: {r}", s.label()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `up` checks of the lab on this machine before anything binds (the same
/// [`crate::preflight`] problems `pxelab check` prints): warnings go to stderr; errors
/// stop it, listed, unless `keep_going`.
pub fn preflight(
    lab: &config::Lab,
    host: &crate::preflight::Host,
    keep_going: bool,
) -> anyhow::Result<()> {
    let found = crate::preflight::problems(lab, host);
    let (errors, warnings): (Vec<_>, Vec<_>) = found
        .iter()
        .partition(|p| p.severity == config::Severity::Error);
    for w in &warnings {
        eprintln!("{w}");
    }
    if errors.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
    if !keep_going {
        anyhow::bail!(
            "{}\n(fix lab.yaml, or pass --keep-going to start what can start)",
            listed.join("\n")
        );
    }
    for e in listed {
        tracing::warn!("{e}");
    }
    Ok(())
}

/// How long the servers get, all together, to stop after the face ends.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Runs a face on an engine until it or a signal ends the run, then stops the servers.
/// `rx` must be subscribed before the servers start so the face sees them come up.
pub async fn run_face(
    engine: Engine,
    rx: tokio::sync::broadcast::Receiver<crate::engine::Event>,
    cancel: CancellationToken,
    face: Face,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<()> {
    let result = match face {
        Face::Tui { theme } => crate::tui::run(engine.clone(), cancel.clone(), theme).await,
        Face::Headless(fmt) => crate::headless::run(rx, cancel.clone(), fmt).await,
    };
    cancel.cancel();
    stop_servers(tasks).await;
    result
}

/// Waits for the servers to end after the cancellation: they finish their last writes
/// (the DHCP lease file) before the process ends; one deadline for all of them, so a
/// stuck one cannot hold the exit for long.
async fn stop_servers(tasks: Vec<tokio::task::JoinHandle<()>>) {
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    for t in tasks {
        if tokio::time::timeout_at(deadline, t).await.is_err() {
            tracing::warn!("a server did not stop within {SHUTDOWN_GRACE:?}");
            break;
        }
    }
}

/// How long `up` waits for every listener to bind before calling it failed.
const START_LIMIT: Duration = Duration::from_secs(10);

/// `pxelab up`. Stops with an error naming each server that could not start (and, for
/// an interface this machine lacks, the interfaces it has) unless `keep_going`.
pub async fn up(opts: UpOptions) -> anyhow::Result<()> {
    let lab = load_lab(&opts.config)?;
    // Before anything binds or writes: one instance per lab.
    let _lock = crate::statedir::InstanceLock::acquire(&lab)?;
    crate::statedir::sweep_stale_temp_files(&lab);
    preflight(&lab, &crate::preflight::Host::read(), opts.keep_going)?;
    let engine = Engine::new(lab);
    let recorder = match &opts.record {
        Some(r) => Some(crate::record::start(&engine, r)?),
        None => None,
    };
    let cancel = CancellationToken::new();
    cancel_on_signals(cancel.clone());
    // The face subscribes first so it sees the servers come up.
    let rx = engine.subscribe();
    let mut started = engine.subscribe();
    let n = engine.lab().file.nodes.len();
    engine.emit(None, EventKind::ConfigLoaded { nodes: n });
    let tasks = start_servers(&engine, &cancel);
    let failed = wait_started(&mut started, &listeners(&engine.lab()), START_LIMIT).await;
    drop(started);
    let result = if !failed.is_empty() && !opts.keep_going {
        cancel.cancel();
        stop_servers(tasks).await;
        Err(anyhow::anyhow!(
            "{}\n(pass --keep-going to run with the servers that did start)",
            not_started(&failed)
        ))
    } else {
        for (s, r) in &failed {
            tracing::warn!("{} server not running (--keep-going): {r}", s.label());
        }
        if engine.lab().file.wake_on_start {
            tokio::spawn(crate::power::wake::wake_lab(engine.clone()));
        }
        run_face(engine, rx, cancel, opts.face, tasks).await
    };
    if let Some(r) = recorder {
        r.finish().await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_says_each_cause_once_and_how_to_get_privilege() {
        let denied = crate::net::bind::BindError {
            what: "bind UDP",
            addr: "0.0.0.0:69".parse().unwrap(),
            interface: Some("eth0".into()),
            source: std::io::Error::from_raw_os_error(13),
        };
        let e = anyhow::Error::new(denied).context("TFTP");
        let line = error_chain(&e);
        assert!(
            line.starts_with("TFTP: cannot bind UDP 0.0.0.0:69 on eth0: Permission denied"),
            "{line}"
        );
        assert_eq!(line.matches("Permission denied").count(), 1, "{line}");
        assert!(line.contains("sudo pxelab up"), "{line}");
        let other = anyhow::Error::new(crate::net::bind::BindError {
            what: "bind UDP",
            addr: "0.0.0.0:69".parse().unwrap(),
            interface: None,
            source: std::io::Error::from_raw_os_error(98),
        });
        let line = error_chain(&other);
        assert!(line.contains("in use") && !line.contains("sudo"), "{line}");
    }
}
