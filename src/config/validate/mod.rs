//! Validation of a parsed lab: every problem, each with file:line:col and the value.
//!
//! Schema problems (unknown keys, a malformed MAC, a wrong type) are found earlier by
//! [`super::parse`]; the servers' settings by building their plan ([`super::plan`]),
//! whose errors are reported here too; this module checks the rest serde cannot:
//! duplicates, addresses against the subnet, roles and their templates, the k3s server,
//! boot assets on disk and their architectures, power drivers. One file per concern.

mod apkovl;
mod arches;
mod assets;
mod bzimage;
mod flavour;
mod image_arch;
mod nodes;
mod power;
mod roles;
mod templates;

use super::net::{parse_subnet, Ipv4Net};
use super::report::Reporter;
use super::spans::{Seg, Spans};
use super::{DhcpMode, Ipv6Ra, Lab, Problem};

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
    let spans = Spans::new(&lab.source);
    let mut v = Validator {
        lab,
        spans: &spans,
        r: Reporter::new(&lab.path, &spans),
        cache: flavour::Cache::default(),
        apkovls: apkovl::Seen::default(),
        arches: arches::ArchCache::default(),
    };
    v.nodes();
    v.k3s_server();
    v.roles();
    v.snapshots();
    v.unknown_policy();
    v.dhcp();
    v.boot();
    v.flavours();
    v.arches();
    v.templates();
    v.assets();
    v.served_folders();
    v.adopt();
    v.power();
    let mut p = v.r.problems;
    p.sort_by_key(|p| p.location.as_ref().map(|l| (l.line, l.column)));
    p.dedup();
    p
}

struct Validator<'a> {
    lab: &'a Lab,
    spans: &'a Spans,
    r: Reporter<'a>,
    cache: flavour::Cache,
    apkovls: apkovl::Seen,
    arches: arches::ArchCache,
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
    fn error(&mut self, path: &[Seg<'_>], msg: String) {
        self.r.error(path, msg);
    }

    fn error_key(&mut self, path: &[Seg<'_>], msg: String) {
        self.r.error_key(path, msg);
    }

    fn warn(&mut self, path: &[Seg<'_>], msg: String) {
        self.r.warn(path, msg);
    }

    fn subnet(&self) -> Option<Ipv4Net> {
        parse_subnet(self.lab.file.dhcp.subnet.as_deref()?).ok()
    }

    /// The `dhcp:` section: its errors are the DHCP plan's (one set of checks for
    /// `check` and `up`); only the RA warning is a matter for validation alone.
    fn dhcp(&mut self) {
        self.r
            .problems
            .extend(self.lab.plan_problems().iter().cloned());
        let d = &self.lab.file.dhcp;
        if let Some(msg) = ipv6_ra_unused(d.mode, d.ipv6_ra, self.lab.file.interface.is_some()) {
            self.warn(&[Seg::Key("dhcp"), Seg::Key("ipv6_ra")], msg);
        }
        self.server_address_in_subnet();
    }

    /// `server_address` outside `dhcp.subnet`. In server mode without `dhcp.router` an
    /// error: pxelab hands out addresses of the subnet and its own address as the server
    /// (option 54) and in every boot URL, and a node given no router cannot reach an
    /// address outside its subnet. With a router (a DHCP relay forwards the subnet's
    /// requests to pxelab) it can, and in proxy mode the LAN's server gives the
    /// addresses: a warning, since it is more often a typo than a routed lab.
    fn server_address_in_subnet(&mut self) {
        let (Some(ip), Some(s)) = (self.lab.file.server_address, self.subnet()) else {
            return;
        };
        if s.contains(&ip) {
            return;
        }
        let at = [Seg::Key("server_address")];
        let d = &self.lab.file.dhcp;
        match (d.mode, d.router) {
            (DhcpMode::Server, None) => self.error(
                &at,
                format!("{ip} is outside dhcp.subnet {s}: in server mode nodes get addresses of {s} and no router, and are told to fetch everything from {ip}, which they cannot reach; put server_address inside the subnet (one of the interface's addresses there), or set dhcp.router for a routed lab"),
            ),
            (DhcpMode::Server | DhcpMode::Proxy, _) => self.warn(
                &at,
                format!("{ip} is outside dhcp.subnet {s}: nodes of {s} reach it only through a router (a DHCP relay's network); is one of them a typo?"),
            ),
            (DhcpMode::Off, _) => {}
        }
    }
}
