//! The commands that edit lab.yaml (adopt, forget, change a node): each is one
//! comment-keeping edit ([`crate::config::edit`]) made under the engine's write lock on
//! the lab as it is on disk at that moment, made again on top of an operator's save that
//! lands meanwhile, then put in force.

use std::net::Ipv4Addr;

use super::{lock, Engine, EngineError, EventKind};
use crate::config::{ConfigError, Lab, NodeEntry};
use crate::mac::Mac;

impl Engine {
    /// Runs one lab.yaml edit under the write lock on the lab as it is on disk now. When
    /// the file changes under the edit (an operator's save landed), the edit is made again
    /// on top of the saved file, a few times at most: a save is never overwritten, and an
    /// adoption is not refused for a save that happened to land at the same moment.
    fn write_back<T>(
        &self,
        edit: impl Fn(&Lab) -> Result<(Lab, T), EngineError>,
    ) -> Result<T, EngineError> {
        const ATTEMPTS: usize = 8;
        let _w = lock(&self.inner.write_lock);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.reload_locked();
            match edit(&self.lab()) {
                Err(EngineError::Config(ConfigError::ChangedOnDisk { .. }))
                    if attempt < ATTEMPTS =>
                {
                    continue
                }
                Err(e) => return Err(e),
                Ok((new_lab, out)) => {
                    self.replace_lab(new_lab);
                    return Ok(out);
                }
            }
        }
    }

    /// Adds a MAC to the lab: writes lab.yaml (atomically, comments kept), reloads it,
    /// and releases the machine from the wait loop.
    pub fn adopt(
        &self,
        mac: Mac,
        role: &str,
        hostname: Option<String>,
        ip: Option<Ipv4Addr>,
    ) -> Result<NodeEntry, EngineError> {
        if mac.is_group() {
            return Err(EngineError::GroupMac { mac });
        }
        let entry = self.write_back(|lab| {
            let roles = lab.role_names();
            if !roles.iter().any(|r| r == role) {
                return Err(EngineError::UnknownRole {
                    mac,
                    role: role.to_string(),
                    known: roles.join(", "),
                });
            }
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
            };
            Ok((crate::config::edit::add_node(lab, &entry)?, entry))
        })?;
        self.emit(
            Some(mac),
            EventKind::NodeAdopted {
                role: role.to_string(),
                hostname: entry.hostname.clone(),
            },
        );
        Ok(entry)
    }

    /// Removes a node from lab.yaml.
    pub fn forget(&self, mac: Mac) -> Result<(), EngineError> {
        self.write_back(|lab| {
            if lab.node_by_mac(&mac).is_none() {
                return Err(EngineError::NotInLab { mac });
            }
            Ok((crate::config::edit::remove_node(lab, mac)?, ()))
        })?;
        self.emit(Some(mac), EventKind::NodeForgotten);
        Ok(())
    }

    /// Changes a node's role and/or hostname in lab.yaml.
    pub fn change_node(
        &self,
        mac: Mac,
        role: Option<&str>,
        hostname: Option<&str>,
    ) -> Result<NodeEntry, EngineError> {
        let next = self.write_back(|lab| {
            let Some(cur) = lab.node_by_mac(&mac).cloned() else {
                return Err(EngineError::NotInLab { mac });
            };
            if let Some(r) = role {
                let roles = lab.role_names();
                if !roles.iter().any(|x| x == r) {
                    return Err(EngineError::UnknownRole {
                        mac,
                        role: r.to_string(),
                        known: roles.join(", "),
                    });
                }
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
        self.emit(
            Some(mac),
            EventKind::NodeChanged {
                role: next.role.clone(),
                hostname: next.hostname.clone(),
            },
        );
        Ok(next)
    }
}
