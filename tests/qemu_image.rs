//! The node image on its own, booted by real QEMU/iPXE against a throwaway network made of
//! real third-party servers (dnsmasq for DHCP + router advertisements, busybox httpd for
//! the iPXE script, kernel, initramfs and NoCloud data), all inside a test namespace.
//!
//! Proves what tests/qemu_boot.rs then relies on with pxelab in the middle: the image's
//! kernel + /init + udhcpc + NoCloud fetch + tiny-cloud log lines + dropbear with the
//! pinned host key + the k3s stand-in (an agent VM joins the server VM over the bridge
//! and the server lists both Ready).
//!
//! Needs root, qemu-system-x86_64, dnsmasq, busybox, ssh and the Debian archive (the image
//! is built from .debs on first use).

mod common;
mod qemu_lab;

use std::time::{Duration, Instant};

use qemu_lab::{Keys, Vm, CONSOLE_MARKERS};

const NET: &str = "10.98.0";
const SERVER_MAC: &str = "52:54:00:98:00:10";
const AGENT_MAC: &str = "52:54:00:98:00:11";
/// A token without a CA hash, as an operator writes one: a `K10<hash>::` token names the CA the
/// server generates, which no test can know in advance (the stand-in checks it as k3s does).
const TOKEN: &str = "test-token-0123456789abcdef";

