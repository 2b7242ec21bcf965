//! lab.yaml on disk: reading it again when it changed, and the commands that edit it
//! (adopt, forget, change). Each edit is one comment-keeping change
//! ([`crate::config::edit`]) on the lab as it is on disk at that moment, made again on
//! top of an operator's save that lands meanwhile, then put in force.
//!
//! Only the engine service calls these while pxelab runs (its one task is what keeps a
//! reload from racing a write-back); [`run_here`] is the same for a process with no
//! service (the CLI when no pxelab runs for the lab).

use std::net::Ipv4Addr;

use super::super::{Engine, EngineError};
use super::command::{Command, CommandError, Reply};
use crate::config::{ConfigError, Lab, NodeEntry};
use crate::mac::Mac;

/// Re-reads lab.yaml if its text changed. An invalid file is reported as an event and
/// the previous lab stays in force. Returns whether a new lab was loaded.
pub fn reload_if_changed(engine: &Engine) -> bool {
    let cur = engine.lab();
    let text = match crate::config::limit::read_text(&cur.path) {
        Ok(text) => text,
        Err(e @ ConfigError::TooLarge { .. }) => {
            // Said once: the message stands in for the text, so the next poll finds
            // the same "text" and stays quiet until the file changes size.
            let said = e.to_string();
            if cur.source != said {
                engine.lab_rejected(said.clone(), said);
            }
            return false;
        }
        Err(_) => return false,
    };
    if text == cur.source {
        return false;
    }
    match crate::config::load_validated(&cur.path, &text) {
        Ok(lab) => {
            engine.replace_lab(lab);
            true
        }
        Err(e) => {
            engine.lab_rejected(text, e.to_string());
            false
        }
    }
}

/// Carries out a lab.yaml command on this thread (blocking file I/O). Reboot, power
/// and rolls need the running service (its node control, its one roll at a time).
pub fn run_here(engine: &Engine, command: Command) -> Result<Reply, CommandError> {
    match command {
        Command::Adopt {
            mac,
            role,
            hostname,
            ip,
        } => Ok(Reply::Node(adopt(engine, mac, &role, hostname, ip)?)),
        Command::Forget { mac } => {
            forget(engine, mac)?;
            Ok(Reply::Forgotten(mac))
        }
        Command::Change {
            mac,
            role,
            hostname,
        } => Ok(Reply::Node(change(
            engine,
            mac,
            role.as_deref(),
            hostname.as_deref(),
        )?)),
        Command::Reload => Ok(Reply::Reloaded {
            changed: reload_if_changed(engine),
        }),
        c @ (Command::Reboot { .. }
        | Command::Power { .. }
        | Command::Roll(_)
        | Command::RollStop) => Err(CommandError::NoService { command: c.name() }),
    }
}

/// Runs one lab.yaml edit on the lab as it is on disk now. When the file changes under
/// the edit (an operator's save landed), the edit is made again on top of the saved
/// file, a few times at most: a save is never overwritten, and an adoption is not
/// refused for a save that happened to land at the same moment.
fn write_back<T>(
    engine: &Engine,
    edit: impl Fn(&Lab) -> Result<(Lab, T), EngineError>,
) -> Result<T, EngineError> {
    const ATTEMPTS: usize = 8;
    let mut attempt = 0;
    loop {
        attempt += 1;
        reload_if_changed(engine);
        match edit(&engine.lab()) {
            Err(EngineError::Config(ConfigError::ChangedOnDisk { .. })) if attempt < ATTEMPTS => {
                continue
            }
            Err(e) => return Err(e),
            Ok((new_lab, out)) => {
                engine.replace_lab(new_lab);
                return Ok(out);
            }
        }
    }
}

fn check_role(lab: &Lab, mac: Mac, role: &str) -> Result<(), EngineError> {
    let roles = lab.role_names();
    if roles.iter().any(|r| r == role) {
        return Ok(());
    }
    Err(EngineError::UnknownRole {
        mac,
        role: role.to_string(),
        known: roles.join(", "),
    })
}

/// Adds a MAC to the lab: writes lab.yaml (atomically, comments kept), reloads it,
/// and releases the machine from the wait loop.
fn adopt(
    engine: &Engine,
    mac: Mac,
    role: &str,
    hostname: Option<String>,
    ip: Option<Ipv4Addr>,
) -> Result<NodeEntry, EngineError> {
    if mac.is_group() {
        return Err(EngineError::GroupMac { mac });
    }
    let entry = write_back(engine, |lab| {
        check_role(lab, mac, role)?;
        let hostname = hostname
            .clone()
            .unwrap_or_else(|| crate::config::suggest_hostname(lab, mac, role));
        let entry = NodeEntry {
            mac,
            hostname,
            role: role.to_string(),
            ip,
            cmdline_extra: None,
            kernel: None,
            initrds: None,
            modloop: None,
            power: None,
            arch: None,
        };
        Ok((crate::config::edit::add_node(lab, &entry)?, entry))
    })?;
    engine.emit(
        Some(mac),
        super::super::EventKind::NodeAdopted {
            role: entry.role.clone(),
            hostname: entry.hostname.clone(),
        },
    );
    Ok(entry)
}

/// Removes a node from lab.yaml.
fn forget(engine: &Engine, mac: Mac) -> Result<(), EngineError> {
    write_back(engine, |lab| {
        if lab.node_by_mac(&mac).is_none() {
            return Err(EngineError::NotInLab { mac });
        }
        Ok((crate::config::edit::remove_node(lab, mac)?, ()))
    })?;
    engine.emit(Some(mac), super::super::EventKind::NodeForgotten);
    Ok(())
}

/// Changes a node's role and/or hostname in lab.yaml.
fn change(
    engine: &Engine,
    mac: Mac,
    role: Option<&str>,
    hostname: Option<&str>,
) -> Result<NodeEntry, EngineError> {
    let next = write_back(engine, |lab| {
        let Some(cur) = lab.node_by_mac(&mac).cloned() else {
            return Err(EngineError::NotInLab { mac });
        };
        if let Some(r) = role {
            check_role(lab, mac, r)?;
        }
        let mut next = cur;
        if let Some(r) = role {
            next.role = r.to_string();
        }
        if let Some(h) = hostname {
            next.hostname = h.to_string();
        }
        Ok((crate::config::edit::update_node(lab, &next)?, next))
    })?;
    engine.emit(
        Some(mac),
        super::super::EventKind::NodeChanged {
            role: next.role.clone(),
            hostname: next.hostname.clone(),
        },
    );
    Ok(next)
}
