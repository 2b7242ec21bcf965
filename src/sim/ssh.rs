//! The simulated node's sshd (russh server side): presents the node's host key, lets in
//! only the authorised keys, and runs the few commands a watcher uses — `tail`/`cat` of
//! `/var/log/messages` and `/var/log/k3s.log` (following with `-f`/`-F`),
//! `tiny-cloud --bootstrap status`, `hostname`, and on the k3s server
//! `k3s kubectl get nodes -o json`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Handle, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::cluster::Cluster;
use super::logs::{LogFile, NodeLogs};

/// What the node's sshd knows.
#[derive(Clone)]
pub struct SshdState {
    /// The node's log files.
    pub logs: NodeLogs,
    /// The cluster (for kubectl on the server).
    pub cluster: Cluster,
    /// Whether this node runs the k3s server.
    pub k3s_server: bool,
    /// Keys allowed to log in.
    pub authorized: Vec<PublicKey>,
    /// The login user.
    pub user: String,
}

/// Starts the sshd on `listener` until `cancel` fires. Sessions end with it.
pub fn spawn(
    listener: TcpListener,
    host_key: PrivateKey,
    state: SshdState,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let config = Arc::new(russh::server::Config {
        server_id: russh::SshId::Standard("SSH-2.0-OpenSSH_9.9".into()),
        keys: vec![host_key],
        auth_rejection_time: Duration::from_millis(200),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(600)),
        nodelay: true,
        ..Default::default()
    });
    let state = Arc::new(state);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                _ = cancel.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let handler = Sshd {
                state: state.clone(),
                peer,
                channels: HashMap::new(),
                cancel: cancel.child_token(),
            };
            let (config, cancel) = (config.clone(), cancel.clone());
            tokio::spawn(async move {
                let guard = handler.cancel.clone().drop_guard();
                match russh::server::run_stream(config, stream, handler).await {
                    Ok(session) => {
                        tokio::select! {
                            _ = cancel.cancelled() => {}
                            _ = session => {}
                        }
                    }
                    Err(e) => tracing::debug!("sim sshd: session from {peer} failed: {e}"),
                }
                drop(guard);
            });
        }
    })
}

struct Sshd {
    state: Arc<SshdState>,
    peer: SocketAddr,
    channels: HashMap<ChannelId, CancellationToken>,
    cancel: CancellationToken,
}