#[test]
fn node_image_boots_and_joins_over_third_party_servers() {
    if !common::require_root() {
        return;
    }
    if !(qemu_lab::require_vm_tools()
        && common::require_program("dnsmasq")
        && common::require_program("busybox"))
    {
        return;
    }
    let img = qemu_lab::node_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let keys = Keys::new(d, &["node-s", "node-a"]);

    // ---- the web root: per-MAC iPXE scripts, kernel, initramfs, NoCloud data ----
    let www = d.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::copy(&img.kernel, www.join("vmlinuz")).expect("kernel");
    std::fs::copy(&img.initrd, www.join("initramfs")).expect("initrd");
    let base = format!("http://{NET}.1:8081");
    std::fs::write(
        www.join("boot.ipxe"),
        format!("#!ipxe\nchain {base}/${{net0/mac:hexhyp}}.ipxe\n"),
    )
    .expect("script");
    let nodes = [
        (
            "node-s",
            SERVER_MAC,
            "server",
            format!("token: \"{TOKEN}\"\n"),
        ),
        (
            "node-a",
            AGENT_MAC,
            "agent",
            format!("server: https://{NET}.10:6443\ntoken: \"{TOKEN}\"\n"),
        ),
    ];
    for (name, mac, exec, k3s_config) in &nodes {
        std::fs::write(
            www.join(format!("{}.ipxe", mac.replace(':', "-"))),
            format!(
                "#!ipxe\nkernel {base}/vmlinuz initrd=initramfs console=ttyS0 quiet ip=dhcp ds=nocloud;s={base}/nocloud/{name}/\ninitrd {base}/initramfs\nboot\n"
            ),
        )
        .expect("node script");
        let nc = www.join("nocloud").join(name);
        std::fs::create_dir_all(&nc).expect("nocloud dir");
        std::fs::write(
            nc.join("meta-data"),
            format!("instance-id: {name}\nhostname: {name}\nlocal-hostname: {name}\n"),
        )
        .expect("meta-data");
        let ud = qemu_lab::cloud_config(
            "lab",
            &keys.public("op"),
            &keys.private(&format!("host-{name}")),
            &[
                (
                    "/etc/conf.d/k3s",
                    "0644",
                    &format!("K3S_EXEC=\"{exec}\"\nK3S_OPTS=\"\"\n"),
                ),
                ("/etc/rancher/k3s/config.yaml", "0600", k3s_config),
                (
                    "/etc/rancher/node/password",
                    "0600",
                    &format!("node-password-{name}\n"),
                ),
            ],
        );
        std::fs::write(nc.join("user-data"), ud).expect("user-data");
    }

    // ---- the namespace, DHCP + RA (dnsmasq), HTTP (busybox httpd) ----
    let ns = common::NetNs::with_bridge("pxq-img", &format!("{NET}.1/24"));
    ns.exec_ok(&["ip", "addr", "add", "fd00:98::1/64", "dev", "br0"]);
    let dns_log = d.join("dnsmasq.log");
    let http_log = d.join("httpd.log");
    let _dnsmasq = qemu_lab::spawn_logged(
        &ns,
        &[
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--port=0",
            "--interface=br0",
            "--bind-interfaces",
            "--log-dhcp",
            "--log-facility=-",
            &format!("--pid-file={}", d.join("dnsmasq.pid").display()),
            &format!("--dhcp-leasefile={}", d.join("leases").display()),
            &format!("--dhcp-range={NET}.100,{NET}.150,1h"),
            &format!("--dhcp-host={SERVER_MAC},{NET}.10"),
            &format!("--dhcp-host={AGENT_MAC},{NET}.11"),
            "--dhcp-option=encap:175,176,1b",
            &format!("--dhcp-boot={base}/boot.ipxe"),
            "--enable-ra",
            "--dhcp-range=::,constructor:br0,ra-only",
        ],
        &dns_log,
    );
    let _httpd = qemu_lab::spawn_logged(
        &ns,
        &[
            "busybox",
            "httpd",
            "-f",
            "-vv",
            "-p",
            &format!("{NET}.1:8081"),
            "-h",
            &www.to_string_lossy(),
        ],
        &http_log,
    );
    std::thread::sleep(Duration::from_millis(500));

    // ---- two VMs ----
    let mut vms = vec![
        Vm::start(&ns, "node-s", "tap-s", SERVER_MAC, d),
        Vm::start(&ns, "node-a", "tap-a", AGENT_MAC, d),
    ];
    let ips = [format!("{NET}.10"), format!("{NET}.11")];
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut ready = false;
    let mut last_nodes = String::new();
    while Instant::now() < deadline {
        let dns = std::fs::read_to_string(&dns_log).unwrap_or_default();
        let http = std::fs::read_to_string(&http_log).unwrap_or_default();
        for (i, vm) in vms.iter_mut().enumerate() {
            let mac = vm.mac.clone();
            if dns
                .lines()
                .any(|l| l.contains("DHCPACK") && l.contains(&mac))
            {
                vm.mark("dhcp");
            }
            let ip = &ips[i];
            let fetched = |path: &str| {
                http.lines()
                    .any(|l| l.starts_with(&format!("{ip}:")) && l.ends_with(path))
            };
            if fetched("url:/boot.ipxe") {
                vm.mark("ipxe");
            }
            if fetched(&format!("url:/{}.ipxe", mac.replace(':', "-"))) {
                vm.mark("script");
            }
            if fetched("url:/vmlinuz") {
                vm.mark("kernel");
            }
            if fetched("url:/initramfs") {
                vm.mark("initrd");
            }
            vm.scan_console(CONSOLE_MARKERS);
        }
        // SSH with the pinned key once tiny-cloud is done; then k3s from the server.
        for (i, vm) in vms.iter_mut().enumerate() {
            if vm.steps.contains_key("tiny-cloud complete") && !vm.steps.contains_key("ssh pinned")
            {
                let host = keys.public(&format!("host-{}", nodes[i].0));
                let out = qemu_lab::ssh_pinned(
                    &ns,
                    &keys,
                    &host,
                    "lab",
                    &ips[i],
                    "hostname; cat /var/log/k3s.log",
                );
                if out.status.success() {
                    let text = String::from_utf8_lossy(&out.stdout).to_string();
                    assert_eq!(
                        text.lines().next(),
                        Some(nodes[i].0),
                        "hostname from meta-data"
                    );
                    vm.mark("ssh pinned");
                }
            }
            if vm.steps.contains_key("ssh pinned") && !vm.steps.contains_key("k3s") {
                let host = keys.public(&format!("host-{}", nodes[i].0));
                let out =
                    qemu_lab::ssh_pinned(&ns, &keys, &host, "lab", &ips[i], "cat /var/log/k3s.log");
                let log = String::from_utf8_lossy(&out.stdout);
                let marker = if i == 0 {
                    "k3s is up and running"
                } else {
                    &format!(
                        "Annotations and labels have been set successfully on node: {}",
                        nodes[i].0
                    )
                };
                if log.contains(marker) {
                    vm.mark("k3s");
                }
            }
        }
        if vms[0].steps.contains_key("k3s") && vms[1].steps.contains_key("k3s") {
            let host = keys.public("host-node-s");
            let out = qemu_lab::ssh_pinned(
                &ns,
                &keys,
                &host,
                "lab",
                &ips[0],
                "k3s kubectl get nodes -o json",
            );
            last_nodes = String::from_utf8_lossy(&out.stdout).to_string();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&last_nodes) {
                let ready_names: Vec<String> = v["items"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter(|n| {
                                n["status"]["conditions"].as_array().is_some_and(|c| {
                                    c.iter()
                                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                                })
                            })
                            .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if ready_names.iter().any(|n| n == "node-s")
                    && ready_names.iter().any(|n| n == "node-a")
                {
                    let now = Instant::now();
                    for vm in vms.iter_mut() {
                        vm.mark_at("ready", now);
                    }
                    ready = true;
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for vm in &vms {
        eprintln!("{}", vm.timeline());
    }
    let report = || {
        let mut s = String::new();
        for vm in &vms {
            s.push_str(&format!("\n--- {} console ---\n{}", vm.name, vm.console()));
        }
        for (i, vm) in vms.iter().enumerate() {
            let host = keys.public(&format!("host-{}", nodes[i].0));
            let out = qemu_lab::ssh_pinned(
                &ns,
                &keys,
                &host,
                "lab",
                &ips[i],
                "tail -n 20 /var/log/k3s.log",
            );
            s.push_str(&format!(
                "\n--- {} k3s.log ---\n{}",
                vm.name,
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        let dns = std::fs::read_to_string(&dns_log).unwrap_or_default();
        let dns_tail: Vec<&str> = dns.lines().rev().take(30).collect();
        s.push_str(&format!(
            "\n--- dnsmasq (last 30 lines) ---\n{}",
            dns_tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
        s.push_str(&format!("\n--- kubectl ---\n{last_nodes}"));
        s
    };
    for vm in &vms {
        for step in [
            "dhcp",
            "ipxe",
            "script",
            "kernel",
            "initrd",
            "init",
            "udhcpc",
            "meta-data",
            "user-data",
            "dropbear",
            "tiny-cloud complete",
            "ssh pinned",
            "k3s",
        ] {
            assert!(
                vm.steps.contains_key(step),
                "{} never reached `{step}`{}",
                vm.name,
                report()
            );
        }
    }
    assert!(ready, "server never listed both nodes Ready{}", report());

    // The dropbear host key is the delivered one: the console prints its fingerprint, and
    // a client pinned to another key is refused.
    assert!(
        vms[0].console().contains(&keys.fingerprint("host-node-s")),
        "{}",
        report()
    );
    let wrong = qemu_lab::ssh_pinned(
        &ns,
        &keys,
        &keys.public("host-node-a"),
        "lab",
        &ips[0],
        "true",
    );
    assert!(
        !wrong.status.success(),
        "ssh trusted a host key that was not pinned"
    );

    // tiny-cloud's log lines, in its real format, through syslog.
    let msgs = qemu_lab::ssh_pinned(
        &ns,
        &keys,
        &keys.public("host-node-a"),
        "lab",
        &ips[1],
        "cat /var/log/messages",
    );
    let msgs = String::from_utf8_lossy(&msgs.stdout);
    for needle in [
        "local7.info tiny-cloud/boot[",
        "]: expand_root: starting",
        "local7.info tiny-cloud/main[",
        "]: set_hostname: done",
        "]: userdata_write_files: done",
        "local7.info tiny-cloud/final[",
        "]: userdata_runcmd: done",
        "local7.notice tiny-cloud[",
        "]: bootstrap marked complete",
    ] {
        assert!(
            msgs.contains(needle),
            "/var/log/messages lacks {needle:?}:\n{msgs}"
        );
    }
}
