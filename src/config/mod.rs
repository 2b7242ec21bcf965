//! lab.yaml: loading, validation with file:line:col errors, and comment-keeping write-back.
//!
//! - [`model`]: the serde types of the file (its wire form).
//! - [`plan`]: what each server runs with, built from the wire form by validation only.
//! - [`Lab`]: a loaded lab with its location on disk, resolved values and, when its
//!   server sections are valid, the servers' [`plan::Plan`].

pub mod model;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use model::*;

use crate::mac::Mac;

/// Where in a file a problem is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// Everything that can go wrong reading or writing lab.yaml.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is larger than lab.yaml may be ([`limit`]); nothing of it was parsed.
    #[error("{path}: {size} bytes ({}), over the limit of {limit} bytes ({}): refused before parsing. Split the machines into several labs (one folder and lab.yaml each), or raise the limit with {}={}", limit::human(*.size), limit::human(*.limit), limit::ENV, .size.next_power_of_two())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The YAML is malformed or does not fit the schema.
    #[error("{location}: {message}")]
    Syntax {
        /// Where.
        location: Location,
        /// What.
        message: String,
    },
    /// The file parsed but is inconsistent; every problem is listed.
    #[error("{} problem(s) in lab.yaml:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    /// Write-back refused because the file changed on disk since it was loaded.
    #[error("{path} changed on disk since it was loaded; reload it and try again")]
    ChangedOnDisk {
        /// The file.
        path: PathBuf,
    },
    /// A node with this MAC already exists.
    #[error("{mac} is already in the lab as `{hostname}`")]
    AlreadyKnown {
        /// The MAC.
        mac: Mac,
        /// Its hostname.
        hostname: String,
    },
    /// A write-back edit could not be applied.
    #[error("{path}: cannot edit: {message}")]
    Edit {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The lab cannot run.
    Error,
    /// The lab runs, but something will not work until fixed (e.g. an asset not yet downloaded).
    Warning,
}

/// One validation finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// Where in lab.yaml, when known.
    pub location: Option<Location>,
    /// What is wrong, naming the value.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &self.location {
            Some(l) => write!(f, "{l}: {sev}: {}", self.message),
            None => write!(f, "{sev}: {}", self.message),
        }
    }
}

/// A loaded lab.yaml with the values derived from it.
#[derive(Debug, Clone)]
pub struct Lab {
    /// The file it came from (absolute), or a placeholder for in-memory labs.
    pub path: PathBuf,
    /// The parsed file.
    pub file: LabFile,
    /// The address nodes reach pxelab at.
    pub server_address: Ipv4Addr,
    /// The raw text that was parsed (for change detection and write-back).
    pub source: String,
    /// The servers' plan, or why it cannot be built (validation errors).
    plan: Result<plan::Plan, Vec<Problem>>,
}

impl Lab {
    /// Parses lab.yaml text (schema only, see [`validate`] for the rest). Errors carry
    /// `path:line:col`: a YAML syntax error as [`ConfigError::Syntax`], schema problems
    /// (unknown keys, bad MACs, wrong types: all of them) as [`ConfigError::Invalid`].
    pub fn parse(path: &Path, text: &str) -> Result<Lab, ConfigError> {
        let file = parse::parse_file(path, text).map_err(|mut problems| {
            if problems.len() == 1 && yaml_serde::from_str::<yaml_serde::Value>(text).is_err() {
                let p = problems.remove(0);
                ConfigError::Syntax {
                    location: p.location.unwrap_or(Location {
                        path: path.to_path_buf(),
                        line: 1,
                        column: 1,
                    }),
                    message: p.message,
                }
            } else {
                ConfigError::Invalid(problems)
            }
        })?;
        let server_address = file.server_address.unwrap_or(Ipv4Addr::LOCALHOST);
        let mut lab = Lab {
            path: path.to_path_buf(),
            file,
            server_address,
            source: text.to_string(),
            plan: Err(Vec::new()),
        };
        lab.plan = plan::build(&lab);
        Ok(lab)
    }

    /// What the servers run with. `Err` lists the validation errors that stop it, so a
    /// lab from [`load_validated`] always has one.
    pub fn plan(&self) -> Result<&plan::Plan, ConfigError> {
        self.plan
            .as_ref()
            .map_err(|problems| ConfigError::Invalid(problems.clone()))
    }

    /// The validation errors that stop the servers' plan (none when it was built).
    pub fn plan_problems(&self) -> &[Problem] {
        self.plan.as_ref().err().map(Vec::as_slice).unwrap_or(&[])
    }

    /// Reads and parses lab.yaml from disk.
    pub fn load(path: &Path) -> Result<Lab, ConfigError> {
        let text = limit::read_text(path)?;
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Lab::parse(&abs, &text)
    }

    /// The folder lab.yaml lives in; relative paths in the file are resolved against it.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// pxelab's own state folder beside lab.yaml (`.pxelab/`): keys, token, leases.
    pub fn state_dir(&self) -> PathBuf {
        self.dir().join(".pxelab")
    }

