//! The one-shot commands: `check`, `render`, `adopt`, `forget`, `reboot`, `reload`,
//! `nodes`, and in [`power`] `power` and `roll`. Commands go through the running
//! instance's admin API (the same command surface the console uses); lab.yaml edits
//! fall back to editing it directly when no pxelab runs for the lab.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub mod power;

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

/// `pxelab check`: every problem (file:line:col, severity, what and the value), then the
/// resolved plan per node. With `host`, also the problems of the lab on this machine
/// ([`crate::preflight`], as `up` finds them). Exit 1 on any error, or on any warning
/// with `--strict`.
pub fn check(config: &Path, strict: bool, host: bool) -> anyhow::Result<ExitCode> {
    let text = match crate::config::limit::read_text(config) {
        Ok(t) => t,
        Err(e @ crate::config::ConfigError::TooLarge { .. }) => {
            let shown = e.to_string();
            let why = shown
                .strip_prefix(&format!("{}: ", config.display()))
                .unwrap_or(&shown);
            println!("{}: error: {why}", config.display());
            return Ok(ExitCode::from(1));
        }
        Err(e) => {
            println!("{}: error: cannot read: {e}", config.display());
            return Ok(ExitCode::from(1));
        }
    };
    let mut report = crate::config::check_text(config, &text);
    if let Some(lab) = report.lab.as_ref().filter(|_| host) {
        let found = crate::preflight::problems(lab, &crate::preflight::Host::read());
        report.problems.extend(found);
        report
            .problems
            .sort_by_key(|p| p.location.as_ref().map(|l| (l.line, l.column)));
    }
    let (out, failed) = check_output(&report, strict);
    print!("{out}");
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The text `pxelab check` prints for a report, and whether it fails.
pub fn check_output(report: &crate::config::Report, strict: bool) -> (String, bool) {
    use crate::config::Severity;
    use std::fmt::Write;
    let mut out = String::new();
    for p in &report.problems {
        let _ = writeln!(out, "{p}");
    }
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    let failed = errors > 0 || (strict && warnings > 0);
    if let Some(lab) = &report.lab {
        if errors == 0 {
            out.push_str(&plan(lab));
        }
    }
    let verdict = if failed { "FAILED" } else { "ok" };
    let strict_note = if strict && warnings > 0 && errors == 0 {
        " (--strict: warnings count as errors)"
    } else {
        ""
    };
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "check {verdict}: {errors} error(s), {warnings} warning(s){strict_note}"
    );
    (out, failed)
}

/// The resolved plan: lab summary, then per node what it is served.
pub fn plan(lab: &crate::config::Lab) -> String {
    use std::fmt::Write;
    let f = &lab.file;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lab {}: {} node(s), dhcp {}, server {}, http {}, unknown MACs: {}",
        f.name,
        f.nodes.len(),
        match f.dhcp.mode {
            crate::config::DhcpMode::Proxy => "proxy",
            crate::config::DhcpMode::Server => "server",
            crate::config::DhcpMode::Off => "off",
        },
        lab.server_address,
        lab.http_base(),
        match &f.unknown {
            crate::config::UnknownPolicy::Hold => "hold".to_string(),
            crate::config::UnknownPolicy::Ignore => "ignore".to_string(),
            crate::config::UnknownPolicy::Adopt(r) => format!("adopt as {r}"),
        }
    );
    if let Some(c) = lab.plan().ok().and_then(|p| p.apk_cache.as_ref()) {
        let ups: Vec<&str> = c.upstreams.iter().map(|u| u.url.as_str()).collect();
        let _ = writeln!(
            out,
            "package cache in {} (index TTL {}), upstreams: {}",
            c.dir.display(),
            humantime::format_duration(c.index_ttl),
            ups.join(", ")
        );
    }
    let assets = format!("{}/assets", lab.http_base());
    for (index, n) in f.nodes.iter().enumerate() {
        let ip = n.ip.map(|i| i.to_string()).unwrap_or_else(|| "dhcp".into());
        let _ = writeln!(out, "\n{}  {}  {}  {}", n.hostname, n.mac, n.role, ip);
        let _ = writeln!(
            out,
            "  kernel     {assets}/{}",
            crate::render::kernel_name(lab, n)
        );
        for i in crate::render::initrd_names(lab, n) {
            let _ = writeln!(out, "  initrd     {assets}/{i}");
        }
        match crate::render::kernel_cmdline_at(lab, index) {
            Some(Ok(c)) => {
                let _ = writeln!(out, "  cmdline    {c}");
            }
            Some(Err(e)) => {
                let _ = writeln!(out, "  cmdline    (error: {e})");
            }
            None => {}
        }
        // Sizes with placeholder secrets: `check` never creates or reads key files.
        let secrets = crate::secrets::NodeSecrets::default();
        match crate::render::user_data(lab, n, &secrets) {
            Ok(u) => {
                let first = u.lines().next().unwrap_or("");
                let _ = writeln!(
                    out,
                    "  user-data  {} bytes without secrets ({first})",
                    u.len()
                );
            }
            Err(e) => {
                let _ = writeln!(out, "  user-data  (error: {e})");
            }
        }
    }
    out
}

/// `pxelab render`: exactly what the node is served.
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

