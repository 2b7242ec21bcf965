//! The booted system: tiny-cloud's phases, sshd with the node's host key, and k3s (server
//! up or agent joined), acting out the node's fault if it has one.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use super::{Fault, Outcome, Role, Run, Step, StepErr};
use crate::sim::cluster::{JoinCheck, K3S_VERSION};
use crate::sim::ipxe;
use crate::sim::logs::NodeLogs;
use crate::sim::ssh::{self, SshdState};
use crate::sim::userdata::{self, Seed};

/// From the kernel's first log line to k3s, or the fault that stops it.
pub(super) async fn boot_phase(
    run: &mut Run<'_>,
    logs: &NodeLogs,
    cmdline: &str,
) -> Option<Outcome> {
    let env = run.env;
    env.pause_ms(800).await;
    let pid = logs.next_pid();
    logs.tiny_cloud("boot", pid, "expand_root", "starting");
    logs.tiny_cloud("boot", pid, "expand_root", "skipped");
    logs.tiny_cloud("boot", pid, "set_network_interfaces", "starting");
    logs.tiny_cloud("boot", pid, "set_network_interfaces", "done");
    let Some(seed_url) = ipxe::nocloud_seed(cmdline) else {
        run.record(
            Step::NoCloud,
            Instant::now(),
            &Err("no ds=nocloud;s= on the kernel command line".into()),
        );
        return None;
    };
    // tiny-cloud builds "$s/$file": an s= ending in / gives //meta-data, as on a real node.
    let (meta, user) = step!(run, Step::NoCloud, {
        let mut got = Vec::new();
        let mut res = Ok(());
        for f in ["meta-data", "user-data", "vendor-data", "network-config"] {
            match run.get(&format!("{seed_url}/{f}"), true).await {
                Ok(r) if r.status == 200 => got.push((f, r.text())),
                Ok(r) if r.status == 404 && (f == "vendor-data" || f == "network-config") => {}
                Ok(r) => {
                    res = Err(format!("{seed_url}/{f}: HTTP {}", r.status));
                    break;
                }
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        res.map(|_| {
            let find = |n: &str| {
                got.iter()
                    .find(|(f, _)| *f == n)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default()
            };
            let names: Vec<&str> = got.iter().map(|(f, _)| *f).collect();
            ((find("meta-data"), find("user-data")), names.join(","))
        })
    });
    let seed = userdata::parse(&meta, &user);
    run.hostname = seed.hostname.clone();
    logs.tiny_cloud("boot", pid, "enable_sshd", "starting");
    logs.tiny_cloud("boot", pid, "enable_sshd", "done");
    env.pause_ms(300).await;
    let pid = logs.next_pid();
    logs.tiny_cloud("early", pid, "save_userdata", "starting");
    logs.tiny_cloud("early", pid, "save_userdata", "done");
    env.pause_ms(500).await;
    let pid = logs.next_pid();
    for action in ["set_default_user", "set_access"] {
        logs.tiny_cloud("main", pid, action, "starting");
        logs.tiny_cloud("main", pid, action, "done");
    }
    logs.tiny_cloud("main", pid, "set_hostname", "starting");
    if let Some(h) = &seed.hostname {
        logs.set_hostname(h);
    }
    logs.tiny_cloud("main", pid, "set_hostname", "done");
    for action in ["set_ssh_keys", "userdata_write_files"] {
        logs.tiny_cloud("main", pid, action, "starting");
        env.pause_ms(200).await;
        logs.tiny_cloud("main", pid, action, "done");
    }
    logs.tiny_cloud("main", pid, "userdata_packages", "starting");
    env.pause_ms(1200).await;
    let status = match run.node.fault {
        Some(Fault::CloudActionFails) => "failed",
        _ => "done",
    };
    logs.tiny_cloud("main", pid, "userdata_packages", status);
    if let Some(f @ Fault::NoSshd) = run.node.fault {
        return Some(Outcome::ExpectedFailure { fault: f });
    }
    // sshd starts after main.
    let k3s_server = seed.k3s_server.unwrap_or(run.node.role == Role::Server);
    let fallback = env
        .lab
        .as_ref()
        .and_then(|l| crate::secrets::for_node(l, run.node.mac).ok());
    step!(
        run,
        Step::Ssh,
        start_sshd(run, logs, &seed, fallback.as_ref(), k3s_server).await
    );
    if let Some(f @ Fault::CloudActionFails) = run.node.fault {
        return Some(Outcome::ExpectedFailure { fault: f });
    }
    env.pause_ms(700).await;
    let pid = logs.next_pid();
    logs.tiny_cloud("final", pid, "userdata_runcmd", "starting");
    env.pause_ms(400).await;
    logs.tiny_cloud("final", pid, "userdata_runcmd", "done");
    logs.tiny_cloud("final", pid, "bootstrap_complete", "starting");
    logs.mark_complete();
    logs.syslog(
        "local7.info",
        &format!("tiny-cloud/final[{pid}]"),
        "bootstrap marked complete",
    );
    logs.tiny_cloud("final", pid, "bootstrap_complete", "done");
    run.record(
        Step::TinyCloud,
        Instant::now(),
        &Ok("bootstrap complete".into()),
    );
    let token = seed.k3s_token.clone().or_else(|| {
        fallback
            .as_ref()
            .map(|s| s.k3s_token.clone())
            .filter(|t| !t.is_empty())
    });
    k3s(run, logs, k3s_server, token).await
}

async fn start_sshd(
    run: &Run<'_>,
    logs: &NodeLogs,
    seed: &Seed,
    fallback: Option<&crate::secrets::NodeSecrets>,
    k3s_server: bool,
) -> Result<((), String), StepErr> {
    let env = run.env;
    let pem = seed
        .host_private_key
        .clone()
        .or_else(|| fallback.and_then(|s| s.host_private_key.clone()));
    let (host_key, pinned) = match pem.as_deref().map(russh::keys::PrivateKey::from_openssh) {
        Some(Ok(k)) => (k, true),
        Some(Err(e)) => return Err(format!("host key from user-data does not parse: {e}")),
        None => {
            let seed: [u8; 32] = rand::random();
            let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed);
            (russh::keys::PrivateKey::from(pair), false)
        }
    };
    let mut keys: Vec<String> = seed.authorized_keys.clone();
    if let Some(k) = fallback.and_then(|s| s.operator_public_key.clone()) {
        keys.push(k);
    }
    let authorized: Vec<_> = keys
        .iter()
        .filter_map(|k| russh::keys::PublicKey::from_openssh(k.trim()).ok())
        .collect();
    let bind = SocketAddr::new(IpAddr::V4(run.addr), env.ssh_port);
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|e| format!("sshd cannot listen on {bind}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    if env.serve_ssh {
        ssh::spawn(
            listener,
            host_key,
            SshdState {
                logs: logs.clone(),
                cluster: env.cluster.clone(),
                k3s_server,
                authorized: authorized.clone(),
                user: env.ssh_user.clone(),
                machine: Some(super::Machine {
                    env: env.clone(),
                    node: run.node.clone(),
                    name: run
                        .hostname
                        .clone()
                        .unwrap_or_else(|| run.node.mac.compact()),
                    k3s_server,
                    boot_cancel: run.boot_cancel.clone(),
                }),
            },
            run.boot_cancel.clone(),
        );
    }
    logs.syslog(
        "auth.info",
        &format!("sshd[{}]", logs.next_pid()),
        &format!("Server listening on {} port {}.", local.ip(), local.port()),
    );
    Ok((
        (),
        format!(
            "{local} ({} host key, {} authorised key(s))",
            if pinned { "pinned" } else { "random" },
            authorized.len()
        ),
    ))
}

fn mangle(token: Option<String>) -> Option<String> {
    // A token copied from another cluster: same shape, other CA hash.
    Some(match token {
        Some(t) if t.starts_with("K10") => {
            format!("K10{}", "0".repeat(64)) + &t[t.find("::").unwrap_or(t.len())..]
        }
        Some(t) => format!("{t}-from-another-cluster"),
        None => "K10stale::server:stale".to_string(),
    })
}

async fn k3s(
    run: &mut Run<'_>,
    logs: &NodeLogs,
    server: bool,
    token: Option<String>,
) -> Option<Outcome> {
    let env = run.env;
    let name = run
        .hostname
        .clone()
        .unwrap_or_else(|| run.node.mac.compact());
    let start = Instant::now();
    env.pause_ms(600).await;
    match run.node.fault {
        Some(f @ Fault::K3sSilent) => {
            logs.k3s(
                "info",
                &format!("Starting k3s agent {K3S_VERSION} (a562d090)"),
                "",
            );
            return Some(Outcome::ExpectedFailure { fault: f });
        }
        Some(f @ Fault::Logs(class)) => {
            let ip = env.cluster.server_address().unwrap_or(env.server);
            logs.k3s(
                "info",
                &format!("Starting k3s agent {K3S_VERSION} (a562d090)"),
                "",
            );
            crate::sim::faults::write_lines(logs, class, &format!("https://{ip}:6443"));
            return Some(Outcome::ExpectedFailure { fault: f });
        }
        _ => {}
    }
    if server && env.cluster.claim_server(run.addr, token.clone()) {
        logs.k3s(
            "info",
            &format!("Starting k3s {K3S_VERSION} (a562d090)"),
            "",
        );
        logs.k3s("info", "Configuring sqlite3 database connection pooling: maxIdleConns=2, maxOpenConns=0, connMaxLifetime=0s", "");
        logs.k3s(
            "info",
            "Configuring database table schema and indexes, this may take a moment...",
            "",
        );
        logs.k3s("info", "Database tables and indexes are up to date", "");
        logs.k3s("info", "Kine available at unix://kine.sock", "");
        env.pause_ms(2500).await;
        logs.k3s("info", "Waiting for API server to become available", "");
        env.pause_ms(5000).await;
        logs.k3s("info", "Kube API server is now running", "");
        env.cluster.api_up();
        env.pause_ms(1500).await;
        logs.k3s("info", "k3s is up and running", "");
        logs.k3s("info", "Wrote kubeconfig /etc/rancher/k3s/k3s.yaml", "");
        env.cluster
            .join(&name, run.addr, true, env.scaled(Duration::from_secs(3)));
        env.pause_ms(1000).await;
        logs.k3s(
            "info",
            &format!("Annotations and labels have been set successfully on node: {name}"),
            "",
        );
        run.record(Step::K3s, start, &Ok("k3s is up and running".into()));
        return Some(Outcome::Joined);
    }
    let token = if run.node.fault == Some(Fault::WrongToken) {
        mangle(token)
    } else {
        token
    };
    let server_ip = env.cluster.server_address().unwrap_or(env.server);
    let url = format!("https://{server_ip}:6443");
    let mut attempts = 0;
    loop {
        logs.k3s(
            "info",
            &format!("Starting k3s agent {K3S_VERSION} (a562d090)"),
            "",
        );
        if !env.cluster.is_api_up() {
            logs.k3s(
                "info",
                &format!("Waiting to retrieve agent configuration; server is not ready: Get \"{url}/v1-k3s/serving-kubelet.crt\": dial tcp {server_ip}:6443: connect: connection refused"),
                "",
            );
            if !env.cluster.wait_api(env.k3s_timeout).await {
                run.record(Step::K3s, start, &Err("server API never came up".into()));
                return None;
            }
            continue;
        }
        env.pause_ms(800).await;
        match env.cluster.check_token(token.as_deref()) {
            JoinCheck::Accepted => break,
            JoinCheck::TokenMismatch { ours, theirs } => {
                let line = format!(
                    "Failed to validate connection to cluster at {url}: token CA hash does not match the Cluster CA certificate hash: {} != {}",
                    &ours[..ours.len().min(64)],
                    &theirs[..theirs.len().min(64)]
                );
                logs.k3s("fatal", &line, "");
                attempts += 1;
                if attempts >= 2 {
                    run.record(
                        Step::K3s,
                        start,
                        &Err("token CA hash does not match".into()),
                    );
                    return Some(match run.node.fault {
                        Some(f) => Outcome::ExpectedFailure { fault: f },
                        None => Outcome::Failed { step: Step::K3s },
                    });
                }
                // supervise-daemon restarts k3s.
                env.pause_ms(3000).await;
            }
        }
    }
    let ws = format!("wss://{server_ip}:6443/v1-k3s/connect");
    logs.k3s("info", "Connecting to proxy", &format!("url=\"{ws}\""));
    env.pause_ms(1200).await;
    logs.k3s(
        "info",
        "Remotedialer connected to proxy",
        &format!("url=\"{ws}\""),
    );
    env.pause_ms(1500).await;
    env.cluster
        .join(&name, run.addr, false, env.scaled(Duration::from_secs(2)));
    logs.k3s(
        "info",
        &format!("Annotations and labels have been set successfully on node: {name}"),
        "",
    );
    run.record(Step::K3s, start, &Ok(format!("joined {url}")));
    Some(Outcome::Joined)
}
