//! Console flows in-process, effects carried out against a real Engine and lab.yaml:
//! adopt from the keyboard, the confirmation of dangerous actions, the theme choice.

mod tui_support;

use crossterm::event::KeyCode;
use pxelab::engine::service::PowerAction;
use pxelab::engine::{NodeState, Snapshot};
use pxelab::tui::app::{App, Effect, Focus, Level, Overlay};
use pxelab::tui::capture;
use tui_support::*;

fn select(app: &mut App, snap: &Snapshot, mac: &str) {
    app.sync(snap);
    let m = TestLab::mac(mac);
    app.main.selected = app.main.rows.iter().position(|r| r.mac == m).unwrap();
    // Move once down and up so the App records the selection the normal way.
    app.on_key(&code(KeyCode::Up));
    app.on_key(&code(KeyCode::Down));
    if app.selected_mac() != Some(m) {
        app.on_key(&code(KeyCode::Up));
    }
    assert_eq!(app.selected_mac(), Some(m));
}

#[test]
fn adopt_from_the_keyboard_writes_lab_yaml_keeping_comments() {
    let lab = TestLab::booting();
    let before = std::fs::read_to_string(&lab.path).unwrap();
    let (mut app, snap) = lab.app("dark");
    select(&mut app, &snap, HELD);
    // a (k3s-agent preselected), Tab to hostname, edit it, Enter.
    press(&lab, &mut app, &snap, &[key('a'), code(KeyCode::Tab)]);
    for _ in 0..20 {
        press(&lab, &mut app, &snap, &[code(KeyCode::Backspace)]);
    }
    let fx = press(
        &lab,
        &mut app,
        &snap,
        &[key('c'), key('p'), key('-'), key('2'), code(KeyCode::Enter)],
    );
    assert!(
        matches!(&fx[..], [Effect::Adopt { role, hostname, .. }] if role == "k3s-agent" && hostname == "cp-2"),
        "{fx:?}"
    );
    let after = std::fs::read_to_string(&lab.path).unwrap();
    assert!(
        after.starts_with(&before),
        "comments and order kept:\n{after}"
    );
    assert!(
        after.contains(HELD) && after.contains("hostname: cp-2"),
        "{after}"
    );
    let f = app.flash.clone().unwrap();
    assert_eq!(f.level, Level::Info, "{}", f.text);
    assert!(f.text.contains("cp-2"), "{}", f.text);
    assert!(app.overlay.is_none());
}

#[test]
fn a_bad_hostname_keeps_the_dialog_open() {
    let lab = TestLab::booting();
    let (mut app, snap) = lab.app("dark");
    select(&mut app, &snap, HELD);
    press(
        &lab,
        &mut app,
        &snap,
        &[key('a'), code(KeyCode::Tab), key('_'), code(KeyCode::Enter)],
    );
    match &app.overlay {
        Some(Overlay::Dialog(d)) => assert!(d
            .error
            .as_deref()
            .unwrap_or("")
            .contains("not a valid hostname")),
        o => panic!("dialog closed: {o:?}"),
    }
    press(&lab, &mut app, &snap, &[code(KeyCode::Esc)]);
    assert!(app.overlay.is_none());
    assert!(!std::fs::read_to_string(&lab.path).unwrap().contains(HELD));
}

#[test]
fn dangerous_actions_ask_first() {
    let lab = TestLab::booting();
    let (mut app, snap) = lab.app("dark");
    select(&mut app, &snap, "a0:1a:2c:c3:d4:e5");
    // Forget: D asks; n cancels; nothing changes.
    let fx = press(&lab, &mut app, &snap, &[key('D')]);
    assert!(fx.is_empty());
    assert!(matches!(app.overlay, Some(Overlay::Confirm(_))));
    press(&lab, &mut app, &snap, &[key('n')]);
    assert!(app.overlay.is_none());
    assert!(std::fs::read_to_string(&lab.path)
        .unwrap()
        .contains("node-5"));
    // D then y forgets (or reports why not, if the engine refuses).
    let fx = press(&lab, &mut app, &snap, &[key('D'), key('y')]);
    assert_eq!(fx, vec![Effect::Forget(TestLab::mac("a0:1a:2c:c3:d4:e5"))]);
    let f = app.flash.clone().unwrap();
    let text = std::fs::read_to_string(&lab.path).unwrap();
    match f.level {
        Level::Info => assert!(!text.contains("node-5"), "{text}"),
        _ => assert!(f.text.contains("forget failed"), "{}", f.text),
    }
    // Reboot asks too, then says what happened.
    let fx = press(&lab, &mut app, &snap, &[key('R'), key('y')]);
    assert_eq!(fx.len(), 1);
    assert!(app.flash.is_some());
}

