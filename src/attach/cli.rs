//! The commands that reach a pxelab on another machine: `pxelab attach URL` (the
//! console), and `nodes`, `adopt`, `forget`, `reboot`, `reload` with `--remote URL`.
//! Each takes the server's admin token from `--token-file` or `PXELAB_TOKEN`, and pins
//! the server's certificate on first contact.

use std::path::Path;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use super::{forward, link, Remote};
use crate::engine::{Command, Commands, Engine};
use crate::http::tls::{KnownServers, PinCheck};
use crate::tui::attached::Attached;

/// The token for a remote admin API: `--token-file`, else `PXELAB_TOKEN`.
fn remote_token(token_file: Option<&Path>) -> anyhow::Result<String> {
    let token = match token_file {
        Some(f) => {
            std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?
        }
        None => std::env::var("PXELAB_TOKEN").map_err(|_| {
            anyhow::anyhow!(
                "the server's admin token is needed: --token-file FILE (a copy of its \
                 .pxelab/admin-token) or PXELAB_TOKEN"
            )
        })?,
    };
    Ok(token.trim().to_string())
}

/// Reaches the server once (pinning its certificate on first contact, refusing a changed
/// one); returns it and where it is attached, the fingerprint included.
async fn connect(url: &str, token_file: Option<&Path>) -> anyhow::Result<(Remote, Attached)> {
    let known = KnownServers::at(KnownServers::default_path());
    let remote = Remote::new(url, remote_token(token_file)?, known.clone())?;
    let (fingerprint, first_use) = match remote.hello().await? {
        PinCheck::FirstUse { fingerprint } => {
            eprintln!(
                "pxelab: first contact with {}: pinned its certificate {fingerprint} in {} \
                 (compare with the server's `server-up` line)",
                remote.server,
                known.path().display()
            );
            (fingerprint, true)
        }
        PinCheck::Pinned => (
            known
                .lookup(&remote.server)?
                .map(|(fp, _)| fp)
                .unwrap_or_default(),
            false,
        ),
    };
    let attached = Attached {
        url: format!("https://{}", remote.server),
        fingerprint,
        first_use,
    };
    Ok((remote, attached))
}

/// `pxelab attach URL`: the console of the pxelab at `url`, over its admin API. Returns
/// when the operator quits.
pub async fn attach(
    url: &str,
    token_file: Option<&Path>,
    theme: Option<String>,
) -> anyhow::Result<ExitCode> {
    let (remote, attached) = connect(url, token_file).await?;
    // The first seed before the terminal is taken: a refusal (no or wrong token) is
    // said plainly and ends here.
    let engine = Engine::new(link::fetch_lab(&remote).await?);
    link::seed(&remote, &engine).await?;
    let cancel = CancellationToken::new();
    crate::app::cancel_on_signals(cancel.clone());
    let (commands, queue) = Commands::channel();
    engine.attach_commands(commands);
    let fwd = tokio::spawn(forward::serve(remote.clone(), queue, cancel.clone()));
    let follow = tokio::spawn(link::follow(remote, engine.clone(), cancel.clone()));
    let r = crate::tui::run_with(engine, cancel.clone(), theme, Some(attached)).await;
    cancel.cancel();
    let _ = tokio::join!(fwd, follow);
    r?;
    Ok(ExitCode::SUCCESS)
}

/// `pxelab nodes --remote URL`: the node table of a pxelab on another machine.
pub async fn nodes(url: &str, token_file: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let (remote, _) = connect(url, token_file).await?;
    let value = remote.json("GET", "/api/nodes", None).await?;
    let snap: crate::engine::Snapshot = serde_json::from_value(value)?;
    eprintln!("{} node(s), live from {}", snap.nodes.len(), remote.server);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "nodes": snap.nodes }))?
        );
    } else {
        print!("{}", crate::headless::node_table(&snap.nodes));
    }
    Ok(ExitCode::SUCCESS)
}

/// `pxelab adopt|forget|reboot|reload --remote URL`: one command carried out by the
/// pxelab at `url` (its lab.yaml is the one edited). Exit 1 when it refuses.
pub async fn command(
    url: &str,
    token_file: Option<&Path>,
    command: Command,
) -> anyhow::Result<ExitCode> {
    let (remote, _) = connect(url, token_file).await?;
    let name = command.name();
    match forward::call(&remote, command).await {
        Ok(reply) => {
            println!("{} (on {})", reply.said(name), remote.server);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("pxelab: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `pxelab forget|reboot|reload --remote URL`: [`command`] for what the CLI names (a
/// reboot's hostname is looked up in the server's lab).
pub async fn remote(
    url: &str,
    token_file: Option<&Path>,
    what: crate::cli::Remote,
) -> anyhow::Result<ExitCode> {
    let c = match what {
        crate::cli::Remote::Forget(mac) => Command::Forget {
            mac: crate::cli::mac_arg(&mac)?,
        },
        crate::cli::Remote::Reboot(node) => Command::Reboot {
            mac: resolve(url, token_file, &node).await?,
        },
        crate::cli::Remote::Reload => Command::Reload,
    };
    command(url, token_file, c).await
}

/// The node a `reboot --remote` names: a MAC, else a hostname the server's lab lists.
async fn resolve(url: &str, token_file: Option<&Path>, node: &str) -> anyhow::Result<crate::Mac> {
    if let Ok(mac) = crate::http::route::parse_mac(node) {
        return Ok(mac);
    }
    let (remote, _) = connect(url, token_file).await?;
    let lab = link::fetch_lab(&remote).await?;
    lab.node_by_hostname(node)
        .map(|n| n.mac)
        .ok_or_else(|| anyhow::anyhow!("no node `{node}` in the lab at {}", remote.server))
}
