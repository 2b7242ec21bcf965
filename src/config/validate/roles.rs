//! Checks of the roles: a user-data template each, one way to give it, a usable
//! hostname prefix, and a dropbear role that gets its pinned host key.

use super::{valid_hostname, Validator};
use crate::config::spans::Seg;
use crate::config::{RoleSection, SshServer, BUILTIN_ROLES};
use crate::render::template::user_data_template;

impl Validator<'_> {
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
