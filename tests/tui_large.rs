//! A 1000-node lab under a flood of events: the console stays bounded (event ring,
//! visible rows only) and correct (selection visible at the end of the table, sort
//! stable). Prints frame figures for the report; asserts no timings.

mod tui_support;

use std::time::Instant;

use crossterm::event::KeyCode;
use pxelab::engine::NodeState;
use pxelab::tui::capture;
use pxelab::tui::events::EVENT_RING_CAP;
use tui_support::*;

fn big_lab(n: usize) -> TestLab {
    let mut text = String::from(LAB_HEAD);
    text.push_str("nodes:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  - mac: 02:00:00:00:{:02x}:{:02x}\n    hostname: n{i:04}\n    role: {}\n",
            i / 256,
            i % 256,
            if i == 0 { "k3s-server" } else { "k3s-agent" }
        ));
    }
    TestLab::new(&text)
}

#[test]
fn thousand_nodes_and_a_flood_of_events() {
    let n = 1000;
    let lab = big_lab(n);
    lab.servers_up();
    let macs: Vec<String> = (0..n)
        .map(|i| format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256))
        .collect();
    let t0 = Instant::now();
    for (i, m) in macs.iter().enumerate() {
        let until = NodeState::ALL[4 + i % 12];
        lab.boot(m, &format!("10.1.{}.{}", i / 250, i % 250 + 1), until);
    }
    let emit_s = t0.elapsed().as_secs_f64();
    let (mut app, _) = lab.app("dark");
    assert_eq!(
        app.events.len(),
        EVENT_RING_CAP,
        "the event ring is bounded"
    );
    let mut rx = lab.engine.subscribe();

    // Frames while the engine keeps changing: 1000 events between frames.
    let frames = 30;
    let mut frame_total = 0.0;
    let mut worst: f64 = 0.0;
    for f in 0..frames {
        for k in 0..1000 {
            let m = &macs[(f * 1000 + k) % n];
            lab.emit(
                m,
                fetch(
                    loopback(),
                    pxelab::engine::FetchKind::Kernel,
                    "/assets/vmlinuz-lts",
                    1,
                ),
            );
        }
        while let Ok(ev) = rx.try_recv() {
            app.push_event(&ev);
        }
        let t = Instant::now();
        let snap = lab.engine.snapshot();
        app.now_ms = NOW;
        let buf = capture::draw(&app, &snap, 160, 50);
        let dt = t.elapsed().as_secs_f64();
        frame_total += dt;
        worst = worst.max(dt);
        assert!(capture::text(&buf).contains("Nodes 1000/1000"));
    }
    assert_eq!(app.events.len(), EVENT_RING_CAP);

    // The end of the table is reachable and drawn.
    let snap = lab.engine.snapshot();
    app.sync(&snap);
    app.on_key(&code(KeyCode::End));
    app.on_key(&key('G'));
    let last = snap.nodes[app.main.rows[app.main.selected].idx]
        .hostname
        .clone()
        .unwrap();
    assert_eq!(last, "n0999");
    let text = capture::text(&capture::draw(&app, &snap, 160, 50));
    assert!(text.contains("n0999"), "{text}");
    assert!(!text.contains("n0000"), "only visible rows are drawn");

    // Sorting by state keeps every node.
    app.on_key(&key('s'));
    app.sync(&snap);
    assert_eq!(app.main.rows.len(), n);
    eprintln!(
        "FIGURES: {n} nodes, {} events emitted in {emit_s:.2}s; frame (snapshot+sort+draw 160x50) mean {:.2} ms, worst {:.2} ms over {frames} frames",
        lab.engine.snapshot().events,
        frame_total / frames as f64 * 1000.0,
        worst * 1000.0
    );
}
