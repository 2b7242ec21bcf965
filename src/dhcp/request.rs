//! A strict, bounds-checked decoder for DHCP requests (BOOTREQUEST).
//!
//! Requests are decoded here rather than with `dhcproto`'s decoder: dhcproto 0.15 is
//! lenient by design (it does not check the magic cookie, stops parsing options at the
//! first bad one and keeps the rest) and it can panic on hostile input (an option 121
//! prefix longer than 32 bits hits an `unwrap`, several fixed-length options hit
//! `debug_assert!`s). pxelab must drop and count malformed packets, never answer them
//! and never panic, so this module walks the bytes itself and refuses anything it cannot
//! account for. Replies are still built with dhcproto (see [`super::reply`]).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::mac::Mac;

/// The fixed BOOTP header is 236 bytes, followed by the 4-byte magic cookie.
pub const HEADER_LEN: usize = 236;
/// The DHCP magic cookie.
pub const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// Largest request accepted: more than any Ethernet frame carries unfragmented.
pub const MAX_LEN: usize = 1500;

/// Why a packet was dropped without an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Shorter than the header and cookie.
    #[error("truncated: {0} bytes, a DHCP message needs at least 240")]
    TooShort(usize),
    /// Longer than any request we accept.
    #[error("oversized: {0} bytes (limit {MAX_LEN})")]
    TooLong(usize),
    /// A BOOTREPLY or unknown op code.
    #[error("not a BOOTREQUEST (op {0})")]
    NotRequest(u8),
    /// Not Ethernet with a 6-byte address.
    #[error("not Ethernet (htype {htype}, hlen {hlen})")]
    NotEthernet {
        /// Hardware type.
        htype: u8,
        /// Hardware address length.
        hlen: u8,
    },
    /// The magic cookie is wrong (plain BOOTP or garbage).
    #[error("bad magic cookie")]
    BadMagic,
    /// An option runs past the end of the packet.
    #[error("option {code} runs past the end of the packet")]
    TruncatedOption {
        /// The option code.
        code: u8,
    },
    /// An option has a length its type does not allow.
    #[error("option {code} has invalid length {len}")]
    BadOptionLength {
        /// The option code.
        code: u8,
        /// Its length.
        len: usize,
    },
    /// No option 53 (plain BOOTP is not served).
    #[error("no DHCP message type (plain BOOTP is not served)")]
    NoMessageType,
    /// chaddr is a broadcast or multicast address: no client has one.
    #[error("client address {0} is a broadcast or multicast MAC")]
    GroupMac(Mac),
    /// Option 53 holds a value that is not a client message.
    #[error("message type {0} is not one a client sends")]
    BadMessageType(u8),
}

/// DHCP message types a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    /// 1
    Discover,
    /// 3
    Request,
    /// 4
    Decline,
    /// 7
    Release,
    /// 8
    Inform,
}

impl MsgType {
    /// The lower-case name used in events.
    pub fn name(self) -> &'static str {
        match self {
            MsgType::Discover => "discover",
            MsgType::Request => "request",
            MsgType::Decline => "decline",
            MsgType::Release => "release",
            MsgType::Inform => "inform",
        }
    }

    fn from_u8(v: u8) -> Result<MsgType, Malformed> {
        Ok(match v {
            1 => MsgType::Discover,
            3 => MsgType::Request,
            4 => MsgType::Decline,
            7 => MsgType::Release,
            8 => MsgType::Inform,
            other => return Err(Malformed::BadMessageType(other)),
        })
    }
}

/// A decoded client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Message type (option 53).
    pub msg: MsgType,
    /// The raw BOOTP header (first 236 bytes), echoed fields are taken from here.
    pub xid: u32,
    /// Seconds since the client began.
    pub secs: u16,
    /// Flags (bit 15: broadcast).
    pub flags: u16,
    /// Relay hop count.
    pub hops: u8,
    /// Client address (renew, inform).
    pub ciaddr: Ipv4Addr,
    /// Relay agent address.
    pub giaddr: Ipv4Addr,
    /// The full 16-byte chaddr field, echoed in replies.
    pub chaddr: [u8; 16],
    /// The client's MAC (first six bytes of chaddr).
    pub mac: Mac,
    /// Options by code; repeated codes are concatenated (RFC 3396).
    pub opts: BTreeMap<u8, Vec<u8>>,
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// Walks a TLV option area into `out`. `Ok(true)` when an End option was seen.
fn walk_options(area: &[u8], out: &mut BTreeMap<u8, Vec<u8>>) -> Result<bool, Malformed> {
    let mut i = 0;
    while i < area.len() {
        let code = area[i];
        match code {
            0 => {
                i += 1;
                continue;
            }
            255 => return Ok(true),
            _ => {}
        }
        let len = *area.get(i + 1).ok_or(Malformed::TruncatedOption { code })? as usize;
        let data = area
            .get(i + 2..i + 2 + len)
            .ok_or(Malformed::TruncatedOption { code })?;
        out.entry(code).or_default().extend_from_slice(data);
        i += 2 + len;
    }
    Ok(false)
}

