//! TFTP packets (RFC 1350) and options (RFC 2347 OACK, 2348 blksize, 2349 timeout and
//! tsize, 7440 windowsize): a bounds-checked decoder and small encoders.

/// Error codes of RFC 1350 and RFC 2347.
pub mod code {
    /// Not defined, see message.
    pub const UNDEFINED: u16 = 0;
    /// File not found.
    pub const NOT_FOUND: u16 = 1;
    /// Access violation.
    pub const ACCESS: u16 = 2;
    /// Illegal TFTP operation.
    pub const ILLEGAL: u16 = 4;
    /// Unknown transfer ID.
    pub const UNKNOWN_TID: u16 = 5;
    /// Option negotiation refused (RFC 2347).
    pub const OPTIONS: u16 = 8;
}

/// A decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Read request: file, mode, options (names lower-cased, each at most once: the
    /// first of a repeated option counts).
    Rrq {
        /// The file asked for, as sent.
        file: String,
        /// `octet` or `netascii` (lower-cased).
        mode: String,
        /// Options in the order sent.
        opts: Vec<(String, String)>,
    },
    /// Write request (always refused).
    Wrq {
        /// The file named.
        file: String,
    },
    /// Data block.
    Data {
        /// Block number.
        block: u16,
    },
    /// Acknowledgement.
    Ack(u16),
    /// Error from the peer.
    Error {
        /// Code.
        code: u16,
        /// Message.
        msg: String,
    },
    /// Option acknowledgement.
    Oack,
}

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPacket {
    /// Too short to hold an opcode.
    #[error("packet too short ({0} bytes)")]
    Short(usize),
    /// Unknown opcode.
    #[error("unknown opcode {0}")]
    Opcode(u16),
    /// A string field is not NUL-terminated or not text.
    #[error("malformed request fields")]
    Fields,
}

fn strings(b: &[u8]) -> Result<Vec<String>, BadPacket> {
    if b.last() != Some(&0) {
        return Err(BadPacket::Fields);
    }
    b[..b.len() - 1]
        .split(|c| *c == 0)
        .map(|s| {
            std::str::from_utf8(s)
                .map(str::to_string)
                .map_err(|_| BadPacket::Fields)
        })
        .collect()
}

/// Decodes a packet.
pub fn parse(b: &[u8]) -> Result<Packet, BadPacket> {
    if b.len() < 4 {
        return Err(BadPacket::Short(b.len()));
    }
    let op = u16::from_be_bytes([b[0], b[1]]);
    let n = u16::from_be_bytes([b[2], b[3]]);
    match op {
        1 | 2 => {
            let s = strings(&b[2..])?;
            if s.len() < 2 || s.len() % 2 != 0 || s[0].is_empty() {
                return Err(BadPacket::Fields);
            }
            let file = s[0].clone();
            if op == 2 {
                return Ok(Packet::Wrq { file });
            }
            let mut opts: Vec<(String, String)> = Vec::new();
            for kv in s[2..].chunks(2) {
                let name = kv[0].to_ascii_lowercase();
                // RFC 2347 does not say what a repeated option means. The first one
                // counts and later copies are dropped, so the OACK names each option
                // once (a client given two answers may take either). Refusing the
                // request instead would stop a boot over something harmless.
                if !opts.iter().any(|(k, _)| *k == name) {
                    opts.push((name, kv[1].clone()));
                }
            }
            Ok(Packet::Rrq {
                file,
                mode: s[1].to_ascii_lowercase(),
                opts,
            })
        }
        3 => Ok(Packet::Data { block: n }),
        4 => Ok(Packet::Ack(n)),
        5 => {
            let msg = b[4..]
                .split(|c| *c == 0)
                .next()
                .map(|m| String::from_utf8_lossy(m).chars().take(200).collect())
                .unwrap_or_default();
            Ok(Packet::Error { code: n, msg })
        }
        6 => Ok(Packet::Oack),
        other => Err(BadPacket::Opcode(other)),
    }
}

/// A DATA packet.
pub fn data(block: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + payload.len());
    v.extend_from_slice(&3u16.to_be_bytes());
    v.extend_from_slice(&block.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// An ERROR packet.
pub fn error(code: u16, msg: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + msg.len());
    v.extend_from_slice(&5u16.to_be_bytes());
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(msg.as_bytes());
    v.push(0);
    v
}

/// An OACK packet.
pub fn oack(opts: &[(&str, String)]) -> Vec<u8> {
    let mut v = 6u16.to_be_bytes().to_vec();
    for (k, val) in opts {
        v.extend_from_slice(k.as_bytes());
        v.push(0);
        v.extend_from_slice(val.as_bytes());
        v.push(0);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_requests_with_options() {
        let b = b"\x00\x01undionly.kpxe\x00octet\x00blksize\x001468\x00TSIZE\x000\x00";
        assert_eq!(
            parse(b).unwrap(),
            Packet::Rrq {
                file: "undionly.kpxe".into(),
                mode: "octet".into(),
                opts: vec![
                    ("blksize".into(), "1468".into()),
                    ("tsize".into(), "0".into())
                ],
            }
        );
        assert_eq!(
            parse(b"\x00\x02x\x00octet\x00").unwrap(),
            Packet::Wrq { file: "x".into() }
        );
        assert_eq!(parse(b"\x00\x04\x00\x07").unwrap(), Packet::Ack(7));
    }

    #[test]
    fn a_repeated_option_counts_once_the_first_time() {
        let b = b"\x00\x01f\x00octet\x00blksize\x001468\x00BlkSize\x00512\x00tsize\x000\x00blksize\x008\x00";
        let Packet::Rrq { opts, .. } = parse(b).unwrap() else {
            panic!("not an RRQ");
        };
        assert_eq!(
            opts,
            vec![
                ("blksize".to_string(), "1468".to_string()),
                ("tsize".to_string(), "0".to_string())
            ]
        );
        // And so the OACK names it once.
        let p = crate::tftp::transfer::negotiate(&opts, 10);
        assert_eq!(
            oack(&p.oack),
            b"\x00\x06blksize\x001468\x00tsize\x0010\x00".to_vec()
        );
    }

    #[test]
    fn refuses_garbage() {
        for b in [
            &b"\x00"[..],
            b"\x00\x01abc",
            b"\x00\x01\x00octet\x00",
            b"\x00\x01f\x00octet\x00blksize\x00",
            b"\x00\x09\x00\x00",
            b"\x00\x01\xff\xfe\x00octet\x00",
        ] {
            assert!(parse(b).is_err(), "{b:?}");
        }
    }
}
