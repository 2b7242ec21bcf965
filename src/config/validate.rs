//! Validation of a parsed lab: every problem, each with file:line:col and the value.
//!
//! Schema problems (unknown keys, a malformed MAC, a wrong type) are found earlier by
//! [`super::parse`]; this module checks what serde cannot: duplicates, addresses against
//! the subnet, roles and their templates, the k3s server, boot assets on disk.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::net::{lease_seconds, Subnet};
use super::spans::{Seg, Spans};
use super::{DhcpMode, Ipv6Ra, Lab, Location, Problem, Severity, UnknownPolicy, BUILTIN_ROLES};
use crate::render::context::{public_vars, secret_vars};
use crate::render::template::{
    self, cmdline_templates, compile, meta_data_template, user_data_template, Origin, TemplateSpec,
};
use crate::secrets::NodeSecrets;

/// Why `dhcp.ipv6_ra: on` sends nothing in this lab, if it does not: RAs are a server-mode
/// duty (in proxy mode the LAN's router owns them) and need a real interface.
fn ipv6_ra_unused(mode: DhcpMode, ra: Ipv6Ra, interface: bool) -> Option<String> {
    if ra != Ipv6Ra::On {
        return None;
    }
    match mode {
        DhcpMode::Server if interface => None,
        DhcpMode::Server => Some(
            "`on` sends nothing without `interface:` (a loopback lab never sends router advertisements)"
                .to_string(),
        ),
        DhcpMode::Proxy | DhcpMode::Off => Some(
            "`on` applies to dhcp.mode: server only; in proxy mode (or off) the LAN's router sends router advertisements and pxelab sends none"
                .to_string(),
        ),
    }
}

/// Where Alpine's netboot files are published; `{ver}` is e.g. `v3.21`.
pub const ALPINE_NETBOOT_URL: &str =
    "https://dl-cdn.alpinelinux.org/alpine/{ver}/releases/x86_64/netboot/";

/// Checks a lab and returns every problem found (errors and warnings), in file order.
pub fn validate(lab: &Lab) -> Vec<Problem> {
    let mut v = Validator {
        lab,
        spans: Spans::new(&lab.source),
        problems: Vec::new(),
    };
    v.nodes();
    v.k3s_server();
    v.roles();
    v.unknown_policy();
    v.dhcp();
    v.boot();
    v.templates();
    v.assets();
    v.served_folders();
    v.adopt();
    let mut p = v.problems;
    p.sort_by_key(|p| p.location.as_ref().map(|l| (l.line, l.column)));
    p.dedup();
    p
}

struct Validator<'a> {
    lab: &'a Lab,
    spans: Spans,
    problems: Vec<Problem>,
}

/// `nodes[3].mac` style name of a path.
fn path_name(path: &[Seg<'_>]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Whether `h` is a valid hostname label (RFC 1123).
pub fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 63
        && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !h.starts_with('-')
        && !h.ends_with('-')
}

/// Whether `name` is a plain file name fit for a URL path (no folders, no spaces).
pub fn valid_asset_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
}

/// The Alpine release the lab's command line points at (`v3.21`), else `latest-stable`.
pub fn alpine_release(cmdline: &str) -> String {
    if let Some(i) = cmdline.find("/alpine/") {
        let rest = &cmdline[i + "/alpine/".len()..];
        let ver: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
            .collect();
        if !ver.is_empty() {
            return ver;
        }
    }
    "latest-stable".to_string()
}

