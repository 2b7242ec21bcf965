//! The service loop on a temporary lab.yaml: replies for each kind of command, the one
//! poll picking up (and once rejecting) an operator's edit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::config::Lab;
use crate::engine::{EngineError, EventKind};
use crate::mac::Mac;

const TEXT: &str = "# kept\nname: t\nboot: {kernel: k}\nssh: {watch: false}\nunknown: hold\nnodes:\n  - {mac: 52:54:00:00:00:01, hostname: a, role: k3s-server}\n";

fn engine(dir: &std::path::Path) -> Engine {
    let path = dir.join("lab.yaml");
    std::fs::write(&path, TEXT).unwrap();
    Engine::new(Lab::parse(&path, TEXT).unwrap())
}

fn mac(last: u8) -> Mac {
    Mac([0x52, 0x54, 0, 0, 0, last])
}

#[tokio::test]
async fn each_command_gets_its_reply() {
    let d = tempfile::tempdir().unwrap();
    let engine = engine(d.path());
    let cancel = CancellationToken::new();
    let task = start(&engine, cancel.clone(), Arc::new(NoControl));
    let c = engine.commands();
    let power = c
        .send(Command::Power {
            mac: mac(1),
            action: PowerAction::Cycle,
        })
        .await;
    assert!(
        matches!(power, Err(CommandError::NotSupported { .. })),
        "{power:?}"
    );
    let reboot = c.send(Command::Reboot { mac: mac(1) }).await;
    assert!(
        matches!(
            reboot,
            Err(CommandError::Node {
                command: "reboot",
                ..
            })
        ),
        "{reboot:?}"
    );
    let forget = c.send(Command::Forget { mac: mac(9) }).await;
    assert!(
        matches!(forget, Err(CommandError::Lab(EngineError::NotInLab { .. }))),
        "{forget:?}"
    );
    let group = Mac([0xff; 6]);
    let adopt = |m: Mac| Command::Adopt {
        mac: m,
        role: "k3s-agent".into(),
        hostname: Some("b".into()),
        ip: None,
    };
    assert!(matches!(
        c.send(adopt(group)).await,
        Err(CommandError::Lab(EngineError::GroupMac { .. }))
    ));
    let node = c.send(adopt(mac(2))).await.unwrap().node().unwrap();
    assert_eq!((node.mac, node.hostname.as_str()), (mac(2), "b"));
    let text = std::fs::read_to_string(d.path().join("lab.yaml")).unwrap();
    assert!(
        text.starts_with("# kept\n") && text.contains("hostname: b"),
        "{text}"
    );
    assert_eq!(
        c.send(Command::Forget { mac: mac(2) }).await.unwrap(),
        Reply::Forgotten(mac(2))
    );
    assert_eq!(
        c.send(Command::Reload).await.unwrap(),
        Reply::Reloaded { changed: false }
    );
    cancel.cancel();
    task.await.unwrap();
    // Once the service is gone, a command says so instead of waiting forever.
    assert!(matches!(
        c.send(Command::Reload).await,
        Err(CommandError::NoService { .. })
    ));
}

#[tokio::test]
async fn the_poll_loads_an_edit_and_reports_a_broken_one_once() {
    let d = tempfile::tempdir().unwrap();
    let engine = engine(d.path());
    let mut rx = engine.subscribe();
    let cancel = CancellationToken::new();
    start(&engine, cancel.clone(), Arc::new(NoControl));
    let path = d.path().join("lab.yaml");
    let added = TEXT.to_string() + "  - {mac: 52:54:00:00:00:03, hostname: c, role: k3s-agent}\n";
    std::fs::write(&path, &added).unwrap();
    let start = Instant::now();
    while engine.lab().node_by_hostname("c").is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "edit not loaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::fs::write(&path, added.replace("role: k3s-agent", "role: [")).unwrap();
    // Three polls' worth: the broken file is reported once, the lab in force stays.
    tokio::time::sleep(POLL * 3 + Duration::from_millis(200)).await;
    cancel.cancel();
    let mut rejected = 0;
    while let Ok(ev) = rx.try_recv() {
        rejected += usize::from(matches!(ev.kind, EventKind::ConfigRejected { .. }));
    }
    assert_eq!(rejected, 1);
    assert!(engine.lab().node_by_hostname("c").is_some());
}
