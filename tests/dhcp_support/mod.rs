//! Support for the DHCP and TFTP tests: run the real `pxelab up --no-tui --json` (on
//! loopback or inside a namespace) and wait on its JSON event stream.
#![allow(dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::common::{self, ChildGuard};

/// A free UDP port (see `common::free_port`).
/// A BOOTREQUEST from `mac` (Ethernet, xid 1.2.3.4) with the magic cookie, `opts` as
/// (code, data) and the end option: the bytes a client sends, for tests that write
/// packets themselves (malformed variants start from it).
pub fn raw_request(mac: [u8; 6], opts: &[(u8, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; 236];
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&[1, 2, 3, 4]);
    b[28..34].copy_from_slice(&mac);
    b.extend_from_slice(&[99, 130, 83, 99]);
    for (c, d) in opts {
        b.push(*c);
        b.push(d.len() as u8);
        b.extend_from_slice(d);
    }
    b.push(255);
    b
}

pub fn free_udp_port() -> u16 {
    common::free_port()
}

/// A free TCP port (see `common::free_port`).
pub fn free_tcp_port() -> u16 {
    common::free_port()
}

/// A real dnsmasq in `ns` (no DNS, no lease or pid file, `--log-dhcp`) with `args` added:
/// the LAN's DHCP server, or a relay. Returns once it holds UDP port 67.
pub fn dnsmasq(ns: &common::NetNs, args: &[String]) -> ChildGuard {
    let mut argv: Vec<String> = [
        "dnsmasq",
        "--no-daemon",
        "--port=0",
        "--conf-file=/dev/null",
        "--leasefile-ro",
        "--log-dhcp",
        "--user=root",
        "--pid-file=",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend_from_slice(args);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let child = ns
        .command(&argv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dnsmasq");
    common::wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        let out = ns.exec(&["ss", "-uanp"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("dnsmasq")
            .then_some(())
    })
    .expect("dnsmasq did not bind port 67");
    ChildGuard(child)
}

/// The IPv4 address on `eth0` in `ns`, if any.
pub fn addr_of(ns: &common::NetNs) -> Option<String> {
    let out = ns.exec(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    s.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .map(|a| a.split('/').next().unwrap_or_default().to_string())
}

/// Runs a PXE-flavoured dhclient once on `eth0` in `ns` (option 60 `PXEClient…`, 93 = 0),
/// bounded by `secs`. It requires a subnet mask, which a proxy offer never has, so the
/// address it binds is the full DHCP server's. Returns its address and its log.
pub fn pxe_dhclient(ns: &common::NetNs, dir: &Path, secs: u32) -> (Option<String>, String) {
    let conf = dir.join(format!("{}.dhclient.conf", ns.name));
    std::fs::write(
        &conf,
        format!(
            "option pxe-arch code 93 = unsigned integer 16;\n\
             send vendor-class-identifier \"PXEClient:Arch:00000:UNDI:002001\";\n\
             send pxe-arch 0;\nrequire subnet-mask;\n\
             request subnet-mask, routers;\ntimeout {};\n",
            secs.saturating_sub(10).max(5)
        ),
    )
    .unwrap();
    let leases = dir.join(format!("{}.leases", ns.name));
    let pidf = dir.join(format!("{}.pid", ns.name));
    let out = ns.exec(&[
        "timeout",
        &secs.to_string(),
        "dhclient",
        "-1",
        "-v",
        "-cf",
        conf.to_str().unwrap(),
        "-lf",
        leases.to_str().unwrap(),
        "-pf",
        pidf.to_str().unwrap(),
        "eth0",
    ]);
    (
        addr_of(ns),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Writes `lab.yaml` (and a dummy kernel so asset checks pass) into `dir`.
pub fn write_lab(dir: &Path, yaml: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("assets/vmlinuz"), b"kernel").unwrap();
    std::fs::write(dir.join("assets/initrd"), b"initrd").unwrap();
    let p = dir.join("lab.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

/// A running pxelab and the events it printed so far.
pub struct Pxelab {
    child: ChildGuard,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
}

impl Pxelab {
    /// Starts `pxelab up --no-tui --json -c lab` through `cmd` (a plain command or
    /// `ip netns exec …`), and waits until the servers named in `wait_up` are up.
    pub fn start(mut cmd: Command, lab: &Path, wait_up: &[&str]) -> Pxelab {
        cmd.arg(common::pxelab_bin())
            .args(["up", "--no-tui", "--json", "-c"])
            .arg(lab)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start pxelab");
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let ev = events.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    ev.lock().unwrap().push(v);
                }
            }
        });
        let se = stderr.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = se.lock().unwrap();
                if s.len() < 200_000 {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let p = Pxelab {
            child: ChildGuard(child),
            events,
            stderr,
        };
        for src in wait_up {
            let src = src.to_string();
            p.wait(Duration::from_secs(20), &format!("{src} server up"), |e| {
                e["event"] == "server-up" && e["source"] == src.as_str()
            });
        }
        p
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// Events matching `f` so far.
    pub fn matching(&self, f: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.events().into_iter().filter(|e| f(e)).collect()
    }

    /// Waits up to `limit` for an event matching `f`; panics with the stream if none.
    pub fn wait(&self, limit: Duration, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let found = common::wait_for(limit, Duration::from_millis(50), || {
            self.events.lock().unwrap().iter().find(|e| f(e)).cloned()
        });
        match found {
            Some(v) => v,
            None => self.fail(what),
        }
    }

    /// Panics showing the events and stderr.
    pub fn fail(&self, what: &str) -> ! {
        let evs: Vec<String> = self.events().iter().map(|e| e.to_string()).collect();
        panic!(
            "no {what}\n--- events ---\n{}\n--- stderr ---\n{}",
            evs.join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// Kills pxelab with SIGKILL at once (no last save, no goodbye) and waits for it.
    pub fn kill9(mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }

    /// Stops pxelab (SIGTERM, then kill) and waits for it.
    /// Returns its exit status, or None if it had to be killed after 20 s.
    pub fn stop(mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).output();
        common::wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
            self.child.0.try_wait().ok().flatten()
        })
    }
}
