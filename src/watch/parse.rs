//! Pure parsers for what the watcher reads from a node: `/var/log/messages` lines
//! (tiny-cloud), `/var/log/k3s.log` lines (k3s server and agent) and the JSON of
//! `k3s kubectl get nodes -o json`.
//!
//! Unknown lines give `None`: they are still kept in the node's log ring, never an error.

use crate::engine::event::{ActionStatus, CloudPhase, EventKind, K3sFailure, K3sStep};
use crate::engine::failure::cloud_summary;

/// Longest line the parsers look at; longer lines are cut (at a char boundary) first.
pub const MAX_LINE: usize = 4096;

/// Cuts `line` to at most [`MAX_LINE`] bytes at a char boundary.
pub fn clip(line: &str) -> &str {
    if line.len() <= MAX_LINE {
        return line;
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

fn phase(name: &str) -> Option<CloudPhase> {
    Some(match name {
        "boot" => CloudPhase::Boot,
        "early" => CloudPhase::Early,
        "main" => CloudPhase::Main,
        "final" => CloudPhase::Final,
        _ => return None,
    })
}

fn status(word: &str) -> Option<ActionStatus> {
    Some(match word {
        "starting" => ActionStatus::Starting,
        "done" => ActionStatus::Done,
        "failed" => ActionStatus::Failed,
        "skipped" => ActionStatus::Skipped,
        "unknown" => ActionStatus::Unknown,
        _ => return None,
    })
}

/// A syslog line from `/var/log/messages`: tiny-cloud's
/// `tiny-cloud/<phase>[pid]: <action>: starting|done|failed|skipped|unknown`, and
/// `bootstrap marked complete` / `already bootstrapped`.
///
/// A failed action gives [`EventKind::CloudFailed`] carrying the line.
pub fn messages_line(line: &str) -> Option<EventKind> {
    let line = clip(line.trim_end());
    if let Some(kind) = system_failure(line) {
        return Some(kind);
    }
    let at = line.find("tiny-cloud")?;
    let tagged = &line[at..];
    // The message follows the syslog tag's `: ` (after `[pid]` when there is one).
    let msg = match tagged.find("]: ") {
        Some(i) => &tagged[i + 3..],
        None => tagged.split_once(": ").map(|(_, m)| m)?,
    };
    let msg = msg.trim();
    if msg == "bootstrap marked complete" || msg == "already bootstrapped" {
        return Some(EventKind::TinyCloudComplete);
    }
    let tag = tagged.split([':', '[']).next()?;
    let ph = phase(tag.strip_prefix("tiny-cloud/")?)?;
    let (action, word) = msg.rsplit_once(": ")?;
    let st = status(word.trim())?;
    let action = action.trim();
    if action.is_empty() || action.len() > 64 || action.contains(char::is_whitespace) {
        return None;
    }
    Some(match st {
        ActionStatus::Failed => EventKind::CloudFailed {
            phase: ph,
            action: action.to_string(),
            line: line.to_string(),
            summary: cloud_summary(ph, action),
        },
        _ => EventKind::TinyCloud {
            phase: ph,
            action: action.to_string(),
            status: st,
        },
    })
}

/// The value of a logfmt field `key="…"` (with `\"` escapes) or `key=word`.
pub fn logfmt_field(line: &str, key: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = line[from..].find(key) {
        let start = from + i;
        let after = start + key.len();
        let prev_ok = start == 0 || line.as_bytes()[start - 1] == b' ';
        if prev_ok && line[after..].starts_with('=') {
            let rest = &line[after + 1..];
            if let Some(q) = rest.strip_prefix('"') {
                let mut out = String::new();
                let mut chars = q.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some('n') => out.push(' '),
                            Some(x) => out.push(x),
                            None => break,
                        },
                        '"' => return Some(out),
                        c => out.push(c),
                    }
                }
                return Some(out);
            }
            return Some(rest.split_whitespace().next().unwrap_or("").to_string());
        }
        from = after;
    }
    None
}

