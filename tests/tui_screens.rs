//! Screen snapshots of the console (ratatui TestBackend, 120x36), built from an Engine
//! that replays a real run of the demo lab (tests/golden, recorded through pxelab's own
//! servers and SSH watcher: see tests/tui_support/recording.rs), so every line shown is
//! what the product produced; only the times are set to a fixed clock. `PXELAB_SCREENSHOT_DIR=dir` also writes each screen as Pango
//! markup lines for scripts/screenshots.sh.

mod tui_support;

use crossterm::event::KeyCode;
use pxelab::engine::Snapshot;
use pxelab::tui::app::{App, Effect};
use pxelab::tui::capture;
use tui_support::*;

const W: u16 = 120;
const H: u16 = 36;

fn shot(name: &str, app: &App, snap: &Snapshot) -> String {
    let buf = capture::draw(app, snap, W, H);
    if let Ok(dir) = std::env::var("PXELAB_SCREENSHOT_DIR") {
        let (fg, bg) = match app.theme.name.as_str() {
            "light" => ("#4c4f69", "#eff1f5"),
            "high-contrast" => ("#e5e5e5", "#000000"),
            _ => ("#cdd6f4", "#1e1e2e"),
        };
        let lines = capture::pango_lines(&buf, fg, bg);
        if name == "x" {
            return capture::text(&buf);
        }
        std::fs::write(format!("{dir}/{name}.pango"), lines.join("\n")).unwrap();
        std::fs::write(format!("{dir}/{name}.bg"), bg).unwrap();
    }
    capture::text(&buf)
}

fn select_mac(app: &mut App, snap: &Snapshot, mac: &str) {
    app.sync(snap);
    let m = TestLab::mac(mac);
    let i = app.main.rows.iter().position(|r| r.mac == m).unwrap();
    let keys: Vec<_> = std::iter::repeat_n(code(KeyCode::Down), i).collect();
    for k in keys {
        app.on_key(&k);
    }
}

#[test]
fn empty_lab() {
    // The recorded run once its servers listen, before the first machine powers on.
    let lab = TestLab::recorded(|e| {
        matches!(&e.kind, pxelab::engine::EventKind::ServerUp { source, .. }
            if *source == pxelab::engine::Source::Ssh)
    });
    let (app, snap) = lab.app("dark");
    insta::assert_snapshot!("empty_lab", shot("empty_lab", &app, &snap));
}

#[test]
fn booting_lab() {
    let lab = TestLab::recorded_booting();
    let (app, snap) = lab.app("dark");
    let s = shot("booting_lab", &app, &snap);
    assert!(s.contains("node-5") && s.contains("token mismatch"), "{s}");
    insta::assert_snapshot!("booting_lab", s);
}

#[test]
fn held_node_selected() {
    let lab = TestLab::recorded_booting();
    let (mut app, snap) = lab.app("dark");
    press(&lab, &mut app, &snap, &[key('s')]); // sort by state: problems and held first
    select_mac(&mut app, &snap, DEMO_HELD);
    app.flash = None;
    let s = shot("held_node", &app, &snap);
    assert!(s.contains("waiting to be adopted"), "{s}");
    insta::assert_snapshot!("held_node", s);
}

#[test]
fn adoption_dialog() {
    let lab = TestLab::recorded_booting();
    let (mut app, snap) = lab.app("dark");
    select_mac(&mut app, &snap, DEMO_HELD);
    let fx = press(&lab, &mut app, &snap, &[key('a')]);
    assert_eq!(fx, vec![Effect::OpenAdopt(TestLab::mac(DEMO_HELD))]);
    let s = shot("adoption_dialog", &app, &snap);
    // The next free hostname, and the address the machine already leased.
    assert!(
        s.contains("k3s-agent") && s.contains("node-6") && s.contains("127.1.200.10"),
        "{s}"
    );
    insta::assert_snapshot!("adoption_dialog", s);
}

#[test]
fn node_detail() {
    // node-5 once the run settled: it failed with another cluster's token.
    let lab = TestLab::recorded_settled();
    let (mut app, snap) = lab.app("dark");
    select_mac(&mut app, &snap, DEMO_NODE5);
    press(&lab, &mut app, &snap, &[code(KeyCode::Enter)]);
    let idx = snap
        .nodes
        .iter()
        .position(|n| n.mac == TestLab::mac(DEMO_NODE5))
        .unwrap();
    let d = app.detail.as_mut().expect("detail loaded");
    retime_record(d.record.as_mut().unwrap(), idx);
    let s = shot("node_detail", &app, &snap);
    assert!(
        s.contains("Timeline") && s.contains("token mismatch") && s.contains("#!ipxe"),
        "{s}"
    );
    insta::assert_snapshot!("node_detail", s);
}

#[test]
fn help_screen() {
    let lab = TestLab::recorded_booting();
    let (mut app, snap) = lab.app("dark");
    press(&lab, &mut app, &snap, &[key('?')]);
    // On a tall terminal every line of the key table is on the help screen.
    let tall = capture::text(&capture::draw(&app, &snap, W, 80));
    for b in pxelab::tui::keys::KEYS {
        assert!(tall.contains(b.help), "help lacks `{}`:\n{tall}", b.help);
    }
    let s = shot("help", &app, &snap);
    insta::assert_snapshot!("help", s);
}

#[test]
fn palette_with_completion() {
    let lab = TestLab::recorded_booting();
    let (mut app, snap) = lab.app("dark");
    press(&lab, &mut app, &snap, &[key(':'), key('t'), key('h')]);
    let s = shot("palette", &app, &snap);
    assert!(s.contains(":theme"), "{s}");
    insta::assert_snapshot!("palette", s);
    // Tab completes, then the argument; Enter switches the theme.
    press(
        &lab,
        &mut app,
        &snap,
        &[
            code(KeyCode::Tab),
            key('l'),
            code(KeyCode::Tab),
            code(KeyCode::Enter),
        ],
    );
    assert_eq!(app.theme.name, "light");
}

