//! A tmux server of a test's own, for driving the console like an operator: start a
//! command in a session `lab`, type keys, read the pane. Killed on drop.

use std::process::Command;
use std::time::Duration;

/// A tmux server on its own socket, killed on drop.
pub struct Tmux {
    /// The socket name (`tmux -L`).
    pub socket: String,
}

impl Tmux {
    /// Runs `tmux ARGS` on this server.
    pub fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux")
    }
    /// Runs `cmdline` in the session's pane (made at the first call, respawned after).
    pub fn start(&self, cmdline: &str) {
        if self.cmd(&["has-session", "-t", "lab"]).status.success() {
            let o = self.cmd(&["respawn-pane", "-k", "-t", "lab", cmdline]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            return;
        }
        let o = self.cmd(&[
            "new-session",
            "-d",
            "-s",
            "lab",
            "-x",
            "160",
            "-y",
            "40",
            cmdline,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    /// The pane's text.
    pub fn capture(&self) -> String {
        let o = self.cmd(&["capture-pane", "-p", "-t", "lab"]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    /// Types `literal`.
    pub fn keys(&self, literal: &str) {
        assert!(self
            .cmd(&["send-keys", "-t", "lab", "-l", literal])
            .status
            .success());
    }
    /// Presses the key named `name` (`Enter`, `Escape`, `Down`).
    pub fn key(&self, name: &str) {
        assert!(self.cmd(&["send-keys", "-t", "lab", name]).status.success());
    }
    /// Waits up to `secs` for the pane to show `what`; panics with the pane if not.
    pub fn wait_screen(&self, what: &str, secs: u64) -> String {
        super::wait_for(
            Duration::from_secs(secs),
            Duration::from_millis(150),
            || {
                let s = self.capture();
                s.contains(what).then_some(s)
            },
        )
        .unwrap_or_else(|| panic!("screen never showed `{what}`:\n{}", self.capture()))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}