    /// Resolves a path from lab.yaml against the lab's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir().join(p)
        }
    }

    /// The folder holding kernel, initrds, modloop and extras.
    pub fn assets_dir(&self) -> PathBuf {
        self.resolve(&self.file.boot.assets_dir)
    }

    /// `http://SERVER:PORT`, the base every URL handed to nodes starts with.
    pub fn http_base(&self) -> String {
        format!("http://{}:{}", self.server_address, self.file.http.port)
    }

    /// The interface pxelab sends IPv6 router advertisements on, if it does: DHCP server
    /// mode on a real interface (never a loopback lab) with `dhcp.ipv6_ra` not `off`.
    /// One rule for the sender (`dhcp::ra::plan`) and the faces that show it.
    pub fn ra_interface(&self) -> Option<&str> {
        let iface = self.file.interface.as_deref()?;
        let serves = self.file.dhcp.mode == DhcpMode::Server && !self.server_address.is_loopback();
        (serves && self.file.dhcp.ipv6_ra != Ipv6Ra::Off).then_some(iface)
    }

    /// The node entry for a MAC, if the lab lists it.
    pub fn node_by_mac(&self, mac: &Mac) -> Option<&NodeEntry> {
        self.file.nodes.iter().find(|n| n.mac == *mac)
    }

    /// Whether `mac` is the lab's k3s server (role `k3s-server`): the one node that gets
    /// the cluster CA and whose datastore is snapshotted.
    pub fn is_k3s_server(&self, mac: &Mac) -> bool {
        self.node_by_mac(mac)
            .is_some_and(|n| n.role == "k3s-server")
    }

    /// The node entry for a hostname, if the lab lists it.
    pub fn node_by_hostname(&self, hostname: &str) -> Option<&NodeEntry> {
        self.file.nodes.iter().find(|n| n.hostname == hostname)
    }

    /// The power driver of `node`: its own `power:`, else its role's, else the lab's,
    /// else `wol` (see [`PowerSpec`]).
    pub fn power_for(&self, node: &NodeEntry) -> PowerSpec {
        node.power
            .clone()
            .or_else(|| {
                self.file
                    .roles
                    .get(&node.role)
                    .and_then(|r| r.power.clone())
            })
            .or_else(|| self.file.power.clone())
            .unwrap_or_default()
    }

    /// The names of every role a node may have: built-ins first, then lab.yaml's own.
    pub fn role_names(&self) -> Vec<String> {
        let mut names: Vec<String> = BUILTIN_ROLES.iter().map(|s| s.to_string()).collect();
        for k in self.file.roles.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
        names
    }
}

/// Roles pxelab knows without any configuration.
pub const BUILTIN_ROLES: [&str; 2] = ["k3s-server", "k3s-agent"];

pub mod atomic;
pub mod deadlines;
pub mod edit;
pub mod limit;
pub mod net;
mod parse;
pub mod plan;
pub mod report;
pub mod spans;
pub mod validate;

/// What `pxelab check` learns about a file: the lab when it parsed, and every problem.
#[derive(Debug)]
pub struct Report {
    /// The parsed lab (present when the schema parse succeeded, even with errors).
    pub lab: Option<Lab>,
    /// Every problem, in file order.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Number of problems of a severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == severity)
            .count()
    }
}

/// Parses and validates lab.yaml text, keeping every problem (errors and warnings).
pub fn check_text(path: &Path, text: &str) -> Report {
    match Lab::parse(path, text) {
        Ok(lab) => {
            let problems = validate::validate(&lab);
            Report {
                lab: Some(lab),
                problems,
            }
        }
        Err(ConfigError::Invalid(problems)) => Report {
            lab: None,
            problems,
        },
        Err(ConfigError::Syntax { location, message }) => Report {
            lab: None,
            problems: vec![Problem {
                severity: Severity::Error,
                location: Some(location),
                message,
            }],
        },
        Err(other) => Report {
            lab: None,
            problems: vec![Problem {
                severity: Severity::Error,
                location: None,
                message: other.to_string(),
            }],
        },
    }
}

/// Parses and validates lab.yaml text; any error-severity problem refuses the file.
pub fn load_validated(path: &Path, text: &str) -> Result<Lab, ConfigError> {
    let lab = Lab::parse(path, text)?;
    let errors: Vec<Problem> = validate::validate(&lab)
        .into_iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    if errors.is_empty() {
        Ok(lab)
    } else {
        Err(ConfigError::Invalid(errors))
    }
}

/// Suggests a hostname for a MAC adopted into `role` from `adopt.hostname_pattern`:
/// `{prefix}` (the role's hostname_prefix, else the role name), `{hash}` (6 hex digits
/// from the MAC) and `{n}` (the lowest number giving a hostname not yet in the lab).
pub fn suggest_hostname(lab: &Lab, mac: Mac, role: &str) -> String {
    let prefix = lab
        .file
        .roles
        .get(role)
        .and_then(|r| r.hostname_prefix.clone())
        .unwrap_or_else(|| match role {
            "k3s-server" => "server".to_string(),
            "k3s-agent" => "agent".to_string(),
            other => other.to_string(),
        });
    let base = lab
        .file
        .adopt
        .hostname_pattern
        .replace("{prefix}", &prefix)
        .replace("{hash}", &mac.short_hash());
    if !base.contains("{n}") {
        return base;
    }
    (0..10_000)
        .map(|n| base.replace("{n}", &n.to_string()))
        .find(|h| lab.node_by_hostname(h).is_none())
        .unwrap_or_else(|| base.replace("{n}", &mac.short_hash()))
}