/// Classifies a failure message, most specific first. k3s's own complaints, then the
/// system's (clock, disk, memory, apk), which k3s or syslog may both carry.
pub fn k3s_failure(msg: &str) -> Option<K3sFailure> {
    let lower = msg.to_ascii_lowercase();
    let has = |s: &str| lower.contains(s);
    Some(if has("token ca hash does not match") {
        K3sFailure::TokenMismatch
    } else if has("node password rejected") {
        K3sFailure::NodePasswordRejected
    } else if has("duplicate node name") || has("duplicate hostname") {
        K3sFailure::DuplicateHostname
    } else if has("failed to find") && has("cgroup") {
        K3sFailure::CgroupsMissing
    } else if has("certificate has expired or is not yet valid") {
        K3sFailure::CertNotValid
    } else if has("no space left on device") {
        K3sFailure::DiskFull
    } else if has("out of memory: kill") || has("oom-kill") {
        K3sFailure::OutOfMemory
    } else if has("unable to select packages")
        || has("temporary error (try again later)")
        || has("untrusted signature")
    {
        K3sFailure::ApkFetch
    } else if has("failed to validate connection to cluster") {
        K3sFailure::ServerUnreachable
    } else if has("waiting to retrieve agent configuration") {
        K3sFailure::ServerNotReady
    } else {
        return None;
    })
}

/// The event for a classified line: a wait for transient classes (unless k3s gave up:
/// `fatal`), else a failure with its sentence.
fn failure_event(reason: K3sFailure, fatal: bool, msg: String, line: &str) -> EventKind {
    let summary = reason.summary(&msg);
    if reason.is_transient() && !fatal {
        EventKind::NodeWaiting {
            reason,
            summary,
            line: line.to_string(),
        }
    } else {
        EventKind::NodeFailed {
            reason,
            line: line.to_string(),
            summary,
            msg,
        }
    }
}

/// A system failure in a `/var/log/messages` line (OOM killer, full disk, apk, clock):
/// the syslog text after the tag is the message. tiny-cloud's own action lines never
/// match (their words are one action and one status).
fn system_failure(line: &str) -> Option<EventKind> {
    let msg = if line.starts_with('[') {
        line
    } else {
        line.split_once(": ").map(|(_, m)| m).unwrap_or(line)
    };
    let reason = k3s_failure(msg)?;
    Some(failure_event(reason, false, msg.trim().to_string(), line))
}

/// A line of `/var/log/k3s.log` (logrus text: `time="…" level=info msg="…" k=v`; other
/// formats are matched on the whole line).
pub fn k3s_line(line: &str) -> Option<EventKind> {
    let line = clip(line.trim_end());
    let msg = logfmt_field(line, "msg").unwrap_or_else(|| line.to_string());
    let level = logfmt_field(line, "level");
    let fatal = level.as_deref() == Some("fatal");
    if let Some(reason) = k3s_failure(&msg) {
        return Some(failure_event(reason, fatal, msg, line));
    }
    let step = if let Some(rest) = msg.strip_prefix("Starting k3s ") {
        let rest = rest.strip_prefix("agent ").unwrap_or(rest);
        let version = rest.split_whitespace().next().unwrap_or("").to_string();
        if !version.starts_with('v') {
            return None;
        }
        K3sStep::Starting { version }
    } else if msg.contains("Kube API server is now running") {
        K3sStep::ApiUp
    } else if msg.contains("k3s is up and running") || msg.contains("k3s agent is up and running") {
        if msg.contains("agent") {
            K3sStep::Joined
        } else {
            K3sStep::ServerUp
        }
    } else if msg.contains("Connecting to proxy") {
        K3sStep::Connecting {
            url: logfmt_field(line, "url").unwrap_or_default(),
        }
    } else if msg.contains("Remotedialer connected to proxy") {
        K3sStep::Connected
    } else if msg.contains("Annotations and labels have been set successfully on node") {
        K3sStep::Joined
    } else if fatal {
        return Some(failure_event(K3sFailure::Other, true, msg, line));
    } else {
        return None;
    };
    Some(EventKind::K3s { step })
}

/// Why the node list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NodesJsonError {
    /// Not JSON.
    #[error("kubectl output is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON but not a node list.
    #[error("kubectl output has no `items` list")]
    NotAList,
}

/// `k3s kubectl get nodes -o json` → (node name, Ready condition is True), in order.
pub fn nodes_ready(json: &str) -> Result<Vec<(String, bool)>, NodesJsonError> {
    let v: serde_json::Value = serde_json::from_str(json)?;
    let items = v
        .get("items")
        .and_then(|i| i.as_array())
        .ok_or(NodesJsonError::NotAList)?;
    Ok(items
        .iter()
        .filter_map(|it| {
            let name = it.pointer("/metadata/name")?.as_str()?.to_string();
            let ready = it
                .pointer("/status/conditions")
                .and_then(|c| c.as_array())
                .map(|conds| {
                    conds.iter().any(|c| {
                        c.get("type").and_then(|t| t.as_str()) == Some("Ready")
                            && c.get("status").and_then(|s| s.as_str()) == Some("True")
                    })
                })
                .unwrap_or(false);
            Some((name, ready))
        })
        .collect())
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
