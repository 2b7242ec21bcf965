//! Golden files of what the shipped lab serves, per role, with a fixed fake secret set;
//! rendered NoCloud data must be valid YAML with the structure tiny-cloud reads, and
//! carry this node's secrets only.
//!
//! Regenerate after an intended change: `UPDATE_GOLDEN=1 cargo test --test config_render`.

use std::path::{Path, PathBuf};

use pxelab::config::{Lab, NodeEntry};
use pxelab::render;
use pxelab::secrets::{CaFile, ClusterCa, NodeSecrets};

fn shipped_lab() -> Lab {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    pxelab::config::load_validated(&path, &text).unwrap()
}

/// Deterministic fake secrets that name their node, so a leak shows.
fn fake_secrets(n: &NodeEntry) -> NodeSecrets {
    NodeSecrets {
        k3s_token: "K10fake0token::server:0123456789abcdef".to_string(),
        operator_public_key: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOPERATOR pxelab-operator".to_string()),
        host_private_key: Some(format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA{h}\nHOSTKEY{h}PRIVATE\n-----END OPENSSH PRIVATE KEY-----\n",
            h = n.hostname
        )),
        host_public_key: Some(format!(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOST{h} root@{h}",
            h = n.hostname
        )),
        node_password: Some(format!("nodepw-{}", n.hostname)),
        k3s_ca: (n.role == "k3s-server").then(|| std::sync::Arc::new(fake_ca())),
        ..NodeSecrets::default()
    }
}

/// A fixed stand-in for the cluster CA (the server's only).
fn fake_ca() -> ClusterCa {
    let file = |name: &str, content: &str, permissions| CaFile {
        path: format!("/var/lib/rancher/k3s/server/tls/{name}"),
        content: content.to_string(),
        permissions,
    };
    let crt = "-----BEGIN CERTIFICATE-----\nFAKECA\n-----END CERTIFICATE-----\n";
    ClusterCa {
        files: vec![
            file("server-ca.crt", crt, "0644"),
            file(
                "server-ca.key",
                "-----BEGIN PRIVATE KEY-----\nFAKECAKEY\n-----END PRIVATE KEY-----\n",
                "0600",
            ),
        ],
        server_ca_pem: crt.to_string(),
    }
}

fn golden(name: &str, got: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(got, want, "{} differs", path.display());
}

#[test]
fn rendered_artifacts_match_golden_files_per_role() {
    let lab = shipped_lab();
    for host in ["node-0", "node-1"] {
        let n = lab.node_by_hostname(host).unwrap().clone();
        let role = n.role.clone();
        golden(
            &format!("{role}.ipxe"),
            &render::ipxe_script(&lab, &n).unwrap(),
        );
        golden(
            &format!("{role}.cmdline"),
            &(render::kernel_cmdline(&lab, &n).unwrap() + "\n"),
        );
        golden(
            &format!("{role}.meta-data"),
            &render::meta_data(&lab, &n).unwrap(),
        );
        golden(
            &format!("{role}.user-data"),
            &render::user_data(&lab, &n, &fake_secrets(&n)).unwrap(),
        );
    }
    let held: pxelab::Mac = "52:54:00:aa:bb:cc".parse().unwrap();
    golden("hold.ipxe", &render::hold_script(&lab, held));
}

#[test]
fn cmdline_ends_with_the_nocloud_source_and_carries_no_secret() {
    let lab = shipped_lab();
    for n in &lab.file.nodes {
        let c = render::kernel_cmdline(&lab, n).unwrap();
        let last = c.split(' ').next_back().unwrap();
        assert_eq!(
            last,
            format!("ds=nocloud;s=http://192.168.64.134:8080/nocloud/{}/", n.mac)
        );
        assert_eq!(c.matches("ds=").count(), 1, "{c}");
        let script = render::ipxe_script(&lab, n).unwrap();
        let kernel = script.lines().find(|l| l.starts_with("kernel ")).unwrap();
        assert!(kernel.contains(" initrd=initramfs-lts "), "{kernel}");
        assert!(kernel.ends_with(&c), "{kernel}");
        let s = fake_secrets(n);
        for secret in [&s.k3s_token, s.node_password.as_ref().unwrap()] {
            assert!(!script.contains(secret.as_str()));
        }
    }
}

