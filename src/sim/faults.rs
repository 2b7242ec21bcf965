//! What a simulated node writes when it is told to fail in one of the ways real boards
//! do (see [`super::Fault`]): the lines are in the formats the real programs use
//! (busybox syslogd with the kernel's OOM killer and apk, k3s's logrus), so the watcher
//! and its parser are tested on what they meet in the field.

use super::logs::NodeLogs;
use crate::engine::event::K3sFailure;

/// Writes the lines of failure `class` to the node's logs. `url` is its k3s server.
pub fn write_lines(logs: &NodeLogs, class: K3sFailure, url: &str) {
    let pid = logs.next_pid();
    match class {
        K3sFailure::OutOfMemory => logs.syslog(
            "kern.err",
            "kernel",
            &format!("[  812.331204] Out of memory: Killed process {pid} (k3s) total-vm:1843200kB, anon-rss:1520044kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:3340kB oom_score_adj:-999"),
        ),
        K3sFailure::ApkFetch => {
            let tag = format!("tiny-cloud/main[{pid}]");
            logs.syslog("user.warn", &tag, "WARNING: fetching http://10.77.0.1:8080/alpine/v3.20/main: temporary error (try again later)");
            logs.syslog("user.err", &tag, "ERROR: unable to select packages:");
            logs.syslog("user.err", &tag, "  k3s (no such package):");
            logs.tiny_cloud("main", pid, "userdata_packages", "failed");
        }
        K3sFailure::DiskFull => logs.k3s(
            "fatal",
            "Error: preparing server: failed to write /var/lib/rancher/k3s/agent/images/.cache.json: write /var/lib/rancher/k3s/agent/images/.cache.json: no space left on device",
            "",
        ),
        K3sFailure::CertNotValid => logs.k3s(
            "error",
            &format!("Failed to validate connection to cluster at {url}: Get \"{url}/cacerts\": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2000-01-01T00:01:12Z is before 2026-12-04T10:00:00Z"),
            "",
        ),
        K3sFailure::DuplicateHostname => logs.k3s(
            "fatal",
            "ETCD join failed: duplicate node name found, please use a unique name for this node",
            "",
        ),
        K3sFailure::NodePasswordRejected => logs.k3s(
            "info",
            "Waiting to retrieve agent configuration; server is not ready: Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag",
            "",
        ),
        K3sFailure::CgroupsMissing => logs.k3s("fatal", "failed to find memory cgroup (v2)", ""),
        other => logs.k3s(
            "fatal",
            &format!("simulated failure of class {}", other.class()),
            "",
        ),
    }
}
