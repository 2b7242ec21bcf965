//! One SSH connection to a node: TCP probe, handshake with the host key check, public
//! key login, and the remote commands the watcher runs. Every step has a timeout.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{Config, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh::ChannelMsg;
use tokio::sync::mpsc;

use super::parse;
use super::trust::{Client, Trust, Verdict};
use crate::engine::lock;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Nothing answered on the port within the timeout.
    #[error("{addr}: no answer within {secs} s")]
    Timeout {
        /// Where.
        addr: SocketAddr,
        /// How long we waited.
        secs: u64,
    },
    /// TCP or SSH protocol error.
    #[error("{addr}: {message}")]
    Ssh {
        /// Where.
        addr: SocketAddr,
        /// What.
        message: String,
    },
    /// The node showed a host key the policy does not trust.
    #[error("{addr}: host key {seen} is not {expected}")]
    HostKey {
        /// Where.
        addr: SocketAddr,
        /// What was expected.
        expected: String,
        /// What was shown.
        seen: String,
    },
    /// The node refused the operator key.
    #[error("{addr}: login as `{user}` with the operator key refused")]
    Auth {
        /// Where.
        addr: SocketAddr,
        /// The user.
        user: String,
    },
}

/// A logged-in connection.
pub type Conn = Arc<Handle<Client>>;

/// Whether something listens on `addr` (one TCP connect, bounded by `limit`).
pub async fn port_open(addr: SocketAddr, limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Connects, checks the host key and logs in, all within `limit`.
pub async fn open(
    addr: SocketAddr,
    trust: Trust,
    user: &str,
    key: Arc<PrivateKey>,
    limit: Duration,
    keepalive: Duration,
) -> Result<Conn, ConnError> {
    let verdict = Arc::new(Mutex::new(None));
    let client = Client {
        trust,
        verdict: verdict.clone(),
    };
    let config = Arc::new(Config {
        keepalive_interval: Some(keepalive),
        keepalive_max: 3,
        nodelay: true,
        ..Config::default()
    });
    let ssh_err = |e: russh::Error| ConnError::Ssh {
        addr,
        message: e.to_string(),
    };
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| ConnError::Ssh {
                addr,
                message: e.to_string(),
            })?;
        let _ = stream.set_nodelay(true);
        let connected = russh::client::connect_stream(config, stream, client).await;
        let mut handle = match connected {
            Ok(h) => h,
            Err(e) => {
                if let Some(Verdict::Mismatch { expected, seen }) = lock(&verdict).clone() {
                    return Err(ConnError::HostKey {
                        addr,
                        expected,
                        seen,
                    });
                }
                return Err(ssh_err(e));
            }
        };
        let auth = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, None))
            .await
            .map_err(ssh_err)?;
        if !auth.success() {
            return Err(ConnError::Auth {
                addr,
                user: user.to_string(),
            });
        }
        Ok(Arc::new(handle))
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(ConnError::Timeout {
            addr,
            secs: limit.as_secs(),
        }),
    }
}

/// Quotes a word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Wraps `cmd` so it runs as root when the login user is not: through `doas -n` or
/// `sudo -n` when either works without a password, else as the user.
pub fn privileged(cmd: &str) -> String {
    format!(
        "P=; if [ \"$(id -u)\" != 0 ]; then for s in doas sudo; do \
         if command -v $s >/dev/null 2>&1 && $s -n true >/dev/null 2>&1; then P=\"$s -n\"; break; fi; \
         done; fi; exec $P {cmd}"
    )
}

/// Runs `cmd` and returns its stdout and exit status, within `limit`; output is capped
/// at `max` bytes.
pub async fn run(
    conn: &Conn,
    cmd: &str,
    limit: Duration,
    max: usize,
) -> Result<(Vec<u8>, Option<u32>), String> {
    let work = async {
        let mut ch = conn
            .channel_open_session()
            .await
            .map_err(|e| e.to_string())?;
        ch.exec(true, cmd).await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut status = None;
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    let room = max.saturating_sub(out.len());
                    out.extend_from_slice(&data[..data.len().min(room)]);
                }
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        Ok((out, status))
    };
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| format!("`{cmd}` did not finish within {} s", limit.as_secs()))?
}

/// Runs `cmd` (a `tail -F`) and sends each complete line to `tx` until the command or
/// the connection ends. Lines are cut at [`parse::MAX_LINE`]; invalid UTF-8 is replaced.
pub async fn follow(conn: &Conn, cmd: &str, tx: &mpsc::Sender<String>) -> Result<(), String> {
    let mut ch = conn
        .channel_open_session()
        .await
        .map_err(|e| e.to_string())?;
    ch.exec(true, cmd).await.map_err(|e| e.to_string())?;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(msg) = ch.wait().await {
        let ChannelMsg::Data { data } = msg else {
            if matches!(msg, ChannelMsg::Close | ChannelMsg::Eof) {
                break;
            }
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            let text = parse::clip(text.trim_end_matches('\r')).to_string();
            if tx.send(text).await.is_err() {
                return Ok(());
            }
        }
        if buf.len() > 2 * parse::MAX_LINE {
            // A line with no end: keep its start, drop the rest up to the next newline.
            buf.truncate(parse::MAX_LINE);
        }
    }
    Ok(())
}
