//! The `cmd` power driver driving a real QEMU machine, as a smart plug would: `on`
//! starts it (daemonized, its QMP monitor on a socket named from `{hostname}`), `cycle`
//! resets it through the monitor, `off` quits it (the power is gone), `on` again starts
//! it anew. Each action goes `pxelab power …` → the running `pxelab up`'s admin API →
//! the engine service → the driver; the machine's state is read back over QMP
//! (`query-status`, `query-name`), not taken from pxelab's word.
//!
//! No network at all (`-nic none`, no display, a unix socket in a temporary folder), no
//! root. TCG is enough: the machine only has to exist and run.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::ChildGuard;

/// `qmp.py SOCKET COMMAND`: one QMP command, its `return` (or error) printed as JSON.
const QMP: &str = r#"
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())
def call(cmd):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while True:
        line = f.readline()
        if not line:
            return {"closed": True}
        m = json.loads(line)
        if "return" in m or "error" in m:
            return m
call("qmp_capabilities")
print(json.dumps(call(sys.argv[2])))
"#;

/// Kills whatever QEMU the test's pidfile names, on drop.
struct PidFile(PathBuf);

impl PidFile {
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.0).ok()?.trim().parse().ok()
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(pid) = self.pid().filter(|p| alive(*p)) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).output();
        }
    }
}

fn qmp(dir: &Path, command: &str) -> Option<serde_json::Value> {
    let out = Command::new("python3")
        .current_dir(dir)
        .args(["qmp.py", "vm-1.qmp", command])
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn pxelab(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(common::pxelab_bin())
        .arg("-c")
        .arg(dir.join("lab.yaml"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("pxelab");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn cmd_driver_powers_a_qemu_machine_on_cycles_it_and_off_through_the_admin_api() {
    if !common::require_programs(&["qemu-system-x86_64", "python3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("qmp.py"), QMP).unwrap();
    let (http, admin) = (common::free_port(), common::free_port());
    let on = "qemu-system-x86_64 -name {hostname} -machine pc -accel tcg -m 32 -nodefaults \
              -display none -nic none -smbios type=1,serial={mac} \
              -daemonize -pidfile {hostname}.pid -qmp unix:{hostname}.qmp,server=on,wait=off";
    std::fs::write(
        d.join("lab.yaml"),
        format!(
            "name: qemupower\nserver_address: 127.0.0.1\ndhcp: {{mode: off}}\ntftp: {{enabled: false}}\n\
             http: {{bind: 127.0.0.1, port: {http}, admin_port: {admin}}}\nssh: {{watch: false}}\n\
             boot: {{kernel: vmlinuz-lts}}\n\
             nodes:\n  - mac: 52:54:00:77:01:01\n    hostname: vm-1\n    role: k3s-server\n    power:\n      cmd:\n\
             \x20       on: \"{on}\"\n\
             \x20       off: python3 qmp.py {{hostname}}.qmp quit\n\
             \x20       cycle: python3 qmp.py {{hostname}}.qmp system_reset\n\
             \x20       timeout: 20s\n"
        ),
    )
    .unwrap();
    let pidfile = PidFile(d.join("vm-1.pid"));

    let mut up = Command::new(common::pxelab_bin())
        .arg("-c")
        .arg(d.join("lab.yaml"))
        .args(["up", "--no-tui", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pxelab up");
    let out = up.stdout.take().unwrap();
    let up = ChildGuard(up);
    let (tx, events) = mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    let admin_up = common::wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        events
            .try_recv()
            .ok()
            .filter(|e| e["event"] == "server-up" && e["source"] == "admin")
    });
    assert!(admin_up.is_some(), "the admin API did not come up");

    // on: the machine exists and runs, named from the placeholder.
    let (ok, said) = pxelab(d, &["power", "on", "vm-1"]);
    assert!(ok, "{said}");
    assert!(said.contains("vm-1: power on: power.cmd.on done"), "{said}");
    let first = pidfile.pid().expect("QEMU wrote no pidfile");
    assert!(alive(first));
    let status = qmp(d, "query-status").expect("no QMP answer after power on");
    assert_eq!(status["return"]["status"], "running", "{status}");
    assert_eq!(qmp(d, "query-name").unwrap()["return"]["name"], "vm-1");

    // cycle: reset through the monitor; the same process, running.
    let (ok, said) = pxelab(d, &["power", "cycle", "vm-1"]);
    assert!(ok, "{said}");
    assert_eq!(
        qmp(d, "query-status").unwrap()["return"]["status"],
        "running"
    );
    assert_eq!(pidfile.pid(), Some(first));

    // off: the machine is gone.
    let (ok, said) = pxelab(d, &["power", "off", "vm-1"]);
    assert!(ok, "{said}");
    let gone = common::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        (!alive(first)).then_some(())
    });
    assert!(gone.is_some(), "QEMU {first} still runs after power off");
    assert!(
        qmp(d, "query-status").is_none(),
        "the monitor still answers"
    );

    // on again: a new machine.
    let (ok, said) = pxelab(d, &["power", "on", "vm-1"]);
    assert!(ok, "{said}");
    let second = pidfile.pid().unwrap();
    assert_ne!(second, first);
    assert_eq!(
        qmp(d, "query-status").unwrap()["return"]["status"],
        "running"
    );

    // The instance recorded each action as a `power` event with its driver.
    let mut seen = Vec::new();
    while let Ok(e) = events.recv_timeout(Duration::from_millis(500)) {
        if e["event"] == "power" {
            seen.push((
                e["action"].as_str().unwrap_or("").to_string(),
                e["driver"].clone(),
                e["ok"].clone(),
            ));
        }
        if seen.len() == 4 {
            break;
        }
    }
    let actions: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(actions, ["on", "cycle", "off", "on"], "{seen:?}");
    assert!(seen.iter().all(|s| s.1 == "cmd" && s.2 == true), "{seen:?}");
    let (ok, said) = pxelab(d, &["power", "off", "vm-1"]);
    assert!(ok, "{said}");
    drop(up);
}
