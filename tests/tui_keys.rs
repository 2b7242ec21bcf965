//! The key table is data: every action has help, no key is bound twice in one context,
//! every action is reachable, and the footer and help are generated from it.

use std::collections::HashSet;

use pxelab::tui::keys::{self, Action, Context, KEYS};

const ALL_ACTIONS: [Action; 25] = [
    Action::Quit,
    Action::Up,
    Action::Down,
    Action::PageUp,
    Action::PageDown,
    Action::Top,
    Action::Bottom,
    Action::Open,
    Action::Back,
    Action::Filter,
    Action::Palette,
    Action::Help,
    Action::Adopt,
    Action::ChangeRole,
    Action::Forget,
    Action::Reboot,
    Action::Wake,
    Action::PowerCycle,
    Action::SortNext,
    Action::SortReverse,
    Action::FocusNext,
    Action::NextTab,
    Action::Confirm,
    Action::NextField,
    Action::Complete,
];

#[test]
fn every_binding_has_help_and_no_key_is_bound_twice_in_a_context() {
    let mut seen = HashSet::new();
    for b in KEYS {
        assert!(!b.help.trim().is_empty(), "{:?} has no help", b.key);
        assert!(
            seen.insert((b.context, b.key)),
            "{} bound twice in {:?}",
            b.key.label(),
            b.context
        );
    }
}

#[test]
fn every_action_has_a_key() {
    for a in ALL_ACTIONS {
        assert!(KEYS.iter().any(|b| b.action == a), "{a:?} has no key");
    }
}

#[test]
fn dangerous_actions_are_marked() {
    for b in KEYS {
        let should = matches!(
            b.action,
            Action::Forget | Action::Reboot | Action::PowerCycle
        );
        assert_eq!(b.dangerous, should, "{:?} {:?}", b.key.label(), b.action);
    }
}

#[test]
fn footer_and_help_come_from_the_table() {
    let f = keys::footer(&[Context::Nodes, Context::Global]);
    assert!(f.iter().any(|(k, w, _)| k == "a" && *w == "adopt"));
    assert!(
        f.iter().any(|(k, _, d)| k == "D" && *d),
        "forget is shown as dangerous"
    );
    // Tab means "served" in detail, so the global "pane" hint is not shown there.
    let f = keys::footer(&[Context::Detail, Context::Global]);
    assert_eq!(f.iter().filter(|(k, _, _)| k == "Tab").count(), 1);
    let h = keys::help();
    let nodes = &h.iter().find(|(c, _)| *c == Context::Nodes).unwrap().1;
    assert!(nodes.iter().any(|(k, _, _)| k == "j ↓"), "{nodes:?}");
}

#[test]
fn lookup_prefers_the_inner_context() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let tab = KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(
        keys::lookup(&tab, &[Context::Detail, Context::Global]),
        Some(Action::NextTab)
    );
    assert_eq!(
        keys::lookup(&tab, &[Context::Nodes, Context::Global]),
        Some(Action::FocusNext)
    );
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(
        keys::lookup(&ctrl_c, &[Context::Nodes, Context::Global]),
        Some(Action::Quit)
    );
    // Inside a dialog, global keys do not fire.
    let q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    assert_eq!(keys::lookup(&q, &[Context::Dialog]), None);
}
