use super::*;

fn tc(phase: CloudPhase, action: &str, status: ActionStatus) -> Option<EventKind> {
    Some(EventKind::TinyCloud {
        phase,
        action: action.into(),
        status,
    })
}

#[test]
fn tiny_cloud_lines() {
    use ActionStatus as A;
    use CloudPhase as P;
    let failed =
        "Nov 21 19:09:02 node1 local7.err tiny-cloud/main[2345]: userdata_packages: failed";
    let table: Vec<(&str, Option<EventKind>)> = vec![
        (
            "Nov 21 19:08:51 node1 local7.info tiny-cloud/boot[1987]: expand_root: starting",
            tc(P::Boot, "expand_root", A::Starting),
        ),
        (
            "Nov 21 19:08:51 node1 local7.info tiny-cloud/boot[1987]: expand_root: skipped",
            tc(P::Boot, "expand_root", A::Skipped),
        ),
        (
            "Nov 21 19:08:52 node1 local7.info tiny-cloud/early[2011]: save_userdata: done",
            tc(P::Early, "save_userdata", A::Done),
        ),
        (
            "Nov 21 19:09:00 node1 local7.info tiny-cloud/main[2345]: set_hostname: done",
            tc(P::Main, "set_hostname", A::Done),
        ),
        (
            "Nov 21 19:09:00 node1 local7.warn tiny-cloud/main[2345]: userdata_ntp: unknown",
            tc(P::Main, "userdata_ntp", A::Unknown),
        ),
        (
            "Nov 21 19:09:05 node1 local7.info tiny-cloud/final[2501]: userdata_runcmd: done",
            tc(P::Final, "userdata_runcmd", A::Done),
        ),
        (
            failed,
            Some(EventKind::CloudFailed {
                phase: P::Main,
                action: "userdata_packages".into(),
                line: failed.into(),
                summary: "tiny-cloud main/userdata_packages failed (apk could not install the packages user-data asks for)".into(),
            }),
        ),
        (
            "Nov 21 19:09:05 node1 local7.info tiny-cloud/final[2501]: bootstrap marked complete",
            Some(EventKind::TinyCloudComplete),
        ),
        (
            "Nov 21 19:20:00 node1 local7.info tiny-cloud/boot[1900]: already bootstrapped",
            Some(EventKind::TinyCloudComplete),
        ),
        // Unknown lines: ignored.
        (
            "Nov 21 19:09:00 node1 daemon.info sshd[2400]: Server listening on 0.0.0.0 port 22.",
            None,
        ),
        (
            "Nov 21 19:09:00 node1 local7.info tiny-cloud/weird[1]: thing: done",
            None,
        ),
        (
            "Nov 21 19:09:00 node1 local7.info tiny-cloud/main[1]: set_hostname: pondering",
            None,
        ),
        (
            "Nov 21 19:09:00 node1 local7.info tiny-cloud/main[1]: some words here: done",
            None,
        ),
        ("tiny-cloud", None),
        ("", None),
        ("\u{0}\u{ff}garbage tiny-cloud/main[: : :", None),
    ];
    for (line, want) in table {
        assert_eq!(messages_line(line), want, "{line}");
    }
}

fn step(s: K3sStep) -> Option<EventKind> {
    Some(EventKind::K3s { step: s })
}

/// The event a classified line gives, with its sentence computed from the message the
/// parser extracted (which [`extracted_messages`] checks on its own).
fn failed(reason: K3sFailure, line: &str) -> Option<EventKind> {
    let msg = logfmt_field(line, "msg").unwrap_or_default();
    Some(EventKind::NodeFailed {
        reason,
        line: line.into(),
        summary: reason.summary(&msg),
        msg,
    })
}

fn waiting(reason: K3sFailure, line: &str) -> Option<EventKind> {
    let msg = logfmt_field(line, "msg").unwrap_or_default();
    Some(EventKind::NodeWaiting {
        reason,
        summary: reason.summary(&msg),
        line: line.into(),
    })
}