impl russh::server::Handler for Sshd {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.allowed(user, offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.allowed(user, key.public_key) {
            Auth::Accept
        } else {
            tracing::debug!("sim sshd: refused key for {user} from {}", self.peer);
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels
            .insert(channel.id(), self.cancel.child_token());
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(c) = self.channels.remove(&channel) {
            c.cancel();
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let cmd = String::from_utf8_lossy(data).to_string();
        session.channel_success(channel)?;
        let handle = session.handle();
        let state = self.state.clone();
        let cancel = self
            .channels
            .get(&channel)
            .cloned()
            .unwrap_or_else(|| self.cancel.child_token());
        tokio::spawn(async move {
            let code = run_command(&cmd, &state, &handle, channel, &cancel).await;
            let _ = handle.exit_status_request(channel, code).await;
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }
}

impl Sshd {
    fn allowed(&self, user: &str, key: &PublicKey) -> bool {
        user == self.state.user
            && self
                .state
                .authorized
                .iter()
                .any(|k| k.key_data() == key.key_data())
    }
}

async fn out(handle: &Handle, ch: ChannelId, text: String) -> bool {
    handle.data(ch, text.into_bytes()).await.is_ok()
}

async fn err(handle: &Handle, ch: ChannelId, text: String) -> bool {
    handle.extended_data(ch, 1, text.into_bytes()).await.is_ok()
}

/// How a `tail`/`cat` command reads.
#[derive(Debug, Clone, PartialEq)]
struct ReadSpec {
    files: Vec<String>,
    follow: bool,
    /// `Some(n)`: start at line n (0-based, from `-n +K`); `None`: the last `last` lines.
    from: Option<usize>,
    last: usize,
}

fn parse_read(words: &[&str]) -> Option<ReadSpec> {
    let (cmd, args) = words.split_first()?;
    let mut spec = ReadSpec {
        files: Vec::new(),
        follow: false,
        from: if *cmd == "cat" { Some(0) } else { None },
        last: 10,
    };
    if *cmd != "cat" && *cmd != "tail" {
        return None;
    }
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        match a {
            "-f" | "-F" | "--follow" | "--follow=name" | "--retry" => spec.follow = true,
            "-n" | "--lines" => {
                i += 1;
                let n = args.get(i)?;
                set_count(&mut spec, n)?;
            }
            _ if a.starts_with("-n") && a.len() > 2 => set_count(&mut spec, &a[2..])?,
            _ if a.starts_with("--lines=") => set_count(&mut spec, &a[8..])?,
            _ if a.starts_with('-') => {
                // Combined short flags like -qF.
                if a.contains('f') || a.contains('F') {
                    spec.follow = true;
                }
            }
            _ => spec.files.push(a.to_string()),
        }
        i += 1;
    }
    Some(spec)
}

fn set_count(spec: &mut ReadSpec, n: &str) -> Option<()> {
    if let Some(k) = n.strip_prefix('+') {
        spec.from = Some(k.parse::<usize>().ok()?.saturating_sub(1));
    } else {
        spec.last = n.parse().ok()?;
        spec.from = None;
    }
    Some(())
}

/// Splits a command line into words with POSIX-shell single and double quotes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                in_word = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                cur.push(e);
                            }
                        }
                        d => cur.push(d),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The command a watcher really means: wrappers (`exec $P …` after a privilege probe,
/// `sudo -n`, `doas -n`, `sh -c '…'`) peeled off, redirections and `;`/`|` tails dropped.
pub fn effective_command(cmd: &str) -> Vec<String> {
    let mut line = cmd.trim();
    if let Some(i) = line.rfind("exec $P ") {
        line = &line[i + "exec $P ".len()..];
    }
    let first = line.split([';', '|', '&']).next().unwrap_or("");
    let mut words: Vec<String> = shell_words(first)
        .into_iter()
        .filter(|w| !w.starts_with("2>") && !w.starts_with('>') && w != "/dev/null")
        .collect();
    loop {
        match words.first().map(String::as_str) {
            Some("sudo") | Some("doas") | Some("exec") => {
                words.remove(0);
                while words.first().is_some_and(|w| w.starts_with('-')) {
                    words.remove(0);
                }
            }
            Some("sh") if words.get(1).map(String::as_str) == Some("-c") => {
                let inner = words.get(2).cloned().unwrap_or_default();
                return effective_command(&inner);
            }
            _ => return words,
        }
    }
}

fn path_exists(st: &SshdState, p: &str) -> bool {
    match p {
        "/var/lib/cloud/.bootstrap-complete" => st.logs.bootstrap_complete(),
        "/var/log/messages" | "/etc/hostname" | "/proc/sys/kernel/random/boot_id" => true,
        "/var/log/k3s.log" => st.logs.lines_from(LogFile::K3s, 0).is_some(),
        "/etc/rancher/k3s/k3s.yaml" => st.k3s_server && st.cluster.is_api_up(),
        _ => false,
    }
}

async fn run_command(
    cmd: &str,
    st: &SshdState,
    handle: &Handle,
    ch: ChannelId,
    cancel: &CancellationToken,
) -> u32 {
    let owned = effective_command(cmd);
    let words: Vec<&str> = owned.iter().map(String::as_str).collect();
    if words.contains(&"kubectl") && words.contains(&"get") && words.contains(&"nodes") {
        if !st.k3s_server {
            err(handle, ch, "The connection to the server localhost:8080 was refused - did you specify the right host or port?\n".into()).await;
            return 1;
        }
        return match st.cluster.nodes_json() {
            Ok(j) => {
                out(handle, ch, j + "\n").await;
                0
            }
            Err(e) => {
                err(handle, ch, e + "\n").await;
                1
            }
        };
    }
    match words.as_slice() {
        ["tiny-cloud", "--bootstrap", "status"] => {
            let s = if st.logs.bootstrap_complete() {
                "complete\n"
            } else {
                "incomplete\n"
            };
            out(handle, ch, s.into()).await;
            0
        }
        ["hostname"] | ["cat", "/etc/hostname"] => {
            out(handle, ch, st.logs.hostname() + "\n").await;
            0
        }
        ["cat", "/proc/sys/kernel/random/boot_id"] => {
            out(handle, ch, st.logs.boot_id() + "\n").await;
            0
        }
        ["cat", "/proc/meminfo"] => {
            out(handle, ch, st.logs.meminfo_and_df().0).await;
            0
        }
        ["df", "-k", "/"] => {
            out(handle, ch, st.logs.meminfo_and_df().1).await;
            0
        }
        ["id", "-u"] => {
            out(handle, ch, "0\n".into()).await;
            0
        }
        ["test", "-e" | "-f", p] | ["[", "-e" | "-f", p, "]"] => u32::from(!path_exists(st, p)),
        ["true"] | ["exit", "0"] | [] => 0,
        ["echo", rest @ ..] => {
            out(handle, ch, rest.join(" ") + "\n").await;
            0
        }
        _ => match parse_read(&words) {
            Some(spec) => read_files(spec, st, handle, ch, cancel).await,
            None => {
                let name = words.first().copied().unwrap_or("");
                err(handle, ch, format!("sh: {name}: not found\n")).await;
                127
            }
        },
    }
}

async fn read_files(
    spec: ReadSpec,
    st: &SshdState,
    handle: &Handle,
    ch: ChannelId,
    cancel: &CancellationToken,
) -> u32 {
    let multi = spec.files.len() > 1;
    let mut pos: Vec<Option<usize>> = Vec::new();
    let mut code = 0;
    let mut current: Option<usize> = None;
    let mut changed = st.logs.subscribe();
    for f in &spec.files {
        match LogFile::from_path(f) {
            Some(lf) => match st.logs.lines_from(lf, 0) {
                Some(lines) => pos.push(Some(match spec.from {
                    Some(k) => k.min(lines.len()),
                    None => lines.len().saturating_sub(spec.last),
                })),
                None => {
                    let verb = if spec.from == Some(0) && !spec.follow {
                        "cat"
                    } else {
                        "tail"
                    };
                    err(
                        handle,
                        ch,
                        format!("{verb}: can't open '{f}': No such file or directory\n"),
                    )
                    .await;
                    // A followed file that does not exist yet is read from its start.
                    pos.push(if spec.follow { Some(0) } else { None });
                    code = 1;
                }
            },
            None => {
                err(
                    handle,
                    ch,
                    format!("tail: can't open '{f}': No such file or directory\n"),
                )
                .await;
                pos.push(None);
                code = 1;
            }
        }
    }
    // Bounded: a follower runs until the client closes the channel or the node stops.
    loop {
        for (i, f) in spec.files.iter().enumerate() {
            let (Some(lf), Some(p)) = (LogFile::from_path(f), pos[i]) else {
                continue;
            };
            let Some(lines) = st.logs.lines_from(lf, p) else {
                continue;
            };
            if lines.is_empty() {
                continue;
            }
            let mut text = String::new();
            if multi && current != Some(i) {
                if current.is_some() {
                    text.push('\n');
                }
                text.push_str(&format!("==> {f} <==\n"));
                current = Some(i);
            }
            for l in &lines {
                text.push_str(l);
                text.push('\n');
            }
            pos[i] = Some(p + lines.len());
            if !out(handle, ch, text).await {
                return code;
            }
        }
        if !spec.follow {
            return code;
        }
        tokio::select! {
            _ = cancel.cancelled() => return code,
            r = changed.changed() => if r.is_err() { return code; },
            _ = tokio::time::sleep(Duration::from_secs(5)) => {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tail_forms() {
        let s = parse_read(&[
            "tail",
            "-n",
            "+1",
            "-F",
            "/var/log/messages",
            "/var/log/k3s.log",
        ])
        .unwrap();
        assert_eq!(s.from, Some(0));
        assert!(s.follow);
        assert_eq!(s.files.len(), 2);
        let s = parse_read(&["tail", "-n50", "/var/log/k3s.log"]).unwrap();
        assert_eq!((s.from, s.last, s.follow), (None, 50, false));
        let s = parse_read(&["cat", "/var/log/messages"]).unwrap();
        assert_eq!((s.from, s.follow), (Some(0), false));
        assert!(parse_read(&["rm", "-rf", "/"]).is_none());
    }

    #[test]
    fn peels_watcher_wrappers() {
        let wrapped = "P=; if [ \"$(id -u)\" != 0 ]; then for s in doas sudo; do if command -v $s >/dev/null 2>&1 && $s -n true >/dev/null 2>&1; then P=\"$s -n\"; break; fi; done; fi; exec $P tail -n +12 -F '/var/log/k3s.log'";
        assert_eq!(
            effective_command(wrapped),
            vec!["tail", "-n", "+12", "-F", "/var/log/k3s.log"]
        );
        assert_eq!(
            effective_command("sudo -n k3s kubectl get nodes -o json 2>/dev/null"),
            vec!["k3s", "kubectl", "get", "nodes", "-o", "json"]
        );
        assert_eq!(
            effective_command("sh -c 'test -e \"/var/lib/cloud/.bootstrap-complete\"'"),
            vec!["test", "-e", "/var/lib/cloud/.bootstrap-complete"]
        );
    }
}