#[test]
fn user_data_is_cloud_config_with_this_nodes_secrets_only() {
    let lab = shipped_lab();
    for n in &lab.file.nodes {
        let s = fake_secrets(n);
        let text = render::user_data(&lab, n, &s).unwrap();
        assert!(text.starts_with("#cloud-config\n"));
        let v: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
        let user = &v["users"][0];
        assert_eq!(user["name"].as_str(), Some("lab"));
        let keys: Vec<&str> = user["ssh_authorized_keys"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert!(keys.contains(&s.operator_public_key.as_deref().unwrap()));
        let pkgs: Vec<&str> = v["packages"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        for p in ["curl", "k3s", "k3s-openrc"] {
            assert!(pkgs.contains(&p), "{pkgs:?}");
        }
        let files: Vec<(&str, &str)> = v["write_files"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|f| (f["path"].as_str().unwrap(), f["content"].as_str().unwrap()))
            .collect();
        let file = |p: &str| {
            files
                .iter()
                .find(|(path, _)| *path == p)
                .map(|(_, c)| *c)
                .unwrap_or_else(|| panic!("{p} missing for {}", n.hostname))
        };
        let exec = if n.role == "k3s-server" {
            "server"
        } else {
            "agent"
        };
        assert!(file("/etc/conf.d/k3s").contains(&format!("K3S_EXEC=\"{exec}\"")));
        let k3s: yaml_serde::Value =
            yaml_serde::from_str(file("/etc/rancher/k3s/config.yaml")).unwrap();
        assert_eq!(k3s["token"].as_str(), Some(s.k3s_token.as_str()));
        if exec == "agent" {
            assert_eq!(k3s["server"].as_str(), Some("https://192.168.64.140:6443"));
        } else {
            assert!(k3s.get("server").is_none());
        }
        assert_eq!(
            file("/etc/rancher/node/password"),
            s.node_password.as_deref().unwrap()
        );
        assert_eq!(
            file("/etc/ssh/ssh_host_ed25519_key").trim(),
            s.host_private_key.as_deref().unwrap().trim()
        );
        assert_eq!(
            file("/etc/ssh/ssh_host_ed25519_key.pub"),
            s.host_public_key.as_deref().unwrap()
        );
        let runcmd: Vec<&str> = v["runcmd"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let mut want = vec!["rc-service dbus start", "rc-service cgroups start"];
        if exec == "server" {
            // The server's data folder before k3s starts: the newest snapshot, the CA.
            want.push("sh /run/pxelab/k3s-prepare");
            let prep = file("/run/pxelab/k3s-prepare");
            assert!(prep.contains(&format!("/snapshot/{}", n.mac)), "{prep}");
            assert!(
                prep.contains("cp -a /run/pxelab/k3s-tls/. $D/tls/"),
                "{prep}"
            );
            assert!(file("/run/pxelab/k3s-tls/server-ca.key").contains("FAKECAKEY"));
            assert!(pkgs.contains(&"sqlite"), "{pkgs:?}");
        } else {
            assert!(
                !text.contains("k3s-tls") && !text.contains("/snapshot/"),
                "an agent gets no CA and no snapshot: {text}"
            );
        }
        want.push("rc-service k3s start");
        assert_eq!(runcmd, want);
        // No other node's secrets.
        for other in lab.file.nodes.iter().filter(|o| o.mac != n.mac) {
            let o = fake_secrets(other);
            for secret in [
                o.node_password.as_deref().unwrap(),
                o.host_public_key.as_deref().unwrap(),
            ] {
                assert!(!text.contains(secret), "{} leaks {secret}", n.hostname);
            }
            assert!(!text.contains(&format!("HOSTKEY{}PRIVATE", other.hostname)));
        }
    }
}

#[test]
fn absent_secrets_omit_their_blocks() {
    let lab = shipped_lab();
    let n = lab.node_by_hostname("node-2").unwrap();
    let text = render::user_data(&lab, n, &NodeSecrets::default()).unwrap();
    let v: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    let paths: Vec<&str> = v["write_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/etc/conf.d/k3s", "/etc/rancher/k3s/config.yaml"]);
}

#[test]
fn meta_data_names_the_host_both_ways() {
    let lab = shipped_lab();
    let n = lab.node_by_hostname("node-3").unwrap();
    let v: yaml_serde::Value = yaml_serde::from_str(&render::meta_data(&lab, n).unwrap()).unwrap();
    assert_eq!(v["hostname"].as_str(), Some("node-3"));
    assert_eq!(v["local-hostname"].as_str(), Some("node-3"));
    assert_eq!(v["instance-id"].as_str(), Some("iid-a0-1a-2c-c3-d4-e3"));
    for doc in [
        render::vendor_data(&lab, n),
        render::network_config(&lab, n),
    ] {
        yaml_serde::from_str::<yaml_serde::Value>(&doc).unwrap();
    }
}

#[test]
fn roles_may_override_templates_and_add_packages() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "    hostname_prefix: agent\n    packages: [htop]\n",
            "    hostname_prefix: agent\n    packages: [htop]\n    cmdline_extra: role={{ role }}\n    meta_data: |\n      instance-id: {{ mac_hyphen }}\n      hostname: {{ hostname }}-x\n    user_data: |\n      #!/bin/sh\n      echo {{ hostname }} {{ packages | join(',') }} {{ k3s_role }} > /tmp/x\n",
        );
    let lab = pxelab::config::load_validated(&path, &text).unwrap();
    let n = lab.node_by_hostname("node-4").unwrap();
    assert_eq!(
        render::user_data(&lab, n, &NodeSecrets::default()).unwrap(),
        "#!/bin/sh\necho node-4 curl,k3s,k3s-openrc,htop agent > /tmp/x\n"
    );
    assert_eq!(
        render::meta_data(&lab, n).unwrap(),
        "instance-id: a0-1a-2c-c3-d4-e4\nhostname: node-4-x\n"
    );
    let c = render::kernel_cmdline(&lab, n).unwrap();
    assert!(c.contains(" role=k3s-agent ds=nocloud;s="), "{c}");
    // The server keeps the built-in templates.
    let s = lab.node_by_hostname("node-0").unwrap();
    assert!(render::user_data(&lab, s, &NodeSecrets::default())
        .unwrap()
        .starts_with("#cloud-config\n"));
}

