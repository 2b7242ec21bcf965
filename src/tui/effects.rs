//! Carrying out [`Effect`]s against the engine. Cheap ones (loading a record, opening a
//! dialog) happen at once; ones that write lab.yaml or touch a machine are a [`Command`]
//! sent through the engine's command surface (the same the admin API sends), as a
//! [`Job`] the run loop runs off the UI task (`spawn_blocking`), reporting in the flash line.

use super::app::{App, Effect, LabInfo, Level};
use super::overlay::dialog::{DialogKind, NodeDialog};
use super::theme::Theme;
use crate::engine::{Command, Engine};
use crate::mac::Mac;

/// Work that must not run on the UI task; returns the flash to show.
pub type Job = Box<dyn FnOnce() -> (Level, String) + Send>;

/// A line describing a role in the adoption dialog.
pub fn role_help(engine: &Engine, role: &str) -> String {
    let lab = engine.lab();
    if let Some(d) = lab.file.roles.get(role).and_then(|r| r.description.clone()) {
        return d;
    }
    match role {
        "k3s-server" => "control plane: runs the k3s server".into(),
        "k3s-agent" => "worker: joins the k3s server".into(),
        _ => String::new(),
    }
}

/// Builds the adoption or change dialog for `mac` from the lab.
pub fn dialog(engine: &Engine, kind: DialogKind, mac: Mac) -> NodeDialog {
    let lab = engine.lab();
    let roles = lab.role_names();
    let help = roles.iter().map(|r| role_help(engine, r)).collect();
    let suggestions = roles
        .iter()
        .map(|r| engine.suggest_hostname(mac, r))
        .collect();
    let current = lab
        .node_by_mac(&mac)
        .map(|n| (n.role.clone(), n.hostname.clone()));
    let mut d = NodeDialog::new(
        kind,
        mac,
        roles,
        help,
        suggestions,
        LabInfo::from_lab(&lab).server_mode,
        if kind == DialogKind::Change {
            current
        } else {
            None
        },
    );
    // The address it already leased is the natural fixed one: it keeps what it has.
    d.suggest_ip(engine.node(&mac).and_then(|r| r.leased_ip));
    d
}

/// Performs an effect; returns a job for the slow ones.
pub fn perform(engine: &Engine, app: &mut App, fx: Effect) -> Option<Job> {
    match fx {
        Effect::Quit => None,
        Effect::LoadDetail(mac) => {
            super::screen::detail::load(engine, app, mac);
            None
        }
        Effect::OpenAdopt(mac) => {
            if let Some(n) = engine.lab().node_by_mac(&mac) {
                app.flash(
                    Level::Warn,
                    format!("{mac} is already in the lab as {}", n.hostname),
                );
            } else {
                app.open_dialog(dialog(engine, DialogKind::Adopt, mac));
            }
            None
        }
        Effect::OpenChange(mac) => {
            if engine.lab().node_by_mac(&mac).is_none() {
                app.flash(Level::Warn, format!("{mac} is not in the lab"));
            } else {
                app.open_dialog(dialog(engine, DialogKind::Change, mac));
            }
            None
        }
        Effect::Adopt {
            mac,
            role,
            hostname,
            ip,
        } => Some(job(
            engine,
            Command::Adopt {
                mac,
                role,
                hostname: Some(hostname),
                ip,
            },
        )),
        Effect::Change {
            mac,
            role,
            hostname,
        } => Some(job(
            engine,
            Command::Change {
                mac,
                role: Some(role),
                hostname: Some(hostname),
            },
        )),
        Effect::Forget(mac) => Some(job(engine, Command::Forget { mac })),
        Effect::Reboot(mac) => {
            app.flash(Level::Info, format!("rebooting {mac} over SSH…"));
            Some(job(engine, Command::Reboot { mac }))
        }
        Effect::Power(mac, action) => {
            app.flash(Level::Info, format!("power {} {mac}…", action.name()));
            Some(job(engine, Command::Power { mac, action }))
        }
        Effect::Roll => {
            app.flash(Level::Info, "starting a rolling reboot…");
            Some(job(
                engine,
                Command::Roll(crate::engine::roll::RollOptions {
                    confirm_server: true,
                    ..Default::default()
                }),
            ))
        }
        Effect::RollStop => Some(job(engine, Command::RollStop)),
        Effect::SetTheme(spec) => {
            match Theme::load(&spec, &app.lab.dir) {
                Ok(t) => {
                    let name = t.name.clone();
                    app.theme = t;
                    app.flash(Level::Info, format!("theme {name}"));
                }
                Err(e) => app.flash(Level::Error, e.to_string()),
            }
            None
        }
    }
}

/// A job that sends `command` and says in the flash line what came of it.
fn job(engine: &Engine, command: Command) -> Job {
    let commands = engine.commands();
    Box::new(move || {
        let name = command.name();
        match commands.send_blocking(command) {
            Ok(reply) => (Level::Info, reply.said(name)),
            Err(err) => (Level::Error, format!("{name} failed: {err}")),
        }
    })
}