/// Lengths a few options must have; anything else about them is checked where used.
fn check_lengths(opts: &BTreeMap<u8, Vec<u8>>) -> Result<(), Malformed> {
    for (&code, data) in opts {
        let len = data.len();
        let ok = match code {
            53 => len == 1,
            50 | 54 => len == 4,
            57 => len == 2,
            93 => len >= 2 && len % 2 == 0,
            _ => true,
        };
        if !ok {
            return Err(Malformed::BadOptionLength { code, len });
        }
    }
    Ok(())
}

/// Decodes a request, or says why it must be dropped.
pub fn parse(b: &[u8]) -> Result<Request, Malformed> {
    if b.len() > MAX_LEN {
        return Err(Malformed::TooLong(b.len()));
    }
    if b.len() < HEADER_LEN + 4 {
        return Err(Malformed::TooShort(b.len()));
    }
    if b[0] != 1 {
        return Err(Malformed::NotRequest(b[0]));
    }
    let (htype, hlen) = (b[1], b[2]);
    if htype != 1 || hlen != 6 {
        return Err(Malformed::NotEthernet { htype, hlen });
    }
    if b[HEADER_LEN..HEADER_LEN + 4] != MAGIC {
        return Err(Malformed::BadMagic);
    }
    let mut opts = BTreeMap::new();
    walk_options(&b[HEADER_LEN + 4..], &mut opts)?;
    // Option overload (52): the file (1), sname (2) or both (3) fields carry options.
    if let Some(&[overload]) = opts.get(&52).map(Vec::as_slice) {
        if overload & 1 != 0 {
            walk_options(&b[108..236], &mut opts)?;
        }
        if overload & 2 != 0 {
            walk_options(&b[44..108], &mut opts)?;
        }
    }
    check_lengths(&opts)?;
    let msg = match opts.get(&53) {
        Some(v) => MsgType::from_u8(v[0])?,
        None => return Err(Malformed::NoMessageType),
    };
    let mut chaddr = [0u8; 16];
    chaddr.copy_from_slice(&b[28..44]);
    let mac = Mac([b[28], b[29], b[30], b[31], b[32], b[33]]);
    if mac.is_group() {
        return Err(Malformed::GroupMac(mac));
    }
    Ok(Request {
        msg,
        xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        secs: u16::from_be_bytes([b[8], b[9]]),
        flags: u16::from_be_bytes([b[10], b[11]]),
        hops: b[3],
        ciaddr: ip_at(b, 12),
        giaddr: ip_at(b, 24),
        chaddr,
        mac,
        opts,
    })
}

impl Request {
    /// Raw bytes of an option.
    pub fn opt(&self, code: u8) -> Option<&[u8]> {
        self.opts.get(&code).map(Vec::as_slice)
    }

    /// Option 60 (vendor class) as text.
    pub fn vendor_class(&self) -> Option<String> {
        self.opt(60)
            .map(|v| String::from_utf8_lossy(v).chars().take(128).collect())
    }

    /// Option 93, the first architecture listed, as its raw number.
    pub fn arch(&self) -> Option<u16> {
        self.opt(93).map(|v| u16::from_be_bytes([v[0], v[1]]))
    }

    /// Option 97 when it is a well-formed client GUID (17 bytes, type 0).
    pub fn uuid_raw(&self) -> Option<&[u8]> {
        self.opt(97).filter(|v| v.len() == 17 && v[0] == 0)
    }

