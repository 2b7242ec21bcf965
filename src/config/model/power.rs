//! `power:` — how pxelab turns a machine on, off or around when it has no BMC.
//!
//! Written per node, per role or once for the lab (the first of node, role, lab that
//! says wins; unset everywhere is `wol`, since most boards a homelab netboots wake on
//! LAN and nothing else can turn on a machine that is off):
//!
//! ```yaml
//! power: wol                      # on: magic packet on `interface`; off/cycle: over SSH
//! power: ssh                      # off: poweroff, cycle: reboot (on: impossible)
//! power: none                     # pxelab never touches this machine's power
//! power:
//!   cmd:                          # smart plug, PoE port, ipmitool, a VM's monitor
//!     on: "plug {hostname} on"    # {mac} {ip} {hostname}, shell-quoted when put in
//!     off: "plug {hostname} off"
//!     cycle: "plug {hostname} cycle"   # optional: else off, a pause, on
//!     timeout: 30s                # each command's limit (default 30s)
//! ```
//!
//! The `ssh` actions reuse the watcher's way in (pinned host key, operator key); a
//! machine that is off or hung cannot be reached that way, which is why `wol` and
//! `cmd` exist at all.

use serde::{Deserialize, Serialize};

/// Which power driver a node uses. Written `wol`, `ssh`, `none` or `{cmd: {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PowerSpec {
    /// Wake-on-LAN for `on`; `off` and `cycle` over SSH (poweroff, reboot).
    #[default]
    Wol,
    /// Over SSH only: `off` is poweroff, `cycle` a reboot; `on` cannot be done.
    Ssh,
    /// An operator's commands (smart plug, PoE switch port, ipmitool…).
    Cmd(Box<PowerCommands>),
    /// No power control: every action is refused, saying so.
    None,
}

impl PowerSpec {
    /// The driver's name as written in lab.yaml (`wol`, `ssh`, `cmd`, `none`).
    pub fn name(&self) -> &'static str {
        match self {
            PowerSpec::Wol => "wol",
            PowerSpec::Ssh => "ssh",
            PowerSpec::Cmd(_) => "cmd",
            PowerSpec::None => "none",
        }
    }
}

const EXPECTED: &str = "`wol`, `ssh`, `none` or `{cmd: {on, off, cycle, timeout}}`";

impl Serialize for PowerSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            PowerSpec::Cmd(c) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("cmd", c)?;
                m.end()
            }
            other => s.serialize_str(other.name()),
        }
    }
}

impl<'de> Deserialize<'de> for PowerSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = PowerSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PowerSpec, E> {
                match v {
                    "wol" => Ok(PowerSpec::Wol),
                    "ssh" => Ok(PowerSpec::Ssh),
                    "none" => Ok(PowerSpec::None),
                    other => Err(E::custom(format!(
                        "`{other}` is not a power driver (expected {EXPECTED})"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PowerSpec, A::Error> {
                let mut cmd: Option<Box<PowerCommands>> = None;
                while let Some(k) = map.next_key::<String>()? {
                    if k != "cmd" || cmd.is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "unknown key `{k}` (expected {EXPECTED})"
                        )));
                    }
                    cmd = Some(map.next_value()?);
                }
                cmd.map(PowerSpec::Cmd)
                    .ok_or_else(|| serde::de::Error::custom(format!("expected {EXPECTED}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// `power: {cmd: {…}}`: one shell command per action.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerCommands {
    /// Turns the machine on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// Turns the machine off (hard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off: Option<String>,
    /// Power-cycles it; when absent, `off`, a pause of [`CYCLE_PAUSE_S`] s, then `on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle: Option<String>,
    /// Each command's time limit (`30s`, `2m`); default [`DEFAULT_CMD_TIMEOUT_S`] s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A command's time limit when `timeout` is not given, in seconds.
pub const DEFAULT_CMD_TIMEOUT_S: u64 = 30;

/// Seconds between `off` and `on` when a `cmd` driver has no `cycle` command: long
/// enough for a board's capacitors to drain so it really starts again.
pub const CYCLE_PAUSE_S: u64 = 5;

/// The placeholders a power command may use.
pub const POWER_PLACEHOLDERS: [&str; 3] = ["mac", "ip", "hostname"];

/// The placeholders in `cmd` that are not one of [`POWER_PLACEHOLDERS`] (`{foo}`; a
/// shell's `${VAR}` is no placeholder).
pub fn unknown_placeholders(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = cmd;
    while let Some(i) = rest.find('{') {
        let shell_var = rest[..i].ends_with('$');
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else { break };
        let name = &after[..j];
        let looks_like_one = !shell_var
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if looks_like_one && !POWER_PLACEHOLDERS.contains(&name) {
            out.push(name.to_string());
        }
        rest = &after[j + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form() {
        let p: PowerSpec = yaml_serde::from_str("wol").unwrap();
        assert_eq!(p, PowerSpec::Wol);
        let p: PowerSpec = yaml_serde::from_str("none").unwrap();
        assert_eq!(p, PowerSpec::None);
        let p: PowerSpec =
            yaml_serde::from_str("cmd: {on: 'plug {hostname} on', timeout: 10s}").unwrap();
        let PowerSpec::Cmd(c) = p else {
            panic!("{p:?}")
        };
        assert_eq!(c.on.as_deref(), Some("plug {hostname} on"));
        assert_eq!(c.timeout.as_deref(), Some("10s"));
        assert!(yaml_serde::from_str::<PowerSpec>("ipmi").is_err());
        assert!(yaml_serde::from_str::<PowerSpec>("cmd: {start: x}").is_err());
    }

    #[test]
    fn finds_unknown_placeholders() {
        assert!(unknown_placeholders("plug {hostname} {mac} {ip}").is_empty());
        assert_eq!(unknown_placeholders("x {host} {ip}"), vec!["host"]);
        // Shell braces that are no placeholder names are left alone.
        assert!(unknown_placeholders("for i in 1 2; do { echo $i; }; done").is_empty());
        assert!(unknown_placeholders("echo ${HOME} {mac}").is_empty());
    }
}