/// A MAC from the command line, in any of the forms the API takes.
pub fn mac_arg(mac: &str) -> anyhow::Result<crate::Mac> {
    crate::http::route::parse_mac(mac)
        .map_err(|_| anyhow::anyhow!("`{mac}` is not a MAC address (e.g. 52:54:00:12:34:56)"))
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
    let mac = mac_arg(mac)?;
    let lab = crate::app::load_lab(config)?;
    match client::probe(&lab).await {
        Probe::Running(admin) => {
            let port = admin.port;
            let body =
                serde_json::json!({"mac": mac, "role": role, "hostname": hostname, "ip": ip});
            let reply = admin
                .request("POST", "/api/adopt", Some(&body.to_string()))
                .await?;
            if !reply.ok() {
                return Ok(refused(&reply));
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
            let command = crate::engine::Command::Adopt {
                mac,
                role: role.to_string(),
                hostname,
                ip,
            };
            let reply = crate::engine::service::run_here(&engine, command)?;
            let e = reply
                .node()
                .ok_or_else(|| anyhow::anyhow!("adoption answered without a node"))?;
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
        Probe::Running(admin) => {
            let port = admin.port;
            let reply = admin.request("GET", "/api/nodes", None).await?;
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
        // The admin API's shape (`{"nodes": […]}`), so one `jq .nodes[]` reads both.
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "nodes": nodes }))?
        );
    } else {
        print!("{}", crate::headless::node_table(&nodes));
    }
    Ok(ExitCode::SUCCESS)
}

/// Says why the running instance refused a command (its error, as the admin API put
/// it); the exit status of every CLI command it refused.
fn refused(reply: &crate::http::client::Reply) -> ExitCode {
    eprintln!(
        "pxelab: the running instance refused: {}",
        reply.error_message()
    );
    ExitCode::from(1)
}

/// A command `pxelab forget|reboot|reload` sends to the running instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// Remove a MAC from lab.yaml.
    Forget(String),
    /// Reboot a node (MAC or hostname) over SSH.
    Reboot(String),
    /// Read lab.yaml again now.
    Reload,
}

/// `pxelab forget|reboot|reload`: through the admin API of a running instance of this
/// lab; `forget` edits lab.yaml directly when none runs, the others need one.
pub async fn remote(config: &Path, what: Remote) -> anyhow::Result<ExitCode> {
    use crate::http::client::{self, Probe};
    let lab = crate::app::load_lab(config)?;
    let (path, body) = match &what {
        Remote::Forget(mac) => (
            "/api/forget".to_string(),
            Some(serde_json::json!({ "mac": mac }).to_string()),
        ),
        Remote::Reboot(node) => {
            if node.is_empty()
                || !node
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ":-_.".contains(c))
            {
                anyhow::bail!("`{node}` is not a MAC address or hostname");
            }
            (format!("/api/nodes/{node}/reboot"), None)
        }
        Remote::Reload => ("/api/reload".to_string(), None),
    };
    match client::probe(&lab).await {
        Probe::Running(admin) => {
            let reply = admin.request("POST", &path, body.as_deref()).await?;
            if !reply.ok() {
                return Ok(refused(&reply));
            }
            let v: serde_json::Value = serde_json::from_str(&reply.body)?;
            let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("?").to_string();
            match what {
                Remote::Forget(_) => println!(
                    "forgot {}: removed from {}",
                    text("forgotten"),
                    lab.path.display()
                ),
                Remote::Reboot(_) => {
                    println!("{} is rebooting ({})", text("rebooting"), text("addr"))
                }
                Remote::Reload => println!(
                    "{} {}",
                    lab.path.display(),
                    if v.get("reloaded").and_then(|x| x.as_bool()) == Some(true) {
                        "reloaded"
                    } else {
                        "unchanged"
                    }
                ),
            }
        }
        probe => {
            if let Probe::Other(why) = &probe {
                eprintln!("pxelab: {why}");
            }
            let Remote::Forget(mac) = what else {
                anyhow::bail!(
                    "no pxelab is running for {}: start it with `pxelab up`",
                    lab.path.display()
                );
            };
            let mac = mac_arg(&mac)?;
            let engine = crate::Engine::new(lab);
            crate::engine::service::run_here(&engine, crate::engine::Command::Forget { mac })?;
            println!(
                "forgot {mac}; {} edited (no pxelab running for this lab)",
                engine.lab().path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pxelab kubeconfig`: the k3s server's admin kubeconfig over SSH
/// ([`crate::watch::kubeconfig`]), pointed at the server's lab address and written 0600
/// to `out` (default `.pxelab/kubeconfig`). The address: the server's fixed `ip:`, else
/// the one the running instance saw it boot from.
pub async fn kubeconfig(config: &Path, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    use crate::http::client::{self, Probe};
    let lab = crate::app::load_lab(config)?;
    let Some(server) = lab
        .file
        .nodes
        .iter()
        .find(|n| lab.is_k3s_server(&n.mac))
        .cloned()
    else {
        anyhow::bail!("{} has no k3s-server node", lab.path.display());
    };
    let mut ip = server.ip.map(std::net::IpAddr::V4);
    if ip.is_none() {
        if let Probe::Running(admin) = client::probe(&lab).await {
            let reply = admin.request("GET", "/api/nodes", None).await?;
            let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
            ip = v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|n| n["mac"].as_str() == Some(&server.mac.to_string()))
                .and_then(|n| n["ip"].as_str())
                .and_then(|s| s.parse().ok());
        }
    }
    let Some(ip) = ip else {
        anyhow::bail!(
            "no address for {} ({}): give it an `ip:` in lab.yaml, or run `pxelab up` and let it boot",
            server.hostname,
            server.mac
        );
    };
    let out = out.unwrap_or_else(|| lab.state_dir().join("kubeconfig"));
    let engine = crate::Engine::new(lab);
    let text = crate::watch::kubeconfig::fetch(&engine, server.mac, ip).await?;
    crate::config::atomic::write_private(&out, text.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    println!(
        "wrote {} (cluster admin of {} at https://{ip}:6443, mode 0600)
  KUBECONFIG={} kubectl get nodes",
        out.display(),
        server.hostname,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