const TOKEN: &str = r#"time="2024-05-20T10:02:11Z" level=fatal msg="Failed to validate connection to cluster at https://192.168.64.130:6443: token CA hash does not match the Cluster CA certificate hash: 2f2b7cbb1b0bb1aa != 6f3a8e0d0c7e1c21""#;
const UNREACHABLE: &str = r#"time="2024-05-20T10:02:11Z" level=error msg="Failed to validate connection to cluster at https://192.168.64.130:6443: failed to get CA certs: Get \"https://127.0.0.1:6444/cacerts\": read tcp 127.0.0.1:41496->127.0.0.1:6444: read: connection reset by peer""#;
const PASSWORD: &str = r#"time="2024-05-20T10:03:40Z" level=info msg="Waiting to retrieve agent configuration; server is not ready: Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag""#;
const CGROUP: &str =
    r#"time="2024-05-20T10:01:02Z" level=fatal msg="failed to find memory cgroup (v2)""#;
const NOT_READY: &str = r#"time="2024-05-20T10:01:30Z" level=info msg="Waiting to retrieve agent configuration; server is not ready: Get \"https://127.0.0.1:6444/v1-k3s/serving-kubelet.crt\": net/http: TLS handshake timeout""#;
const FATAL: &str = r#"time="2024-05-20T10:01:02Z" level=fatal msg="Error: preparing server: init cluster datastore and https: listen tcp :6443: bind: address already in use""#;

