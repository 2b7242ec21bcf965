//! The real binary in a real terminal (tmux): `pxelab up` on loopback ports, an unknown
//! MAC asks for its boot script over HTTP (curl) and shows up held; keystrokes adopt it;
//! lab.yaml gains the node with its comments intact; the next ask boots it, and the
//! console shows it moving on. `q` quits and the terminal is given back.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::tmux::Tmux;

const MAC: &str = "52:54:00:7a:11:ee";

fn free_port() -> u16 {
    common::free_port()
}

fn curl(url: &str) -> Option<String> {
    let o = Command::new("curl")
        .args(["-sf", "--max-time", "10", url])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn lab_text(http: u16, admin: u16) -> String {
    format!(
        "# tmux test lab. This comment must survive adoption.\nname: tmuxlab\nserver_address: 127.0.0.1\ndhcp:\n  mode: off   # no DHCP on a shared network\ntftp:\n  enabled: false\nhttp:\n  bind: 127.0.0.1\n  port: {http}\n  admin_port: {admin}\nboot:\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n  cmdline: \"console=ttyS0 ip=dhcp\"\nssh:\n  watch: false\nunknown: hold\nnodes:\n  # the control plane\n  - mac: a0:1a:2c:c3:d4:e0\n    hostname: node-0\n    role: k3s-server\n"
    )
}

#[test]
fn adopt_a_held_machine_with_keystrokes() {
    if !common::require_program("tmux") || !common::require_program("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (http, admin) = (free_port(), free_port());
    let lab = dir.path().join("lab.yaml");
    let before = lab_text(http, admin);
    std::fs::write(&lab, &before).unwrap();
    let t = Tmux {
        socket: format!("pxt-tui-{}", std::process::id()),
    };
    let cmdline = format!(
        "cd {} && {} up -c lab.yaml; echo pxelab-exited-$?; sleep 60",
        dir.path().display(),
        std::env::var("PXELAB_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| common::pxelab_bin())
            .display()
    );
    let o = t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "lab",
        "-x",
        "120",
        "-y",
        "36",
        &cmdline,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    t.wait_screen("tmuxlab", 15);

    // An unknown machine asks for its script: it is held in the wait loop.
    let url = format!("http://127.0.0.1:{http}/boot.ipxe?mac={MAC}");
    let hold = common::wait_for(Duration::from_secs(15), Duration::from_millis(200), || {
        curl(&url)
    })
    .expect("the HTTP server answers");
    assert!(hold.contains("waiting to be adopted"), "{hold}");
    t.wait_screen(MAC, 10);
    t.wait_screen("held", 15);

    // Adopt it from the keyboard: palette, dialog, Enter.
    t.keys(&format!(":adopt {MAC}"));
    t.key("Enter");
    let dlg = t.wait_screen("into lab.yaml", 15);
    assert!(dlg.contains("k3s-agent"), "{dlg}");
    t.key("Enter");
    let text = common::wait_for(Duration::from_secs(10), Duration::from_millis(150), || {
        let s = std::fs::read_to_string(&lab).ok()?;
        s.contains(MAC).then_some(s)
    })
    .expect("lab.yaml gains the node");
    assert!(
        text.starts_with(&before),
        "comments and order kept:\n{text}"
    );
    assert!(
        text.contains("# the control plane") && text.contains("role: k3s-agent"),
        "{text}"
    );
    t.wait_screen("adopted", 15);

    // The machine's next ask boots it; the console follows it.
    let script = common::wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
        curl(&url).filter(|s| s.contains("kernel "))
    })
    .expect("the adopted machine gets its iPXE script");
    assert!(script.starts_with("#!ipxe"), "{script}");
    let screen = t.wait_screen("script-served", 15);
    assert!(
        screen.contains("node-1") && screen.contains("k3s-agent"),
        "{screen}"
    );

    // q quits with status 0, and the shell's line shows on the restored main screen.
    t.key("q");
    let after = t.wait_screen("pxelab-exited-0", 10);
    assert!(
        !after.contains("Nodes 2/2"),
        "alternate screen left:\n{after}"
    );
    assert!(!Path::new(&dir.path().join("lab.yaml.tmp")).exists());
}

/// `pxelab demo` in a tmux window of `w`×`h`, run in a temporary folder.
fn demo_at(w: u16, h: u16) -> (Tmux, tempfile::TempDir) {
    demo_with(w, h, "--nodes 3 --speed 4")
}

/// `pxelab demo ARGS` in a tmux window of `w`×`h`, run in a temporary folder.
fn demo_with(w: u16, h: u16, args: &str) -> (Tmux, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let t = Tmux {
        socket: format!("pxt-size-{}-{w}x{h}-{}", std::process::id(), args.len()),
    };
    let cmdline = format!(
        "cd {} && {} demo {args}; echo pxelab-exited-$?; sleep 60",
        dir.path().display(),
        std::env::var("PXELAB_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| common::pxelab_bin())
            .display()
    );
    let (ws, hs) = (w.to_string(), h.to_string());
    let o = t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "lab",
        "-x",
        &ws,
        "-y",
        &hs,
        &cmdline,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The folder lives as long as the session (the demo runs in it).
    (t, dir)
}

/// Every MAC-looking word on the screen is a whole MAC (17 characters).
fn macs_whole(screen: &str) {
    for word in screen.split(|c: char| c.is_whitespace() || c == '│') {
        if word.starts_with("52:54:00") || word.starts_with("a0:1a") {
            assert_eq!(word.len(), 17, "cut MAC `{word}` in:\n{screen}");
        }
    }
}

#[test]
fn the_console_at_any_size() {
    if !common::require_program("tmux") {
        return;
    }
    for (w, h) in [(80u16, 24u16), (120, 40), (200, 60)] {
        let (t, _dir) = demo_at(w, h);
        let s = t.wait_screen("52:54:00", 30);
        macs_whole(&s);
        assert!(
            s.contains("/ filter") && s.contains("q quit"),
            "{w}×{h}:\n{s}"
        );
        assert!(!s.contains("too small"), "{s}");
        // The SSH watcher reports itself: ▲, not the `…` of a server never heard from.
        let s = t.wait_screen("▲ SSH", 15);
        assert!(!s.contains("… SSH"), "{s}");
        t.key("q");
        t.wait_screen("pxelab-exited-0", 10);
    }
    let (t, _dir) = demo_at(40, 10);
    let s = t.wait_screen("too small", 30);
    assert!(s.contains("have 40×10"), "{s}");
    // Grown back, the console draws the lab.
    t.cmd(&["resize-window", "-t", "lab", "-x", "100", "-y", "30"]);
    t.wait_screen("/ filter", 10);
    t.key("q");
    t.wait_screen("pxelab-exited-0", 10);
}

/// The text of the `line` row of the failure section, wrapped rows joined: the cells
/// right of the label column, up to the section's end.
fn failure_line(screen: &str) -> String {
    let mut out = String::new();
    let mut on = false;
    for row in screen.lines() {
        // `││label      text…││`: the outer and the section's borders on either side.
        let inner = row.trim_start_matches('│').trim_end_matches([' ', '│']);
        let label: String = inner.chars().take(11).collect();
        let text: String = inner.chars().skip(11).collect();
        let text = text.trim_end();
        if label.trim() == "line" {
            on = true;
        } else if on && (!label.trim().is_empty() || text.is_empty()) {
            break;
        }
        if on {
            out.push_str(text.trim_start_matches(' '));
        }
    }
    out
}

#[test]
fn node_5s_failure_is_readable_in_the_table_and_whole_in_the_detail_at_every_size() {
    if !common::require_program("tmux") {
        return;
    }
    for (w, h) in [(80u16, 24u16), (120, 40), (200, 60)] {
        // The whole demo: node-5 fails through the real watcher on its real k3s line.
        let (t, _dir) = demo_with(w, h, "--speed 10");
        let s = t.wait_screen("token mismatch", 60);
        let row = s
            .lines()
            .find(|l| l.contains("node-5"))
            .unwrap_or_else(|| panic!("{w}×{h}: no node-5 row:\n{s}"));
        assert!(
            row.contains("✗") && row.contains("token mismatch"),
            "{w}×{h}: node-5's row does not say why: {row}"
        );
        macs_whole(&s);
        // Its detail: filter to it, open it, then the failure on the whole screen.
        t.keys("/node-5");
        t.key("Enter");
        t.wait_screen("Nodes 1/", 10);
        t.key("Enter");
        t.wait_screen("Why (", 10);
        t.key("Enter");
        let s = t.wait_screen("class      token-mismatch", 10);
        // The whole-screen view: the section alone (no timeline), holding its `line` row.
        let s = common::wait_for(Duration::from_secs(10), Duration::from_millis(150), || {
            let s = t.capture();
            (!s.contains("Timeline") && failure_line(&s).ends_with('"')).then_some(s)
        })
        .unwrap_or(s);
        let line = failure_line(&s);
        assert!(
            line.starts_with("time=")
                && line.contains("level=fatal")
                && line.contains("token CA hash does not match the Cluster CA certificate hash")
                && line.ends_with('"'),
            "{w}×{h}: the log line is not whole: {line:?}\n{s}"
        );
        if std::env::var_os("PXELAB_SHOW_SCREENS").is_some() {
            eprintln!("{w}×{h}:\n{s}");
        }
        // Back to the table before `q`: an Esc followed at once by `q` reads as Alt-q.
        t.key("Escape");
        t.wait_screen("Nodes 1/", 10);
        t.key("q");
        t.wait_screen("pxelab-exited-0", 15);
    }
}

/// The held machine's iPXE wait loop fetches its script every few seconds for as long as
/// it waits: the pane counts those fetches on one line instead of scrolling everything
/// else away.
#[test]
fn a_held_machines_wait_loop_is_one_counted_line_in_the_events_pane() {
    if !common::require_program("tmux") {
        return;
    }
    let (t, _dir) = demo_with(120, 40, "--speed 10");
    let s = common::wait_for(Duration::from_secs(60), Duration::from_millis(250), || {
        let s = t.capture();
        s.lines()
            .any(|l| {
                l.contains("HoldScript")
                    && l.split('×')
                        .nth(1)
                        .and_then(|n| n.split_whitespace().next())
                        .and_then(|n| n.parse::<u32>().ok())
                        .is_some_and(|n| n >= 3)
            })
            .then_some(s)
    })
    .unwrap_or_else(|| panic!("no counted wait-loop line:\n{}", t.capture()));
    let hold_lines = s.lines().filter(|l| l.contains("HoldScript")).count();
    assert_eq!(
        hold_lines, 1,
        "the wait loop takes {hold_lines} lines:\n{s}"
    );
    t.key("q");
    t.wait_screen("pxelab-exited-0", 15);
}
