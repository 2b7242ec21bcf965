//! Console frame time for `bench/run.sh tui`: a lab of N nodes, a thread emitting a
//! steady event storm into the engine, and the console's own frame work timed, one
//! frame every [`pxelab::tui::FRAME_MS`] as the console draws: the events the frame
//! drains from the bus, the engine snapshot, the detail record reloaded (detail
//! screen), `App::sync`, and `tui::render::render` of 200×50 cells, either into the
//! terminal on stdout (`pty`: the bench runs this under `script`, so every frame's
//! bytes go through a real pseudo-terminal to a reader) or into a ratatui `TestBackend`.
//!
//! ```text
//! frames NODES FRAMES EVENTS_PER_S [main|detail] [pty|test] [OUT.json]
//! ```
//! One JSON line (µs per frame: p50, p99, max) to OUT.json, or stdout without it.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pxelab::engine::{EventKind, FetchKind};
use pxelab::tui::app::Screen;
use pxelab::tui::app::{App, LabInfo};
use pxelab::tui::theme::Theme;
use pxelab::Engine;
use ratatui::backend::{Backend, CrosstermBackend, TestBackend};
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

const W: u16 = 200;
const H: u16 = 50;

fn lab_yaml(n: usize) -> String {
    let mut s = String::from(
        "name: frames\nserver_address: 127.0.0.1\ndhcp:\n  mode: off\ntftp:\n  enabled: false\n\
boot:\n  kernel: vmlinuz\n  initrds: [initrd]\nssh:\n  watch: false\nnodes:\n",
    );
    for i in 0..n {
        let role = if i == 0 { "k3s-server" } else { "k3s-agent" };
        s.push_str(&format!(
            "  - mac: 52:54:00:{:02x}:{:02x}:{:02x}\n    hostname: node-{i}\n    role: {role}\n    ip: 10.1.{}.{}\n",
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
            i / 250,
            i % 250 + 1
        ));
    }
    s
}