#[test]
fn only_a_pinned_lab_delivers_host_keys() {
    let pinned = shipped_lab();
    let tofu = pxelab::config::Lab::parse(
        &pinned.path,
        &pinned
            .source
            .replacen("ssh:\n", "ssh:\n  host_keys: tofu\n", 1),
    )
    .unwrap();
    assert_eq!(tofu.file.ssh.host_keys, "tofu");
    let n = pinned.node_by_hostname("node-2").unwrap();
    let s = fake_secrets(n);
    let with = render::user_data(&pinned, n, &s).unwrap();
    assert!(with.contains("HOSTKEYnode-2PRIVATE"), "{with}");
    let without = render::user_data(&tofu, n, &s).unwrap();
    assert!(
        !without.contains("HOSTKEY") && !without.contains("ssh_host_ed25519_key"),
        "{without}"
    );
    // Everything else is still delivered.
    assert!(without.contains("nodepw-node-2"), "{without}");
}

#[test]
fn syslog_points_the_nodes_syslogd_and_netconsole_at_pxelab() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "\nnodes:",
        "\nsyslog:\n  enabled: true\n  port: 5514\n  netconsole: true\nnodes:",
        1,
    );
    let lab = pxelab::config::load_validated(&path, &text).unwrap();
    let n = &lab.file.nodes[0];
    let ud = render::user_data(&lab, n, &fake_secrets(n)).unwrap();
    assert!(
        ud.contains("path: /etc/conf.d/syslog")
            && ud.contains("SYSLOGD_OPTS=\"-R 192.168.64.134:5514 -L\""),
        "{ud}"
    );
    let v: serde_json::Value = yaml_serde::from_str(&ud).unwrap();
    assert_eq!(v["runcmd"][0], "rc-service syslog restart", "{ud}");
    let c = render::kernel_cmdline(&lab, n).unwrap();
    assert!(c.contains(" netconsole=@/,5514@192.168.64.134/ "), "{c}");
    // Off (the shipped lab): neither.
    let lab = shipped_lab();
    let ud = render::user_data(&lab, n, &fake_secrets(n)).unwrap();
    assert!(!ud.contains("conf.d/syslog") && !ud.contains("netconsole"));
}

/// A node that boots another flavour names its own modloop: its command line's
/// `modloop=` points at it, every other node keeps `boot.modloop`.
#[test]
fn a_nodes_own_modloop_goes_into_its_command_line() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "    ip: 192.168.64.146\n",
        "    ip: 192.168.64.146\n    kernel: vmlinuz-virt\n    initrds: [initramfs-virt]\n    modloop: modloop-virt\n",
        1,
    );
    let lab = pxelab::config::load_validated(&path, &text).unwrap();
    let assets = "http://192.168.64.134:8080/assets";
    for n in &lab.file.nodes {
        let c = render::kernel_cmdline(&lab, n).unwrap();
        let flavour = if n.hostname == "node-6" {
            "virt"
        } else {
            "lts"
        };
        assert!(
            c.contains(&format!(" modloop={assets}/modloop-{flavour} ")),
            "{}: {c}",
            n.hostname
        );
        let script = render::ipxe_script(&lab, n).unwrap();
        assert!(
            script.contains(&format!("kernel {assets}/vmlinuz-{flavour} ")),
            "{script}"
        );
    }
}
