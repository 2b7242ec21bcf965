//! The console needs a terminal: without one (`pxelab demo | less`, a service, a pipe)
//! `demo` and `up` say so in the operator's words before starting anything, and so does
//! `attach` (before it reaches out to any server).

mod common;

use std::process::{Command, Stdio};

#[test]
fn demo_and_up_without_a_terminal_point_to_no_tui() {
    for args in [&["demo"][..], &["up"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(common::pxelab_bin())
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(err.contains("no terminal: use --no-tui"), "{args:?}: {err}");
        assert!(!err.contains("os error"), "{args:?}: {err}");
    }
}

#[test]
fn attach_without_a_terminal_points_to_nodes_remote() {
    let out = Command::new(common::pxelab_bin())
        .args(["attach", "https://192.0.2.1:7480"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("no terminal") && err.contains("nodes --remote"),
        "{err}"
    );
}
