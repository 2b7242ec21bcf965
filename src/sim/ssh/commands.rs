//! The commands the simulated sshd runs: the watcher's `tail`/`cat` forms (peeled of the
//! wrappers it sends them in), tiny-cloud's status, `hostname`, `reboot`/`poweroff`,
//! `kubectl get nodes`, and pxelab's snapshot script (no datastore here).

use std::time::Duration;

use russh::server::Handle;
use russh::ChannelId;
use tokio_util::sync::CancellationToken;

use super::{err, out, SshdState};
use crate::sim::logs::LogFile;

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

/// Runs one exec request to its end (or until the channel closes); the exit status.
pub(super) async fn run_command(
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
    // pxelab's datastore snapshot script (watch::snapshot): a simulated server keeps no
    // k3s datastore, so it answers as a real server does before its first start.
    if words
        .first()
        .is_some_and(|w| w.starts_with("D=/var/lib/rancher/k3s/server"))
    {
        let why = "no k3s datastore in /var/lib/rancher/k3s/server/db yet (a simulated node)\n";
        err(handle, ch, why.into()).await;
        return 3;
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
        [cmd @ ("reboot" | "/sbin/reboot" | "poweroff" | "/sbin/poweroff"), ..] => {
            let Some(m) = st.machine.clone() else {
                err(handle, ch, format!("{cmd}: Operation not permitted\n")).await;
                return 1;
            };
            crate::sim::node::power_cycle(m, cmd.ends_with("poweroff"));
            0
        }
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
