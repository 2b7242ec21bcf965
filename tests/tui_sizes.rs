//! The console at any size (ratatui TestBackend): columns drop by priority and the MAC
//! is never cut, the footer keeps `/ filter`, a notice below the minimum, and every
//! theme paints the whole frame with its background.

mod tui_support;

use pxelab::tui::capture;
use ratatui::style::Color;
use tui_support::*;

/// Every MAC-looking word is a whole MAC.
fn macs_whole(screen: &str) {
    for word in screen.split(|c: char| c.is_whitespace() || c == '│') {
        if word.starts_with("52:54:00") || word.starts_with("a0:1a") {
            assert_eq!(word.len(), 17, "cut MAC `{word}` in:\n{screen}");
        }
    }
}

#[test]
fn mac_whole_and_filter_in_the_footer_at_common_sizes() {
    let lab = TestLab::booting();
    let (app, snap) = lab.app("dark");
    for (w, h) in [(80, 24), (120, 40), (200, 60)] {
        let s = capture::text(&capture::draw(&app, &snap, w, h));
        macs_whole(&s);
        assert!(s.contains(HELD), "{w}×{h}: the held MAC shows whole\n{s}");
        let footer = s.lines().last().unwrap_or_default();
        assert!(
            footer.contains("/ filter") && footer.contains("q quit"),
            "{w}×{h}: {footer}"
        );
        assert!(!s.contains("too small"), "{s}");
    }
    // Wide: every column; 80: UP and ROLE make room for the MAC.
    let wide = capture::text(&capture::draw(&app, &snap, 200, 60));
    assert!(wide.contains(" ROLE ") && wide.contains(" UP "), "{wide}");
    let narrow = capture::text(&capture::draw(&app, &snap, 80, 24));
    assert!(!narrow.contains(" ROLE "), "{narrow}");
}

#[test]
fn attached_the_header_names_the_server_and_keeps_every_servers_state() {
    let lab = TestLab::booting();
    let (mut app, snap) = lab.app("dark");
    app.attached = Some(pxelab::tui::attached::Attached {
        url: "https://192.168.10.1:7480".into(),
        fingerprint: format!("SHA256:{}", ["AB"; 32].join(":")),
        first_use: false,
    });
    let wide = capture::text(&capture::draw(&app, &snap, 200, 60));
    let head = wide.lines().next().unwrap_or_default();
    assert!(
        head.contains("⇄ https://192.168.10.1:7480 SHA256:AB:AB"),
        "{head}"
    );
    for (w, h) in [(80, 24), (120, 40)] {
        let s = capture::text(&capture::draw(&app, &snap, w, h));
        let head = s.lines().next().unwrap_or_default();
        assert!(head.contains("192.168.10.1:7480"), "{w}: {head}");
        // Every server the lab runs is still shown with its state, the last included.
        let last = app.lab.servers.last().unwrap();
        let word = last.label.split(' ').next().unwrap();
        assert!(head.contains(word), "{w}: `{word}` missing in {head}");
    }
}

#[test]
fn below_the_minimum_a_notice() {
    let lab = TestLab::booting();
    let (app, snap) = lab.app("dark");
    let s = capture::text(&capture::draw(&app, &snap, 40, 10));
    assert!(s.contains("terminal too small"), "{s}");
    assert!(s.contains("have 40×10"), "{s}");
    assert!(!s.contains("Nodes"), "{s}");
    let s = capture::text(&capture::draw(&app, &snap, 100, 12));
    assert!(
        s.contains("terminal too small (need 60×15, have 100×12)"),
        "{s}"
    );
}

#[test]
fn every_theme_paints_its_background() {
    let lab = TestLab::booting();
    for (theme, bg) in [
        ("light", Color::Rgb(0xef, 0xf1, 0xf5)),
        ("dark", Color::Rgb(0x1e, 0x1e, 0x2e)),
        ("high-contrast", Color::Black),
    ] {
        let (app, snap) = lab.app(theme);
        let buf = capture::draw(&app, &snap, 120, 40);
        // Inside the node table, below its rows, and the bare flash line.
        for (x, y) in [(60, 14), (100, 38)] {
            assert_eq!(buf[(x, y)].bg, bg, "{theme} at {x},{y}");
        }
    }
}

#[test]
fn a_node_silent_on_ssh_says_so_in_its_row() {
    let lab = TestLab::booting();
    lab.emit(
        "a0:1a:2c:c3:d4:e1",
        pxelab::engine::EventKind::SshConnecting {
            addr: "10.0.0.11:22".parse().unwrap(),
            attempt: 10,
        },
    );
    let (app, snap) = lab.app("dark");
    let s = capture::text(&capture::draw(&app, &snap, 200, 60));
    let row = s
        .lines()
        .find(|l| l.contains("a0:1a:2c:c3:d4:e1"))
        .unwrap_or_default();
    assert!(row.contains("still waiting for :22, 10 tries"), "{s}");
}

#[test]
fn the_header_lists_the_syslog_receiver_when_enabled() {
    let lab = TestLab::new(&format!(
        "{LAB_HEAD}syslog:\n  enabled: true\n  port: 5514\n{NODES}"
    ));
    lab.engine.emit(
        None,
        pxelab::engine::EventKind::ServerUp {
            source: pxelab::engine::Source::Syslog,
            addr: "10.0.0.1:5514".into(),
        },
    );
    let (app, snap) = lab.app("dark");
    let s = capture::text(&capture::draw(&app, &snap, 200, 40));
    assert!(
        s.lines()
            .next()
            .unwrap_or_default()
            .contains("▲ syslog :5514"),
        "{s}"
    );
}
