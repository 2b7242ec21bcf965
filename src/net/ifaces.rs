//! The network interfaces of this machine (of the network namespace the process runs
//! in): their names from /sys/class/net and their IPv4 addresses with prefixes from the
//! kernel over rtnetlink (`RTM_GETADDR`, the dump `ip -4 addr` prints).
//!
//! Why netlink: /proc has no per-interface IPv4 address list (`/proc/net/fib_trie`
//! names no interface), and getifaddrs(3) needs `unsafe`. A netlink socket is an
//! ordinary socket (socket2, no `unsafe`), one request and a bounded number of reads.
//! When it cannot be read, the interfaces are still listed, without addresses, and
//! [`Interfaces::addresses_known`] says so, so a check never claims an address is
//! missing when it could not look.

use std::io::Read;
use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;

/// One interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    /// Its name (`enp4s0f4u1u3`).
    pub name: String,
    /// Its IPv4 addresses with their prefixes (`192.168.64.134/27`).
    pub addrs: Vec<Ipv4Net>,
}

/// The interfaces seen at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interfaces {
    /// Sorted by name.
    pub list: Vec<Iface>,
    /// Whether the addresses were read (netlink answered).
    pub addresses_known: bool,
}

impl Interfaces {
    /// The interface called `name`.
    pub fn get(&self, name: &str) -> Option<&Iface> {
        self.list.iter().find(|i| i.name == name)
    }

    /// Whether `ip` is an address of this machine: one of an interface's, or any of
    /// 127.0.0.0/8 (Linux answers the whole block on `lo`).
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        ip.is_loopback() || self.list.iter().any(|i| i.has(ip))
    }

    /// `eth0 192.0.2.2/24, lo 127.0.0.1/8, wlan0`: for messages naming what exists.
    pub fn describe(&self) -> String {
        if self.list.is_empty() {
            return "none found".to_string();
        }
        let each: Vec<String> = self.list.iter().map(Iface::describe).collect();
        each.join(", ")
    }
}

impl Iface {
    /// Whether `ip` is one of its addresses (on `lo`, anything of 127.0.0.0/8).
    pub fn has(&self, ip: Ipv4Addr) -> bool {
        self.addrs
            .iter()
            .any(|n| n.addr() == ip || (ip.is_loopback() && n.addr().is_loopback()))
    }

    /// `eth0 192.0.2.2/24` (the name alone when it has no IPv4 address).
    pub fn describe(&self) -> String {
        let mut s = self.name.clone();
        for a in &self.addrs {
            s.push(' ');
            s.push_str(&a.to_string());
        }
        s
    }
}

