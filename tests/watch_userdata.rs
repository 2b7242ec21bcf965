//! The rendered user-data of every node carries that node's own secrets (operator key,
//! pinned host key, node password, cluster token) in the places tiny-cloud reads them,
//! and nothing of any other node's.

use pxelab::config::Lab;
use pxelab::secrets::{for_node, NodeSecrets};
use russh::keys::PrivateKey;

const LAB: &str = "name: ud\nserver_address: 10.77.0.1\nssh:\n  user: lab\n  authorized_keys:\n    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorsOwnLaptopKeyxxxxxxxxxxxxxxxxxxxxxx me@laptop\nboot:\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n  modloop: modloop-lts\n  cmdline: \"ip=dhcp\"\nnodes:\n  - mac: 52:54:00:00:00:10\n    hostname: server-1\n    role: k3s-server\n    ip: 10.77.0.10\n  - mac: 52:54:00:00:00:11\n    hostname: agent-1\n    role: k3s-agent\n  - mac: 52:54:00:00:00:12\n    hostname: agent-2\n    role: k3s-agent\n";

fn write_file<'a>(doc: &'a yaml_serde::Value, path: &str) -> Option<&'a str> {
    doc.get("write_files")?
        .as_sequence()?
        .iter()
        .find(|f| f.get("path").and_then(|p| p.as_str()) == Some(path))?
        .get("content")?
        .as_str()
}

/// The lines of a PEM body (the parts that identify the key).
fn pem_body(pem: &str) -> Vec<&str> {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect()
}

#[test]
fn each_node_gets_its_own_secrets_and_no_one_elses() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::parse(&dir.path().join("lab.yaml"), LAB).unwrap();
    let all: Vec<(String, NodeSecrets, String)> = lab
        .file
        .nodes
        .iter()
        .map(|n| {
            let s = for_node(&lab, n.mac).unwrap();
            let ud = pxelab::render::user_data(&lab, n, &s).unwrap();
            (n.hostname.clone(), s, ud)
        })
        .collect();
    for (host, s, ud) in &all {
        assert!(ud.starts_with("#cloud-config"), "{host}: {ud}");
        let doc: yaml_serde::Value = yaml_serde::from_str(ud).unwrap();

        // The operator key is authorised for the login user, next to lab.yaml's keys.
        let users = doc.get("users").and_then(|u| u.as_sequence()).unwrap();
        let keys: Vec<&str> = users
            .iter()
            .filter(|u| u.get("name").and_then(|n| n.as_str()) == Some("lab"))
            .flat_map(|u| {
                u.get("ssh_authorized_keys")
                    .and_then(|k| k.as_sequence())
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str())
            })
            .collect();
        let op = s.operator_public_key.as_deref().unwrap();
        assert!(
            keys.contains(&op.trim()),
            "{host}: operator key missing: {keys:?}"
        );
        assert!(
            keys.iter().any(|k| k.contains("me@laptop")),
            "{host}: {keys:?}"
        );

        // The pinned host key, as a usable OpenSSH key whose public half is the pinned one.
        let pem = write_file(&doc, "/etc/ssh/ssh_host_ed25519_key")
            .unwrap_or_else(|| panic!("{host}: no host key in write_files: {ud}"));
        let key = PrivateKey::from_openssh(pem).unwrap();
        assert_eq!(
            key.public_key().to_openssh().unwrap().split(' ').nth(1),
            s.host_public_key.as_deref().unwrap().split(' ').nth(1),
            "{host}"
        );

        // The stable k3s node password and the cluster token.
        let pw = write_file(&doc, "/etc/rancher/node/password").unwrap();
        assert_eq!(pw.trim(), s.node_password.as_deref().unwrap(), "{host}");
        let k3s = write_file(&doc, "/etc/rancher/k3s/config.yaml").unwrap();
        assert!(k3s.contains(&s.k3s_token), "{host}: {k3s}");

        // Nothing of the other nodes.
        let own = pem_body(s.host_private_key.as_deref().unwrap());
        for (other, os, _) in all.iter().filter(|(h, _, _)| h != host) {
            // (OpenSSH key files share their first body line: compare the rest.)
            let theirs = pem_body(os.host_private_key.as_deref().unwrap());
            for line in theirs.into_iter().filter(|l| !own.contains(l)) {
                assert!(!ud.contains(line), "{host} carries {other}'s host key");
            }
            let opub = os.host_public_key.as_deref().unwrap();
            let opub_b64 = opub.split(' ').nth(1).unwrap();
            assert!(
                !ud.contains(opub_b64),
                "{host} carries {other}'s host public key"
            );
            let opw = os.node_password.as_deref().unwrap();
            assert!(!ud.contains(opw), "{host} carries {other}'s node password");
        }
    }
}