#[test]
fn adopt_refuses_known_nodes_and_change_refuses_unknown() {
    let lab = TestLab::booting();
    let (mut app, snap) = lab.app("dark");
    select(&mut app, &snap, "a0:1a:2c:c3:d4:e0");
    assert!(press(&lab, &mut app, &snap, &[key('a')]).is_empty());
    assert!(app
        .flash
        .as_ref()
        .unwrap()
        .text
        .contains("already in the lab"));
    select(&mut app, &snap, HELD);
    assert!(press(&lab, &mut app, &snap, &[key('r')]).is_empty());
    assert!(app.flash.as_ref().unwrap().text.contains("press a"));
}

#[test]
fn palette_commands_and_aliases() {
    let lab = TestLab::booting();
    let (mut app, snap) = lab.app("dark");
    for c in ":ev\n".chars() {
        let k = if c == '\n' {
            code(KeyCode::Enter)
        } else {
            key(c)
        };
        press(&lab, &mut app, &snap, &[k]);
    }
    assert_eq!(app.main.focus, Focus::Events);
    let fx = press(
        &lab,
        &mut app,
        &snap,
        &[key(':'), key('q'), code(KeyCode::Enter)],
    );
    assert_eq!(fx, vec![Effect::Quit]);
    let mut app2 = lab.app("dark").0;
    press(
        &lab,
        &mut app2,
        &snap,
        &[
            key(':'),
            key('t'),
            key('h'),
            key(' '),
            key('n'),
            key('o'),
            code(KeyCode::Enter),
        ],
    );
    assert_eq!(
        app2.flash.as_ref().unwrap().level,
        Level::Error,
        "unknown theme refused"
    );
    assert_eq!(app2.theme.name, "dark");
}

#[test]
fn theme_comes_from_cli_then_lab_yaml_then_default() {
    let lab = TestLab::new(&format!("{LAB_HEAD}theme: high-contrast\n"));
    assert_eq!(
        pxelab::tui::choose_theme(None, &lab.engine).unwrap().name,
        "high-contrast"
    );
    assert_eq!(
        pxelab::tui::choose_theme(Some("light"), &lab.engine)
            .unwrap()
            .name,
        "light"
    );
    let plain = TestLab::new(LAB_HEAD);
    assert_eq!(
        pxelab::tui::choose_theme(None, &plain.engine).unwrap().name,
        "dark"
    );
    let bad = TestLab::new(&format!("{LAB_HEAD}theme: mine.yaml\n"));
    std::fs::write(
        bad.dir.path().join("mine.yaml"),
        "base: dark\nstate:\n  ready: nope\n",
    )
    .unwrap();
    let e = pxelab::tui::choose_theme(None, &bad.engine)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mine.yaml:3:") && e.contains("state.ready"),
        "{e}"
    );
}