/// The interfaces of this machine now.
pub fn read() -> Interfaces {
    let mut names: Vec<(String, Option<u32>)> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .map(|n| {
                    let idx = super::ndp::interface_index(&n).ok();
                    (n, idx)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let addrs = dump_ipv4_addresses().ok();
    let list = names
        .into_iter()
        .map(|(name, idx)| Iface {
            addrs: match (&addrs, idx) {
                (Some(all), Some(idx)) => all
                    .iter()
                    .filter(|(i, _)| *i == idx)
                    .map(|(_, n)| *n)
                    .collect(),
                _ => Vec::new(),
            },
            name,
        })
        .collect();
    Interfaces {
        list,
        addresses_known: addrs.is_some(),
    }
}

const AF_NETLINK: i32 = 16;
const NETLINK_ROUTE: i32 = 0;
const AF_INET: u8 = 2;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// Most datagrams read for one dump (each holds dozens of addresses).
const MAX_READS: usize = 256;

/// Every IPv4 address of every interface, as (interface index, address/prefix).
fn dump_ipv4_addresses() -> std::io::Result<Vec<(u32, Ipv4Net)>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut sock = Socket::new(
        Domain::from(AF_NETLINK),
        Type::RAW,
        Some(Protocol::from(NETLINK_ROUTE)),
    )?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut req = Vec::with_capacity(24);
    req.extend_from_slice(&24u32.to_ne_bytes());
    req.extend_from_slice(&RTM_GETADDR.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    req.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    req.extend_from_slice(&[AF_INET, 0, 0, 0]);
    req.extend_from_slice(&0u32.to_ne_bytes());
    sock.send(&req)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..MAX_READS {
        let n = sock.read(&mut buf)?;
        if n == 0 || parse_dump(&buf[..n], &mut out)? {
            return Ok(out);
        }
    }
    Err(std::io::Error::other("netlink address dump did not end"))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses one datagram of an `RTM_GETADDR` dump into `out`; `true` once the dump ended.
pub(crate) fn parse_dump(mut b: &[u8], out: &mut Vec<(u32, Ipv4Net)>) -> std::io::Result<bool> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad netlink message");
    while b.len() >= 16 {
        let len = u32_at(b, 0).ok_or_else(bad)? as usize;
        let kind = u16_at(b, 4).ok_or_else(bad)?;
        if len < 16 || len > b.len() {
            return Err(bad());
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => return Err(std::io::Error::other("netlink refused the dump")),
            RTM_NEWADDR => {
                if let Some(a) = parse_addr(&b[16..len]) {
                    out.push(a);
                }
            }
            _ => {}
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    Ok(false)
}

/// One `ifaddrmsg` and its attributes: the interface index and the local address.
fn parse_addr(m: &[u8]) -> Option<(u32, Ipv4Net)> {
    let (family, prefix) = (*m.first()?, *m.get(1)?);
    if family != AF_INET {
        return None;
    }
    let index = u32_at(m, 4)?;
    let (mut local, mut address) = (None, None);
    let mut a = m.get(8..)?;
    while a.len() >= 4 {
        let len = usize::from(u16_at(a, 0)?);
        let kind = u16_at(a, 2)?;
        if len < 4 || len > a.len() {
            break;
        }
        let data = &a[4..len];
        if data.len() == 4 {
            let ip = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
            match kind {
                IFA_LOCAL => local = Some(ip),
                IFA_ADDRESS => address = Some(ip),
                _ => {}
            }
        }
        a = &a[((len + 3) & !3).min(a.len())..];
    }
    // On a point-to-point link IFA_ADDRESS is the peer and IFA_LOCAL ours.
    let ip = local.or(address)?;
    Some((index, Ipv4Net::new(ip, prefix).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rta(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(data);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn msg(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn a_dump_gives_each_local_address_with_its_prefix() {
        let mut body = vec![AF_INET, 27, 0, 0];
        body.extend_from_slice(&7u32.to_ne_bytes());
        body.extend(rta(IFA_ADDRESS, &[10, 9, 9, 9]));
        body.extend(rta(IFA_LOCAL, &[192, 168, 64, 134]));
        body.extend(rta(3, b"enp4s0f4u1u3\0"));
        let mut v6 = vec![10u8, 64, 0, 0];
        v6.extend_from_slice(&7u32.to_ne_bytes());
        let mut dump = msg(RTM_NEWADDR, &body);
        dump.extend(msg(RTM_NEWADDR, &v6));
        let mut out = Vec::new();
        assert!(!parse_dump(&dump, &mut out).unwrap());
        assert_eq!(out, vec![(7, "192.168.64.134/27".parse().unwrap())]);
        assert!(parse_dump(&msg(NLMSG_DONE, &[0; 4]), &mut out).unwrap());
        assert!(parse_dump(&msg(NLMSG_ERROR, &[0; 4]), &mut out).is_err());
        assert!(parse_dump(
            &[40, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &mut out
        )
        .is_err());
    }

    #[test]
    fn this_machine_has_a_loopback_with_its_address() {
        let here = read();
        let lo = here.get("lo").expect("lo");
        assert!(here.addresses_known);
        assert!(lo.has(Ipv4Addr::LOCALHOST), "{lo:?}");
        assert!(here.is_local(Ipv4Addr::new(127, 1, 2, 3)));
        assert!(
            !here.is_local(Ipv4Addr::new(192, 0, 2, 254))
                || here.describe().contains("192.0.2.254")
        );
    }
}
