//! A small TFTP read client (RFC 1350 + 2347/2348/2349 options), as a PXE ROM uses it:
//! one RRQ for the iPXE binary with `blksize` and `tsize`, lock on the server's
//! transfer port, acknowledge every block, retransmit on silence.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

/// Why a TFTP read failed.
#[derive(Debug, thiserror::Error)]
pub enum TftpError {
    /// A socket operation failed.
    #[error("tftp {file} from {server}: {source}")]
    Io {
        /// The file asked for.
        file: String,
        /// The server.
        server: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server answered with an ERROR packet.
    #[error("tftp {file} from {server}: error {code}: {message}")]
    Remote {
        /// The file asked for.
        file: String,
        /// The server.
        server: SocketAddr,
        /// TFTP error code.
        code: u16,
        /// Its message.
        message: String,
    },
    /// The server stopped answering.
    #[error("tftp {file} from {server}: no answer after {retries} tries")]
    Timeout {
        /// The file asked for.
        file: String,
        /// The server.
        server: SocketAddr,
        /// Attempts made.
        retries: u32,
    },
    /// A malformed or unexpected packet (counted, then the transfer gives up).
    #[error("tftp {file} from {server}: protocol error: {detail}")]
    Protocol {
        /// The file asked for.
        file: String,
        /// The server.
        server: SocketAddr,
        /// What was wrong.
        detail: String,
    },
}

/// How to read.
#[derive(Debug, Clone)]
pub struct TftpOptions {
    /// Block size to ask for (iPXE and PXE ROMs ask for 1432 or 1456).
    pub blksize: u16,
    /// Wait this long for each packet before retransmitting.
    pub timeout: Duration,
    /// Give up after this many silent waits in a row.
    pub retries: u32,
}

impl Default for TftpOptions {
    fn default() -> Self {
        TftpOptions {
            blksize: 1432,
            timeout: Duration::from_secs(1),
            retries: 5,
        }
    }
}

/// A completed read.
#[derive(Debug, Clone)]
pub struct TftpReceived {
    /// The file's bytes.
    pub data: Vec<u8>,
    /// Block size in force (512 when the server ignored the option).
    pub blksize: u16,
    /// The size the server announced in its OACK, if any.
    pub tsize: Option<u64>,
}

const RRQ: u16 = 1;
const DATA: u16 = 3;
const ACK: u16 = 4;
const ERROR: u16 = 5;
const OACK: u16 = 6;
/// Largest file accepted (an iPXE binary is well under 2 MB).
const MAX_FILE: usize = 64 * 1024 * 1024;

fn rrq(file: &str, blksize: u16) -> Vec<u8> {
    let mut p = RRQ.to_be_bytes().to_vec();
    for part in [file, "octet", "blksize", &blksize.to_string(), "tsize", "0"] {
        p.extend_from_slice(part.as_bytes());
        p.push(0);
    }
    p
}

fn ack(block: u16) -> [u8; 4] {
    let b = block.to_be_bytes();
    [0, ACK as u8, b[0], b[1]]
}

fn parse_oack(body: &[u8]) -> Vec<(String, String)> {
    let parts: Vec<String> = body
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    parts
        .chunks(2)
        .filter(|c| c.len() == 2 && !c[0].is_empty())
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect()
}

/// Reads `file` from the TFTP server at `server`, sending from `socket` (bind it to the
/// node's own address first).
pub async fn read(
    socket: &UdpSocket,
    server: SocketAddr,
    file: &str,
    opts: &TftpOptions,
) -> Result<TftpReceived, TftpError> {
    let io = |source| TftpError::Io {
        file: file.to_string(),
        server,
        source,
    };
    let proto = |detail: String| TftpError::Protocol {
        file: file.to_string(),
        server,
        detail,
    };
    let mut last: Vec<u8> = rrq(file, opts.blksize);
    let mut last_to = server;
    socket.send_to(&last, last_to).await.map_err(io)?;
    let mut peer: Option<SocketAddr> = None;
    let mut blksize = 512u16;
    let mut tsize = None;
    let mut expect: u16 = 1;
    let mut data = Vec::new();
    let mut silent = 0u32;
    let mut buf = vec![0u8; 65_536];
    loop {
        let got = tokio::time::timeout(opts.timeout, socket.recv_from(&mut buf)).await;
        let (n, from) = match got {
            Err(_) => {
                silent += 1;
                if silent > opts.retries {
                    return Err(TftpError::Timeout {
                        file: file.to_string(),
                        server,
                        retries: silent,
                    });
                }
                socket.send_to(&last, last_to).await.map_err(io)?;
                continue;
            }
            Ok(r) => r.map_err(io)?,
        };
        // Packets from anyone but the locked transfer port are ignored (RFC 1350 §4).
        if from.ip() != server.ip() || peer.is_some_and(|p| p != from) || n < 4 {
            continue;
        }
        silent = 0;
        let op = u16::from_be_bytes([buf[0], buf[1]]);
        match op {
            ERROR => {
                let code = u16::from_be_bytes([buf[2], buf[3]]);
                let msg = String::from_utf8_lossy(&buf[4..n])
                    .trim_end_matches('\0')
                    .to_string();
                return Err(TftpError::Remote {
                    file: file.to_string(),
                    server,
                    code,
                    message: msg,
                });
            }
            OACK if peer.is_none() => {
                peer = Some(from);
                for (k, v) in parse_oack(&buf[2..n]) {
                    match k.as_str() {
                        "blksize" => {
                            blksize = v
                                .parse()
                                .ok()
                                .filter(|b| (8..=opts.blksize).contains(b))
                                .ok_or_else(|| proto(format!("bad blksize {v}")))?
                        }
                        "tsize" => tsize = v.parse().ok(),
                        _ => {}
                    }
                }
                last = ack(0).to_vec();
                last_to = from;
                socket.send_to(&last, last_to).await.map_err(io)?;
            }
            DATA => {
                if peer.is_none() {
                    // The server ignored our options: plain 512-byte transfer.
                    peer = Some(from);
                    last_to = from;
                }
                let block = u16::from_be_bytes([buf[2], buf[3]]);
                let payload = &buf[4..n];
                if block == expect {
                    if payload.len() > blksize as usize {
                        return Err(proto(format!(
                            "block {block} has {} bytes, blksize {blksize}",
                            payload.len()
                        )));
                    }
                    data.extend_from_slice(payload);
                    if data.len() > MAX_FILE {
                        return Err(proto("file larger than 64 MiB".to_string()));
                    }
                    last = ack(block).to_vec();
                    socket.send_to(&last, last_to).await.map_err(io)?;
                    expect = expect.wrapping_add(1);
                    if payload.len() < blksize as usize {
                        return Ok(TftpReceived {
                            data,
                            blksize,
                            tsize,
                        });
                    }
                } else if block == expect.wrapping_sub(1) {
                    // Our ACK was lost: repeat it.
                    socket.send_to(&last, last_to).await.map_err(io)?;
                }
            }
            other => return Err(proto(format!("unexpected opcode {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrq_carries_options() {
        let p = rrq("undionly.kpxe", 1432);
        assert_eq!(&p[..2], &[0, 1]);
        let text = String::from_utf8_lossy(&p[2..]).to_string();
        assert_eq!(
            text,
            "undionly.kpxe\x00octet\x00blksize\x001432\x00tsize\x000\x00"
        );
    }

    #[test]
    fn oack_pairs() {
        let o = parse_oack(b"blksize\x001432\x00tsize\x0012345\x00");
        assert_eq!(
            o,
            vec![
                ("blksize".to_string(), "1432".to_string()),
                ("tsize".to_string(), "12345".to_string())
            ]
        );
    }
}
