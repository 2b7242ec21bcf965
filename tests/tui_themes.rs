//! Themes: the shipped files are complete and parse; user files override single slots;
//! bad files are refused naming the slot and the line; and the rendered buffer colours
//! each node state exactly as the theme file says.

mod tui_support;

use std::path::Path;

use pxelab::engine::NodeState;
use pxelab::tui::theme::{Color, Theme, ThemeError, BUILTIN};
use pxelab::tui::{capture, paint};
use tui_support::*;

#[test]
fn shipped_themes_are_complete() {
    for (name, _) in BUILTIN {
        let t = Theme::builtin(name)
            .unwrap()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.name, name);
        for s in NodeState::ALL {
            assert!(
                t.state.of(s).fg.is_some() || t.state.of(s).bg.is_some(),
                "{name}: state {s:?} has no colour"
            );
        }
    }
}

#[test]
fn user_file_overrides_single_slots() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mine.yaml");
    std::fs::write(&p, "base: dark\nstate:\n  held: { fg: black, bg: \"#ff00ff\", bold: true }\nui:\n  border: 244\n").unwrap();
    let t = Theme::load("mine.yaml", dir.path()).unwrap();
    let dark = Theme::builtin("dark").unwrap().unwrap();
    assert_eq!(t.name, "mine");
    assert_eq!(t.state.held.bg, Some(Color::Rgb(255, 0, 255)));
    assert_eq!(t.ui.border.fg, Some(Color::Indexed(244)));
    assert_eq!(
        t.state.ready, dark.state.ready,
        "other slots come from the base"
    );
}

fn err(text: &str) -> ThemeError {
    Theme::parse(Path::new("/x/bad.yaml"), text).unwrap_err()
}

#[test]
fn bad_files_name_the_slot_and_line() {
    let e = err("base: dark\nstate:\n  ready: blurple\n");
    let s = e.to_string();
    assert!(matches!(e, ThemeError::Invalid { line: 3, .. }), "{e:?}");
    assert!(
        s.contains("state.ready") && s.contains("blurple") && s.contains("/x/bad.yaml:3:"),
        "{s}"
    );

    let e = err("base: dark\nui:\n  header: { fg: red }\n  bordr: red\n");
    let s = e.to_string();
    assert!(matches!(e, ThemeError::Invalid { line: 4, .. }), "{e:?}");
    assert!(s.contains("bordr"), "{s}");

    let e = err("base: dark\nstate:\n  held: { fg: \"#12345\" }\n");
    assert!(e.to_string().contains("state.held.fg"), "{e}");
    assert!(matches!(e, ThemeError::Invalid { line: 3, .. }), "{e:?}");

    let e = err("base: dark\nevent:\n  dhcp: 300\n");
    assert!(
        e.to_string().contains("event.dhcp") && e.to_string().contains("300"),
        "{e}"
    );

    let e = err("base: midnight\n");
    assert!(e.to_string().contains("unknown base `midnight`"), "{e}");

    let e = err("ui:\n  text: white\n");
    assert!(
        e.to_string().contains("state.ready") && e.to_string().contains("base: dark"),
        "{e}"
    );

    let e = Theme::load("no-such-theme", Path::new("/nonexistent")).unwrap_err();
    assert!(
        e.to_string().contains("no-such-theme")
            && e.to_string().contains("dark, light, high-contrast"),
        "{e}"
    );
}

/// Every node row's glyph cell has the foreground (and background) its theme gives the state.
#[test]
fn each_theme_colours_node_states_as_its_file_says() {
    let lab = TestLab::booting();
    for (name, _) in BUILTIN {
        let (app, snap) = lab.app(name);
        let buf = capture::draw(&app, &snap, 120, 36);
        let text = capture::text(&buf);
        let mut checked = 0;
        for n in &snap.nodes {
            let mac = n.mac.to_string();
            let y = text
                .lines()
                .position(|l| l.contains(&mac))
                .unwrap_or_else(|| panic!("{mac} not shown")) as u16;
            let spec = app.theme.state.of(n.state);
            let cell = &buf[(1, y)];
            assert_eq!(cell.symbol(), pxelab::tui::fmt::glyph(n.state));
            if let Some(fg) = spec.fg {
                assert_eq!(cell.fg, paint::color(fg), "{name}: {:?} fg", n.state);
            }
            if let Some(bg) = spec.bg {
                assert_eq!(cell.bg, paint::color(bg), "{name}: {:?} bg", n.state);
            }
            checked += 1;
        }
        assert_eq!(checked, 7);
        // The theme changes what is on screen: the held row differs between themes.
    }
    let (d, snap) = lab.app("dark");
    let (l, _) = lab.app("light");
    let bd = capture::draw(&d, &snap, 120, 36);
    let bl = capture::draw(&l, &snap, 120, 36);
    assert_ne!(bd, bl);
}
