//! The `cmd` power driver: an operator's shell command per action (a smart plug's CLI,
//! a PoE switch port over SSH or SNMP, ipmitool, a VM's monitor).
//!
//! `{mac}`, `{ip}` and `{hostname}` are put in shell-quoted, so a value can never
//! become shell syntax; they are also in the environment as `PXELAB_MAC`, `PXELAB_IP`
//! and `PXELAB_HOSTNAME`. The command runs with `sh -c` in lab.yaml's folder, in a
//! process group of its own that is killed whole at the time limit. Its exit status and
//! the first lines of its stderr (else stdout) make the reply. The command line itself
//! is never echoed into a reply, event or log: it may carry a plug's password.

use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::mac::Mac;
use crate::watch::conn::shell_quote;

/// Lines of the command's output kept for the reply.
const OUTPUT_LINES: usize = 3;
/// Bytes of output read at most (the rest is drained unread).
const OUTPUT_CAP: usize = 16 << 10;
/// How long output is still read after the command exited (a daemon it started may
/// hold the pipes open for ever).
const DRAIN: Duration = Duration::from_millis(300);

/// What the placeholders stand for.
#[derive(Debug, Clone)]
pub struct Target {
    /// The node's MAC.
    pub mac: Mac,
    /// Its address, when one is known.
    pub ip: Option<IpAddr>,
    /// Its hostname.
    pub hostname: String,
}

/// Why a command did not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// `{ip}` is used but the node has no known address.
    #[error("the command uses {{ip}} but no address is known for {0} (not booted this run and no fixed ip in lab.yaml)")]
    NoAddress(String),
    /// `sh` could not be started.
    #[error("cannot start sh: {0}")]
    Spawn(std::io::Error),
    /// The command ran past its limit and was killed.
    #[error("did not finish within {secs} s (killed){}", tail(.output))]
    Timeout {
        /// The limit.
        secs: u64,
        /// The first lines it wrote.
        output: String,
    },
    /// The command failed.
    #[error("exited with status {status}{}", tail(.output))]
    Failed {
        /// Its exit status (or `signal N`).
        status: String,
        /// The first lines of its stderr (else stdout).
        output: String,
    },
}

fn tail(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

/// `template` with its placeholders replaced by shell-quoted values.
pub fn fill(template: &str, t: &Target) -> Result<String, CmdError> {
    let mut out = template.replace("{mac}", &shell_quote(&t.mac.to_string()));
    out = out.replace("{hostname}", &shell_quote(&t.hostname));
    if out.contains("{ip}") {
        let ip =
            t.ip.ok_or_else(|| CmdError::NoAddress(t.hostname.clone()))?;
        out = out.replace("{ip}", &shell_quote(&ip.to_string()));
    }
    Ok(out)
}

/// The first lines of what a command wrote, one line, control characters dropped.
fn first_lines(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(OUTPUT_LINES)
        .collect::<Vec<_>>()
        .join(" | ")
        .chars()
        .filter(|c| !c.is_control())
        .take(400)
        .collect()
}

/// Reads a pipe into `buf` (at most [`OUTPUT_CAP`] bytes kept) until it closes.
async fn collect(mut pipe: impl tokio::io::AsyncRead + Unpin, buf: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
        let room = OUTPUT_CAP.saturating_sub(b.len());
        b.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// Runs `template` for `t` in `dir` within `limit`; the first lines of its output on
/// success.
pub async fn run(
    template: &str,
    t: &Target,
    dir: &Path,
    limit: Duration,
) -> Result<String, CmdError> {
    let line = fill(template, t)?;
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&line)
        .current_dir(dir)
        .env("PXELAB_MAC", t.mac.to_string())
        .env("PXELAB_IP", t.ip.map(|i| i.to_string()).unwrap_or_default())
        .env("PXELAB_HOSTNAME", &t.hostname)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(CmdError::Spawn)?;
    let (out, err) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    );
    let mut readers = tokio::task::JoinSet::new();
    if let Some(p) = child.stdout.take() {
        readers.spawn(collect(p, out.clone()));
    }
    if let Some(p) = child.stderr.take() {
        readers.spawn(collect(p, err.clone()));
    }
    let status = tokio::time::timeout(limit, child.wait()).await;
    let _ = tokio::time::timeout(DRAIN, async {
        while readers.join_next().await.is_some() {}
    })
    .await;
    readers.abort_all();
    let text = |b: &Arc<Mutex<Vec<u8>>>| first_lines(&b.lock().unwrap_or_else(|p| p.into_inner()));
    let (out, err) = (text(&out), text(&err));
    let said = if err.is_empty() { out.clone() } else { err };
    match status {
        Err(_) => {
            if let Some(pid) = child
                .id()
                .and_then(|p| rustix::process::Pid::from_raw(p as i32))
            {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.kill().await;
            Err(CmdError::Timeout {
                secs: limit.as_secs(),
                output: said,
            })
        }
        Ok(Err(e)) => Err(CmdError::Spawn(e)),
        Ok(Ok(s)) if s.success() => Ok(out),
        Ok(Ok(s)) => Err(CmdError::Failed {
            status: match s.code() {
                Some(c) => c.to_string(),
                None => format!("killed by a signal ({s})"),
            },
            output: said,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(ip: Option<&str>) -> Target {
        Target {
            mac: "52:54:00:00:00:07".parse().unwrap(),
            ip: ip.map(|i| i.parse().unwrap()),
            hostname: "node-7".into(),
        }
    }

    #[test]
    fn placeholders_are_quoted() {
        let t = Target {
            hostname: "x'; rm -rf /; '".into(),
            ..target(Some("10.0.0.7"))
        };
        let line = fill("plug {hostname} {mac} {ip}", &t).unwrap();
        assert_eq!(
            line,
            r"plug 'x'\''; rm -rf /; '\''' '52:54:00:00:00:07' '10.0.0.7'"
        );
        assert!(matches!(
            fill("ping {ip}", &target(None)),
            Err(CmdError::NoAddress(_))
        ));
    }

    #[tokio::test]
    async fn status_output_and_time_limit() {
        let dir = std::env::temp_dir();
        let t = target(Some("10.0.0.7"));
        let ok = run(
            "echo on {hostname}; echo \"$PXELAB_MAC\"",
            &t,
            &dir,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(ok, "on node-7 | 52:54:00:00:00:07");
        let e = run("echo nope >&2; exit 3", &t, &dir, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "exited with status 3: nope");
        let start = std::time::Instant::now();
        let e = run("sleep 30; echo late", &t, &dir, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(e, CmdError::Timeout { .. }), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
        // A daemon that keeps the pipes open does not hold the reply.
        let start = std::time::Instant::now();
        run(
            "(sleep 5 &) ; echo started",
            &t,
            &dir,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
