//! Checks of the machines: unique MACs, hostnames and addresses, known roles, one
//! k3s server, the policy for unknown MACs and the adoption hostname pattern.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::{valid_hostname, Validator};
use crate::config::spans::Seg;
use crate::config::UnknownPolicy;

impl Validator<'_> {
    pub(super) fn nodes(&mut self) {
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
                    if !s.contains(&ip) {
                        self.error(&p("ip"), format!("{ip} is outside dhcp.subnet {s}"));
                    }
                }
            }
        }
    }

    pub(super) fn k3s_server(&mut self) {
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

    pub(super) fn unknown_policy(&mut self) {
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

    pub(super) fn adopt(&mut self) {
        let pat = &self.lab.file.adopt.hostname_pattern;
        if !pat.contains("{n}") && !pat.contains("{hash}") {
            self.warn(
                &[Seg::Key("adopt"), Seg::Key("hostname_pattern")],
                format!("`{pat}` has neither {{n}} nor {{hash}}: every adopted machine gets the same name"),
            );
        }
    }
}
