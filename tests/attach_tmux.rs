//! `pxelab attach` as an operator uses it from another machine: `pxelab up --no-tui` in
//! one network namespace with the admin API bound on its veth address (TLS), the
//! console attached from a second namespace and driven with keys in tmux. An unknown
//! machine (curl asking for its boot script from the second namespace) shows up held in
//! the attached console; adopting it there writes the server's lab.yaml (comments
//! kept), and the console follows it booting. A missing token, a wrong token and a
//! changed certificate are each refused by `pxelab attach` with a clear message (and the
//! server records the refusals); nothing the admin API sent (the event stream with log
//! lines, the state, the lab, every node) holds the k3s token, a node password, the
//! lab secret or the admin token.

mod common;
mod dhcp_support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::tmux::Tmux;
use common::NetNs;
use dhcp_support::{write_lab, Pxelab};

const SERVER: &str = "10.76.0.1";
const CLIENT: &str = "10.76.0.2";
const MAC: &str = "52:54:00:76:00:0b";
const K3S_TOKEN: &str = "inline-k3s-secret-7761";

/// The shell line that runs `pxelab attach` in the client's namespace, then says how it
/// ended and stays (so the screen can be read).
fn attach_line(client: &NetNs, home: &Path, token: Option<&Path>) -> String {
    let token = token
        .map(|t| format!(" --token-file {}", t.display()))
        .unwrap_or_default();
    format!(
        "env -u PXELAB_TOKEN PXELAB_KNOWN_SERVERS={} ip netns exec {} {} attach https://{SERVER}:7480{token}; echo attach-exited-$?; sleep 60",
        home.join("known_servers").display(),
        client.name,
        common::pxelab_bin().display()
    )
}

