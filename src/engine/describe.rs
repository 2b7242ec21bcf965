//! The one-line human description of each event kind (the headless text face, the
//! timeline, the console's event pane): apart from the event types so that each file
//! stays readable.

use std::fmt::Write as _;

use super::event::{EventKind, K3sStep};

impl EventKind {
    /// A one-line human description, without time or node (the headless text face adds those).
    pub fn describe(&self) -> String {
        match self {
            EventKind::ServerUp { source, addr } => {
                format!("{source:?} server listening on {addr}")
            }
            EventKind::ServerDown { source, reason } => format!("{source:?} server down: {reason}"),
            EventKind::ConfigLoaded { nodes } => format!("lab.yaml loaded, {nodes} node(s)"),
            EventKind::ConfigRejected { error } => format!("lab.yaml change rejected: {error}"),
            EventKind::DhcpDiscover {
                msg,
                arch,
                vendor_class,
                relay,
                ipxe,
                pxe_port,
                ..
            } => {
                // Written into one buffer: DHCP events come by the thousand a second
                // under a storm, and each is described twice (timeline, face).
                let mut s = String::with_capacity(96);
                let _ = write!(s, "DHCP {msg}");
                if *pxe_port {
                    s.push_str(" on :4011");
                }
                if let Some(a) = arch {
                    let _ = write!(s, " arch={a}");
                }
                if *ipxe {
                    s.push_str(" iPXE");
                } else if let Some(v) = vendor_class {
                    let _ = write!(s, " class={v}");
                }
                if let Some(r) = relay {
                    let _ = write!(s, " via relay {r}");
                }
                s
            }
            EventKind::DhcpReply {
                msg,
                yiaddr,
                boot_file,
                proxy,
            } => {
                let mut s = String::with_capacity(96);
                let _ = write!(s, "DHCP {}{msg}", if *proxy { "proxy " } else { "" });
                if let Some(ip) = yiaddr {
                    let _ = write!(s, " {ip}");
                }
                if let Some(f) = boot_file {
                    let _ = write!(s, " boot={f}");
                }
                s
            }
            EventKind::DhcpLease { action, ip } => format!("lease {action} {ip}"),
            EventKind::ApkCache { tally: t } => {
                let mut s = format!(
                    "package cache: {} from cache, {} fetched upstream",
                    t.hits, t.fetched
                );
                if t.stale > 0 {
                    s.push_str(&format!(", {} stale index(es) (upstream down)", t.stale));
                }
                s.push_str(&format!(", {} B served", t.bytes));
                if t.failed > 0 {
                    s.push_str(&format!(", {} FAILED", t.failed));
                }
                if let Some(e) = &t.last_error {
                    s.push_str(&format!(": {e}"));
                }
                s
            }
            EventKind::Ipv6Ra { reason, .. } => reason.clone(),
            EventKind::DhcpDropped {
                from,
                reason,
                count,
                by_reason,
            } if *count > 1 => {
                let kinds: Vec<String> =
                    by_reason.iter().map(|(k, n)| format!("{n} {k}")).collect();
                format!(
                    "DHCP dropped {count} packets ({}); last from {from}: {reason}",
                    kinds.join(", ")
                )
            }
            EventKind::DhcpDropped { from, reason, .. } => {
                format!("DHCP dropped from {from}: {reason}")
            }
            EventKind::LeaseWriteFailed {
                path,
                error,
                waiting,
            } => format!(
                "LEASE FILE NOT WRITTEN {path}: {error}; {waiting} ACK(s) held back until it can be"
            ),
            EventKind::TftpStart {
                file,
                client,
                blksize,
                windowsize,
            } => format!("TFTP {file} to {client} (blksize {blksize}, window {windowsize})"),
            EventKind::TftpEnd {
                file,
                bytes,
                ms,
                outcome,
                detail,
                ..
            } => {
                let mut s = format!("TFTP {file} {outcome:?} {bytes} B in {ms} ms");
                if let Some(d) = detail {
                    s.push_str(&format!(": {d}"));
                }
                s
            }
            EventKind::HttpStart {
                path, what, bytes, ..
            } => format!("HTTP {what:?} {path} started ({bytes} B)"),
            EventKind::HttpFetch {
                path,
                client,
                what,
                status,
                bytes,
                ms,
            } => format!("HTTP {status} {what:?} {path} {bytes} B in {ms} ms to {client}"),
            EventKind::NodeHeld => "unknown MAC held in the iPXE wait loop".to_string(),
            EventKind::ArchSeen { arch, from } => format!("architecture {arch} (said by {from})"),
            EventKind::NodeAdopted { role, hostname } => format!("adopted as {hostname} ({role})"),
            EventKind::NodeForgotten => "removed from the lab".to_string(),
            EventKind::NodeChanged { role, hostname } => format!("now {hostname} ({role})"),
            EventKind::SshConnecting { addr, attempt } => {
                format!("SSH connecting to {addr} (attempt {attempt})")
            }
            EventKind::SshUp { addr } => format!("SSH up at {addr}, host key verified"),
            EventKind::SshLost { reason } => format!("SSH lost: {reason}"),
            EventKind::HostKeyMismatch { expected, seen } => {
                format!("HOST KEY MISMATCH: expected {expected}, saw {seen}; not trusted")
            }
            EventKind::TinyCloud {
                phase,
                action,
                status,
            } => format!("tiny-cloud {phase:?}/{action}: {status:?}").to_lowercase(),
            EventKind::TinyCloudComplete => "tiny-cloud bootstrap complete".to_string(),
            EventKind::K3s { step } => match step {
                K3sStep::Starting { version } => format!("k3s starting {version}"),
                K3sStep::ApiUp => "k3s API server running".to_string(),
                K3sStep::ServerUp => "k3s is up and running".to_string(),
                K3sStep::Connecting { url } => format!("k3s agent connecting to {url}"),
                K3sStep::Connected => "k3s agent connected to server".to_string(),
                K3sStep::Joined => "k3s agent joined the cluster".to_string(),
                K3sStep::Ready => "k3s node Ready".to_string(),
                K3sStep::NotReady => "k3s node NotReady".to_string(),
            },
            EventKind::NodeFailed {
                reason, summary, ..
            } => format!("FAILED ({}): {summary}", reason.class()),
            EventKind::NodeWaiting {
                reason, summary, ..
            } => format!("k3s waiting ({}): {summary}", reason.class()),
            EventKind::CloudFailed { summary, .. } => format!("FAILED (cloud-action): {summary}"),
            EventKind::NodeStalled { stall } => format!(
                "STALLED at {} for {} s (last seen: {}): {}",
                stall.step, stall.waited_s, stall.last_seen, stall.hint
            ),
            EventKind::StallCleared { step, now } => {
                format!("moving again: past {step}, now {now}")
            }
            EventKind::LogLine { file, line } => format!("{file}: {line}"),
            EventKind::NodeResources { gauge: g } => format!(
                "memory {} of {} MB available, root {} of {} MB",
                g.mem_avail_kb / 1024,
                g.mem_total_kb / 1024,
                g.root_avail_kb / 1024,
                g.root_total_kb / 1024
            ),
            EventKind::K3sSnapshot { why, ok: true, detail } => {
                format!("k3s datastore snapshot ({why}): {detail}")
            }
            EventKind::K3sSnapshot {
                why,
                ok: false,
                detail,
            } => format!("k3s datastore snapshot ({why}) FAILED: {detail}"),
            EventKind::ResourcesLow {
                what,
                free_pct,
                free_kb,
            } => format!(
                "LOW {what}: {free_pct} % free ({} MB); the node runs from RAM and k3s dies when it runs out",
                free_kb / 1024
            ),
            EventKind::Refused {
                source,
                client,
                what,
                reason,
            } => format!("{source:?} refused {what} to {client}: {reason}"),
            EventKind::Power {
                action,
                driver,
                ok,
                detail,
            } => format!(
                "power {} ({driver}) {}: {detail}",
                action.name(),
                if *ok { "done" } else { "failed" }
            ),
            EventKind::Roll { step } => step.describe(),
        }
    }
}
