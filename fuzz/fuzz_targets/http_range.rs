//! The Range header: no panic, and a partial answer always lies inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxelab::http::range::{answer, RangeAnswer};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&data[..8]);
    // Small lengths matter most (0, 1, edges); the raw value covers the rest.
    let raw = u64::from_le_bytes(n);
    let len = if raw & 1 == 0 {
        raw >> 1
    } else {
        (raw >> 1) % 4096
    };
    let Ok(h) = std::str::from_utf8(&data[8..]) else {
        return;
    };
    match answer(Some(h), len) {
        RangeAnswer::Partial { start, end } => {
            assert!(start <= end && end < len, "{h:?} len {len}: {start}-{end}");
        }
        RangeAnswer::Full | RangeAnswer::Unsatisfiable => {}
    }
});
