//! Failure classes and the sentences a person reads for them.
//!
//! The watcher classifies log lines ([`crate::watch::parse`]); this module says, in
//! words, what each class means and what usually causes it, so the console row, the
//! headless line and the JSON event all carry the same short sentence instead of a
//! 250-column logrus line. The whole line stays in the event and the node record.

use serde::{Deserialize, Serialize};

use super::event::{CloudPhase, EventKind};

/// Why a node failed (or waits), as read from its logs. The name is historical: the
/// classes now cover the system as well (memory, disk, packages, clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum K3sFailure {
    /// The token does not match the server's (CA hash or credentials).
    TokenMismatch,
    /// The server could not be reached or validated.
    ServerUnreachable,
    /// The server rejected the node password (diskless rejoin trap).
    NodePasswordRejected,
    /// The kernel lacks a cgroup k3s needs.
    CgroupsMissing,
    /// The server is not ready yet (transient, reported once).
    ServerNotReady,
    /// A certificate is not valid yet or has expired: the node's clock is wrong.
    CertNotValid,
    /// No space left on the node's (RAM-backed) root.
    DiskFull,
    /// The kernel's OOM killer killed a process.
    OutOfMemory,
    /// apk could not fetch or verify packages from `alpine_repo`.
    ApkFetch,
    /// Another cluster member already uses the node's name.
    DuplicateHostname,
    /// Another fatal line.
    Other,
}

impl K3sFailure {
    /// What an agent says while its server is still starting: a wait, not a failure
    /// (reported as `node-waiting`), unless k3s gives up on it (`level=fatal`).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            K3sFailure::ServerNotReady | K3sFailure::ServerUnreachable
        )
    }

    /// The stable kebab-case name (`token-mismatch`), as in JSON.
    pub fn class(&self) -> &'static str {
        match self {
            K3sFailure::TokenMismatch => "token-mismatch",
            K3sFailure::ServerUnreachable => "server-unreachable",
            K3sFailure::NodePasswordRejected => "node-password-rejected",
            K3sFailure::CgroupsMissing => "cgroups-missing",
            K3sFailure::ServerNotReady => "server-not-ready",
            K3sFailure::CertNotValid => "cert-not-valid",
            K3sFailure::DiskFull => "disk-full",
            K3sFailure::OutOfMemory => "out-of-memory",
            K3sFailure::ApkFetch => "apk-fetch",
            K3sFailure::DuplicateHostname => "duplicate-hostname",
            K3sFailure::Other => "other",
        }
    }

    /// A short sentence saying what went wrong and its usual cause. `msg` is the
    /// message the log line carried (logrus `msg=`, or the syslog text): a few classes
    /// name what it names (the server URL, the killed process).
    pub fn summary(&self, msg: &str) -> String {
        match self {
            K3sFailure::TokenMismatch => {
                "token mismatch: this agent holds another cluster's token (its CA hash does not match the server's)".into()
            }
            K3sFailure::ServerUnreachable => format!(
                "server unreachable: nothing answers at {}",
                server_url(msg).unwrap_or("the k3s server URL")
            ),
            K3sFailure::NodePasswordRejected => {
                "node password rejected: the server knows this hostname with another password (another machine has the name, or .pxelab/lab-secret changed: kubectl delete node)".into()
            }
            K3sFailure::CgroupsMissing => {
                "cgroups missing: the kernel has no memory cgroup for k3s (cgroup_enable=memory on a Pi, the cgroups service)".into()
            }
            K3sFailure::ServerNotReady => {
                "server not ready: the agent waits for its k3s server to finish starting".into()
            }
            K3sFailure::CertNotValid => {
                "clock wrong: a certificate is not valid yet or expired (flat CMOS battery, no NTP yet)".into()
            }
            K3sFailure::DiskFull => {
                "no space left: the node's root (tmpfs, in RAM) is full".into()
            }
            K3sFailure::OutOfMemory => match killed_process(msg) {
                Some(p) => format!("out of memory: the kernel killed {p}"),
                None => "out of memory: the kernel killed a process".into(),
            },
            K3sFailure::ApkFetch => {
                let lower = msg.to_ascii_lowercase();
                if lower.contains("untrusted signature") {
                    "packages refused: apk saw an UNTRUSTED signature (alpine_repo's signing key is missing)".into()
                } else if lower.contains("unable to select packages") {
                    "packages not installed: apk could not find them at alpine_repo (wrong repo URL or branch?)".into()
                } else {
                    "packages not fetched: apk could not reach alpine_repo (network, DNS or proxy)".into()
                }
            }
            K3sFailure::DuplicateHostname => {
                "duplicate hostname: another member of the cluster already uses this name".into()
            }
            K3sFailure::Other => format!("k3s fatal error: {}", cut(msg, 80)),
        }
    }
}

