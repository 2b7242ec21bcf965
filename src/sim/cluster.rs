//! The simulated k3s cluster shared by a lab's nodes: the server publishes its API and
//! token, agents join with theirs, and the server answers `k3s kubectl get nodes -o json`
//! from it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// The k3s version the simulated nodes report.
pub const K3S_VERSION: &str = "v1.31.4+k3s1";

#[derive(Debug, Clone)]
struct Member {
    address: Ipv4Addr,
    control_plane: bool,
    /// When the node's kubelet reports Ready.
    ready_at: Instant,
}

/// A node's time out of the cluster: from its reboot to Ready again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    /// The node's name.
    pub name: String,
    /// Whether it is the k3s server.
    pub server: bool,
    /// When it went down.
    pub down: Instant,
    /// When its kubelet was Ready again (none: still down).
    pub up: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    server: Option<(Ipv4Addr, Option<String>)>,
    api_up: bool,
    members: BTreeMap<String, Member>,
    outages: Vec<Outage>,
}

/// Shared cluster state; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    state: Arc<Mutex<State>>,
    api: Arc<watch::Sender<bool>>,
}

impl Default for Cluster {
    fn default() -> Self {
        Self::new()
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// How an agent's join went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinCheck {
    /// Token accepted.
    Accepted,
    /// The token's CA hash differs from the server's (the real k3s check).
    TokenMismatch {
        /// Hash from the agent's token.
        ours: String,
        /// The server's CA hash.
        theirs: String,
    },
}

/// The CA-hash part of a token as k3s shows it (`K10<hash>::server:<secret>`); a short
/// digest of the whole token when it has no hash part. Never the secret itself.
pub fn ca_hash(token: Option<&str>) -> String {
    use sha2::Digest;
    let t = token.unwrap_or("");
    if let Some(h) = t.strip_prefix("K10").and_then(|r| r.split("::").next()) {
        return h.chars().take(64).collect();
    }
    let d = sha2::Sha256::digest(t.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl Cluster {
    /// An empty cluster.
    pub fn new() -> Cluster {
        let (tx, _) = watch::channel(false);
        Cluster {
            state: Arc::new(Mutex::new(State::default())),
            api: Arc::new(tx),
        }
    }

    /// The first server to call this becomes the cluster's server (and stays it when
    /// it boots again from the same address). Returns whether it is the server.
    pub fn claim_server(&self, address: Ipv4Addr, token: Option<String>) -> bool {
        let mut s = lock(&self.state);
        if s.server.as_ref().is_some_and(|(a, _)| *a != address) {
            return false;
        }
        s.server = Some((address, token));
        true
    }

    /// A member goes down (reboot, power-off): NotReady from now until it joins again;
    /// the server takes the API down with it.
    pub fn leave(&self, name: &str, server: bool) {
        let mut s = lock(&self.state);
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        if let Some(m) = s.members.get_mut(name) {
            m.ready_at = far;
        }
        if server {
            s.api_up = false;
            self.api.send_replace(false);
        }
        s.outages.push(Outage {
            name: name.to_string(),
            server,
            down: Instant::now(),
            up: None,
        });
    }

    /// Every time a member was down (see [`Cluster::leave`]), in order.
    pub fn outages(&self) -> Vec<Outage> {
        lock(&self.state).outages.clone()
    }

    /// The server's address, once one claimed it.
    pub fn server_address(&self) -> Option<Ipv4Addr> {
        lock(&self.state).server.as_ref().map(|s| s.0)
    }

    /// Marks the API server up.
    pub fn api_up(&self) {
        lock(&self.state).api_up = true;
        self.api.send_replace(true);
    }

    /// Whether the API answers.
    pub fn is_api_up(&self) -> bool {
        lock(&self.state).api_up
    }

    /// Waits until the API is up, at most `limit`. Returns whether it is.
    pub async fn wait_api(&self, limit: Duration) -> bool {
        let mut rx = self.api.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|up| *up))
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false)
    }

    /// Checks an agent's token against the server's, as the agent does on start.
    pub fn check_token(&self, token: Option<&str>) -> JoinCheck {
        let s = lock(&self.state);
        let server_token = s.server.as_ref().and_then(|x| x.1.clone());
        let (ours, theirs) = (ca_hash(token), ca_hash(server_token.as_deref()));
        if ours == theirs {
            JoinCheck::Accepted
        } else {
            JoinCheck::TokenMismatch { ours, theirs }
        }
    }

