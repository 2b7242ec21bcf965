//! Checks of the roles: a user-data template each, one way to give it, a usable
//! hostname prefix, and a dropbear role that gets its pinned host key.

use super::{valid_hostname, Validator};
use crate::config::spans::Seg;
use crate::config::{RoleSection, SshServer, BUILTIN_ROLES};
use crate::render::template::user_data_template;

/// A `data_disk`: `LABEL=…`, `UUID=…` or a `/dev/…` path, with nothing a shell or
/// fstab would read as more than one word.
pub(super) fn data_disk_ok(disk: &str) -> Result<(), String> {
    let plain = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':'))
    };
    let ok = match disk.split_once('=') {
        Some(("LABEL" | "UUID" | "PARTUUID" | "PARTLABEL", v)) => plain(v),
        Some(_) => false,
        None => disk.starts_with("/dev/") && plain(disk),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "data_disk `{disk}`: give LABEL=NAME, UUID=…, PARTUUID=… or a /dev/ path \
             (letters, digits, - _ . / : only)"
        ))
    }
}

impl Validator<'_> {
    /// `k3s.snapshots`: a duration or `off`, and a count of at least one.
    pub(super) fn snapshots(&mut self) {
        let s = &self.lab.file.k3s.snapshots;
        let at = |k| [Seg::Key("k3s"), Seg::Key("snapshots"), Seg::Key(k)];
        if s.interval().is_none() && !matches!(s.every.trim(), "off" | "0" | "") {
            self.error(
                &at("every"),
                format!(
                    "`{}` is not a duration (seconds, or 30m, 1h, 1d) nor `off`",
                    s.every
                ),
            );
        }
        if s.keep == 0 {
            self.error(
                &at("keep"),
                "keep at least 1 snapshot (the newest is what the server restores)".into(),
            );
        }
    }

    pub(super) fn roles(&mut self) {
        let lab = self.lab;
        for (name, r) in &lab.file.roles {
            let base = [Seg::Key("roles"), Seg::Key(name)];
            let builtin = BUILTIN_ROLES.contains(&name.as_str());
            if r.user_data.is_some() && r.user_data_file.is_some() {
                self.error_key(
                    &[
                        Seg::Key("roles"),
                        Seg::Key(name),
                        Seg::Key("user_data_file"),
                    ],
                    "set user_data or user_data_file, not both".to_string(),
                );
            }
            if !builtin && r.user_data.is_none() && r.user_data_file.is_none() {
                self.error_key(
                    &base,
                    format!(
                        "role `{name}` has no user-data template (set roles.{name}.user_data or roles.{name}.user_data_file)"
                    ),
                );
            }
            if let Some(f) = &r.user_data_file {
                let path = lab.resolve(f);
                if !path.is_file() {
                    self.error(
                        &[
                            Seg::Key("roles"),
                            Seg::Key(name),
                            Seg::Key("user_data_file"),
                        ],
                        format!("template file {} not found", path.display()),
                    );
                }
            }
            self.dropbear_key_delivered(name, r);
            if let Some(disk) = &r.data_disk {
                if let Err(why) = data_disk_ok(disk) {
                    self.error(
                        &[Seg::Key("roles"), Seg::Key(name), Seg::Key("data_disk")],
                        why,
                    );
                }
            }
            if let Some(p) = &r.hostname_prefix {
                if !valid_hostname(p) {
                    self.error(
                        &[
                            Seg::Key("roles"),
                            Seg::Key(name),
                            Seg::Key("hostname_prefix"),
                        ],
                        format!("`{p}` cannot start a hostname"),
                    );
                }
            }
        }
    }

    /// A dropbear role with its own user-data template that never writes the dropbear
    /// host key: its nodes would generate one, and the pinned check would refuse them.
    fn dropbear_key_delivered(&mut self, name: &str, r: &RoleSection) {
        let lab = self.lab;
        if r.ssh.server != SshServer::Dropbear
            || lab.file.ssh.host_keys != "pinned"
            || (r.user_data.is_none() && r.user_data_file.is_none())
        {
            return;
        }
        let Ok(spec) = user_data_template(lab, name, crate::Mac::default()) else {
            return;
        };
        if !spec.text.contains("host_key_dropbear") {
            self.warn(
                &[
                    Seg::Key("roles"),
                    Seg::Key(name),
                    Seg::Key("ssh"),
                    Seg::Key("server"),
                ],
                format!(
                    "dropbear, but {} never uses `host_key_dropbear`: the nodes' dropbear will make its own host key, which the pinned check refuses",
                    spec.name
                ),
            );
        }
    }
}
