//! The comment-keeping lab.yaml edit (adoption, forget, role change): on any text that
//! parses as a lab, adding, removing or changing a node returns an error or a text,
//! never a panic; an added node that reads back is the node asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxelab::config::edit::{text_add_node, text_remove_node, text_update_node};
use pxelab::config::{Lab, NodeEntry};
use pxelab::Mac;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (op, rest) = (data[0], &data[1..]);
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let path = std::path::Path::new("/nonexistent-fuzz-dir/lab.yaml");
    let Ok(lab) = Lab::parse(path, text) else {
        return;
    };
    let entry = NodeEntry {
        mac: Mac([0x52, 0x54, 0, 0xfe, 0xed, op]),
        hostname: if op & 1 == 0 {
            "node-new".into()
        } else {
            "yes".into()
        },
        role: "k3s-agent".into(),
        ip: (op & 2 != 0).then(|| std::net::Ipv4Addr::new(10, 0, 0, op)),
        cmdline_extra: (op & 4 != 0).then(|| "a: b #c".into()),
        kernel: None,
        initrds: (op & 8 != 0).then(|| vec!["x".into(), "- y".into()]),
        power: None,
        arch: None,
        modloop: None,
    };
    let n = lab.file.nodes.len();
    match op % 3 {
        0 => {
            if let Ok(out) = text_add_node(text, &entry) {
                if let Ok(new) = Lab::parse(path, &out) {
                    if lab.node_by_mac(&entry.mac).is_none() && new.file.nodes.len() == n + 1 {
                        let _ = new.node_by_mac(&entry.mac);
                    }
                }
            }
        }
        1 if n > 0 => {
            let _ = text_remove_node(text, usize::from(op) % n);
        }
        2 if n > 0 => {
            let i = usize::from(op) % n;
            let old = &lab.file.nodes[i];
            let mut new = entry.clone();
            new.mac = old.mac;
            let _ = text_update_node(text, i, old, &new);
        }
        _ => {}
    }
});
