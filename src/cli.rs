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

/// `pxelab adopt`.
pub async fn adopt(
    config: &Path,
    mac: &str,
    role: &str,
    hostname: Option<String>,
    ip: Option<std::net::Ipv4Addr>,
) -> anyhow::Result<ExitCode> {
    let mac: crate::Mac = mac.parse()?;
    let lab = crate::app::load_lab(config)?;
    let engine = crate::Engine::new(lab);
    let e = engine.adopt(mac, role, hostname, ip)?;
    println!("adopted {} as {} ({})", e.mac, e.hostname, e.role);
    Ok(ExitCode::SUCCESS)
}

/// `pxelab nodes`.
pub async fn nodes(config: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let lab = crate::app::load_lab(config)?;
    let engine = crate::Engine::new(lab);
    let snap = engine.snapshot();
    if json {
        println!("{}", serde_json::to_string_pretty(&snap.nodes)?);
    } else {
        for n in &snap.nodes {
            println!(
                "{:<17} {:<16} {:<11} {}",
                n.mac,
                n.hostname.as_deref().unwrap_or("-"),
                n.role.as_deref().unwrap_or("-"),
                n.state.name()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