/// curl from the client's namespace: the admin API (`-k`: the test reads what the API
/// sends; the pinning is `pxelab attach`'s, checked below).
fn api(client: &NetNs, token: &str, path: &str) -> String {
    let out = client.exec(&[
        "curl",
        "-sk",
        "--max-time",
        "10",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("https://{SERVER}:7480{path}"),
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lab_yaml() -> String {
    format!(
        "# attach test lab. This comment must survive adoption.\nname: attachlab\n\
         server_address: {SERVER}\ndhcp:\n  mode: off   # no DHCP here\ntftp:\n  enabled: false\n\
         http:\n  port: 8080\n  admin_port: 7480\n  admin_bind: {SERVER}   # reached from the operator's machine\n\
         syslog:\n  enabled: true\n  port: 5514\nssh:\n  watch: false\nboot:\n  kernel: vmlinuz\n  initrds: [initrd]\n\
         k3s:\n  token: {K3S_TOKEN}\nunknown: hold\nnodes:\n  # the control plane\n\
         \x20 - mac: '52:54:00:76:00:01'\n    hostname: cp-0\n    role: k3s-server\n"
    )
}

#[test]
fn a_console_attached_from_another_namespace_adopts_into_the_servers_lab() {
    if !common::require_root()
        || !common::require_program("tmux")
        || !common::require_program("curl")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let srv = NetNs::with_bridge("pxat", &format!("{SERVER}/24"));
    let client = srv.add_veth_host("cl");
    client.exec_ok(&["ip", "addr", "add", &format!("{CLIENT}/24"), "dev", "eth0"]);
    let before = lab_yaml();
    let lab = write_lab(dir.path(), &before);
    let p = Pxelab::start(srv.command(&[]), &lab, &["admin", "http", "syslog"]);
    let token_file = dir.path().join(".pxelab/admin-token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    let token_copy = home.path().join("token");
    std::fs::write(&token_copy, &token).unwrap();

    // Everything the event stream sends (log lines included) while the test runs.
    let sse_file = home.path().join("sse.txt");
    let sse = std::fs::File::create(&sse_file).unwrap();
    let mut sse_cmd = client.command(&[
        "curl",
        "-skN",
        "--max-time",
        "60",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("https://{SERVER}:7480/api/events?logs=1"),
    ]);
    let _sse = common::ChildGuard(sse_cmd.stdout(sse).stderr(Stdio::null()).spawn().unwrap());

    // An unknown machine asks for its boot script: held.
    let script_url = format!("http://{SERVER}:8080/boot.ipxe?mac={MAC}");
    let ask = || {
        let o = client.exec(&["curl", "-sf", "--max-time", "10", &script_url]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(ask().contains("waiting to be adopted"));

    // The console, attached from the client's namespace.
    let t = Tmux {
        socket: format!("pxt-attach-{}", std::process::id()),
    };
    t.start(&attach_line(&client, home.path(), Some(&token_copy)));
    let s = t.wait_screen("attachlab", 20);
    assert!(
        s.contains(&format!("⇄ https://{SERVER}:7480 SHA256:")),
        "{s}"
    );
    t.wait_screen(MAC, 10);
    let s = t.wait_screen("held", 10);
    assert!(s.contains("cp-0"), "{s}");
    // The event pane has what happened before the console attached.
    let s = t.wait_screen("node-held", 5);
    assert!(s.contains("server-up"), "{s}");
    let pinned = std::fs::read_to_string(home.path().join("known_servers")).unwrap();
    let fp = pinned.split_whitespace().nth(1).unwrap().to_string();
    let up = p.wait(Duration::from_secs(1), "admin up", |e| {
        e["event"] == "server-up" && e["source"] == "admin"
    });
    assert!(up["addr"].as_str().unwrap().contains(&fp), "{up} vs {fp}");

    // Adopt it with keys, as on a local console.
    t.keys(&format!(":adopt {MAC}"));
    t.key("Enter");
    let dlg = t.wait_screen("into lab.yaml", 10);
    assert!(dlg.contains("k3s-agent"), "{dlg}");
    t.key("Enter");
    let text = common::wait_for(Duration::from_secs(10), Duration::from_millis(150), || {
        let s = std::fs::read_to_string(&lab).ok()?;
        s.contains(MAC).then_some(s)
    })
    .expect("the server's lab.yaml gains the node");
    assert!(
        text.starts_with(&before),
        "comments and order kept:\n{text}"
    );
    assert!(text.contains("role: k3s-agent"), "{text}");
    t.wait_screen("adopted", 10);
    p.wait(Duration::from_secs(5), "node-adopted", |e| {
        e["event"] == "node-adopted" && e["mac"] == MAC
    });

    // Its next ask boots it; the attached console follows.
    assert!(ask().contains("kernel "), "the adopted machine boots");
    let s = t.wait_screen("script-served", 15);
    assert!(s.contains("node-0") && s.contains("k3s-agent"), "{s}");
    let node_password = {
        let l = pxelab::config::Lab::load(&lab).unwrap();
        pxelab::secrets::for_node(&l, MAC.parse().unwrap())
            .unwrap()
            .node_password
            .unwrap()
    };
    // The node says something (busybox syslogd -R sends one datagram a line): log
    // lines, node-local: not on the headless stream, but the attached console gets them
    // through `events?logs=1`; the one that holds its secrets arrives with them masked.
    client.exec_ok(&[
        "bash",
        "-c",
        &format!(
            "echo '<13>Dec  5 08:00:00 tiny-cloud: hello-from-node' > /dev/udp/{SERVER}/5514; \
             echo '<11>Dec  5 08:00:01 runcmd: failed: K3S_TOKEN={K3S_TOKEN} pw {node_password}' > /dev/udp/{SERVER}/5514"
        ),
    ]);
    // Its detail: the timeline and log streamed from the server, the files that need
    // no secret, and user-data named as the server's alone.
    t.key("Down");
    t.key("Enter");
    let s = t.wait_screen("hello-from-node", 10);
    let s = if s.contains("masked") {
        s
    } else {
        t.wait_screen("K3S_TOKEN=•••• masked", 5)
    };
    assert!(
        s.contains("node-adopted")
            && s.contains("iPXE script")
            && s.contains("user-data (on the server)"),
        "{s}"
    );
    t.key("Escape");

    // Every route an attached console reads, and the event stream: no secret in any.
    let lab_secret = std::fs::read_to_string(dir.path().join(".pxelab/lab-secret")).unwrap();
    let mut sent = String::new();
    for path in [
        "/api/lab",
        "/api/lab/file",
        "/api/nodes",
        "/api/state",
        &format!("/api/nodes/{MAC}"),
        "/api/nodes/cp-0",
    ] {
        let body = api(&client, &token, path);
        assert!(body.starts_with('{'), "{path}: {body}");
        sent.push_str(&body);
    }
    assert!(sent.contains("masked"), "the inline token is shown masked");

    // The server goes away: the console says so and keeps trying; back, it re-attaches.
    p.stop();
    let s = t.wait_screen("link lost", 15);
    assert!(s.contains("▼ admin"), "{s}");
    sent.push_str(&std::fs::read_to_string(&sse_file).unwrap());
    let p = Pxelab::start(srv.command(&[]), &lab, &["admin"]);
    t.wait_screen("attached again", 20);
    t.wait_screen("▲ admin", 5);
    t.key("q");
    t.wait_screen("attach-exited-0", 10);
    assert!(
        sent.contains("node-adopted") && sent.contains("hello-from-node"),
        "the stream was read"
    );
    for (what, secret) in [
        ("k3s token", K3S_TOKEN),
        ("node password", node_password.as_str()),
        ("lab secret", lab_secret.trim()),
        ("admin token", token.as_str()),
    ] {
        assert!(!sent.contains(secret), "the {what} crossed the admin API");
    }

    // No token: refused before anything is sent, naming what to give; without the
    // header the server refuses too, and records it.
    t.start(&attach_line(&client, home.path(), None));
    let s = t.wait_screen("attach-exited-1", 15);
    assert!(s.contains("--token-file"), "{s}");
    let out = client.exec(&[
        "curl",
        "-sk",
        "--max-time",
        "10",
        &format!("https://{SERVER}:7480/api/state"),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no admin token"));
    p.wait(Duration::from_secs(5), "the refusal (no token)", |e| {
        e["event"] == "refused" && e["reason"] == "no admin token" && e["client"] == CLIENT
    });

    // A wrong token: refused by the server, said plainly, recorded.
    let wrong = home.path().join("wrong");
    std::fs::write(&wrong, "0000").unwrap();
    t.start(&attach_line(&client, home.path(), Some(&wrong)));
    let s = t.wait_screen("attach-exited-1", 15);
    assert!(s.contains("wrong admin token"), "{s}");
    p.wait(Duration::from_secs(5), "the refusal (wrong token)", |e| {
        e["event"] == "refused" && e["reason"] == "wrong admin token" && e["client"] == CLIENT
    });

    // A new certificate at the same address: refused, naming both fingerprints' file.
    p.stop();
    std::fs::remove_file(dir.path().join(".pxelab/admin-tls.crt")).unwrap();
    std::fs::remove_file(dir.path().join(".pxelab/admin-tls.key")).unwrap();
    let p = Pxelab::start(srv.command(&[]), &lab, &["admin"]);
    t.start(&attach_line(&client, home.path(), Some(&token_copy)));
    let s = t.wait_screen("attach-exited-1", 15);
    let joined: String = s.lines().map(str::trim_end).collect();
    assert!(
        joined.contains("known_servers") && joined.contains(&fp[..20]),
        "{s}"
    );
    p.stop();
}
