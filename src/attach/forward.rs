//! The attached console's command surface: every [`Command`] it sends goes to the
//! server's admin API as the matching request, and the server's answer comes back as
//! the [`Reply`] (or the [`CommandError`]) a local service would have given.
//!
//! The console (and `pxelab adopt --remote`, …) keep one vocabulary whether the lab is
//! here or elsewhere: only this module knows the routes.

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{AttachError, Remote};
use crate::config::NodeEntry;
use crate::engine::service::CommandQueue;
use crate::engine::{Command, CommandError, Reply};
use crate::mac::Mac;

/// The request that carries `c`: method, path, JSON body.
pub fn request_of(c: &Command) -> (&'static str, String, Option<Value>) {
    match c {
        Command::Adopt {
            mac,
            role,
            hostname,
            ip,
        } => (
            "POST",
            "/api/adopt".into(),
            Some(json!({"mac": mac, "role": role, "hostname": hostname, "ip": ip})),
        ),
        Command::Forget { mac } => ("POST", "/api/forget".into(), Some(json!({ "mac": mac }))),
        Command::Change {
            mac,
            role,
            hostname,
        } => (
            "POST",
            "/api/change".into(),
            Some(json!({"mac": mac, "role": role, "hostname": hostname})),
        ),
        Command::Reboot { mac } => ("POST", format!("/api/nodes/{mac}/reboot"), None),
        Command::Power { mac, action } => (
            "POST",
            format!("/api/nodes/{mac}/power"),
            Some(json!({ "action": action })),
        ),
        Command::Reload => ("POST", "/api/reload".into(), None),
        Command::Roll(o) => (
            "POST",
            "/api/roll".into(),
            Some(json!({
                "server": o.server,
                "confirm_server": o.confirm_server,
                "node_timeout_s": o.node_timeout.as_secs(),
            })),
        ),
        Command::RollStop => ("POST", "/api/roll/stop".into(), None),
    }
}

/// The [`Reply`] an answer to `c` stands for.
pub fn reply_of(c: &Command, v: Value) -> Result<Reply, String> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let mac = |k: &str| {
        text(k)
            .and_then(|m| m.parse::<Mac>().ok())
            .ok_or_else(|| format!("the answer has no `{k}` MAC: {v}"))
    };
    Ok(match c {
        Command::Adopt { .. } | Command::Change { .. } => Reply::Node(
            serde_json::from_value::<NodeEntry>(v.clone())
                .map_err(|e| format!("the answer is not a node entry ({e}): {v}"))?,
        ),
        Command::Forget { .. } => Reply::Forgotten(mac("forgotten")?),
        Command::Reboot { .. } => Reply::Rebooting {
            mac: mac("rebooting")?,
            addr: text("addr").unwrap_or_default(),
        },
        Command::Power { action, .. } => Reply::Powered {
            mac: mac("powered")?,
            action: *action,
            detail: text("detail").unwrap_or_default(),
        },
        Command::Reload => Reply::Reloaded {
            changed: v.get("reloaded").and_then(Value::as_bool).unwrap_or(false),
        },
        Command::Roll(_) => {
            let names = |k: &str| -> Vec<String> {
                v.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            Reply::RollStarted {
                order: names("rolling"),
                left_out: names("left_out"),
            }
        }
        Command::RollStop => Reply::RollStopped {
            was_running: v.get("stopped").and_then(Value::as_bool).unwrap_or(false),
        },
    })
}

/// Carries out `c` on the server.
pub async fn call(remote: &Remote, c: Command) -> Result<Reply, CommandError> {
    let (method, path, body) = request_of(&c);
    let err = |why: String| CommandError::Remote {
        command: c.name(),
        server: remote.server.clone(),
        why,
    };
    let v = remote
        .json(method, &path, body.as_ref())
        .await
        .map_err(|e| {
            err(match e {
                // The server's own words are what the operator needs.
                AttachError::Refused { why, status, .. } => {
                    format!("refused (HTTP {status}): {why}")
                }
                other => other.to_string(),
            })
        })?;
    reply_of(&c, v).map_err(err)
}

/// Answers every command of `queue` by asking the server, until `cancel` fires or every
/// sender is gone. Each runs on a task of its own, so a slow reboot holds nothing up.
pub async fn serve(remote: Remote, mut queue: CommandQueue, cancel: CancellationToken) {
    loop {
        let p = tokio::select! {
            _ = cancel.cancelled() => break,
            p = queue.recv() => match p {
                Some(p) => p,
                None => break,
            },
        };
        let remote = remote.clone();
        tokio::spawn(async move {
            let r = call(&remote, p.command.clone()).await;
            p.answer(r);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::service::PowerAction;

    #[test]
    fn each_command_has_its_route_and_its_answer_reads_back() {
        let mac: Mac = "52:54:00:00:00:07".parse().unwrap();
        let adopt = Command::Adopt {
            mac,
            role: "k3s-agent".into(),
            hostname: Some("n7".into()),
            ip: None,
        };
        let (m, p, b) = request_of(&adopt);
        assert_eq!((m, p.as_str()), ("POST", "/api/adopt"));
        assert_eq!(b.unwrap()["mac"], "52:54:00:00:00:07");
        let entry = json!({"mac": "52:54:00:00:00:07", "hostname": "n7", "role": "k3s-agent"});
        let Reply::Node(n) = reply_of(&adopt, entry).unwrap() else {
            panic!("not a node")
        };
        assert_eq!(n.hostname, "n7");
        let reboot = Command::Reboot { mac };
        assert_eq!(request_of(&reboot).1, "/api/nodes/52:54:00:00:00:07/reboot");
        assert_eq!(
            reply_of(
                &reboot,
                json!({"rebooting": "52:54:00:00:00:07", "addr": "10.0.0.7"})
            )
            .unwrap(),
            Reply::Rebooting {
                mac,
                addr: "10.0.0.7".into()
            }
        );
        let power = Command::Power {
            mac,
            action: PowerAction::Cycle,
        };
        assert_eq!(request_of(&power).2.unwrap()["action"], "cycle");
        assert_eq!(
            reply_of(&Command::Reload, json!({"reloaded": true})).unwrap(),
            Reply::Reloaded { changed: true }
        );
        assert!(reply_of(&Command::Forget { mac }, json!({})).is_err());
    }
}
