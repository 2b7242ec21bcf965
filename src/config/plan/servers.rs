//! The plans of the servers whose sections serde already fully checks (TFTP, HTTP,
//! admin API, syslog, SSH watcher): addresses resolved and paths rooted, so a server
//! binds what its plan says and reads nothing else from lab.yaml to start.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::config::deadlines::Deadlines;
use crate::config::Lab;

/// TFTP for the iPXE binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpPlan {
    /// The folder served, resolved against lab.yaml's folder.
    pub root: PathBuf,
    /// The lab's address (which address to listen on follows from it and the interface).
    pub address: Ipv4Addr,
    /// The interface to bind to, if any.
    pub interface: Option<String>,
    /// UDP port.
    pub port: u16,
}

/// The boot HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpPlan {
    /// Address and port to listen on.
    pub bind: SocketAddr,
}

/// The admin API: loopback by default; on any other address TLS only, since the token
/// and the lab's state would otherwise cross the network in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminPlan {
    /// Address and port to listen on.
    pub bind: SocketAddr,
}

impl AdminPlan {
    /// Whether it must speak TLS (bound beyond loopback).
    pub fn tls(&self) -> bool {
        !self.bind.ip().is_loopback()
    }
}

/// The syslog receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyslogPlan {
    /// Address and port to listen on.
    pub bind: SocketAddr,
}

/// Following nodes over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchPlan {
    /// The nodes' SSH port.
    pub port: u16,
    /// The login user.
    pub user: String,
    /// When a node counts as stalled.
    pub deadlines: Deadlines,
}

pub(super) fn tftp(lab: &Lab) -> Option<TftpPlan> {
    let t = &lab.file.tftp;
    t.enabled.then(|| TftpPlan {
        root: lab.resolve(&t.root),
        address: lab.server_address,
        interface: lab.file.interface.clone(),
        port: t.port,
    })
}

pub(super) fn http(lab: &Lab) -> HttpPlan {
    HttpPlan {
        bind: SocketAddr::new(lab.file.http.bind, lab.file.http.port),
    }
}

pub(super) fn admin(lab: &Lab) -> AdminPlan {
    AdminPlan {
        bind: SocketAddr::new(
            lab.file
                .http
                .admin_bind
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            lab.file.http.admin_port,
        ),
    }
}

pub(super) fn syslog(lab: &Lab) -> Option<SyslogPlan> {
    let s = &lab.file.syslog;
    s.enabled.then(|| SyslogPlan {
        bind: SocketAddr::new(IpAddr::V4(lab.server_address), s.port()),
    })
}

pub(super) fn watch(lab: &Lab) -> Option<WatchPlan> {
    let s = &lab.file.ssh;
    s.watch.then(|| WatchPlan {
        port: s.port,
        user: s.user.clone(),
        deadlines: s.deadlines,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn plan(extra: &str) -> crate::config::plan::Plan {
        let text = format!("name: t\nserver_address: 10.0.0.1\nboot: {{kernel: k}}\n{extra}");
        let lab = Lab::parse(Path::new("/srv/lab/lab.yaml"), &text).unwrap();
        lab.plan().unwrap().clone()
    }

    #[test]
    fn defaults_bind_where_the_servers_always_did() {
        let p = plan("");
        assert_eq!(p.http.bind, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(p.admin.bind, "127.0.0.1:7480".parse().unwrap());
        let t = p.tftp.unwrap();
        assert_eq!((t.root, t.port), (PathBuf::from("/usr/lib/ipxe"), 69));
        assert_eq!(p.syslog, None);
        assert_eq!(p.watch.map(|w| w.port), Some(22));
    }

    #[test]
    fn sections_turn_servers_on_off_and_move_them() {
        let p = plan(
            "tftp: {root: ipxe, port: 6969}\nhttp: {bind: 10.0.0.1, port: 81, admin_port: 7000}\n\
             syslog: {enabled: true, port: 5514}\nssh: {watch: false}\n",
        );
        assert_eq!(p.tftp.unwrap().root, PathBuf::from("/srv/lab/ipxe"));
        assert_eq!(p.http.bind, "10.0.0.1:81".parse().unwrap());
        assert_eq!(p.admin.bind, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(p.syslog.unwrap().bind, "10.0.0.1:5514".parse().unwrap());
        assert_eq!(p.watch, None);
        assert_eq!(plan("tftp: {enabled: false}\n").tftp, None);
    }
}
