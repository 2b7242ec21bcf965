//! What happens to machines not in the lab: `unknown:` and `adopt:`.

use serde::{Deserialize, Serialize};

/// What happens to a MAC that is not listed in `nodes`. Written `hold`, `ignore` or
/// `{adopt: ROLE}` in lab.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UnknownPolicy {
    /// Boot it into an iPXE wait loop until the operator adopts it.
    #[default]
    Hold,
    /// Do not answer it at all.
    Ignore,
    /// Adopt it automatically into this role.
    Adopt(String),
}

impl Serialize for UnknownPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            UnknownPolicy::Hold => s.serialize_str("hold"),
            UnknownPolicy::Ignore => s.serialize_str("ignore"),
            UnknownPolicy::Adopt(role) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("adopt", role)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for UnknownPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "`hold`, `ignore` or `{adopt: ROLE}`";
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = UnknownPolicy;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<UnknownPolicy, E> {
                match v {
                    "hold" => Ok(UnknownPolicy::Hold),
                    "ignore" => Ok(UnknownPolicy::Ignore),
                    other => Err(E::custom(format!(
                        "`{other}` is not a policy for unknown MACs (expected {EXPECTED})"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UnknownPolicy, A::Error> {
                let mut role: Option<String> = None;
                while let Some(k) = map.next_key::<String>()? {
                    if k != "adopt" || role.is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "unknown key `{k}` (expected {EXPECTED})"
                        )));
                    }
                    role = Some(map.next_value()?);
                }
                role.map(UnknownPolicy::Adopt)
                    .ok_or_else(|| serde::de::Error::custom(format!("expected {EXPECTED}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `adopt:` section: how adopted machines are named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptSection {
    /// Hostname pattern: `{prefix}` (role's hostname_prefix or role name),
    /// `{hash}` (6 hex digits from the MAC), `{n}` (next free number).
    #[serde(default = "default_pattern")]
    pub hostname_pattern: String,
}

fn default_pattern() -> String {
    "node-{n}".to_string()
}

impl Default for AdoptSection {
    fn default() -> Self {
        AdoptSection {
            hostname_pattern: default_pattern(),
        }
    }
}
