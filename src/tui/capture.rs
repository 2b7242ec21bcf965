//! Off-screen drawing for tests and screenshots: a frame into a [`Buffer`], the buffer as
//! plain text, and as Pango markup lines (one per row) that ImageMagick turns into PNGs.

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

use super::app::App;
use super::paint::hex;
use super::render::render;
use crate::engine::Snapshot;

/// Draws one frame of `w`×`h` cells.
pub fn draw(app: &App, snap: &Snapshot, w: u16, h: u16) -> Buffer {
    let mut app = app.clone();
    app.page = super::render::table_rows_for(h);
    app.sync(snap);
    match Terminal::new(TestBackend::new(w, h)) {
        Ok(mut t) => {
            let _ = t.draw(|f| render(&app, snap, f));
            t.backend().buffer().clone()
        }
        Err(_) => Buffer::empty(ratatui::layout::Rect::new(0, 0, w, h)),
    }
}

/// The buffer's text, one line per row, trailing spaces removed.
pub fn text(buf: &Buffer) -> String {
    let a = buf.area;
    let mut out = String::new();
    for y in a.y..a.y + a.height {
        let mut line = String::new();
        for x in a.x..a.x + a.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The buffer as Pango markup, one string per row; `fg`/`bg` are the terminal defaults.
pub fn pango_lines(buf: &Buffer, fg: &str, bg: &str) -> Vec<String> {
    let a = buf.area;
    let mut lines = Vec::new();
    for y in a.y..a.y + a.height {
        let mut out = String::new();
        let mut run = String::new();
        let mut cur: Option<(String, String, bool, bool, bool)> = None;
        let flush = |out: &mut String,
                     run: &mut String,
                     cur: &Option<(String, String, bool, bool, bool)>| {
            if run.is_empty() {
                return;
            }
            if let Some((f, b, bold, it, ul)) = cur {
                out.push_str(&format!(
                    "<span foreground=\"{f}\" background=\"{b}\"{}{}{}>{}</span>",
                    if *bold { " weight=\"bold\"" } else { "" },
                    if *it { " style=\"italic\"" } else { "" },
                    if *ul { " underline=\"single\"" } else { "" },
                    esc(run)
                ));
            }
            run.clear();
        };
        for x in a.x..a.x + a.width {
            let c = &buf[(x, y)];
            if c.symbol().is_empty() {
                continue;
            }
            let m = c.modifier;
            let mut f = hex(c.fg).unwrap_or_else(|| fg.to_string());
            let mut b = hex(c.bg).unwrap_or_else(|| bg.to_string());
            if m.contains(ratatui::style::Modifier::REVERSED) {
                std::mem::swap(&mut f, &mut b);
            }
            let key = (
                f,
                b,
                m.contains(ratatui::style::Modifier::BOLD),
                m.contains(ratatui::style::Modifier::ITALIC),
                m.contains(ratatui::style::Modifier::UNDERLINED),
            );
            if cur.as_ref() != Some(&key) {
                flush(&mut out, &mut run, &cur);
                cur = Some(key);
            }
            run.push_str(c.symbol());
        }
        flush(&mut out, &mut run, &cur);
        lines.push(out);
    }
    lines
}
