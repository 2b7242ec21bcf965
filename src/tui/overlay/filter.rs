//! The `/` filter line: filters the focused pane (node table or events) as it is typed.
//! Enter keeps the filter, Esc clears it. The filters themselves are the main screen's
//! state ([`crate::tui::screen::main::MainScreen`]); this is the line that edits them.
//!
//! ```text
//!  /agent█   (!text inverts · Enter keeps · Esc clears)        <- the input line
//! ```

use ratatui::text::{Line, Span};

use super::{Input, Overlay};
use crate::tui::app::{App, Effect};
use crate::tui::keys::Action;
use crate::tui::paint::style;
use crate::tui::screen::Screen;

/// Opens the filter on the focused pane of the main screen (leaving the detail), with
/// that pane's filter to edit.
pub(crate) fn open(app: &mut App) {
    if app.screen == Screen::Detail {
        app.screen = Screen::Main;
        app.detail = None;
    }
    let text = app.main.filter().to_string();
    app.overlay = Some(Overlay::Filter(Input { text, pick: 0 }));
}

/// Characters and Backspace edit the line and apply it at once. Whether the key was
/// taken as text.
pub(crate) fn type_key(app: &mut App, plain_char: Option<char>, backspace: bool) -> bool {
    let Some(Overlay::Filter(i)) = &mut app.overlay else {
        return false;
    };
    match (plain_char, backspace) {
        (Some(c), _) => i.text.push(c),
        (None, true) => {
            i.text.pop();
        }
        (None, false) => return false,
    }
    let t = i.text.clone();
    app.main.set_filter(t);
    true
}

/// Enter keeps the filter; Esc clears it.
pub(crate) fn act(app: &mut App, a: Action) -> Vec<Effect> {
    match a {
        Action::Back => {
            app.overlay = None;
            app.main.set_filter(String::new());
        }
        Action::Confirm => app.overlay = None,
        _ => {}
    }
    Vec::new()
}

/// The input line (drawn in the flash line's place).
pub fn input_line<'a>(app: &App, input: &Input) -> Line<'a> {
    let ui = &app.theme.ui;
    Line::from(vec![
        Span::styled("/", style(ui.footer_key)),
        Span::styled(format!("{}█", input.text), style(ui.text)),
        Span::styled(
            "   (!text inverts · Enter keeps · Esc clears)",
            style(ui.muted),
        ),
    ])
}
