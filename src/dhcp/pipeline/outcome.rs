//! What server mode decided about one request, as types: the steps return these, the
//! reply step ([`super::respond`]) turns them into bytes and events. Keeping the decision
//! typed (not a reply already encoded, not a string) is what lets the table tests say
//! "a REQUEST for someone else's address is a NAK because another client holds it".

use std::net::Ipv4Addr;

use crate::dhcp::boot::BootTarget;
use crate::mac::Mac;

/// The server's decision about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// DISCOVER: offer this address (held for the client for a short while).
    Offer(Grant),
    /// REQUEST: bind this address, a new lease.
    Ack(Grant),
    /// REQUEST (renewing or rebinding, or again for a bound lease): extend the lease.
    Renew(Grant),
    /// INFORM: the client has its address; answer with options (and boot information).
    Inform(Grant),
    /// REQUEST for an address the client may not have.
    Nak(Refused),
    /// RELEASE of the client's lease: it is gone.
    Released(Ipv4Addr),
    /// DECLINE of the client's lease: the address is in use by someone else, set aside.
    Declined(Ipv4Addr),
    /// Not addressed to this server, or nothing to do: no answer, nothing counted.
    Pass(Passed),
    /// No answer, counted as dropped and reported with the reason.
    Ignore(Ignored),
}

/// An address given (or confirmed) and the boot information that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The address.
    pub ip: Ipv4Addr,
    /// Boot information, for a PXE, HTTP-boot or iPXE client.
    pub boot: Option<BootTarget>,
}

/// Why an address is refused to a client (the NAK's reason; for logs, never on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not in `dhcp.subnet`.
    #[error("{0} is outside the subnet")]
    OutsideSubnet(Ipv4Addr),
    /// The server's own address.
    #[error("{0} is the server's address")]
    ServerAddress(Ipv4Addr),
    /// The client has a reservation, and this is not it.
    #[error("the client's reservation is {reserved}, not {ip}")]
    NotItsReservation {
        /// The address asked for.
        ip: Ipv4Addr,
        /// The client's reserved address.
        reserved: Ipv4Addr,
    },
    /// Not in `dhcp.range` (and not a reservation).
    #[error("{0} is outside the range")]
    OutsideRange(Ipv4Addr),
    /// Reserved for another lab node.
    #[error("{0} is reserved for another node")]
    ReservedForOther(Ipv4Addr),
    /// Leased (or offered) to another client.
    #[error("{ip} is held by {holder}")]
    HeldByOther {
        /// The address asked for.
        ip: Ipv4Addr,
        /// Its holder.
        holder: Mac,
    },
    /// Declined recently: someone else is using it.
    #[error("{0} was declined recently")]
    Declined(Ipv4Addr),
}

/// Why a request needs no answer and is not counted as dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passed {
    /// REQUEST or DECLINE naming another server: the client chose that one.
    OtherServer(Ipv4Addr),
    /// RELEASE of an address the client does not hold here.
    NotHeld,
}

/// Why a request is dropped (the words of the drop report: the same as before the
/// pipeline, which tests and operators' filters know).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    /// A relay agent whose giaddr is not in the subnet (a spoofed giaddr would turn the
    /// server into a reflector).
    #[error("relay {relay} is outside {network}/{prefix}")]
    RelayOutside {
        /// The giaddr.
        relay: Ipv4Addr,
        /// The subnet's network address.
        network: Ipv4Addr,
        /// The subnet's prefix length.
        prefix: u8,
    },
    /// An unknown Raspberry Pi on its EEPROM bootloader, held: it has no iPXE to wait
    /// in, so it gets no answer (and asks again) until it is adopted.
    #[error("{0}: unknown Raspberry Pi held until adopted (no answer; its bootloader retries)")]
    HeldPi(Mac),
    /// Unknown MAC and `unknown: ignore`.
    #[error("{0}: unknown MAC, policy is ignore")]
    Policy(Mac),
    /// Every address in the range is taken.
    #[error("{0}: no free address in the range")]
    PoolExhausted(Mac),
    /// REQUEST with neither option 50 nor ciaddr.
    #[error("{0}: REQUEST without an address")]
    RequestWithoutAddress(Mac),
    /// DECLINE without option 50.
    #[error("{0}: DECLINE without an address")]
    DeclineWithoutAddress(Mac),
    /// DECLINE from a client that does not hold the address (RFC 2131 §4.3.3).
    #[error("{mac}: DECLINE of {ip}, which is not its lease")]
    DeclineNotHeld {
        /// The client.
        mac: Mac,
        /// The address it declined.
        ip: Ipv4Addr,
    },
    /// INFORM from an address outside the subnet.
    #[error("{mac}: INFORM from {ciaddr} outside the subnet")]
    InformOutside {
        /// The client.
        mac: Mac,
        /// Its claimed address.
        ciaddr: Ipv4Addr,
    },
}
