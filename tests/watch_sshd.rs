//! The SSH watcher against a real OpenSSH sshd on loopback (unprivileged port), with a
//! temporary "node root" whose log files the test appends to in the real tiny-cloud and
//! k3s formats, and a script standing in for `k3s kubectl get nodes -o json`.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pxelab::config::Lab;
use pxelab::engine::event::{ActionStatus, CloudPhase, K3sFailure, K3sStep};
use pxelab::engine::{Engine, Event, EventKind, FetchKind, NodeState};
use pxelab::watch::{run_with, WatchOptions};
use pxelab::Mac;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

const M1: &str = "52:54:00:00:00:01";
const M2: &str = "52:54:00:00:00:02";
const WAIT: Duration = Duration::from_secs(40);

fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

fn free_port() -> u16 {
    common::free_port()
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A real sshd on 127.0.0.1:port, killed (with every session it started) on drop.
struct Sshd {
    dir: PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

fn descendants(root: u32) -> Vec<u32> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        if let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) {
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parent.insert(pid, ppid);
            }
        }
    }
    let mut out = vec![];
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (&c, &pp) in &parent {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

impl Sshd {
    /// Writes the config (host key = `host_key_pem`, authorized key = `authorized`) and
    /// starts sshd; waits until it accepts connections.
    fn start(dir: &Path, port: u16, host_key_pem: &str, authorized: &str) -> Sshd {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        let hk = dir.join("host_key");
        std::fs::write(&hk, host_key_pem).unwrap();
        std::fs::set_permissions(&hk, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ak = dir.join("authorized_keys");
        std::fs::write(&ak, format!("{authorized}\n")).unwrap();
        let cfg = dir.join("sshd_config");
        std::fs::write(
            &cfg,
            format!(
                "ListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
                 StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nLogLevel VERBOSE\n",
                hk.display(),
                ak.display(),
                dir.join("sshd.pid").display()
            ),
        )
        .unwrap();
        if common::is_root() {
            // sshd's privilege separation directory.
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let mut s = Sshd {
            dir: dir.to_path_buf(),
            port,
            child: None,
        };
        s.restart();
        s
    }

    fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("sshd.log"))
            .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(self.dir.join("sshd_config"))
            .args(["-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        let port = self.port;
        let up = common::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(up.is_some(), "sshd did not start: {}", self.log());
    }

    /// Kills sshd, its connection processes and the `tail`s its sessions run. Session
    /// shells are left to finish by themselves: killing one in the middle of its rc
    /// file can leave stale locks behind (pyenv's rehash lock, for one).
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let kids = descendants(c.id());
            let _ = c.kill();
            let _ = c.wait();
            let comm = |pid: u32| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            for pid in kids {
                if matches!(comm(pid).as_str(), "sshd" | "tail") {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).output();
                }
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A lab with a k3s server (M1) and an agent (M2), its sshd, its node root and watcher.
struct Rig {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    engine: Engine,
    rx: broadcast::Receiver<Event>,
    cancel: CancellationToken,
    seen: Vec<Event>,
    sshd: Sshd,
}

impl Rig {
    /// `host_key_of`: the MAC whose pinned key sshd presents; `trust`: ssh.host_keys.
    async fn new(host_key_of: &str, trust: &str) -> Rig {
        Rig::with_connect_timeout(host_key_of, trust, Duration::from_secs(10)).await
    }

    async fn with_connect_timeout(host_key_of: &str, trust: &str, limit: Duration) -> Rig {
        let tmp = tempfile::tempdir().unwrap();
        let port = free_port();
        let text = format!(
            "name: watchtest\nssh:\n  user: {}\n  port: {port}\n  host_keys: {trust}\nboot:\n  kernel: vmlinuz\n\
             nodes:\n  - mac: {M1}\n    hostname: server-1\n    role: k3s-server\n\
             \x20 - mac: {M2}\n    hostname: agent-1\n    role: k3s-agent\n",
            user()
        );
        let lab = Lab::parse(&tmp.path().join("lab.yaml"), &text).unwrap();
        let shown = pxelab::secrets::for_node(&lab, mac(host_key_of)).unwrap();
        let mine = pxelab::secrets::for_node(&lab, mac(M1)).unwrap();
        let sshd = Sshd::start(
            &tmp.path().join("sshd"),
            port,
            shown.host_private_key.as_ref().unwrap(),
            mine.operator_public_key.as_ref().unwrap(),
        );
        let root = tmp.path().join("node");
        std::fs::create_dir_all(root.join("var/log")).unwrap();
        std::fs::create_dir_all(root.join("var/lib/cloud")).unwrap();
        std::fs::write(root.join("var/log/messages"), "").unwrap();
        let kubectl = root.join("k3s");
        std::fs::write(
            &kubectl,
            format!(
                "#!/bin/sh\nexec cat {}\n",
                root.join("nodes.json").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kubectl, std::fs::Permissions::from_mode(0o755)).unwrap();
        let opts = WatchOptions {
            messages_path: root.join("var/log/messages").display().to_string(),
            k3s_log_path: root.join("var/log/k3s.log").display().to_string(),
            bootstrap_marker: root
                .join("var/lib/cloud/.bootstrap-complete")
                .display()
                .to_string(),
            kubectl: format!("{} kubectl get nodes -o json", kubectl.display()),
            backoff_max: Duration::from_millis(500),
            ping_every: Duration::from_millis(500),
            ping_timeout: Duration::from_secs(3),
            poll_every: Duration::from_millis(300),
            connect_timeout: limit,
            ..WatchOptions::default()
        };
        let engine = Engine::new(lab);
        let rx = engine.subscribe();
        let cancel = CancellationToken::new();
        tokio::spawn(run_with(engine.clone(), cancel.clone(), opts));
        Rig {
            _tmp: tmp,
            root,
            engine,
            rx,
            cancel,
            seen: Vec::new(),
            sshd,
        }
    }

    /// What the HTTP server reports when server-1 boots from 127.0.0.1.
    fn nocloud_fetched(&self) {
        self.boots_from(M1, [127, 0, 0, 1]);
    }

    /// What the HTTP server reports when node `m` fetches its boot script, then its
    /// user-data, from `ip`.
    fn boots_from(&self, m: &str, ip: [u8; 4]) {
        for (path, what) in [
            (format!("/boot.ipxe?mac={m}"), FetchKind::Script),
            (format!("/nocloud/{m}/user-data"), FetchKind::UserData),
        ] {
            self.engine.emit(
                Some(mac(m)),
                EventKind::HttpFetch {
                    path,
                    client: IpAddr::from(ip),
                    what,
                    status: 200,
                    bytes: 100,
                    ms: 1,
                },
            );
        }
    }

    fn append(&self, rel: &str, lines: &[&str]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(rel))
            .unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }

    /// Waits (bounded) for an event matching `pred`; every event read is kept in `seen`.
    async fn expect(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Ok(ev)) => {
                    self.seen.push(ev.clone());
                    if pred(&ev) {
                        return ev;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                _ => panic!(
                    "no {what} within {WAIT:?}; events: {:#?}\nlog tail: {:#?}\nsshd log:\n{}",
                    self.kinds(),
                    self.engine.node(&mac(M1)).map(|r| r.log_tail),
                    self.sshd.log()
                ),
            }
        }
    }

    /// Non-log events seen so far for `m`.
    fn kinds_for(&self, m: &str) -> Vec<EventKind> {
        self.seen
            .iter()
            // The gauge warning reads this machine's own memory and disk, not the node's.
            .filter(|e| {
                e.mac == Some(mac(m))
                    && !e.kind.is_node_local()
                    && !matches!(e.kind, EventKind::ResourcesLow { .. })
            })
            .map(|e| e.kind.clone())
            .collect()
    }

    fn kinds(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter(|e| !matches!(e.kind, EventKind::LogLine { .. }))
            .map(|e| format!("{:?} {}", e.mac, e.kind.describe()))
            .collect()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if std::env::var_os("PXELAB_PRINT_EVENTS").is_some() {
            // What `pxelab up --no-tui` prints for these events.
            for e in self
                .seen
                .iter()
                .filter(|e| !matches!(e.kind, EventKind::LogLine { .. }))
            {
                eprintln!("{}", pxelab::headless::text_line(e));
            }
        }
        self.cancel.cancel();
    }
}

fn is<'a>(m: &'a str, f: impl Fn(&EventKind) -> bool + 'a) -> impl Fn(&Event) -> bool + 'a {
    move |e: &Event| e.mac == Some(mac(m)) && f(&e.kind)
}

fn tc(phase: CloudPhase, action: &str, status: ActionStatus) -> EventKind {
    EventKind::TinyCloud {
        phase,
        action: action.into(),
        status,
    }
}

fn ssh_ok() -> bool {
    // Started as /usr/sbin/sshd (sshd re-executes itself by absolute path).
    common::require_program("sshd")
        && common::require(
            Path::new("/usr/sbin/sshd").is_file(),
            "sshd at /usr/sbin/sshd",
        )
}

const NODES_NOT_READY: &str = r#"{"apiVersion":"v1","kind":"List","items":[
 {"kind":"Node","metadata":{"name":"server-1"},"status":{"conditions":[
   {"type":"MemoryPressure","status":"False","reason":"KubeletHasSufficientMemory"},
   {"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}]}},
 {"kind":"Node","metadata":{"name":"agent-1"},"status":{"conditions":[
   {"type":"Ready","status":"False","reason":"KubeletNotReady","message":"container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"}]}},
 {"kind":"Node","metadata":{"name":"stranger"},"status":{"conditions":[{"type":"Ready","status":"True"}]}}
]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_tiny_cloud_and_k3s_to_ready() {
    if !ssh_ok() {
        return;
    }
    let mut rig = Rig::new(M1, "pinned").await;
    // Written before sshd is reachable for the watcher: read back from the start.
    rig.append(
        "var/log/messages",
        &[
            "Nov 21 19:08:51 server-1 local7.info tiny-cloud/boot[1987]: expand_root: starting",
            "Nov 21 19:08:51 server-1 local7.info tiny-cloud/boot[1987]: expand_root: skipped",
            "Nov 21 19:08:52 server-1 local7.info tiny-cloud/early[2011]: save_userdata: done",
            "Nov 21 19:08:53 server-1 daemon.info sshd[2400]: Server listening on 0.0.0.0 port 22.",
        ],
    );
    rig.nocloud_fetched();
    rig.expect("ssh-up", is(M1, |k| matches!(k, EventKind::SshUp { .. })))
        .await;
    rig.append(
        "var/log/messages",
        &[
            "Nov 21 19:09:00 server-1 local7.info tiny-cloud/main[2345]: set_hostname: starting",
            "Nov 21 19:09:00 server-1 local7.info tiny-cloud/main[2345]: set_hostname: done",
            "Nov 21 19:09:05 server-1 local7.info tiny-cloud/final[2501]: userdata_runcmd: done",
        ],
    );
    rig.expect(
        "runcmd done",
        is(M1, |k| {
            *k == tc(CloudPhase::Final, "userdata_runcmd", ActionStatus::Done)
        }),
    )
    .await;
    // The marker file, polled.
    std::fs::write(rig.root.join("var/lib/cloud/.bootstrap-complete"), "").unwrap();
    rig.expect(
        "bootstrap complete",
        is(M1, |k| *k == EventKind::TinyCloudComplete),
    )
    .await;
    rig.append(
        "var/log/k3s.log",
        &[
            r#"time="2024-05-20T10:00:00Z" level=info msg="Starting k3s v1.30.1+k3s1 (80978b5b)""#,
            r#"time="2024-05-20T10:00:20Z" level=info msg="Kube API server is now running""#,
            r#"time="2024-05-20T10:00:31Z" level=info msg="Wrote kubeconfig /etc/rancher/k3s/k3s.yaml""#,
            r#"time="2024-05-20T10:00:31Z" level=info msg="k3s is up and running""#,
        ],
    );
    rig.expect(
        "k3s up",
        is(M1, |k| {
            *k == EventKind::K3s {
                step: K3sStep::ServerUp,
            }
        }),
    )
    .await;
    // The log line says complete again: reported once only.
    rig.append(
        "var/log/messages",
        &[
            "Nov 21 19:09:05 server-1 local7.info tiny-cloud/final[2501]: bootstrap marked complete",
            "Nov 21 19:09:06 server-1 local7.info tiny-cloud/final[2501]: sentinel: done",
        ],
    );
    rig.expect(
        "sentinel",
        is(M1, |k| {
            *k == tc(CloudPhase::Final, "sentinel", ActionStatus::Done)
        }),
    )
    .await;
    // kubectl on the server: the agent counts as Ready once it joined in its current
    // boot (the server may list it Ready from an earlier boot), and as NotReady when a
    // Ready agent stops posting its status.
    rig.engine.emit(
        Some(mac(M2)),
        EventKind::K3s {
            step: K3sStep::Joined,
        },
    );
    let ready_json = NODES_NOT_READY.replace(
        r#""status":"False","reason":"KubeletNotReady""#,
        r#""status":"True","reason":"KubeletReady""#,
    );
    std::fs::write(rig.root.join("nodes.json"), &ready_json).unwrap();
    rig.expect(
        "agent Ready",
        is(M2, |k| {
            *k == EventKind::K3s {
                step: K3sStep::Ready,
            }
        }),
    )
    .await;
    std::fs::write(rig.root.join("nodes.json"), NODES_NOT_READY).unwrap();
    rig.expect(
        "agent NotReady",
        is(M2, |k| {
            *k == EventKind::K3s {
                step: K3sStep::NotReady,
            }
        }),
    )
    .await;
    assert_eq!(
        rig.engine.node(&mac(M2)).map(|r| r.state),
        Some(NodeState::Joined)
    );
    // Reported once per change, not at every poll.
    tokio::time::sleep(Duration::from_secs(4)).await;
    while let Ok(ev) = rig.rx.try_recv() {
        rig.seen.push(ev);
    }
    let not_ready = rig
        .kinds_for(M2)
        .into_iter()
        .filter(|k| {
            *k == EventKind::K3s {
                step: K3sStep::NotReady,
            }
        })
        .count();
    assert_eq!(not_ready, 1);

    let got: Vec<EventKind> = rig
        .kinds_for(M1)
        .into_iter()
        .filter(|k| {
            matches!(
                k,
                EventKind::TinyCloud { .. }
                    | EventKind::TinyCloudComplete
                    | EventKind::K3s { .. }
                    | EventKind::SshUp { .. }
            )
        })
        .collect();
    use ActionStatus as A;
    use CloudPhase as P;
    let want = vec![
        tc(P::Boot, "expand_root", A::Starting),
        tc(P::Boot, "expand_root", A::Skipped),
        tc(P::Early, "save_userdata", A::Done),
        tc(P::Main, "set_hostname", A::Starting),
        tc(P::Main, "set_hostname", A::Done),
        tc(P::Final, "userdata_runcmd", A::Done),
        EventKind::TinyCloudComplete,
        EventKind::K3s {
            step: K3sStep::Starting {
                version: "v1.30.1+k3s1".into(),
            },
        },
        EventKind::K3s {
            step: K3sStep::ApiUp,
        },
        EventKind::K3s {
            step: K3sStep::ServerUp,
        },
        tc(P::Final, "sentinel", A::Done),
        EventKind::K3s {
            step: K3sStep::Ready,
        },
    ];
    let got_no_ssh: Vec<EventKind> = got
        .iter()
        .filter(|k| !matches!(k, EventKind::SshUp { .. }))
        .cloned()
        .collect();
    assert_eq!(got_no_ssh, want, "all: {:#?}", rig.kinds());
    assert!(matches!(got[0], EventKind::SshUp { .. }), "{got:#?}");
    let rec = rig.engine.node(&mac(M1)).unwrap();
    assert_eq!(rec.state, NodeState::Ready, "{rec:#?}");
    assert!(
        rec.log_tail
            .iter()
            .any(|l| l.contains("messages: ") && l.contains("set_hostname: done")),
        "{:?}",
        rec.log_tail
    );
    assert!(rec
        .log_tail
        .iter()
        .any(|l| l.contains("k3s.log: ") && l.contains("Wrote kubeconfig")));
    // The agent stopped posting its status: back from Ready to joined.
    assert_eq!(rig.engine.node(&mac(M2)).unwrap().state, NodeState::Joined);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_reason_is_recognised() {
    if !ssh_ok() {
        return;
    }
    let mut rig = Rig::new(M1, "pinned").await;
    rig.nocloud_fetched();
    rig.expect("ssh-up", is(M1, |k| matches!(k, EventKind::SshUp { .. })))
        .await;
    let cases = [
        (
            K3sFailure::ServerNotReady,
            r#"time="2024-05-20T10:01:30Z" level=info msg="Waiting to retrieve agent configuration; server is not ready: Get \"https://127.0.0.1:6444/v1-k3s/serving-kubelet.crt\": net/http: TLS handshake timeout""#,
        ),
        (
            K3sFailure::ServerUnreachable,
            r#"time="2024-05-20T10:02:11Z" level=error msg="Failed to validate connection to cluster at https://192.168.64.130:6443: failed to get CA certs: Get \"https://127.0.0.1:6444/cacerts\": read tcp 127.0.0.1:41496->127.0.0.1:6444: read: connection reset by peer""#,
        ),
        (
            K3sFailure::TokenMismatch,
            r#"time="2024-05-20T10:02:11Z" level=fatal msg="Failed to validate connection to cluster at https://192.168.64.130:6443: token CA hash does not match the Cluster CA certificate hash: 2f2b7cbb1b0bb1aa != 6f3a8e0d0c7e1c21""#,
        ),
        (
            K3sFailure::NodePasswordRejected,
            r#"time="2024-05-20T10:03:40Z" level=info msg="Waiting to retrieve agent configuration; server is not ready: Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag""#,
        ),
        (
            K3sFailure::CgroupsMissing,
            r#"time="2024-05-20T10:01:02Z" level=fatal msg="failed to find memory cgroup (v2)""#,
        ),
    ];
    for (reason, line) in &cases {
        rig.append("var/log/k3s.log", &[line]);
        if reason.is_transient() {
            // Waits are their own kind, never `node-failed`, and do not fail the node.
            let ev = rig
                .expect(
                    "node-waiting",
                    is(M1, |k| matches!(k, EventKind::NodeWaiting { .. })),
                )
                .await;
            let EventKind::NodeWaiting { reason: got, .. } = &ev.kind else {
                unreachable!()
            };
            assert_eq!(got, reason);
            let rec = rig.engine.node(&mac(M1)).unwrap();
            assert_ne!(rec.state, NodeState::Failed);
            assert_eq!(rec.failure, None);
            assert!(
                pxelab::headless::text_line(&ev).contains("k3s waiting ("),
                "{ev:?}"
            );
            continue;
        }
        let ev = rig
            .expect(
                "node-failed",
                is(M1, |k| matches!(k, EventKind::NodeFailed { .. })),
            )
            .await;
        let EventKind::NodeFailed {
            reason: got,
            line: got_line,
            summary,
            msg,
        } = &ev.kind
        else {
            unreachable!()
        };
        assert_eq!((got, got_line.as_str()), (reason, *line));
        assert_eq!(summary, &reason.summary(msg));
        let text = pxelab::headless::text_line(&ev);
        assert!(
            text.contains(&format!("FAILED ({}): {summary}", reason.class())),
            "{text}"
        );
        let json = pxelab::headless::json_line(&ev);
        assert!(
            json.contains(&format!("\"reason\":\"{}\"", reason.class())),
            "{json}"
        );
        assert!(
            json.contains("\"summary\":") && json.contains("\"line\":"),
            "{json}"
        );
        // The record keeps the boot's first failure (the cause; later ones are in the
        // timeline).
        let rec = rig.engine.node(&mac(M1)).unwrap();
        let why = rec.failure_reason.clone().unwrap();
        assert_eq!(why.class, "token-mismatch");
        if *reason == K3sFailure::TokenMismatch {
            assert_eq!(&why.summary, summary);
        }
        assert!(rec
            .timeline
            .iter()
            .any(|t| t.text.contains(summary.as_str())));
    }
    assert_eq!(rig.engine.node(&mac(M1)).unwrap().state, NodeState::Failed);
    let bad =
        "Nov 21 19:09:02 server-1 local7.err tiny-cloud/main[2345]: userdata_packages: failed";
    rig.append("var/log/messages", &[bad]);
    let ev = rig
        .expect(
            "cloud-failed",
            is(M1, |k| matches!(k, EventKind::CloudFailed { .. })),
        )
        .await;
    assert_eq!(
        ev.kind,
        EventKind::CloudFailed {
            phase: CloudPhase::Main,
            action: "userdata_packages".into(),
            line: bad.into(),
            summary: "tiny-cloud main/userdata_packages failed (apk could not install the packages user-data asks for)".into(),
        }
    );
    assert!(pxelab::headless::text_line(&ev)
        .contains("FAILED (cloud-action): tiny-cloud main/userdata_packages failed"));
    // System failures from /var/log/messages and k3s's clock complaint, each reported
    // once however often the node repeats it.
    let system = [
        ("var/log/messages", K3sFailure::OutOfMemory, "Dec  4 13:52:45 server-1 kern.err kernel: [  812.331204] Out of memory: Killed process 2345 (k3s) total-vm:1843200kB, anon-rss:1520044kB"),
        ("var/log/messages", K3sFailure::ApkFetch, "Dec  4 13:50:01 server-1 user.err tiny-cloud/main[2345]: ERROR: http://10.77.0.1:8080/alpine/v3.20/main/x86_64/APKINDEX.tar.gz: UNTRUSTED signature"),
        ("var/log/k3s.log", K3sFailure::CertNotValid, r#"time="2000-01-01T00:01:12Z" level=error msg="Failed to validate connection to cluster at https://10.77.0.10:6443: x509: certificate has expired or is not yet valid: current time 2000-01-01T00:01:12Z is before 2026-12-04T10:00:00Z""#),
    ];
    for (file, reason, line) in system {
        rig.append(file, &[line, line]);
        let ev = rig
            .expect(
                reason.class(),
                is(
                    M1,
                    move |k| matches!(k, EventKind::NodeFailed { reason: r, .. } if *r == reason),
                ),
            )
            .await;
        let rec = rig.engine.node(&mac(M1)).unwrap();
        let EventKind::NodeFailed {
            summary, line: l, ..
        } = &ev.kind
        else {
            unreachable!()
        };
        assert_eq!(l, line);
        assert!(rec
            .timeline
            .iter()
            .any(|t| t.text.contains(summary.as_str())));
    }
    let repeats = rig
        .kinds_for(M1)
        .iter()
        .filter(|k| {
            matches!(
                k,
                EventKind::NodeFailed {
                    reason: K3sFailure::OutOfMemory,
                    ..
                }
            )
        })
        .count();
    assert_eq!(repeats, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_host_key_is_refused() {
    if !ssh_ok() {
        return;
    }
    // sshd presents agent-1's key where server-1's pinned key is expected.
    let mut rig = Rig::new(M2, "pinned").await;
    rig.append(
        "var/log/messages",
        &["Nov 21 19:09:00 server-1 local7.info tiny-cloud/main[2345]: set_hostname: done"],
    );
    rig.nocloud_fetched();
    let ev = rig
        .expect(
            "host-key-mismatch",
            is(M1, |k| matches!(k, EventKind::HostKeyMismatch { .. })),
        )
        .await;
    let lab = rig.engine.lab();
    let (_, want) = pxelab::secrets::host_public_key(&lab, mac(M1)).unwrap();
    let (_, shown) = pxelab::secrets::host_public_key(&lab, mac(M2)).unwrap();
    assert_eq!(
        ev.kind,
        EventKind::HostKeyMismatch {
            expected: want,
            seen: shown
        }
    );
    assert_eq!(rig.engine.node(&mac(M1)).unwrap().state, NodeState::Failed);
    // Not trusted: no login, nothing read. A later event proves the watcher moved on.
    rig.engine.emit(None, EventKind::ConfigLoaded { nodes: 2 });
    rig.expect("marker", |e| {
        matches!(e.kind, EventKind::ConfigLoaded { .. })
    })
    .await;
    assert!(!rig
        .kinds_for(M1)
        .iter()
        .any(|k| matches!(k, EventKind::SshUp { .. } | EventKind::TinyCloud { .. })));
    assert!(rig.engine.node(&mac(M1)).unwrap().log_tail.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_on_first_use_accepts_an_unpinned_key() {
    if !ssh_ok() {
        return;
    }
    let mut rig = Rig::new(M2, "tofu").await;
    rig.nocloud_fetched();
    rig.expect("ssh-up", is(M1, |k| matches!(k, EventKind::SshUp { .. })))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_noticed_and_resumed() {
    if !ssh_ok() {
        return;
    }
    let mut rig = Rig::new(M1, "pinned").await;
    rig.nocloud_fetched();
    rig.expect("ssh-up", is(M1, |k| matches!(k, EventKind::SshUp { .. })))
        .await;
    rig.append(
        "var/log/messages",
        &["Nov 21 19:09:00 server-1 local7.info tiny-cloud/main[2345]: set_hostname: done"],
    );
    let first = tc(CloudPhase::Main, "set_hostname", ActionStatus::Done);
    rig.expect("first line", is(M1, |k| *k == first)).await;

    // The node goes away.
    rig.sshd.kill();
    rig.expect(
        "ssh-lost",
        is(M1, |k| matches!(k, EventKind::SshLost { .. })),
    )
    .await;
    // While it is away its log grows; it comes back.
    rig.append(
        "var/log/messages",
        &["Nov 21 19:09:05 server-1 local7.info tiny-cloud/final[2501]: userdata_runcmd: done"],
    );
    rig.sshd.restart();
    rig.expect(
        "ssh-up again",
        is(M1, |k| matches!(k, EventKind::SshUp { .. })),
    )
    .await;
    let second = tc(CloudPhase::Final, "userdata_runcmd", ActionStatus::Done);
    rig.expect("line written while away", is(M1, |k| *k == second))
        .await;
    rig.append(
        "var/log/messages",
        &["Nov 21 19:09:06 server-1 local7.info tiny-cloud/final[2501]: after: done"],
    );
    let third = tc(CloudPhase::Final, "after", ActionStatus::Done);
    rig.expect("line after return", is(M1, |k| *k == third))
        .await;
    // Resumed where it stopped: the first line was not replayed.
    let kinds = rig.kinds_for(M1);
    assert_eq!(
        kinds.iter().filter(|k| **k == first).count(),
        1,
        "{kinds:#?}"
    );
    // At least: a ping answered late on a loaded machine may add a reconnect.
    assert!(
        kinds
            .iter()
            .filter(|k| matches!(k, EventKind::SshUp { .. }))
            .count()
            >= 2,
        "it came back: {kinds:#?}"
    );
}

/// Accepts TCP connections and never says a word; counts those still open.
struct Tarpit {
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Tarpit {
    async fn start(addr: std::net::SocketAddr) -> Tarpit {
        use std::sync::atomic::Ordering;
        use tokio::io::AsyncReadExt;
        let l = tokio::net::TcpListener::bind(addr).await.unwrap();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let o = open.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let o = o.clone();
                o.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Tarpit { open, task }
    }
}

impl Drop for Tarpit {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_does_not_hold_up_another() {
    if !ssh_ok() {
        return;
    }
    // A long handshake limit, so a serial watcher would sit on agent-1 for a minute.
    let mut rig = Rig::with_connect_timeout(M1, "pinned", Duration::from_secs(120)).await;
    let port = rig.sshd.port;
    // agent-1 booted from 127.0.0.2, where something accepts SSH connections and never
    // answers.
    let pit = Tarpit::start(([127, 0, 0, 2], port).into()).await;
    rig.boots_from(M2, [127, 0, 0, 2]);
    rig.expect(
        "agent-1 connecting",
        is(M2, |k| matches!(k, EventKind::SshConnecting { .. })),
    )
    .await;
    let stuck = common::wait_for(Duration::from_secs(20), Duration::from_millis(20), || {
        (pit.open.load(std::sync::atomic::Ordering::SeqCst) > 0).then_some(())
    });
    assert!(stuck.is_some(), "the watcher never reached the tarpit");
    // A meta-data fetch from an address server-1 did not boot from is not followed.
    rig.engine.emit(
        Some(mac(M1)),
        EventKind::HttpFetch {
            path: format!("/nocloud/{M1}/meta-data"),
            client: IpAddr::from([127, 0, 0, 9]),
            what: FetchKind::MetaData,
            status: 200,
            bytes: 10,
            ms: 1,
        },
    );
    rig.nocloud_fetched();
    rig.expect(
        "server-1 up",
        is(M1, |k| matches!(k, EventKind::SshUp { .. })),
    )
    .await;
    rig.append(
        "var/log/messages",
        &["Nov 21 19:09:00 server-1 local7.info tiny-cloud/main[2345]: set_hostname: done"],
    );
    let done = tc(CloudPhase::Main, "set_hostname", ActionStatus::Done);
    rig.expect("server-1 followed", is(M1, |k| *k == done))
        .await;
    // agent-1's handshake is still hanging: the two were watched side by side.
    assert!(pit.open.load(std::sync::atomic::Ordering::SeqCst) > 0);
    assert!(!rig
        .kinds_for(M2)
        .iter()
        .any(|k| matches!(k, EventKind::SshUp { .. })));
    assert!(!rig.seen.iter().any(|e| matches!(
        &e.kind,
        EventKind::SshConnecting { addr, .. } if addr.ip() == IpAddr::from([127, 0, 0, 9])
    )));
}

/// A TCP relay that can go silent (a node losing power: no FIN, no RST) and come back.
struct Relay {
    listen: std::net::SocketAddr,
    to: std::net::SocketAddr,
    freeze: CancellationToken,
    release: CancellationToken,
    accept: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(listen: std::net::SocketAddr, to: std::net::SocketAddr) -> Relay {
        let mut r = Relay {
            listen,
            to,
            freeze: CancellationToken::new(),
            release: CancellationToken::new(),
            accept: None,
        };
        r.up().await;
        r
    }

    async fn up(&mut self) {
        self.release.cancel();
        self.freeze = CancellationToken::new();
        self.release = CancellationToken::new();
        let l = tokio::net::TcpListener::bind(self.listen).await.unwrap();
        let (to, freeze, release) = (self.to, self.freeze.clone(), self.release.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut a, _)) = l.accept().await {
                let (freeze, release) = (freeze.clone(), release.clone());
                tokio::spawn(async move {
                    let Ok(mut b) = tokio::net::TcpStream::connect(to).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut a, &mut b) => return,
                        _ = freeze.cancelled() => {}
                    }
                    // Silent: hold both sockets open, forward nothing.
                    release.cancelled().await;
                    drop((a, b));
                });
            }
        }));
    }

    /// Stops forwarding and accepting, without closing anything.
    fn silence(&mut self) {
        if let Some(t) = self.accept.take() {
            t.abort();
        }
        self.freeze.cancel();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.silence();
        self.release.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_goes_silent_is_noticed_and_followed_when_back() {
    if !ssh_ok() {
        return;
    }
    let mut rig = Rig::new(M1, "pinned").await;
    let port = rig.sshd.port;
    // server-1 is reached at 127.0.0.3 through a relay to the real sshd.
    let mut relay =
        Relay::start(([127, 0, 0, 3], port).into(), ([127, 0, 0, 1], port).into()).await;
    rig.boots_from(M1, [127, 0, 0, 3]);
    rig.expect("ssh-up", is(M1, |k| matches!(k, EventKind::SshUp { .. })))
        .await;
    relay.silence();
    let t0 = std::time::Instant::now();
    let lost = rig
        .expect(
            "ssh-lost",
            is(M1, |k| matches!(k, EventKind::SshLost { .. })),
        )
        .await;
    eprintln!(
        "silent node noticed after {:?}: {}",
        t0.elapsed(),
        pxelab::headless::text_line(&lost)
    );
    rig.append(
        "var/log/messages",
        &["Nov 21 19:09:05 server-1 local7.info tiny-cloud/final[2501]: userdata_runcmd: done"],
    );
    relay.up().await;
    let up = rig
        .expect(
            "ssh-up again",
            is(M1, |k| matches!(k, EventKind::SshUp { .. })),
        )
        .await;
    eprintln!("{}", pxelab::headless::text_line(&up));
    let done = tc(CloudPhase::Final, "userdata_runcmd", ActionStatus::Done);
    rig.expect("line written while away", is(M1, |k| *k == done))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_runs_as_root_over_a_checked_connection() {
    use pxelab::watch::conn::ConnError;
    use pxelab::watch::reboot::{run_as_root, RebootError};
    if !ssh_ok() {
        return;
    }
    // sshd shows server-1's pinned key.
    let rig = Rig::new(M1, "pinned").await;
    // Not booted this run and no fixed ip: nowhere to connect.
    let err = run_as_root(&rig.engine, mac(M1), "true").await.unwrap_err();
    assert!(matches!(err, RebootError::NoAddress { .. }), "{err}");

    // Booted from 127.0.0.1: the command runs there (a harmless one, not `reboot`).
    rig.boots_from(M1, [127, 0, 0, 1]);
    let marker = rig.root.join("rebooted");
    let addr = run_as_root(&rig.engine, mac(M1), &format!("touch {}", marker.display()))
        .await
        .unwrap();
    assert_eq!(addr.ip(), IpAddr::from([127, 0, 0, 1]));
    assert!(marker.exists(), "the command ran on the node");

    // A failing command is an error with its status and output.
    let err = run_as_root(&rig.engine, mac(M1), "sh -c 'echo nope; exit 3'")
        .await
        .unwrap_err();
    match &err {
        RebootError::Command { status, output, .. } => {
            assert_eq!((*status, output.as_str()), (3, "nope"), "{err}");
        }
        other => panic!("{other}"),
    }

    // agent-1 at the same address shows server-1's key, not its own: refused before
    // anything runs.
    rig.boots_from(M2, [127, 0, 0, 1]);
    let second = rig.root.join("agent-rebooted");
    let err = run_as_root(&rig.engine, mac(M2), &format!("touch {}", second.display()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RebootError::Connect {
                source: ConnError::HostKey { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(!second.exists());
}