#[test]
fn k3s_lines() {
    let table: Vec<(&str, Option<EventKind>)> = vec![
        (
            r#"time="2024-05-20T10:00:00Z" level=info msg="Starting k3s v1.30.1+k3s1 (80978b5b)""#,
            step(K3sStep::Starting {
                version: "v1.30.1+k3s1".into(),
            }),
        ),
        (
            r#"time="2024-05-20T10:00:01Z" level=info msg="Starting k3s agent v1.30.1+k3s1 (80978b5b)""#,
            step(K3sStep::Starting {
                version: "v1.30.1+k3s1".into(),
            }),
        ),
        (
            r#"time="2024-05-20T10:00:20Z" level=info msg="Kube API server is now running""#,
            step(K3sStep::ApiUp),
        ),
        (
            r#"time="2024-05-20T10:00:31Z" level=info msg="k3s is up and running""#,
            step(K3sStep::ServerUp),
        ),
        (
            r#"time="2024-05-20T10:01:00Z" level=info msg="Connecting to proxy" url="wss://192.168.64.130:6443/v1-k3s/connect""#,
            step(K3sStep::Connecting {
                url: "wss://192.168.64.130:6443/v1-k3s/connect".into(),
            }),
        ),
        (
            r#"time="2024-05-20T10:01:01Z" level=info msg="Remotedialer connected to proxy" url="wss://192.168.64.130:6443/v1-k3s/connect""#,
            step(K3sStep::Connected),
        ),
        (
            r#"time="2024-05-20T10:01:09Z" level=info msg="Annotations and labels have been set successfully on node: agent-1""#,
            step(K3sStep::Joined),
        ),
        (TOKEN, failed(K3sFailure::TokenMismatch, TOKEN)),
        (
            UNREACHABLE,
            waiting(K3sFailure::ServerUnreachable, UNREACHABLE),
        ),
        (PASSWORD, failed(K3sFailure::NodePasswordRejected, PASSWORD)),
        (CGROUP, failed(K3sFailure::CgroupsMissing, CGROUP)),
        (NOT_READY, waiting(K3sFailure::ServerNotReady, NOT_READY)),
        (FATAL, failed(K3sFailure::Other, FATAL)),
        // Unknown lines: ignored.
        (
            r#"time="2024-05-20T10:00:31Z" level=info msg="Wrote kubeconfig /etc/rancher/k3s/k3s.yaml""#,
            None,
        ),
        (
            r#"I0520 10:00:05.123456    2110 server.go:156] "Starting kubelet""#,
            None,
        ),
        (r#"time="x" level=info msg="Starting k3s nonsense""#, None),
        (r#"time="x" level=info msg="unterminated"#, None),
        ("", None),
    ];
    for (line, want) in table {
        assert_eq!(k3s_line(line), want, "{line}");
    }
}

/// (file, line, event kind, class, words the sentence must hold): real-looking lines of
/// each class, from k3s's logrus log, busybox syslogd's `/var/log/messages` (kernel and
/// apk lines), and raw dmesg.
const CLASSES: &[(&str, &str, &str, K3sFailure, &str)] = &[
    ("k3s", TOKEN, "node-failed", K3sFailure::TokenMismatch, "another cluster's token"),
    ("k3s", UNREACHABLE, "node-waiting", K3sFailure::ServerUnreachable, "nothing answers at https://192.168.64.130:6443"),
    ("k3s", r#"time="2024-05-20T10:09:11Z" level=fatal msg="Failed to validate connection to cluster at https://10.0.0.1:6443: Get \"https://10.0.0.1:6443/cacerts\": dial tcp 10.0.0.1:6443: connect: no route to host""#, "node-failed", K3sFailure::ServerUnreachable, "nothing answers at https://10.0.0.1:6443"),
    ("k3s", PASSWORD, "node-failed", K3sFailure::NodePasswordRejected, "node password rejected"),
    ("k3s", CGROUP, "node-failed", K3sFailure::CgroupsMissing, "memory cgroup"),
    ("k3s", NOT_READY, "node-waiting", K3sFailure::ServerNotReady, "waits for its k3s server"),
    ("k3s", r#"time="2026-12-04T13:52:45Z" level=error msg="Failed to validate connection to cluster at https://10.77.0.10:6443: Get \"https://10.77.0.10:6443/cacerts\": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2000-01-01T00:01:12Z is before 2026-12-04T10:00:00Z""#, "node-failed", K3sFailure::CertNotValid, "clock wrong"),
    ("k3s", r#"time="2026-12-04T13:52:45Z" level=fatal msg="Error: preparing server: failed to write /var/lib/rancher/k3s/server/db/state.db: write /var/lib/rancher/k3s/server/db/state.db: no space left on device""#, "node-failed", K3sFailure::DiskFull, "no space left"),
    ("k3s", r#"time="2026-12-04T13:52:45Z" level=fatal msg="ETCD join failed: duplicate node name found, please use a unique name for this node""#, "node-failed", K3sFailure::DuplicateHostname, "already uses this name"),
    ("k3s", FATAL, "node-failed", K3sFailure::Other, "k3s fatal error: Error: preparing server"),
    ("messages", "Dec  4 13:52:45 node-5 kern.err kernel: [  812.331204] Out of memory: Killed process 2345 (k3s) total-vm:1843200kB, anon-rss:1520044kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:3340kB oom_score_adj:-999", "node-failed", K3sFailure::OutOfMemory, "the kernel killed k3s (pid 2345)"),
    ("messages", "[  812.331204] Out of memory: Killed process 411 (containerd) total-vm:1200kB", "node-failed", K3sFailure::OutOfMemory, "killed containerd (pid 411)"),
    ("messages", "Dec  4 13:50:02 node-5 user.err tiny-cloud/main[2345]: ERROR: unable to select packages:", "node-failed", K3sFailure::ApkFetch, "could not find them at alpine_repo"),
    ("messages", "Dec  4 13:50:01 node-5 user.warn tiny-cloud/main[2345]: WARNING: fetching http://10.77.0.1:8080/alpine/v3.20/main: temporary error (try again later)", "node-failed", K3sFailure::ApkFetch, "could not reach alpine_repo"),
    ("messages", "Dec  4 13:50:01 node-5 user.err tiny-cloud/main[2345]: ERROR: http://10.77.0.1:8080/alpine/v3.20/main/x86_64/APKINDEX.tar.gz: UNTRUSTED signature", "node-failed", K3sFailure::ApkFetch, "UNTRUSTED signature"),
    ("messages", "Dec  4 13:51:00 node-5 daemon.err syslogd: write /var/log/messages: No space left on device", "node-failed", K3sFailure::DiskFull, "tmpfs, in RAM"),
    ("messages", "Dec  4 13:49:00 node-5 daemon.err chronyd[1999]: Could not fetch https://ntp.example: x509: certificate has expired or is not yet valid", "node-failed", K3sFailure::CertNotValid, "flat CMOS battery"),
];

#[test]
fn failure_classes_from_real_lines() {
    for (file, line, kind, class, words) in CLASSES {
        let ev = if *file == "k3s" {
            k3s_line(line)
        } else {
            messages_line(line)
        };
        let Some(ev) = ev else {
            panic!("{line}: not classified");
        };
        assert_eq!(ev.name(), *kind, "{line}");
        let (reason, summary) = match &ev {
            EventKind::NodeFailed {
                reason, summary, ..
            }
            | EventKind::NodeWaiting {
                reason, summary, ..
            } => (*reason, summary.clone()),
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(reason, *class, "{line}");
        assert!(summary.contains(words), "{line}: {summary}");
        assert!(summary.len() < 160, "a sentence, not a log line: {summary}");
    }
}

#[test]
fn extracted_messages() {
    let Some(EventKind::NodeFailed { msg, .. }) = k3s_line(TOKEN) else {
        panic!("token line not a failure");
    };
    assert!(msg.starts_with(
        "Failed to validate connection to cluster at https://192.168.64.130:6443: token CA hash"
    ));
    assert!(!msg.contains("level=fatal"));
    let oom = CLASSES[10].1;
    let Some(EventKind::NodeFailed { msg, .. }) = messages_line(oom) else {
        panic!("oom line not a failure");
    };
    assert!(msg.starts_with("[  812.331204] Out of memory"), "{msg}");
}

#[test]
fn logfmt_fields() {
    let l = r#"time="t" level=info msg="a \"quoted\" word" url=wss://x:1/y"#;
    assert_eq!(
        logfmt_field(l, "msg").as_deref(),
        Some(r#"a "quoted" word"#)
    );
    assert_eq!(logfmt_field(l, "level").as_deref(), Some("info"));
    assert_eq!(logfmt_field(l, "url").as_deref(), Some("wss://x:1/y"));
    assert_eq!(logfmt_field(l, "nope"), None);
    assert_eq!(logfmt_field("xmsg=1 msg=2", "msg").as_deref(), Some("2"));
}

#[test]
fn long_lines_are_clipped_not_panicking() {
    let long = format!("tiny-cloud/main[1]: {}: done", "é".repeat(5000));
    assert!(clip(&long).len() <= MAX_LINE);
    assert_eq!(messages_line(&long), None);
    assert_eq!(k3s_line(&"é".repeat(5000)), None);
}

/// Trimmed real `k3s kubectl get nodes -o json` output (k3s v1.30).
pub const NODES_JSON: &str = r#"{
    "apiVersion": "v1",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "annotations": {"k3s.io/hostname": "server-1", "k3s.io/internal-ip": "192.168.64.130"},
                "labels": {"kubernetes.io/hostname": "server-1", "node-role.kubernetes.io/control-plane": "true"},
                "name": "server-1"
            },
            "status": {
                "conditions": [
                    {"lastHeartbeatTime": "2024-05-20T10:05:00Z", "message": "kubelet has sufficient memory available", "reason": "KubeletHasSufficientMemory", "status": "False", "type": "MemoryPressure"},
                    {"lastHeartbeatTime": "2024-05-20T10:05:00Z", "message": "kubelet is posting ready status", "reason": "KubeletReady", "status": "True", "type": "Ready"}
                ],
                "nodeInfo": {"kubeletVersion": "v1.30.1+k3s1", "osImage": "Alpine Linux v3.20"}
            }
        },
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "agent-1"},
            "status": {
                "conditions": [
                    {"message": "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized", "reason": "KubeletNotReady", "status": "False", "type": "Ready"}
                ]
            }
        }
    ],
    "kind": "List",
    "metadata": {"resourceVersion": ""}
}"#;

#[test]
fn kubectl_nodes() {
    assert_eq!(
        nodes_ready(NODES_JSON).unwrap(),
        vec![
            ("server-1".to_string(), true),
            ("agent-1".to_string(), false)
        ]
    );
    assert!(nodes_ready("No resources found").is_err());
    assert!(nodes_ready("{}").is_err());
    assert_eq!(
        nodes_ready(r#"{"items":[{"metadata":{}}]}"#).unwrap(),
        vec![]
    );
}