/// The sentence for a failed tiny-cloud action.
pub fn cloud_summary(phase: CloudPhase, action: &str) -> String {
    let phase = format!("{phase:?}").to_lowercase();
    let why = match action {
        "userdata_packages" => " (apk could not install the packages user-data asks for)",
        "userdata_runcmd" => " (a runcmd command exited non-zero)",
        "userdata_write_files" => " (a write_files entry could not be written)",
        "set_hostname" => " (hostname from meta-data refused)",
        _ => "",
    };
    format!("tiny-cloud {phase}/{action} failed{why}")
}

/// `https://host:6443` in k3s's `… cluster at https://host:6443: …`.
fn server_url(msg: &str) -> Option<&str> {
    let at = msg.find("https://")?;
    let rest = &msg[at..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == ',')
        .unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches([':', '/']))
}

/// `k3s` in the kernel's `Killed process 2345 (k3s) total-vm:…`.
fn killed_process(msg: &str) -> Option<String> {
    let rest = &msg[msg.find("Killed process ")? + "Killed process ".len()..];
    let open = rest.find('(')?;
    let close = rest[open..].find(')')? + open;
    let pid = rest[..open].trim();
    Some(format!("{} (pid {pid})", &rest[open + 1..close]))
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

/// A node's memory and root filesystem (a tmpfs on diskless nodes), kB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gauge {
    /// `MemTotal`.
    pub mem_total_kb: u64,
    /// `MemAvailable`.
    pub mem_avail_kb: u64,
    /// Size of `/`.
    pub root_total_kb: u64,
    /// Available on `/`.
    pub root_avail_kb: u64,
}

/// Why a node has not moved on: raised by the stall checker ([`crate::watch::stall`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    /// The state it has been in (`initrd`, `config-fetched`, …).
    pub step: String,
    /// How long it has been there, seconds.
    pub waited_s: u64,
    /// What was last seen of it.
    pub last_seen: String,
    /// The likely cause, in words.
    pub hint: String,
}

/// A node's failure in words, kept on its record beside the whole log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReason {
    /// The class (`token-mismatch`, `cloud-action`, `host-key-mismatch`, …).
    pub class: String,
    /// The sentence a person reads.
    pub summary: String,
    /// The message the line carried (logrus `msg=`), when there is one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub msg: String,
}

impl FailureReason {
    /// The reason an event gives for marking its node failed, if it does.
    pub fn of(kind: &EventKind) -> Option<FailureReason> {
        Some(match kind {
            EventKind::NodeFailed {
                reason,
                summary,
                msg,
                ..
            } => FailureReason {
                class: reason.class().into(),
                summary: summary.clone(),
                msg: msg.clone(),
            },
            EventKind::CloudFailed { summary, .. } => FailureReason {
                class: "cloud-action".into(),
                summary: summary.clone(),
                msg: String::new(),
            },
            EventKind::HostKeyMismatch { .. } => FailureReason {
                class: "host-key-mismatch".into(),
                summary:
                    "host key mismatch: the node showed another SSH host key; not logged in to"
                        .into(),
                msg: kind.describe(),
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_name_what_the_line_names() {
        let msg = "Failed to validate connection to cluster at https://10.77.0.10:6443: failed to get CA certs";
        assert_eq!(
            K3sFailure::ServerUnreachable.summary(msg),
            "server unreachable: nothing answers at https://10.77.0.10:6443"
        );
        let oom = "[ 812.33] Out of memory: Killed process 2345 (k3s) total-vm:1843200kB";
        assert_eq!(
            K3sFailure::OutOfMemory.summary(oom),
            "out of memory: the kernel killed k3s (pid 2345)"
        );
        assert!(K3sFailure::ApkFetch
            .summary("ERROR: https://x/APKINDEX.tar.gz: UNTRUSTED signature")
            .contains("UNTRUSTED"));
        assert_eq!(
            cloud_summary(CloudPhase::Main, "userdata_packages"),
            "tiny-cloud main/userdata_packages failed (apk could not install the packages user-data asks for)"
        );
    }

    #[test]
    fn class_names_match_json() {
        for c in [
            K3sFailure::TokenMismatch,
            K3sFailure::CertNotValid,
            K3sFailure::Other,
        ] {
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", c.class()));
        }
    }
}
