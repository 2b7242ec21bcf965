//! The console: ratatui screens. The only module that imports ratatui or crossterm.
//!
//! Shape (after trippy, gitui and k9s):
//! - [`app::App`] is the whole UI state with no terminal; keys map to [`keys::Action`]s
//!   through one table ([`keys::KEYS`]) that also generates the footer and the help.
//! - Each screen ([`screen::main`], [`screen::detail`]) and overlay ([`overlay::help`],
//!   [`overlay::palette`], [`overlay::filter`], [`overlay::dialog`], [`overlay::confirm`])
//!   is one module holding its state, handling its actions and drawing itself; `App`
//!   routes a key to the open overlay, else to the shown screen.
//! - [`render::render`] draws `(&App, &Snapshot)`: a pure function, snapshot-tested.
//! - [`run`] is one task that `select!`s over terminal input, the engine's event bus, a
//!   frame interval and a 1 s tick; it redraws only when something changed (engine
//!   version moved, a key, an event, the tick) and at most every [`FRAME_MS`].
//! - [`theme`] colours are YAML data, converted to ratatui styles only in [`paint`].

pub mod app;
pub mod attached;
pub mod capture;
pub mod effects;
pub mod events;
pub mod fmt;
pub mod keys;
mod labinfo;
pub mod overlay;
pub mod paint;
pub mod render;
pub mod screen;
pub mod served;
pub mod theme;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{Event as TermEvent, EventStream};
use futures::StreamExt;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use app::{App, Effect, LabInfo, Screen};
use theme::Theme;

/// Shortest time between two frames (the engine may change thousands of times a second).
pub const FRAME_MS: u64 = 50;
/// Events drained from the bus per wake-up before yielding to input and drawing.
const DRAIN_BATCH: usize = 4_096;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Picks the theme: `--theme` (relative to the working folder), else lab.yaml's `theme:`
/// (relative to lab.yaml), else the default.
pub fn choose_theme(cli: Option<&str>, engine: &Engine) -> Result<Theme, theme::ThemeError> {
    let lab = engine.lab();
    match (cli, &lab.file.theme) {
        (Some(t), _) => Theme::load(t, Path::new(".")),
        (None, Some(t)) => Theme::load(t, &lab.dir()),
        (None, None) => Ok(Theme::default_theme()),
    }
}

/// Restores the terminal when dropped (normal exit, error or cancellation).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Refuses the console before anything starts when stdin or stdout is not a terminal
/// (a pipe, a service, `ssh host cmd`): the OS's own word for it, `No such device or
/// address`, does not tell the operator what to do.
pub fn require_terminal() -> anyhow::Result<()> {
    require_terminal_else("use --no-tui (one line per event, or --json)")
}

/// [`require_terminal`], naming `instead` as what to do without one.
pub fn require_terminal_else(instead: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        Ok(())
    } else {
        anyhow::bail!("no terminal: {instead}")
    }
}

/// What the console knows of `lab`. Attached, the lab's folder is on the server: theme
/// files named at the console are looked up in the working folder instead.
fn lab_info(lab: &crate::config::Lab, app: &App) -> LabInfo {
    let mut info = LabInfo::from_lab(lab);
    if app.attached.is_some() {
        info.dir = std::path::PathBuf::from(".");
    }
    info
}

/// Runs the console until the operator quits or `cancel` fires.
pub async fn run(
    engine: Engine,
    cancel: CancellationToken,
    theme: Option<String>,
) -> anyhow::Result<()> {
    run_with(engine, cancel, theme, None).await
}

/// [`run`], attached to a server when `attached` is given (`engine` then mirrors it and
/// its commands go there).
pub async fn run_with(
    engine: Engine,
    cancel: CancellationToken,
    theme: Option<String>,
    attached: Option<attached::Attached>,
) -> anyhow::Result<()> {
    // A bad theme is refused before the terminal is taken, so the message is readable.
    let theme = match (&attached, theme.as_deref()) {
        // Attached, the lab's `theme:` is a file on the server, not here: only a shipped
        // theme's name is taken from it, never a path.
        (Some(_), None) => engine
            .lab()
            .file
            .theme
            .as_deref()
            .and_then(Theme::builtin)
            .and_then(Result::ok)
            .unwrap_or_else(Theme::default_theme),
        _ => choose_theme(theme.as_deref(), &engine)?,
    };
    let mut app = App::new(theme, LabInfo::default());
    app.tz_offset_s = chrono::Local::now().offset().local_minus_utc();
    if let Some(a) = attached {
        app.now_ms = now_ms();
        app.flash(app::Level::Info, a.greeting());
        app.served = served::ServedCache::without_secrets();
        app.attached = Some(a);
    }
    app.lab = lab_info(&engine.lab(), &app);
    // What happened before the console started (most of it when attached later), then
    // everything after.
    let (mut rx, recent) = engine.subscribe_with_recent();
    for ev in &recent {
        app.push_event(ev);
    }
    // Raw mode, alternate screen, and a panic hook that restores the terminal first.
    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;
    let mut input = EventStream::new();
    let mut frame = tokio::time::interval(Duration::from_millis(FRAME_MS));
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut snap = engine.snapshot();
    let mut seen = snap.version;
    let mut lab = engine.lab();
    let mut dirty = true;
    let (mut bus_open, mut input_open) = (true, true);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            k = input.next(), if input_open => match k {
                Some(Ok(TermEvent::Key(k))) => {
                    for fx in app.on_key(&k) {
                        if fx == Effect::Quit {
                            cancel.cancel();
                            continue;
                        }
                        if let Some(job) = effects::perform(&engine, &mut app, fx) {
                            let tx = done_tx.clone();
                            tokio::task::spawn_blocking(move || {
                                let _ = tx.send(job());
                            });
                        }
                    }
                    dirty = true;
                }
                Some(Ok(TermEvent::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!("terminal input failed: {e}");
                    input_open = false;
                }
                None => input_open = false,
            },
            r = rx.recv(), if bus_open => {
                match r {
                    Ok(ev) => {
                        app.push_event(&ev);
                        for _ in 0..DRAIN_BATCH {
                            match rx.try_recv() {
                                Ok(ev) => app.push_event(&ev),
                                Err(TryRecvError::Lagged(n)) => app.events.lagged += n,
                                Err(_) => break,
                            }
                        }
                    }
                    Err(RecvError::Lagged(n)) => app.events.lagged += n,
                    Err(RecvError::Closed) => bus_open = false,
                }
                dirty = true;
            },
            Some((level, msg)) = done_rx.recv() => {
                app.flash(level, msg);
                dirty = true;
            },
            _ = tick.tick() => dirty = true,
            _ = frame.tick() => {
                let v = engine.version();
                if v != seen {
                    seen = v;
                    snap = engine.snapshot();
                    let l = engine.lab();
                    if !std::sync::Arc::ptr_eq(&l, &lab) {
                        app.lab = lab_info(&l, &app);
                        lab = l;
                    }
                    if let (Screen::Detail, Some(mac)) = (app.screen, app.detail.as_ref().map(|d| d.mac)) {
                        screen::detail::load(&engine, &mut app, mac);
                    }
                    dirty = true;
                }
                if dirty {
                    app.now_ms = now_ms();
                    let h = terminal.size().map(|s| s.height).unwrap_or(24);
                    app.page = render::table_rows_for(h);
                    app.sync(&snap);
                    terminal.draw(|f| render::render(&app, &snap, f))?;
                    dirty = false;
                }
            },
        }
        if app.quit {
            cancel.cancel();
            break;
        }
    }
    Ok(())
}