    /// Option 97 as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub fn uuid(&self) -> Option<String> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let u = self.uuid_raw()?;
        // One allocation: this runs for every PXE request (a `format!` per byte was 5 %
        // of pxelab's CPU under perfdhcp).
        let mut s = String::with_capacity(36);
        for (i, b) in u[1..].iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                s.push('-');
            }
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        Some(s)
    }

    /// The client is iPXE: option 77 says `iPXE` (raw or RFC 3004 length-prefixed), or
    /// option 175 (iPXE encapsulated options) is present.
    pub fn is_ipxe(&self) -> bool {
        if self.opts.contains_key(&175) {
            return true;
        }
        match self.opt(77) {
            Some(v) => v == b"iPXE" || v == b"\x04iPXE",
            None => false,
        }
    }

    /// Option 60 starts with `PXEClient`.
    pub fn is_pxe_client(&self) -> bool {
        self.opt(60).is_some_and(|v| v.starts_with(b"PXEClient"))
    }

    /// Option 60 starts with `HTTPClient` (UEFI HTTP boot).
    pub fn is_http_client(&self) -> bool {
        self.opt(60).is_some_and(|v| v.starts_with(b"HTTPClient"))
    }

    /// Option 50, the address asked for.
    pub fn requested_ip(&self) -> Option<Ipv4Addr> {
        self.opt(50).map(|v| ip_at(v, 0))
    }

    /// Option 54, the server the client chose.
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.opt(54).map(|v| ip_at(v, 0))
    }

    /// Option 12, the hostname the client suggests.
    pub fn hostname(&self) -> Option<String> {
        self.opt(12)
            .map(|v| String::from_utf8_lossy(v).chars().take(63).collect())
    }

    /// The broadcast flag.
    pub fn broadcast(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// giaddr, when the request was relayed.
    pub fn relay(&self) -> Option<Ipv4Addr> {
        (!self.giaddr.is_unspecified()).then_some(self.giaddr)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a request the way a client would: header, cookie, options, End.
    pub fn build(mac: [u8; 6], opts: &[(u8, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0] = 1;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        b[10] = 0x80;
        b[28..34].copy_from_slice(&mac);
        b.extend_from_slice(&MAGIC);
        for (c, d) in opts {
            b.push(*c);
            b.push(d.len() as u8);
            b.extend_from_slice(d);
        }
        b.push(255);
        b
    }

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    #[test]
    fn decodes_a_pxe_discover() {
        let mut uuid = vec![0u8];
        uuid.extend(1..=16u8);
        let b = build(
            MAC,
            &[
                (53, &[1]),
                (60, b"PXEClient:Arch:00007:UNDI:003016"),
                (93, &[0, 7]),
                (97, &uuid),
            ],
        );
        let r = parse(&b).unwrap();
        assert_eq!(r.msg, MsgType::Discover);
        assert_eq!(r.mac.to_string(), "52:54:00:12:34:56");
        assert_eq!(r.arch(), Some(7));
        assert!(r.is_pxe_client());
        assert!(!r.is_ipxe());
        assert!(r.broadcast());
        assert_eq!(r.uuid().unwrap(), "01020304-0506-0708-090a-0b0c0d0e0f10");
    }

    #[test]
    fn ipxe_markers() {
        let a = parse(&build(MAC, &[(53, &[1]), (77, b"iPXE")])).unwrap();
        let b = parse(&build(MAC, &[(53, &[1]), (175, &[0x13, 1, 1])])).unwrap();
        let c = parse(&build(MAC, &[(53, &[1]), (77, b"other")])).unwrap();
        assert!(a.is_ipxe() && b.is_ipxe() && !c.is_ipxe());
    }

    #[test]
    fn refuses_what_it_cannot_account_for() {
        let good = build(MAC, &[(53, &[1])]);
        assert!(matches!(parse(&good[..100]), Err(Malformed::TooShort(100))));
        let mut reply = good.clone();
        reply[0] = 2;
        assert_eq!(parse(&reply), Err(Malformed::NotRequest(2)));
        let mut magic = good.clone();
        magic[236] = 0;
        assert_eq!(parse(&magic), Err(Malformed::BadMagic));
        for group in [[0xff; 6], [0x01, 0, 0x5e, 0, 0, 1]] {
            assert_eq!(
                parse(&build(group, &[(53, &[1])])),
                Err(Malformed::GroupMac(Mac(group)))
            );
        }
        let mut trunc = build(MAC, &[(53, &[1]), (60, b"PXEClient")]);
        trunc.truncate(trunc.len() - 4);
        assert!(matches!(
            parse(&trunc),
            Err(Malformed::TruncatedOption { code: 60 })
        ));
        assert_eq!(
            parse(&build(MAC, &[(53, &[1, 2])])),
            Err(Malformed::BadOptionLength { code: 53, len: 2 })
        );
        assert_eq!(
            parse(&build(MAC, &[(60, b"PXEClient")])),
            Err(Malformed::NoMessageType)
        );
        assert_eq!(
            parse(&build(MAC, &[(53, &[2])])),
            Err(Malformed::BadMessageType(2))
        );
        assert!(matches!(
            parse(&vec![1u8; 2000]),
            Err(Malformed::TooLong(2000))
        ));
    }

    #[test]
    fn long_options_are_concatenated() {
        let r = parse(&build(MAC, &[(53, &[1]), (60, b"PXE"), (60, b"Client")])).unwrap();
        assert_eq!(r.vendor_class().unwrap(), "PXEClient");
        assert!(r.is_pxe_client());
    }

    /// Random and mutated buffers never panic the decoder, and whatever it accepts has a
    /// client message type and an Ethernet address.
    #[test]
    fn fuzz_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let base = build(MAC, &[(53, &[1]), (60, b"PXEClient"), (93, &[0, 7])]);
        for i in 0..20_000 {
            let b: Vec<u8> = if i % 2 == 0 {
                let n = rng.random_range(0..1600);
                (0..n).map(|_| rng.random()).collect()
            } else {
                let mut b = base.clone();
                for _ in 0..rng.random_range(1..8) {
                    let at = rng.random_range(0..b.len());
                    b[at] = rng.random();
                }
                b.truncate(rng.random_range(0..=b.len()));
                b
            };
            if let Ok(r) = parse(&b) {
                assert_eq!(b[0], 1);
                let _ = (
                    r.arch(),
                    r.uuid(),
                    r.vendor_class(),
                    r.is_ipxe(),
                    r.requested_ip(),
                );
            }
        }
    }
}