#[test]
fn filter_and_inverted_filter() {
    let lab = TestLab::recorded_booting();
    let (mut app, snap) = lab.app("dark");
    press(
        &lab,
        &mut app,
        &snap,
        &[key('/'), key('a'), key('g'), key('e'), key('n'), key('t')],
    );
    assert_eq!(app.main.rows.len(), 5, "five agents: node-1..5");
    let s = shot("filter", &app, &snap);
    insta::assert_snapshot!("filter", s);
    press(
        &lab,
        &mut app,
        &snap,
        &[
            code(KeyCode::Esc),
            key('/'),
            key('!'),
            key('r'),
            key('e'),
            key('a'),
            key('d'),
            key('y'),
            code(KeyCode::Enter),
        ],
    );
    let not_ready = snap
        .nodes
        .iter()
        .filter(|n| n.state != pxelab::engine::NodeState::Ready)
        .count();
    assert_eq!(app.main.rows.len(), not_ready, "every node but the ready ones");
    assert!(app.overlay.is_none());
}

#[test]
fn light_and_high_contrast_render() {
    let lab = TestLab::recorded_booting();
    for t in ["light", "high-contrast"] {
        let (mut app, snap) = lab.app(t);
        select_mac(&mut app, &snap, DEMO_HELD);
        let s = shot(&format!("booting_{t}"), &app, &snap);
        assert!(s.contains("node-0"));
    }
}

#[test]
fn served_files_never_show_secrets() {
    let lab = TestLab::recorded_booting();
    let (mut app, snap) = lab.app("dark");
    let mac = TestLab::mac(DEMO_NODE0);
    let secrets = pxelab::secrets::for_node(&lab.engine.lab(), mac).unwrap();
    let mut seen_tabs = Vec::new();
    select_mac(&mut app, &snap, DEMO_NODE0);
    press(&lab, &mut app, &snap, &[code(KeyCode::Enter)]);
    let tabs = app.detail.as_ref().unwrap().served.len();
    assert!(tabs >= 4, "script, cmdline, meta-data, user-data");
    for _ in 0..tabs {
        let d = app.detail.as_ref().unwrap();
        seen_tabs.push(d.served[d.tab].title.clone());
        let all = format!("{}\n{}", d.served[d.tab].text, shot("x", &app, &snap));
        assert!(
            secrets.k3s_token.len() < 8 || !all.contains(&secrets.k3s_token),
            "token shown in {}",
            d.served[d.tab].title
        );
        if let Some(pw) = &secrets.node_password {
            assert!(!all.contains(pw.as_str()), "node password shown");
        }
        if let Some(k) = &secrets.host_private_key {
            for line in k
                .lines()
                .filter(|l| l.len() > 20 && !l.starts_with("-----"))
            {
                assert!(!all.contains(line), "host private key shown");
            }
        }
        press(&lab, &mut app, &snap, &[code(KeyCode::Tab)]);
    }
    assert!(seen_tabs.iter().any(|t| t == "user-data"), "{seen_tabs:?}");
}

#[test]
fn a_failed_node_says_why_in_words() {
    // node-5's real failure, as the watcher read it from the (simulated) node's k3s log.
    let lab = TestLab::recorded_settled();
    let (_, events) = tui_support::recording::load();
    let line = events
        .iter()
        .find_map(|e| match &e.kind {
            pxelab::engine::EventKind::NodeFailed { line, .. } => Some(line.clone()),
            _ => None,
        })
        .expect("node-5 failed with a line");
    let tail: String = line
        .chars()
        .rev()
        .take(12)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let (mut app, snap) = lab.app("dark");
    // The table row carries the sentence, not the logrus line.
    let table = capture::text(&capture::draw(&app, &snap, W, H));
    assert!(
        table.contains("✗ node-5") && table.contains("token mismatch: this agent"),
        "{table}"
    );
    assert!(!table.contains("failed: time="), "{table}");
    select_mac(&mut app, &snap, DEMO_NODE5);
    press(&lab, &mut app, &snap, &[code(KeyCode::Enter)]);
    let wrapped = capture::text(&capture::draw(&app, &snap, W, 50));
    if std::env::var("SHOW").is_ok() {
        eprintln!("{wrapped}");
    }
    let joined: String = wrapped.split_whitespace().collect::<Vec<_>>().join("");
    for want in [
        "class      token-mismatch",
        "why        token mismatch: this agent holds another cluster's token",
        "msg        Failed to validate connection to cluster at https://127.1.0.10:6443",
        "line       time=\"",
    ] {
        assert!(wrapped.contains(want), "lacks {want}:\n{wrapped}");
    }
    assert!(
        joined.contains(&tail),
        "the line's end `{tail}` is not shown:\n{wrapped}"
    );
    // `w` cuts each long line to one row: the end of the line is no longer shown.
    press(&lab, &mut app, &snap, &[key('w')]);
    let cut = capture::text(&capture::draw(&app, &snap, W, 50));
    assert!(cut.contains("class      token-mismatch"), "{cut}");
    let cut_joined: String = cut.split_whitespace().collect::<Vec<_>>().join("");
    assert!(!cut_joined.contains(&tail), "{cut}");
    press(&lab, &mut app, &snap, &[key('w')]);
    assert_eq!(capture::text(&capture::draw(&app, &snap, W, 50)), wrapped);
}
