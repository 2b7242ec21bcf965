//! The admin API bound beyond loopback (`http.admin_bind`), as an operator reaches it
//! from another machine: pxelab headless in one network namespace, `pxelab nodes
//! --remote` from another over a veth. The first contact pins the certificate; a wrong
//! token, no token and a changed certificate are each refused with their reason (and
//! the server records the refusal); nothing the API sends carries a secret; `adopt`,
//! `reload`, `reboot` and `forget` with `--remote` are carried out by the server.

mod common;
mod dhcp_support;

use std::path::Path;
use std::time::Duration;

use common::NetNs;
use dhcp_support::{write_lab, Pxelab};

const SERVER: &str = "10.79.0.1";
const NODE: &str = "52:54:00:79:00:0a";

fn nodes(client: &NetNs, home: &Path, token: Option<&Path>) -> std::process::Output {
    let bin = common::pxelab_bin();
    let url = format!("https://{SERVER}:7480");
    let mut argv = vec![bin.to_str().unwrap(), "nodes", "--json", "--remote", &url];
    let tf;
    if let Some(t) = token {
        tf = t.to_str().unwrap().to_string();
        argv.extend(["--token-file", &tf]);
    }
    let mut cmd = client.command(&argv);
    cmd.env("PXELAB_KNOWN_SERVERS", home.join("known_servers"))
        .env_remove("PXELAB_TOKEN");
    cmd.output().unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_remote_client_pins_the_certificate_and_needs_the_token() {
    if !common::require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let srv = NetNs::with_bridge("pxar", &format!("{SERVER}/24"));
    let client = srv.add_veth_host("cl");
    client.exec_ok(&["ip", "addr", "add", "10.79.0.2/24", "dev", "eth0"]);
    let lab = write_lab(
        dir.path(),
        &format!(
            "name: remote-test\nserver_address: {SERVER}\ndhcp: {{mode: off}}\n\
             tftp: {{enabled: false}}\n\
             http: {{port: 8080, admin_port: 7480, admin_bind: {SERVER}}}\n\
             ssh: {{watch: false}}\nboot: {{kernel: vmlinuz, initrds: [initrd]}}\n\
             k3s: {{token: inline-k3s-secret-0123}}\n\
             nodes:\n  - mac: '{NODE}'\n    hostname: node-a\n    role: k3s-server\n"
        ),
    );
    let p = Pxelab::start(srv.command(&[]), &lab, &["admin"]);
    let up = p.wait(Duration::from_secs(10), "admin up", |e| {
        e["event"] == "server-up" && e["source"] == "admin"
    });
    let up_addr = up["addr"].as_str().unwrap_or_default().to_string();
    assert!(
        up_addr.starts_with(&format!("https://{SERVER}:7480")),
        "{up_addr}"
    );
    let token_file = dir.path().join(".pxelab/admin-token");
    let token_copy = home.path().join("token");
    std::fs::copy(&token_file, &token_copy).unwrap();

    // First contact: pinned, and the fingerprint is the one the server announced.
    let out = nodes(&client, home.path(), Some(&token_copy));
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("pinned its certificate"), "{said}");
    let fp = said
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap()
        .to_string();
    assert!(up_addr.contains(&fp), "{fp} not in {up_addr}");
    let body: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("nodes --json is JSON");
    assert_eq!(body["nodes"][0]["hostname"], "node-a", "{body}");
    // Again: no new pin, same answer.
    let out = nodes(&client, home.path(), Some(&token_copy));
    assert!(
        out.status.success() && !text(&out).contains("pinned"),
        "{}",
        text(&out)
    );

    // No token, a wrong token: refused, and the server says so in its events.
    let out = nodes(&client, home.path(), None);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("admin token"), "{}", text(&out));
    let wrong = home.path().join("wrong");
    std::fs::write(&wrong, "0000").unwrap();
    let out = nodes(&client, home.path(), Some(&wrong));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("wrong admin token"), "{}", text(&out));
    p.wait(Duration::from_secs(10), "the refusal recorded", |e| {
        e["event"] == "refused"
            && e["source"] == "admin"
            && e["reason"] == "wrong admin token"
            && e["client"] == "10.79.0.2"
    });

    // Nothing the API sent holds a secret (the inline k3s token, the admin token).
    let secret = std::fs::read_to_string(&token_file).unwrap();
    let out = nodes(&client, home.path(), Some(&token_copy));
    let said = text(&out);
    assert!(
        !said.contains("inline-k3s-secret") && !said.contains(secret.trim()),
        "{said}"
    );

    // One command at a time from the operator's machine, carried out by the server.
    let url = format!("https://{SERVER}:7480");
    let run = |args: &[&str]| {
        let bin = common::pxelab_bin();
        let mut argv = vec![bin.to_str().unwrap()];
        argv.extend(args);
        argv.extend([
            "--remote",
            &url,
            "--token-file",
            token_copy.to_str().unwrap(),
        ]);
        let out = client
            .command(&argv)
            .env("PXELAB_KNOWN_SERVERS", home.path().join("known_servers"))
            .output()
            .unwrap();
        (out.status.success(), text(&out))
    };
    let other = "52:54:00:79:00:0c";
    let (ok, said) = run(&[
        "adopt",
        other,
        "--role",
        "k3s-agent",
        "--hostname",
        "node-c",
    ]);
    assert!(
        ok && said.contains("adopted 52:54:00:79:00:0c as node-c"),
        "{said}"
    );
    let yaml = std::fs::read_to_string(&lab).unwrap();
    assert!(yaml.contains(other) && yaml.contains("node-c"), "{yaml}");
    let (ok, said) = run(&["adopt", other, "--role", "k3s-agent"]);
    assert!(!ok && said.contains("already in the lab"), "{said}");
    let (ok, said) = run(&["reload"]);
    assert!(ok && said.contains("lab.yaml"), "{said}");
    // node-c never booted: nothing to reach, and the server says why.
    let (ok, said) = run(&["reboot", "node-c"]);
    assert!(!ok && said.contains("reboot"), "{said}");
    let (ok, said) = run(&["forget", other]);
    assert!(ok && said.contains("forgot 52:54:00:79:00:0c"), "{said}");
    assert!(!std::fs::read_to_string(&lab).unwrap().contains(other));

    // A new certificate on the same address (the server's files made anew): refused.
    p.stop();
    std::fs::remove_file(dir.path().join(".pxelab/admin-tls.crt")).unwrap();
    std::fs::remove_file(dir.path().join(".pxelab/admin-tls.key")).unwrap();
    let p = Pxelab::start(srv.command(&[]), &lab, &["admin"]);
    let out = nodes(&client, home.path(), Some(&token_copy));
    let said = text(&out);
    assert!(
        !out.status.success(),
        "a changed certificate was accepted: {said}"
    );
    assert!(
        said.contains(&fp) && said.contains("known_servers"),
        "{said}"
    );
    p.stop();
}