    /// Registers a node; its kubelet reports Ready after `ready_after` (which ends the
    /// node's outage, if it was down).
    pub fn join(&self, name: &str, address: Ipv4Addr, control_plane: bool, ready_after: Duration) {
        let mut s = lock(&self.state);
        let ready_at = Instant::now() + ready_after;
        if let Some(o) = s
            .outages
            .iter_mut()
            .rev()
            .find(|o| o.name == name && o.up.is_none())
        {
            o.up = Some(ready_at);
        }
        s.members.insert(
            name.to_string(),
            Member {
                address,
                control_plane,
                ready_at,
            },
        );
    }

    /// Names of the members.
    pub fn members(&self) -> Vec<String> {
        lock(&self.state).members.keys().cloned().collect()
    }

    /// `kubectl get nodes -o json`, or the error kubectl prints when the API is down.
    pub fn nodes_json(&self) -> Result<String, String> {
        let s = lock(&self.state);
        if !s.api_up {
            return Err("The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?".to_string());
        }
        let now = Instant::now();
        let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let items: Vec<serde_json::Value> = s
            .members
            .iter()
            .map(|(name, m)| {
                let ready = now >= m.ready_at;
                let mut labels = serde_json::json!({
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node.kubernetes.io/instance-type": "k3s",
                });
                if m.control_plane {
                    labels["node-role.kubernetes.io/control-plane"] = "true".into();
                    labels["node-role.kubernetes.io/master"] = "true".into();
                }
                serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": { "name": name, "labels": labels },
                    "spec": { "podCIDR": "10.42.0.0/24" },
                    "status": {
                        "addresses": [
                            { "type": "InternalIP", "address": m.address.to_string() },
                            { "type": "Hostname", "address": name },
                        ],
                        "conditions": [{
                            "type": "Ready",
                            "status": if ready { "True" } else { "False" },
                            "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
                            "message": if ready { "kubelet is posting ready status" } else { "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized" },
                            "lastHeartbeatTime": stamp,
                            "lastTransitionTime": stamp,
                        }],
                        "nodeInfo": {
                            "kubeletVersion": K3S_VERSION,
                            "containerRuntimeVersion": "containerd://1.7.23-k3s2",
                            "osImage": "Alpine Linux v3.21",
                            "operatingSystem": "linux",
                            "architecture": "amd64",
                        },
                    },
                })
            })
            .collect();
        let list = serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": items,
            "metadata": { "resourceVersion": "" },
        });
        serde_json::to_string_pretty(&list).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_down_then_ready() {
        let c = Cluster::new();
        assert!(c.nodes_json().is_err());
        assert!(c.claim_server(
            Ipv4Addr::new(127, 1, 0, 10),
            Some("K10abc::server:s".into())
        ));
        assert!(!c.claim_server(Ipv4Addr::new(127, 1, 0, 11), None));
        // The same server booting again stays the server.
        assert!(c.claim_server(
            Ipv4Addr::new(127, 1, 0, 10),
            Some("K10abc::server:s".into())
        ));
        c.api_up();
        c.join("node-0", Ipv4Addr::new(127, 1, 0, 10), true, Duration::ZERO);
        let v: serde_json::Value = serde_json::from_str(&c.nodes_json().unwrap()).unwrap();
        assert_eq!(v["items"][0]["metadata"]["name"], "node-0");
        assert_eq!(v["items"][0]["status"]["conditions"][0]["type"], "Ready");
        assert_eq!(v["items"][0]["status"]["conditions"][0]["status"], "True");
    }

    /// Every agent waiting for the API is released when it comes up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_waiting_agent_sees_the_api_come_up() {
        for round in 0..200 {
            let c = Cluster::new();
            let waiters: Vec<_> = (0..20)
                .map(|_| {
                    let c = c.clone();
                    tokio::spawn(async move { c.wait_api(Duration::from_secs(5)).await })
                })
                .collect();
            tokio::task::yield_now().await;
            c.api_up();
            for w in waiters {
                assert!(
                    w.await.unwrap(),
                    "round {round}: a waiter never saw the API"
                );
            }
        }
    }

    #[test]
    fn token_check_compares_ca_hashes() {
        let c = Cluster::new();
        c.claim_server(Ipv4Addr::LOCALHOST, Some("K10aaaa::server:x".into()));
        assert_eq!(
            c.check_token(Some("K10aaaa::server:x")),
            JoinCheck::Accepted
        );
        assert!(matches!(
            c.check_token(Some("K10bbbb::server:x")),
            JoinCheck::TokenMismatch { .. }
        ));
        // Plain tokens: compared by digest, never shown.
        let d = ca_hash(Some("secret"));
        assert_eq!(d.len(), 64);
        assert!(!d.contains("secret"));
    }
}
