//! The `:` command palette: the line being typed, its keys (complete, pick, run), the
//! commands it runs, and its suggestion box above the input line. The commands
//! themselves (names, aliases, parsing, completion) are in [`commands`].
//!
//! ```text
//! ┌ commands · Tab completes · Enter runs ─────────────────┐
//! │ :theme NAME              switch colours: dark, light, … │
//! └─────────────────────────────────────────────────────────┘
//!  :th█                                                        <- the input line
//! ```

pub mod commands;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

pub use commands::{complete, parse, Command, COMMANDS, SORT_NAMES};

use super::{Confirm, Input, Overlay};
use crate::mac::Mac;
use crate::tui::app::{App, Effect, Level};
use crate::tui::keys::Action;
use crate::tui::paint::style;
use crate::tui::screen::main::Focus;

/// Characters extend the line; Backspace on an empty line closes the palette. Whether
/// the key was taken as text.
pub(crate) fn type_key(app: &mut App, plain_char: Option<char>, backspace: bool) -> bool {
    let Some(Overlay::Palette(i)) = &mut app.overlay else {
        return false;
    };
    if let Some(c) = plain_char {
        i.text.push(c);
        i.pick = 0;
        return true;
    }
    if backspace {
        if i.text.pop().is_none() {
            app.overlay = None;
        }
        return true;
    }
    false
}

/// Moves through the suggestions, completes, runs the line or closes.
pub(crate) fn act(app: &mut App, a: Action) -> Vec<Effect> {
    let Some(Overlay::Palette(i)) = &mut app.overlay else {
        return Vec::new();
    };
    match a {
        Action::Back => app.overlay = None,
        Action::Down => i.pick = i.pick.saturating_add(1),
        Action::Up => i.pick = i.pick.saturating_sub(1),
        Action::Complete => {
            let c = complete(&i.text);
            if !c.is_empty() {
                let (line, _) = &c[i.pick.min(c.len() - 1)];
                i.text = line.clone();
                let takes_arg = COMMANDS
                    .iter()
                    .any(|s| s.name == line.as_str() && !s.arg.is_empty());
                if takes_arg {
                    i.text.push(' ');
                }
                i.pick = 0;
            }
        }
        Action::Confirm => {
            let mut line = i.text.clone();
            let c = complete(&line);
            // Enter on a partial word runs the highlighted suggestion.
            if parse(&line).is_err() && !c.is_empty() && !line.contains(' ') {
                line = c[i.pick.min(c.len() - 1)].0.clone();
            }
            app.overlay = None;
            return match parse(&line) {
                Ok(cmd) => run(app, cmd),
                Err(e) => {
                    app.flash(Level::Error, format!(":{line}: {e}"));
                    Vec::new()
                }
            };
        }
        _ => {}
    }
    Vec::new()
}

/// Carries out a palette command.
fn run(app: &mut App, cmd: Command) -> Vec<Effect> {
    match cmd {
        Command::Nodes => app.show_main(Focus::Nodes),
        Command::Events => app.show_main(Focus::Events),
        Command::Help => app.overlay = Some(Overlay::Help { scroll: 0 }),
        Command::Roll => app.overlay = Some(Overlay::Confirm(Confirm::roll())),
        Command::RollStop => return vec![Effect::RollStop],
        Command::Quit => {
            app.quit = true;
            return vec![Effect::Quit];
        }
        Command::Theme(t) => return vec![Effect::SetTheme(t)],
        Command::Sort(s) => app.main.sort_by_name(&s),
        Command::Adopt(None) => return app.adopt_selected(),
        Command::Adopt(Some(m)) => match m.parse::<Mac>() {
            Ok(mac) => return vec![Effect::OpenAdopt(mac)],
            Err(_) => app.flash(Level::Error, format!("`{m}` is not a MAC address")),
        },
    }
    Vec::new()
}

/// The input line (drawn in the flash line's place).
pub fn input_line<'a>(app: &App, input: &Input) -> Line<'a> {
    let ui = &app.theme.ui;
    Line::from(vec![
        Span::styled(":", style(ui.footer_key)),
        Span::styled(format!("{}█", input.text), style(ui.text)),
    ])
}

/// The completion list, just above the input line.
pub fn draw(app: &App, input: &Input, f: &mut Frame, body: Rect) {
    let ui = &app.theme.ui;
    let items = complete(&input.text);
    if items.is_empty() || body.height < 4 {
        return;
    }
    let n = items.len().min(8) as u16;
    let w = body.width.min(72);
    let r = Rect::new(body.x, body.y + body.height.saturating_sub(n + 2), w, n + 2);
    let pick = input.pick.min(items.len() - 1);
    let lines: Vec<Line> = items
        .iter()
        .take(n as usize)
        .enumerate()
        .map(|(i, (cmd, help))| {
            let s = if i == pick {
                style(ui.choice)
            } else {
                style(ui.dialog)
            };
            Line::from(vec![
                Span::styled(format!(" :{cmd:<22}"), s),
                Span::styled(format!(" {help}"), style(ui.dialog).patch(style(ui.muted))),
            ])
        })
        .collect();
    let block = Block::bordered()
        .title(" commands · Tab completes · Enter runs ")
        .border_style(style(ui.dialog_border))
        .style(style(ui.dialog));
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(block), r);
}
