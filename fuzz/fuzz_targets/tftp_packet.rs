//! TFTP packet and option decoding, then negotiation and the OACK built from it: no
//! panic, and the OACK names each option at most once with values in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxelab::tftp::packet::{self, Packet};
use pxelab::tftp::transfer::{self, MAX_BLKSIZE, MAX_TIMEOUT_SECS, MAX_WINDOW};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = packet::parse(data) else { return };
    if let Packet::Rrq { opts, .. } = p {
        let mut names: Vec<&str> = opts.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "an option twice after parsing");
        let params = transfer::negotiate(&opts, data.len() as u64);
        assert!((8..=MAX_BLKSIZE).contains(&params.blksize) || params.blksize == 512);
        assert!((1..=MAX_WINDOW).contains(&params.windowsize));
        assert!(params.timeout.as_secs() <= MAX_TIMEOUT_SECS);
        let mut acked: Vec<&str> = params.oack.iter().map(|(k, _)| *k).collect();
        acked.sort_unstable();
        let m = acked.len();
        acked.dedup();
        assert_eq!(m, acked.len(), "an option twice in the OACK");
        // The OACK we would send (only with something in it) parses back as an OACK.
        if !params.oack.is_empty() {
            assert_eq!(
                packet::parse(&packet::oack(&params.oack)).ok(),
                Some(Packet::Oack)
            );
        }
    }
});