fn storm_event(i: u64, n: usize) -> (usize, EventKind) {
    let node = (i as usize * 7919) % n.max(1);
    let client = IpAddr::V4(Ipv4Addr::new(
        10,
        1,
        (node / 250) as u8,
        (node % 250 + 1) as u8,
    ));
    let kind = match i % 4 {
        0 => EventKind::DhcpDiscover {
            msg: "discover".into(),
            arch: Some(0),
            vendor_class: Some("PXEClient:Arch:00000:UNDI:002001".into()),
            uuid: None,
            relay: None,
            ipxe: false,
            pxe_port: false,
        },
        1 => EventKind::DhcpReply {
            msg: "offer".into(),
            yiaddr: Some(Ipv4Addr::new(
                10,
                1,
                (node / 250) as u8,
                (node % 250 + 1) as u8,
            )),
            boot_file: Some("undionly.kpxe".into()),
            proxy: false,
        },
        2 => EventKind::HttpFetch {
            path: "/assets/vmlinuz".into(),
            client,
            what: FetchKind::Kernel,
            status: 200,
            bytes: 8 << 20,
            ms: 40,
        },
        _ => EventKind::HttpFetch {
            path: "/assets/initrd".into(),
            client,
            what: FetchKind::Initrd,
            status: 200,
            bytes: 3 << 20,
            ms: 20,
        },
    };
    (node, kind)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize, d: u64| -> u64 { args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d) };
    let n = num(1, 100) as usize;
    let frames = num(2, 300) as usize;
    let rate = num(3, 5000);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("lab.yaml");
    std::fs::write(&path, lab_yaml(n))?;
    let lab = pxelab::app::load_lab(&path)?;
    let engine = Engine::new(lab);
    let macs: Vec<pxelab::Mac> = engine.lab().file.nodes.iter().map(|x| x.mac).collect();
    // Every node has a history before the storm starts.
    for (i, mac) in macs.iter().enumerate() {
        for k in 0..4u64 {
            engine.emit(Some(*mac), storm_event(i as u64 * 4 + k, n).1);
        }
    }
    let mut rx = engine.subscribe();

    // The storm: `rate` events per second, in 1 ms batches, from another thread.
    let stop = Arc::new(AtomicBool::new(false));
    let emitted = Arc::new(AtomicU64::new(0));
    let storm = {
        let (engine, stop, emitted, macs) =
            (engine.clone(), stop.clone(), emitted.clone(), macs.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                while i < due {
                    let (node, kind) = storm_event(i, macs.len());
                    engine.emit(macs.get(node).copied(), kind);
                    i += 1;
                }
                emitted.store(i, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let screen = args.get(4).map_or("main", String::as_str);
    let output = args.get(5).map_or("test", String::as_str);
    let mut app = App::new(Theme::default_theme(), LabInfo::from_lab(&engine.lab()));
    app.page = pxelab::tui::render::table_rows_for(H);
    let opts = || TerminalOptions {
        viewport: Viewport::Fixed(Rect::new(0, 0, W, H)),
    };
    let times = if output == "pty" {
        use std::io::IsTerminal;
        anyhow::ensure!(
            std::io::stdout().is_terminal(),
            "`pty` output needs a terminal on stdout (run under script or tmux)"
        );
        let mut term = Terminal::with_options(CrosstermBackend::new(std::io::stdout()), opts())?;
        frame_loop(&engine, &mut rx, &mut app, &mut term, n, frames, screen)?
    } else {
        let mut term = Terminal::with_options(TestBackend::new(W, H), opts())?;
        frame_loop(&engine, &mut rx, &mut app, &mut term, n, frames, screen)?
    };
    let t_all_span = times.1;
    let mut times = times.0;
    let span = t_all_span;
    stop.store(true, Ordering::Relaxed);
    let _ = storm.join();
    times.sort_unstable();
    let pct = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let line = format!(
        "{}",
        serde_json::json!({
            "nodes": n,
            "frames": frames,
            "p50_us": pct(0.5),
            "p99_us": pct(0.99),
            "max_us": times.last().copied().unwrap_or(0),
            "events_per_s": emitted.load(Ordering::Relaxed) as f64 / span,
            "size": format!("{W}x{H}"),
            "screen": screen,
            "output": output,
            "frame_ms": pxelab::tui::FRAME_MS,
        })
    );
    match args.get(6) {
        Some(out) => std::fs::write(out, line + "\n")?,
        None => println!("{line}"),
    }
    Ok(())
}

/// Draws `frames` frames at the console's pace; returns each frame's µs and the span.
fn frame_loop<B: Backend>(
    engine: &Engine,
    rx: &mut tokio::sync::broadcast::Receiver<pxelab::engine::Event>,
    app: &mut App,
    term: &mut Terminal<B>,
    n: usize,
    frames: usize,
    screen: &str,
) -> anyhow::Result<(Vec<u64>, f64)>
where
    B::Error: Send + Sync + 'static,
{
    let mut times = Vec::with_capacity(frames);
    let t_all = Instant::now();
    let interval = Duration::from_millis(pxelab::tui::FRAME_MS);
    for f in 0..frames {
        let t = Instant::now();
        while let Ok(ev) = rx.try_recv() {
            app.push_event(&ev);
        }
        let snap = engine.snapshot();
        if let (Screen::Detail, Some(mac)) = (app.screen, app.detail.as_ref().map(|d| d.mac)) {
            pxelab::tui::screen::detail::load(engine, app, mac);
        }
        app.sync(&snap);
        term.draw(|fr| pxelab::tui::render::render(app, &snap, fr))?;
        times.push(t.elapsed().as_micros() as u64);
        if f == 0 {
            // Move the selection down the table once, as an operator would, and open
            // that node's detail when measuring the detail screen.
            app.main.selected = n / 2;
            if screen == "detail" {
                if let Some(mac) = engine.lab().file.nodes.get(n / 2).map(|x| x.mac) {
                    app.screen = Screen::Detail;
                    pxelab::tui::screen::detail::load(engine, app, mac);
                }
            }
        }
        // The console draws every FRAME_MS (when something changed, which under a
        // storm is every frame); pace like it.
        std::thread::sleep(interval.saturating_sub(t.elapsed()));
    }
    Ok((times, t_all.elapsed().as_secs_f64()))
}