#[test]
fn a_rebooted_node_shows_a_fresh_timeline_and_p_shows_the_previous_boot() {
    use pxelab::engine::{EventKind, NodeState};
    let lab = TestLab::booting();
    let mac = "a0:1a:2c:c3:d4:e0"; // Ready
                                   // Power cycled: QEMU's ROM (iPXE as firmware) asks DHCP as iPXE first thing.
    let mut again = discover();
    if let EventKind::DhcpDiscover { ipxe, .. } = &mut again {
        *ipxe = true;
    }
    lab.emit(mac, again);
    let rec = lab.engine.node(&TestLab::mac(mac)).unwrap();
    assert_eq!((rec.state, rec.boot), (NodeState::IpxeLoaded, 2));
    assert_eq!(rec.previous_boot.as_ref().unwrap().state, NodeState::Ready);
    let (mut app, snap) = lab.app("dark");
    select(&mut app, &snap, mac);
    press(&lab, &mut app, &snap, &[code(KeyCode::Enter)]);
    let now = capture::text(&capture::draw(&app, &snap, 120, 36));
    assert!(
        now.contains("boot 2") && now.contains("↺ boot 1: ready"),
        "{now}"
    );
    assert!(!now.contains("previous one"), "{now}");
    press(&lab, &mut app, &snap, &[key('p')]);
    let before = capture::text(&capture::draw(&app, &snap, 120, 36));
    assert!(before.contains("boot 1, the previous one"), "{before}");
    assert!(before.contains("Ready"), "{before}");
    press(&lab, &mut app, &snap, &[key('p')]);
    let back = capture::text(&capture::draw(&app, &snap, 120, 36));
    assert!(!back.contains("previous one"), "{back}");
    // A node with one boot only says so.
    press(&lab, &mut app, &snap, &[code(KeyCode::Esc)]);
    select(&mut app, &snap, "a0:1a:2c:c3:d4:e1");
    press(&lab, &mut app, &snap, &[code(KeyCode::Enter), key('p')]);
    let f = app.flash.clone().unwrap();
    assert!(f.text.contains("no earlier boot"), "{}", f.text);
}

#[test]
fn ctrl_u_clears_the_field_and_the_leased_address_is_offered() {
    let text = LAB_HEAD.replace(
        "mode: proxy",
        "mode: server\n  subnet: 10.0.0.0/24\n  range: [10.0.0.100, 10.0.0.150]",
    );
    let lab = TestLab::new(&text);
    lab.emit(
        HELD,
        pxelab::engine::EventKind::DhcpReply {
            msg: "ack".into(),
            yiaddr: Some("10.0.0.123".parse().unwrap()),
            boot_file: None,
            proxy: false,
        },
    );
    let d = pxelab::tui::effects::dialog(
        &lab.engine,
        pxelab::tui::overlay::dialog::DialogKind::Adopt,
        TestLab::mac(HELD),
    );
    assert_eq!(d.ip, "10.0.0.123", "the leased address is the suggestion");
    let (mut app, snap) = lab.app("dark");
    app.open_dialog(d);
    let ctrl_u = crossterm::event::KeyEvent::new(
        KeyCode::Char('u'),
        crossterm::event::KeyModifiers::CONTROL,
    );
    // Hostname field: Ctrl-U empties it; the IP field likewise.
    press(&lab, &mut app, &snap, &[code(KeyCode::Tab), ctrl_u]);
    press(&lab, &mut app, &snap, &[code(KeyCode::Tab), ctrl_u]);
    match &app.overlay {
        Some(Overlay::Dialog(d)) => {
            assert_eq!(d.hostname, "");
            assert_eq!(d.ip, "");
        }
        o => panic!("dialog closed: {o:?}"),
    }
}

#[test]
fn the_detail_renders_served_files_once_per_lab_not_per_engine_change() {
    use pxelab::engine::EventKind;
    use pxelab::tui::screen::detail;
    let lab = TestLab::booting();
    let mac = "a0:1a:2c:c3:d4:e1";
    let m = TestLab::mac(mac);
    let (mut app, snap) = lab.app("dark");
    select(&mut app, &snap, mac);
    press(
        &lab,
        &mut app,
        &snap,
        &[code(KeyCode::Enter), code(KeyCode::Tab)],
    );
    assert_eq!(app.served.renders(), 1);
    let tab = app.detail.as_ref().unwrap().tab;
    assert_eq!(tab, 1);
    // The run loop reloads the detail at every engine change: the record follows, the
    // served files are not rendered again.
    for _ in 0..50 {
        lab.emit(mac, discover());
        detail::load(&lab.engine, &mut app, m);
    }
    assert_eq!(app.served.renders(), 1);
    let d = app.detail.as_ref().unwrap();
    assert_eq!(d.record, lab.engine.node(&m));
    assert_eq!((d.tab, d.served.len()), (tab, 4));
    // A reload (or write-back) is a new lab: rendered once more.
    lab.engine
        .replace_lab(pxelab::config::Lab::load(&lab.path).unwrap());
    detail::load(&lab.engine, &mut app, m);
    detail::load(&lab.engine, &mut app, m);
    assert_eq!(app.served.renders(), 2);
    lab.emit(mac, EventKind::ConfigLoaded { nodes: 7 });
    detail::load(&lab.engine, &mut app, m);
    assert_eq!(app.served.renders(), 2);
}