impl Validator<'_> {
    fn at(&self, path: &[Seg<'_>], key: bool) -> Location {
        let (line, column) = if key {
            self.spans.locate_key(path)
        } else {
            self.spans.locate(path)
        };
        Location {
            path: self.lab.path.clone(),
            line,
            column,
        }
    }

    fn push(&mut self, severity: Severity, path: &[Seg<'_>], key: bool, msg: String) {
        let location = Some(self.at(path, key));
        self.problems.push(Problem {
            severity,
            location,
            message: format!("{}: {msg}", path_name(path)),
        });
    }

    fn error(&mut self, path: &[Seg<'_>], msg: String) {
        self.push(Severity::Error, path, false, msg);
    }

    fn error_key(&mut self, path: &[Seg<'_>], msg: String) {
        self.push(Severity::Error, path, true, msg);
    }

    fn warn(&mut self, path: &[Seg<'_>], msg: String) {
        self.push(Severity::Warning, path, false, msg);
    }

    fn subnet(&self) -> Option<Subnet> {
        self.lab.file.dhcp.subnet.as_deref()?.parse().ok()
    }

    fn nodes(&mut self) {
        let lab = self.lab;
        let roles = lab.role_names();
        let subnet = self.subnet();
        let mut macs: HashMap<crate::Mac, usize> = HashMap::new();
        let mut hosts: HashMap<String, usize> = HashMap::new();
        let mut ips: HashMap<Ipv4Addr, usize> = HashMap::new();
        for (i, n) in lab.file.nodes.iter().enumerate() {
            let p = |k| [Seg::Key("nodes"), Seg::Index(i), Seg::Key(k)];
            if n.mac.is_group() {
                self.error(
                    &p("mac"),
                    format!(
                        "{} is a broadcast or multicast address (lowest bit of the first byte set): no machine has one",
                        n.mac
                    ),
                );
            }
            if let Some(&j) = macs.get(&n.mac) {
                let other = &lab.file.nodes[j].hostname;
                self.error(
                    &p("mac"),
                    format!("duplicate MAC {} (also nodes[{j}] `{other}`)", n.mac),
                );
            } else {
                macs.insert(n.mac, i);
            }
            if !valid_hostname(&n.hostname) {
                self.error(
                    &p("hostname"),
                    format!(
                        "`{}` is not a valid hostname (letters, digits and '-', 1-63 characters, not starting or ending with '-')",
                        n.hostname
                    ),
                );
            }
            let lower = n.hostname.to_ascii_lowercase();
            if let Some(&j) = hosts.get(&lower) {
                let other = lab.file.nodes[j].mac;
                self.error(
                    &p("hostname"),
                    format!(
                        "duplicate hostname `{}` (also nodes[{j}] {other})",
                        n.hostname
                    ),
                );
            } else {
                hosts.insert(lower, i);
            }
            if !roles.contains(&n.role) {
                self.error(
                    &p("role"),
                    format!("unknown role `{}` (known: {})", n.role, roles.join(", ")),
                );
            }
            if let Some(ip) = n.ip {
                if let Some(&j) = ips.get(&ip) {
                    let other = &lab.file.nodes[j].hostname;
                    self.error(
                        &p("ip"),
                        format!("duplicate IP {ip} (also nodes[{j}] `{other}`)"),
                    );
                } else {
                    ips.insert(ip, i);
                }
                if let Some(s) = subnet {
                    if !s.contains(ip) {
                        self.error(&p("ip"), format!("{ip} is outside dhcp.subnet {s}"));
                    }
                }
            }
        }
    }

    fn k3s_server(&mut self) {
        let nodes = &self.lab.file.nodes;
        let servers: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].role == "k3s-server")
            .collect();
        if let Some((&first, rest)) = servers.split_first() {
            let name = nodes[first].hostname.clone();
            for &i in rest {
                let h = nodes[i].hostname.clone();
                self.error(
                    &[Seg::Key("nodes"), Seg::Index(i), Seg::Key("role")],
                    format!(
                        "a second k3s-server `{h}`: the lab runs one k3s server and nodes[{first}] `{name}` is it"
                    ),
                );
            }
        } else if nodes.iter().any(|n| n.role == "k3s-agent")
            && self.lab.file.k3s.server_url.is_none()
        {
            self.error_key(
                &[Seg::Key("nodes")],
                "no node has role k3s-server, so the k3s-agent nodes have no server to join (add one, or set k3s.server_url)".to_string(),
            );
        }
    }

    fn roles(&mut self) {
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
    fn dropbear_key_delivered(&mut self, name: &str, r: &super::RoleSection) {
        let lab = self.lab;
        if r.ssh.server != super::SshServer::Dropbear
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

    fn unknown_policy(&mut self) {
        if let UnknownPolicy::Adopt(role) = &self.lab.file.unknown {
            let roles = self.lab.role_names();
            if !roles.contains(role) {
                self.error(
                    &[Seg::Key("unknown"), Seg::Key("adopt")],
                    format!("unknown role `{role}` (known: {})", roles.join(", ")),
                );
            }
        }
    }

    fn dhcp(&mut self) {
        let d = &self.lab.file.dhcp;
        let at = |k| [Seg::Key("dhcp"), Seg::Key(k)];
        if lease_seconds(&d.lease_time).is_none() {
            self.error(
                &at("lease_time"),
                format!(
                    "`{}` is not a lease time (seconds, or a number with s, m, h or d: 3600, 30m, 12h, 1d)",
                    d.lease_time
                ),
            );
        }
        let subnet = match d.subnet.as_deref().map(str::parse::<Subnet>) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                self.error(&at("subnet"), e.to_string());
                None
            }
            None => None,
        };
        if d.mode == DhcpMode::Server {
            if d.subnet.is_none() {
                self.error(
                    &at("mode"),
                    "server mode needs dhcp.subnet (e.g. 192.168.64.128/27)".to_string(),
                );
            }
            if d.range.is_none() {
                self.error(
                    &at("mode"),
                    "server mode needs dhcp.range (first and last address handed out)".to_string(),
                );
            }
        }
        if let Some([a, b]) = d.range {
            if u32::from(a) > u32::from(b) {
                self.error(
                    &at("range"),
                    format!("range starts at {a} but ends before it at {b}"),
                );
            }
            if let Some(s) = subnet {
                for (i, ip) in [a, b].into_iter().enumerate() {
                    if !s.contains(ip) {
                        self.error(
                            &[Seg::Key("dhcp"), Seg::Key("range"), Seg::Index(i)],
                            format!("{ip} is outside dhcp.subnet {s}"),
                        );
                    }
                }
            }
        }
        if let (Some(r), Some(s)) = (d.router, subnet) {
            if !s.contains(r) {
                self.error(&at("router"), format!("{r} is outside dhcp.subnet {s}"));
            }
        }
        if let Some(msg) = ipv6_ra_unused(d.mode, d.ipv6_ra, self.lab.file.interface.is_some()) {
            self.warn(&at("ipv6_ra"), msg);
        }
    }

    fn boot(&mut self) {
        let lab = self.lab;
        let b = &lab.file.boot;
        let mut names: Vec<(Vec<Seg<'_>>, &str)> = vec![(
            vec![Seg::Key("boot"), Seg::Key("kernel")],
            b.kernel.as_str(),
        )];
        for (i, n) in b.initrds.iter().enumerate() {
            names.push((
                vec![Seg::Key("boot"), Seg::Key("initrds"), Seg::Index(i)],
                n,
            ));
        }
        if let Some(m) = &b.modloop {
            names.push((vec![Seg::Key("boot"), Seg::Key("modloop")], m));
        }
        for (i, n) in b.extra.iter().enumerate() {
            names.push((vec![Seg::Key("boot"), Seg::Key("extra"), Seg::Index(i)], n));
        }
        for (i, node) in lab.file.nodes.iter().enumerate() {
            if let Some(k) = &node.kernel {
                names.push((
                    vec![Seg::Key("nodes"), Seg::Index(i), Seg::Key("kernel")],
                    k,
                ));
            }
            for (j, n) in node.initrds.iter().flatten().enumerate() {
                names.push((
                    vec![
                        Seg::Key("nodes"),
                        Seg::Index(i),
                        Seg::Key("initrds"),
                        Seg::Index(j),
                    ],
                    n,
                ));
            }
        }
        for (path, name) in names {
            if !valid_asset_name(name) {
                self.error(
                    &path,
                    format!(
                        "`{name}` is not a plain file name inside boot.assets_dir (letters, digits, '.', '-', '_', '+')"
                    ),
                );
            }
        }
    }

    fn assets(&mut self) {
        let lab = self.lab;
        let dir = lab.assets_dir();
        let url = ALPINE_NETBOOT_URL.replace("{ver}", &alpine_release(&lab.file.boot.cmdline));
        let b = &lab.file.boot;
        let mut want: Vec<(Vec<Seg<'_>>, &str, bool)> = vec![(
            vec![Seg::Key("boot"), Seg::Key("kernel")],
            b.kernel.as_str(),
            true,
        )];
        for (i, n) in b.initrds.iter().enumerate() {
            want.push((
                vec![Seg::Key("boot"), Seg::Key("initrds"), Seg::Index(i)],
                n,
                true,
            ));
        }
        if let Some(m) = &b.modloop {
            want.push((vec![Seg::Key("boot"), Seg::Key("modloop")], m, true));
        }
        for (i, n) in b.extra.iter().enumerate() {
            want.push((
                vec![Seg::Key("boot"), Seg::Key("extra"), Seg::Index(i)],
                n,
                false,
            ));
        }
        for (path, name, alpine) in want {
            if !valid_asset_name(name) {
                continue;
            }
            let file = dir.join(name);
            if file.is_file() {
                continue;
            }
            let msg = if alpine {
                format!(
                    "boot asset {} is not on disk yet; download it from {url}{name}",
                    file.display()
                )
            } else {
                format!("boot asset {} is not on disk yet", file.display())
            };
            self.warn(&path, msg);
        }
        if lab.file.tftp.enabled && lab.file.dhcp.mode != DhcpMode::Off {
            let root = lab.resolve(&lab.file.tftp.root);
            if !root.join("undionly.kpxe").is_file() && !root.join("ipxe.efi").is_file() {
                self.warn(
                    &[Seg::Key("tftp"), Seg::Key("root")],
                    format!(
                        "no iPXE binaries (undionly.kpxe, ipxe.efi) in {}; install Debian's `ipxe` package or point tftp.root at them",
                        root.display()
                    ),
                );
            }
        }
    }

    /// `tftp.root` (served over TFTP and `/ipxe/`, also with TFTP off) and
    /// `boot.assets_dir` must not contain lab.yaml's folder or `.pxelab/`, nor lie
    /// inside `.pxelab/`: lab.yaml may hold the k3s token and `.pxelab/` holds the lab
    /// secret and the operator key. The servers refuse dot-names and files outside
    /// their folder anyway; this makes the mistake an error before anything runs.
    /// Folders that do not exist yet are left to the other checks.
    fn served_folders(&mut self) {
        let lab = self.lab;
        let dir = lab.dir();
        let dir = if dir.as_os_str().is_empty() {
            std::path::PathBuf::from(".")
        } else {
            dir
        };
        let Ok(dir) = std::fs::canonicalize(&dir) else {
            return;
        };
        let state = dir.join(".pxelab");
        let folders = [
            (
                [Seg::Key("tftp"), Seg::Key("root")],
                lab.resolve(&lab.file.tftp.root),
            ),
            ([Seg::Key("boot"), Seg::Key("assets_dir")], lab.assets_dir()),
        ];
        for (path, folder) in folders {
            let Ok(real) = std::fs::canonicalize(&folder) else {
                continue;
            };
            let what = if real.starts_with(&state) {
                "lies inside .pxelab/"
            } else if dir.starts_with(&real) {
                "contains lab.yaml's folder and .pxelab/"
            } else {
                continue;
            };
            self.error(
                &path,
                format!(
                    "{} {what}: every client could fetch lab.yaml and the lab's secrets (k3s token, lab secret, operator key); give it a folder of its own",
                    real.display()
                ),
            );
        }
    }

    fn adopt(&mut self) {
        let pat = &self.lab.file.adopt.hostname_pattern;
        if !pat.contains("{n}") && !pat.contains("{hash}") {
            self.warn(
                &[Seg::Key("adopt"), Seg::Key("hostname_pattern")],
                format!("`{pat}` has neither {{n}} nor {{hash}}: every adopted machine gets the same name"),
            );
        }
    }

    /// Location of a template problem: inside a block scalar the template's own line is
    /// counted from the line after the `|`; a file template points into that file.
    fn template_location(&self, spec: &TemplateSpec, tmpl_line: Option<usize>) -> Location {
        match &spec.origin {
            Origin::File { path, .. } => Location {
                path: path.clone(),
                line: tmpl_line.unwrap_or(1),
                column: 1,
            },
            Origin::Inline(keys) => {
                let segs = owned_segs(keys);
                let range = self.spans.range(&segs);
                let block = range
                    .as_ref()
                    .and_then(|r| self.lab.source.get(r.clone()))
                    .map(|t| t.starts_with('|') || t.starts_with('>'))
                    .unwrap_or(false);
                let (line, column) = self.spans.locate(&segs);
                match (block, tmpl_line) {
                    (true, Some(l)) => {
                        let line = line + l;
                        let text = self.lab.source.lines().nth(line - 1).unwrap_or("");
                        let column = text.len() - text.trim_start().len() + 1;
                        Location {
                            path: self.lab.path.clone(),
                            line,
                            column,
                        }
                    }
                    _ => Location {
                        path: self.lab.path.clone(),
                        line,
                        column,
                    },
                }
            }
            Origin::Builtin => Location {
                path: self.lab.path.clone(),
                line: 1,
                column: 1,
            },
        }
    }

    fn template_problem(&mut self, spec: &TemplateSpec, e: &minijinja::Error) {
        let location = Some(self.template_location(spec, e.line()));
        self.problems.push(Problem {
            severity: Severity::Error,
            location,
            message: format!("{}: {}", spec.name, template::describe(e)),
        });
    }

    /// Compiles every template once, then renders each node's templates with fake
    /// secrets so undefined variables show up now rather than on a booting node.
    fn templates(&mut self) {
        let lab = self.lab;
        let mut broken: Vec<String> = Vec::new();
        let mut specs: Vec<TemplateSpec> = cmdline_templates(lab, usize::MAX);
        for (name, r) in &lab.file.roles {
            if r.user_data.is_some() || r.user_data_file.is_some() {
                if let Ok(s) = user_data_template(lab, name, crate::Mac::default()) {
                    specs.push(s);
                }
            }
            specs.push(meta_data_template(lab, name));
            if let Some(x) = &r.cmdline_extra {
                specs.push(TemplateSpec {
                    name: format!("roles.{name}.cmdline_extra"),
                    text: x.clone(),
                    origin: Origin::Inline(vec![
                        "roles".into(),
                        name.clone(),
                        "cmdline_extra".into(),
                    ]),
                });
            }
        }
        for i in 0..lab.file.nodes.len() {
            specs.extend(cmdline_templates(lab, i).into_iter().skip(1));
        }
        for s in &specs {
            if let Err(e) = compile(s) {
                if !broken.contains(&s.name) {
                    broken.push(s.name.clone());
                    self.template_problem(s, &e);
                }
            }
        }
        let fake = NodeSecrets {
            k3s_token: "K10-check".to_string(),
            operator_public_key: Some("ssh-ed25519 AAAA operator".to_string()),
            host_private_key: Some(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----"
                    .to_string(),
            ),
            host_public_key: Some("ssh-ed25519 AAAA host".to_string()),
            host_private_key_dropbear: Some("AAAAC3NzaC1lZDI1NTE5AAAAQ".to_string()),
            node_password: Some("check".to_string()),
            ..NodeSecrets::default()
        };
        let known = lab.role_names();
        for (i, node) in lab.file.nodes.iter().enumerate() {
            if !known.contains(&node.role) {
                continue;
            }
            let public = public_vars(lab, node, None);
            for s in cmdline_templates(lab, i) {
                if broken.contains(&s.name) {
                    continue;
                }
                self.render_check(&s, node.mac, &public, &mut broken, |out| {
                    out.split_whitespace()
                        .any(|w| w.starts_with("ds="))
                        .then(|| "sets ds= itself; pxelab appends `ds=nocloud;s=…` as the last word, remove it".to_string())
                });
            }
            let meta = meta_data_template(lab, &node.role);
            if !broken.contains(&meta.name) {
                self.render_check(&meta, node.mac, &public, &mut broken, |_| None);
            }
            if let Ok(ud) = user_data_template(lab, &node.role, node.mac) {
                if !broken.contains(&ud.name) {
                    let vars = secret_vars(lab, node, &fake);
                    self.render_check(&ud, node.mac, &vars, &mut broken, |_| None);
                }
            }
        }
    }

    fn render_check<S: serde::Serialize>(
        &mut self,
        spec: &TemplateSpec,
        mac: crate::Mac,
        vars: &S,
        broken: &mut Vec<String>,
        extra: impl Fn(&str) -> Option<String>,
    ) {
        match template::render_text(spec, vars) {
            Err((e, why)) => {
                broken.push(spec.name.clone());
                let location = Some(self.template_location(spec, e.line()));
                self.problems.push(Problem {
                    severity: Severity::Error,
                    location,
                    message: format!("{} (for {mac}): {why}", spec.name),
                });
            }
            Ok(out) => {
                if let Some(msg) = extra(&out) {
                    broken.push(spec.name.clone());
                    let location = Some(self.template_location(spec, None));
                    self.problems.push(Problem {
                        severity: Severity::Error,
                        location,
                        message: format!("{}: {msg}", spec.name),
                    });
                }
            }
        }
    }
}

fn owned_segs(keys: &[String]) -> Vec<Seg<'_>> {
    keys.iter()
        .map(|k| match k.parse::<usize>() {
            Ok(i) => Seg::Index(i),
            Err(_) => Seg::Key(k.as_str()),
        })
        .collect()
}
