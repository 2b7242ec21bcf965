//! Checks of `power:` (lab, roles, nodes): a `cmd` driver has a command, each command
//! uses only the placeholders pxelab fills in, its timeout parses; `wol` has an
//! interface to send on.

use super::Validator;
use crate::config::net::parse_duration;
use crate::config::spans::Seg;
use crate::config::{unknown_placeholders, PowerSpec, POWER_PLACEHOLDERS};

impl Validator<'_> {
    pub(super) fn power(&mut self) {
        let lab = self.lab;
        if let Some(p) = &lab.file.power {
            self.power_spec(&[Seg::Key("power")], p);
        }
        for (name, r) in &lab.file.roles {
            if let Some(p) = &r.power {
                self.power_spec(&[Seg::Key("roles"), Seg::Key(name), Seg::Key("power")], p);
            }
        }
        for (i, n) in lab.file.nodes.iter().enumerate() {
            if let Some(p) = &n.power {
                self.power_spec(&[Seg::Key("nodes"), Seg::Index(i), Seg::Key("power")], p);
            }
        }
    }

    fn power_spec(&mut self, at: &[Seg<'_>], p: &PowerSpec) {
        match p {
            PowerSpec::Wol if self.lab.file.interface.is_none() => self.warn(
                at,
                "`wol` sends its magic packet on the lab's `interface:`, which this lab does not set: power on will be refused".to_string(),
            ),
            PowerSpec::Cmd(c) => {
                let cmds = [("on", &c.on), ("off", &c.off), ("cycle", &c.cycle)];
                if cmds.iter().all(|(_, v)| v.is_none()) {
                    let mut path = at.to_vec();
                    path.push(Seg::Key("cmd"));
                    self.error(&path, "a `cmd` driver needs at least one of `on`, `off`, `cycle`".to_string());
                }
                for (key, cmd) in cmds {
                    let Some(cmd) = cmd else { continue };
                    let mut path = at.to_vec();
                    path.extend([Seg::Key("cmd"), Seg::Key(key)]);
                    if cmd.trim().is_empty() {
                        self.error(&path, format!("the `{key}` command is empty"));
                    }
                    for name in unknown_placeholders(cmd) {
                        self.error(
                            &path,
                            format!(
                                "unknown placeholder `{{{name}}}` (known: {})",
                                POWER_PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                            ),
                        );
                    }
                }
                if let Some(t) = &c.timeout {
                    if parse_duration(t).is_none() {
                        let mut path = at.to_vec();
                        path.extend([Seg::Key("cmd"), Seg::Key("timeout")]);
                        self.error(&path, format!("`{t}` is not a duration (e.g. 30s, 2m)"));
                    }
                }
            }
            _ => {}
        }
    }
}
