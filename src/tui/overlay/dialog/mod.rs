//! The adoption / change-role dialog: its state, its keys and (in [`draw()`]) its box.

use std::net::Ipv4Addr;

use super::Overlay;
use crate::mac::Mac;
use crate::tui::app::{App, Effect, Level};
use crate::tui::keys::Action;

mod draw;
pub use draw::draw;

/// Adopt a new MAC or change a known node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogKind {
    /// Add a held/unknown MAC to lab.yaml.
    Adopt,
    /// Change a known node's role (and hostname).
    Change,
}

/// The field with the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The role list.
    Role,
    /// The hostname.
    Hostname,
    /// The fixed address (server mode).
    Ip,
}

/// The dialog's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDialog {
    /// Adopt or change.
    pub kind: DialogKind,
    /// The machine.
    pub mac: Mac,
    /// The lab's roles.
    pub roles: Vec<String>,
    /// Role descriptions (same order, may be empty).
    pub role_help: Vec<String>,
    /// Picked role.
    pub role: usize,
    /// Suggested hostname per role (same order).
    pub suggestions: Vec<String>,
    /// The hostname being typed.
    pub hostname: String,
    /// The operator typed in the hostname (stop following the role's suggestion).
    pub hostname_edited: bool,
    /// Whether to ask for an IP (DHCP server mode, adoption only).
    pub ask_ip: bool,
    /// The IP being typed.
    pub ip: String,
    /// Field with focus.
    pub field: Field,
    /// Why the last Enter was refused.
    pub error: Option<String>,
}

impl NodeDialog {
    /// A dialog; `current` is the node's current role and hostname when changing.
    pub fn new(
        kind: DialogKind,
        mac: Mac,
        roles: Vec<String>,
        role_help: Vec<String>,
        suggestions: Vec<String>,
        ask_ip: bool,
        current: Option<(String, String)>,
    ) -> NodeDialog {
        let (role, hostname, edited) = match current {
            Some((r, h)) => (roles.iter().position(|x| *x == r).unwrap_or(0), h, true),
            None => {
                // A new machine is most often another agent.
                let r = roles.iter().position(|x| x == "k3s-agent").unwrap_or(0);
                (r, suggestions.get(r).cloned().unwrap_or_default(), false)
            }
        };
        NodeDialog {
            kind,
            mac,
            roles,
            role_help,
            role,
            suggestions,
            hostname,
            hostname_edited: edited,
            ask_ip: ask_ip && kind == DialogKind::Adopt,
            ip: String::new(),
            field: Field::Role,
            error: None,
        }
    }

    /// Moves the role pick; the hostname follows the role's suggestion until edited.
    pub fn move_role(&mut self, delta: isize) {
        if self.roles.is_empty() {
            return;
        }
        let n = self.roles.len() as isize;
        self.role = (self.role as isize + delta).rem_euclid(n) as usize;
        if !self.hostname_edited {
            if let Some(s) = self.suggestions.get(self.role) {
                self.hostname = s.clone();
            }
        }
        self.error = None;
    }

    /// Tab: role → hostname → IP → role.
    pub fn next_field(&mut self) {
        self.field = match (self.field, self.ask_ip) {
            (Field::Role, _) => Field::Hostname,
            (Field::Hostname, true) => Field::Ip,
            _ => Field::Role,
        };
    }

    /// Types a character into the focused text field.
    pub fn type_char(&mut self, c: char) {
        match self.field {
            Field::Hostname => {
                self.hostname.push(c);
                self.hostname_edited = true;
            }
            Field::Ip => self.ip.push(c),
            Field::Role => {}
        }
        self.error = None;
    }

    /// Deletes a character from the focused text field.
    pub fn backspace(&mut self) {
        match self.field {
            Field::Hostname => {
                self.hostname.pop();
                self.hostname_edited = true;
            }
            Field::Ip => {
                self.ip.pop();
            }
            Field::Role => {}
        }
    }

    /// Ctrl-U: empties the focused text field (a suggested hostname or IP is replaced
    /// faster than it is backspaced away).
    pub fn clear_field(&mut self) {
        match self.field {
            Field::Hostname => {
                self.hostname.clear();
                self.hostname_edited = true;
            }
            Field::Ip => self.ip.clear(),
            Field::Role => {}
        }
        self.error = None;
    }

    /// Offers `ip` (the address the machine leased) in the IP field, when it is asked.
    pub fn suggest_ip(&mut self, ip: Option<Ipv4Addr>) {
        if let (true, Some(ip)) = (self.ask_ip, ip) {
            self.ip = ip.to_string();
        }
    }

    /// What Enter does, or why it cannot.
    pub fn effect(&self) -> Result<Effect, String> {
        let Some(role) = self.roles.get(self.role).cloned() else {
            return Err("the lab has no roles".into());
        };
        let hostname = self.hostname.trim().to_string();
        if hostname.is_empty() {
            return Err("hostname is empty".into());
        }
        if !hostname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
            || hostname.starts_with('-')
            || hostname.len() > 63
        {
            return Err(format!(
                "`{hostname}` is not a valid hostname (letters, digits, -)"
            ));
        }
        let ip = match self.ip.trim() {
            "" => None,
            t => Some(
                t.parse::<Ipv4Addr>()
                    .map_err(|_| format!("`{t}` is not an IPv4 address"))?,
            ),
        };
        Ok(match self.kind {
            DialogKind::Adopt => Effect::Adopt {
                mac: self.mac,
                role,
                hostname,
                ip,
            },
            DialogKind::Change => Effect::Change {
                mac: self.mac,
                role,
                hostname,
            },
        })
    }
}

/// Characters go into the hostname or IP field; `j`/`k` move the role list. Whether the
/// key was taken as text.
pub(crate) fn type_key(d: &mut NodeDialog, plain_char: Option<char>, backspace: bool) -> bool {
    if d.field != Field::Role {
        if let Some(c) = plain_char {
            d.type_char(c);
            return true;
        }
        if backspace {
            d.backspace();
            return true;
        }
    } else if let Some(c @ ('j' | 'k')) = plain_char {
        d.move_role(if c == 'j' { 1 } else { -1 });
        return true;
    }
    false
}

/// The dialog's keys: fields, role list, Enter (adopt or change) and Esc.
pub(crate) fn act(app: &mut App, a: Action) -> Vec<Effect> {
    let Some(Overlay::Dialog(d)) = &mut app.overlay else {
        return Vec::new();
    };
    match a {
        Action::Back => {
            app.overlay = None;
            app.flash(Level::Info, "cancelled: lab.yaml unchanged");
        }
        Action::NextField => d.next_field(),
        Action::ClearField => d.clear_field(),
        Action::Up => d.move_role(-1),
        Action::Down => d.move_role(1),
        Action::Confirm => match d.effect() {
            Ok(fx) => {
                let what = match (&fx, d.kind) {
                    (Effect::Adopt { hostname, .. }, _) => {
                        format!("adopting {} as {hostname}…", d.mac)
                    }
                    _ => format!("updating {}…", d.mac),
                };
                app.overlay = None;
                app.flash(Level::Info, what);
                return vec![fx];
            }
            Err(e) => d.error = Some(e),
        },
        _ => {}
    }
    Vec::new()
}
