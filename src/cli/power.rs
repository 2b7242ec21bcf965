//! `pxelab power on|off|cycle NODE…` and `pxelab roll`: through the running instance's
//! admin API (the console's command surface), so the instance records and shows them.
//!
//! `power` also works with no pxelab running (the morning after a power cut, before
//! `up`): it then carries the action out here, with the same drivers. `roll` needs a
//! running instance (it waits for nodes to be Ready, which only the watcher sees); it
//! follows the roll's events until the roll ends and exits 1 naming the node it
//! stopped at.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::refused;
use crate::engine::roll::{RollStep, ServerTurn};
use crate::engine::service::PowerAction;
use crate::engine::{Event, EventKind};
use crate::http::client::{self, Probe};

/// The nodes `power` acts on, in order: `all` is every node of the lab, the k3s server
/// first when powering on (the agents need it) and last when powering off.
fn targets(
    lab: &crate::config::Lab,
    action: PowerAction,
    nodes: &[String],
) -> anyhow::Result<Vec<String>> {
    if nodes.iter().any(|n| n == "all") {
        if action == PowerAction::Cycle {
            anyhow::bail!("`power cycle all` would cut the whole cluster at once: use `pxelab roll` (one node at a time)");
        }
        let mut all: Vec<&crate::config::NodeEntry> = lab.file.nodes.iter().collect();
        all.sort_by_key(|n| (n.role == "k3s-server") == (action == PowerAction::Off));
        return Ok(all.into_iter().map(|n| n.hostname.clone()).collect());
    }
    for n in nodes {
        if n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":-_.".contains(c))
        {
            anyhow::bail!("`{n}` is not a MAC address or hostname");
        }
    }
    Ok(nodes.to_vec())
}

/// `pxelab power ACTION NODE…`; exit 1 when any node's action failed.
pub async fn power(
    config: &Path,
    action: PowerAction,
    nodes: &[String],
) -> anyhow::Result<ExitCode> {
    let lab = crate::app::load_lab(config)?;
    let targets = targets(&lab, action, nodes)?;
    let body = serde_json::json!({ "action": action }).to_string();
    let mut failed = 0;
    match client::probe(&lab).await {
        Probe::Running(admin) => {
            for node in &targets {
                let reply = admin
                    .request("POST", &format!("/api/nodes/{node}/power"), Some(&body))
                    .await?;
                let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
                if reply.ok() {
                    println!(
                        "{node}: power {}: {}",
                        action.name(),
                        v["detail"].as_str().unwrap_or("done")
                    );
                } else {
                    failed += 1;
                    eprintln!("pxelab: {node}: {}", reply.error_message());
                }
            }
        }
        probe => {
            if let Probe::Other(why) = &probe {
                eprintln!("pxelab: {why}");
            }
            eprintln!(
                "pxelab: no pxelab is running for {}: acting from here",
                lab.path.display()
            );
            let engine = crate::Engine::new(lab);
            for node in &targets {
                let Some(mac) = engine
                    .resolve_node(node)
                    .or_else(|| crate::http::route::parse_mac(node).ok())
                else {
                    failed += 1;
                    eprintln!(
                        "pxelab: no node `{node}` in {}",
                        engine.lab().path.display()
                    );
                    continue;
                };
                match crate::power::act(&engine, mac, action).await {
                    Ok(detail) => println!("{node}: power {}: {detail}", action.name()),
                    Err(e) => {
                        failed += 1;
                        eprintln!("pxelab: {e}");
                    }
                }
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What `pxelab roll` is asked.
#[derive(Debug, Clone)]
pub struct RollArgs {
    /// Where the k3s server goes.
    pub server: ServerTurn,
    /// Rebooting the server is confirmed (no question asked).
    pub yes: bool,
    /// How long each node may take to be Ready again.
    pub node_timeout: Duration,
    /// Stop the roll under way instead of starting one.
    pub stop: bool,
}

/// Asks on the terminal whether the server may be rebooted; `false` when stdin is not
/// a terminal (a script must say `--yes`).
fn confirm_server(name: &str, turn: ServerTurn) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return false;
    }
    let when = if turn == ServerTurn::First {
        "first"
    } else {
        "last"
    };
    print!("The roll reboots the k3s server `{name}` {when}; the cluster's API is down while it boots. Go on? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
}

/// `pxelab roll`: starts the rolling reboot in the running instance and follows it.
pub async fn roll(config: &Path, args: &RollArgs) -> anyhow::Result<ExitCode> {
    let lab = crate::app::load_lab(config)?;
    let admin = match client::probe(&lab).await {
        Probe::Running(admin) => admin,
        probe => {
            if let Probe::Other(why) = &probe {
                eprintln!("pxelab: {why}");
            }
            anyhow::bail!(
                "no pxelab is running for {}: a roll needs `pxelab up` (it waits for each node to be Ready again)",
                lab.path.display()
            );
        }
    };
    if args.stop {
        let reply = admin.request("POST", "/api/roll/stop", Some("{}")).await?;
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
        println!(
            "{}",
            if v["stopped"].as_bool() == Some(true) {
                "rolling reboot stopped"
            } else {
                "no rolling reboot was under way"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let server = lab
        .file
        .nodes
        .iter()
        .find(|n| n.role == "k3s-server")
        .map(|n| n.hostname.clone());
    let mut confirmed = args.yes;
    if let (Some(name), false, true) = (&server, confirmed, args.server != ServerTurn::Skip) {
        confirmed = confirm_server(name, args.server);
        if !confirmed {
            eprintln!("pxelab: not confirmed: pass --yes to reboot the k3s server `{name}` too, or --server skip");
            return Ok(ExitCode::from(1));
        }
    }
    let events = admin.events().await?;
    let body = serde_json::json!({
        "server": args.server,
        "confirm_server": confirmed,
        "node_timeout_s": args.node_timeout.as_secs(),
    });
    let reply = admin
        .request("POST", "/api/roll", Some(&body.to_string()))
        .await?;
    if !reply.ok() {
        return Ok(refused(&reply));
    }
    eprintln!("(Ctrl-C stops following; `pxelab roll --stop` stops the roll)");
    follow(events).await
}

/// Prints the roll's events until it ends; exit 1 when it stopped early.
async fn follow(
    mut events: tokio::sync::mpsc::Receiver<hyper::body::Bytes>,
) -> anyhow::Result<ExitCode> {
    let mut reader = crate::attach::remote::SseReader::default();
    while let Some(chunk) = events.recv().await {
        for ev in reader.feed(&chunk) {
            let crate::attach::remote::Streamed::Event(Event {
                kind: EventKind::Roll { step },
                hostname,
                ..
            }) = ev
            else {
                continue;
            };
            let who = hostname.map(|h| format!("{h}: ")).unwrap_or_default();
            match &step {
                RollStep::Stopped { .. } => {
                    eprintln!("{}", step.describe());
                    return Ok(ExitCode::from(1));
                }
                RollStep::Done { .. } => {
                    println!("{}", step.describe());
                    return Ok(ExitCode::SUCCESS);
                }
                _ => println!("{who}{}", step.describe()),
            }
        }
    }
    anyhow::bail!("the running pxelab ended the event stream before the roll ended (it stopped?)")
}