/// Wake and power-cycle ask first, saying what the node's driver will do; `y` sends the
/// power command and the flash line says what came of it (this lab's service has no
/// way to reach machines, and says so). `:roll` asks, then starts a roll.
#[test]
fn power_keys_and_roll_ask_first_naming_what_happens() {
    let text = format!("{LAB_HEAD}{NODES}").replace(
        "    ip: 10.0.0.12\n",
        "    ip: 10.0.0.12\n    power: {cmd: {on: 'plug {hostname} on'}}\n",
    );
    let lab = TestLab::new(&text);
    lab.servers_up();
    lab.boot("a0:1a:2c:c3:d4:e0", "10.0.0.10", NodeState::Ready);
    let (mut app, snap) = lab.app("dark");
    let prompt = |app: &App| match &app.overlay {
        Some(Overlay::Confirm(c)) => c.prompt.clone(),
        other => panic!("no confirmation: {other:?}"),
    };
    // node-1: the default driver, Wake-on-LAN.
    select(&mut app, &snap, "a0:1a:2c:c3:d4:e1");
    assert!(press(&lab, &mut app, &snap, &[key('W')]).is_empty());
    assert_eq!(
        prompt(&app),
        "Wake a0:1a:2c:c3:d4:e1: a Wake-on-LAN magic packet on the lab interface?"
    );
    press(&lab, &mut app, &snap, &[key('n')]);
    assert!(app.overlay.is_none());
    assert_eq!(app.flash.as_ref().unwrap().text, "cancelled");
    let fx = press(&lab, &mut app, &snap, &[key('W'), key('y')]);
    let mac1 = TestLab::mac("a0:1a:2c:c3:d4:e1");
    assert_eq!(fx, vec![Effect::Power(mac1, PowerAction::On)]);
    let f = app.flash.clone().unwrap();
    assert_eq!(f.level, Level::Error);
    assert!(
        f.text
            .contains("power on for a0:1a:2c:c3:d4:e1 is not supported"),
        "{}",
        f.text
    );
    // The power-cycle key is dangerous and says what a wol node's cycle is.
    press(&lab, &mut app, &snap, &[key('P')]);
    assert_eq!(
        prompt(&app),
        "Power-cycle a0:1a:2c:c3:d4:e1 (wol: a reboot over SSH)?"
    );
    press(&lab, &mut app, &snap, &[code(KeyCode::Esc)]);
    // node-2 has a `cmd` driver: its power is cut.
    select(&mut app, &snap, "a0:1a:2c:c3:d4:e2");
    let fx = press(&lab, &mut app, &snap, &[key('P')]);
    assert!(fx.is_empty());
    assert_eq!(
        prompt(&app),
        "Power-cycle a0:1a:2c:c3:d4:e2: cut its power and turn it on again?"
    );
    let fx = press(&lab, &mut app, &snap, &[key('y')]);
    assert_eq!(
        fx,
        vec![Effect::Power(
            TestLab::mac("a0:1a:2c:c3:d4:e2"),
            PowerAction::Cycle
        )]
    );
    // :roll asks, then starts (node-0 is the one Ready node).
    let keys: Vec<_> = ":roll\n"
        .chars()
        .map(|c| {
            if c == '\n' {
                code(KeyCode::Enter)
            } else {
                key(c)
            }
        })
        .collect();
    assert!(press(&lab, &mut app, &snap, &keys).is_empty());
    assert!(prompt(&app).starts_with("Reboot every Ready node one at a time"));
    let fx = press(&lab, &mut app, &snap, &[key('y')]);
    assert_eq!(fx, vec![Effect::Roll]);
    let f = app.flash.clone().unwrap();
    assert_eq!(f.text, "rolling reboot of 1 node(s) started: node-0");
}
