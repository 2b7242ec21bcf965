//! The one-shot commands: `check`, `render`, `adopt`, `nodes`.

use std::path::Path;
use std::process::ExitCode;

/// What `pxelab render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    /// iPXE script.
    Ipxe,
    /// Kernel command line.
    Cmdline,
    /// NoCloud meta-data.
    MetaData,
    /// NoCloud user-data.
    UserData,
}

/// `pxelab check`.
pub fn check(config: &Path, _strict: bool) -> anyhow::Result<ExitCode> {
    let lab = crate::app::load_lab(config)?;
    println!(
        "{}: ok, {} node(s)",
        lab.path.display(),
        lab.file.nodes.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `pxelab render`.
pub fn render(config: &Path, node: &str, what: Artifact) -> anyhow::Result<ExitCode> {
    let lab = crate::app::load_lab(config)?;
    let entry = match node.parse::<crate::Mac>() {
        Ok(m) => lab.node_by_mac(&m),
        Err(_) => lab.node_by_hostname(node),
    }
    .ok_or_else(|| anyhow::anyhow!("no node `{node}` in {}", lab.path.display()))?
    .clone();
    let out = match what {
        Artifact::Ipxe => crate::render::ipxe_script(&lab, &entry)?,
        Artifact::Cmdline => crate::render::kernel_cmdline(&lab, &entry)? + "\n",
        Artifact::MetaData => crate::render::meta_data(&lab, &entry)?,
        Artifact::UserData => {
            let s = crate::secrets::for_node(&lab, entry.mac)?;
            crate::render::user_data(&lab, &entry, &s)?
        }
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// `pxelab adopt`: through the admin API of a running instance of this lab (which
/// writes lab.yaml and releases the held machine at once), else by editing lab.yaml
/// directly.
pub async fn adopt(
    config: &Path,
    mac: &str,
    role: &str,
    hostname: Option<String>,
    ip: Option<std::net::Ipv4Addr>,
) -> anyhow::Result<ExitCode> {
    use crate::http::client::{self, Probe};
    let mac = crate::http::route::parse_mac(mac)
        .map_err(|_| anyhow::anyhow!("`{mac}` is not a MAC address (e.g. 52:54:00:12:34:56)"))?;
    let lab = crate::app::load_lab(config)?;
    match client::probe(&lab).await {
        Probe::Running(port) => {
            let body =
                serde_json::json!({"mac": mac, "role": role, "hostname": hostname, "ip": ip});
            let reply =
                client::request(port, "POST", "/api/adopt", Some(&body.to_string())).await?;
            if !reply.ok() {
                eprintln!(
                    "pxelab: the running instance refused: {}",
                    reply.error_message()
                );
                return Ok(ExitCode::from(1));
            }
            let e: crate::config::NodeEntry = serde_json::from_str(&reply.body)?;
            println!(
                "adopted {} as {} ({}) through the running pxelab (127.0.0.1:{port}); {} updated, it boots at its next ask",
                e.mac,
                e.hostname,
                e.role,
                lab.path.display()
            );
        }
        probe => {
            if let Probe::Other(why) = probe {
                eprintln!("pxelab: {why}; editing lab.yaml directly");
            }
            let engine = crate::Engine::new(lab);
            let e = engine.adopt(mac, role, hostname, ip)?;
            println!(
                "adopted {} as {} ({}); {} edited (no pxelab running for this lab)",
                e.mac,
                e.hostname,
                e.role,
                engine.lab().path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pxelab nodes`: live states from a running instance of this lab, else the nodes
/// lab.yaml lists.
pub async fn nodes(config: &Path, json: bool) -> anyhow::Result<ExitCode> {
    use crate::http::client::{self, Probe};
    let lab = crate::app::load_lab(config)?;
    let (nodes, source) = match client::probe(&lab).await {
        Probe::Running(port) => {
            let reply = client::request(port, "GET", "/api/nodes", None).await?;
            if !reply.ok() {
                anyhow::bail!(
                    "the running instance answered {}: {}",
                    reply.status,
                    reply.error_message()
                );
            }
            let snap: crate::engine::Snapshot = serde_json::from_str(&reply.body)?;
            (
                snap.nodes,
                format!("live from the running pxelab (127.0.0.1:{port})"),
            )
        }
        probe => {
            if let Probe::Other(why) = probe {
                eprintln!("pxelab: {why}");
            }
            let engine = crate::Engine::new(lab);
            (
                engine.snapshot().nodes,
                "from lab.yaml (no pxelab running for this lab)".to_string(),
            )
        }
    };
    eprintln!("{} node(s), {source}", nodes.len());
    if json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
    } else {
        print!("{}", crate::headless::node_table(&nodes));
    }
    Ok(ExitCode::SUCCESS)
}
