//! The edge between [`super::theme`] (plain data) and ratatui styles.

use ratatui::style::{Color as RColor, Modifier, Style};

use super::theme::{Color, StyleSpec};

/// A theme colour as a ratatui colour.
pub fn color(c: Color) -> RColor {
    match c {
        Color::Reset => RColor::Reset,
        Color::Ansi(i) => match i {
            0 => RColor::Black,
            1 => RColor::Red,
            2 => RColor::Green,
            3 => RColor::Yellow,
            4 => RColor::Blue,
            5 => RColor::Magenta,
            6 => RColor::Cyan,
            7 => RColor::Gray,
            8 => RColor::DarkGray,
            9 => RColor::LightRed,
            10 => RColor::LightGreen,
            11 => RColor::LightYellow,
            12 => RColor::LightBlue,
            13 => RColor::LightMagenta,
            14 => RColor::LightCyan,
            _ => RColor::White,
        },
        Color::Indexed(i) => RColor::Indexed(i),
        Color::Rgb(r, g, b) => RColor::Rgb(r, g, b),
    }
}

/// A theme slot as a ratatui style.
pub fn style(s: StyleSpec) -> Style {
    let mut st = Style::default();
    if let Some(fg) = s.fg {
        st = st.fg(color(fg));
    }
    if let Some(bg) = s.bg {
        st = st.bg(color(bg));
    }
    let mut m = Modifier::empty();
    if s.bold {
        m |= Modifier::BOLD;
    }
    if s.dim {
        m |= Modifier::DIM;
    }
    if s.italic {
        m |= Modifier::ITALIC;
    }
    if s.underline {
        m |= Modifier::UNDERLINED;
    }
    if s.reversed {
        m |= Modifier::REVERSED;
    }
    st.add_modifier(m)
}

/// A ratatui colour back as `#rrggbb` (for screenshots); `None` for the default.
pub fn hex(c: RColor) -> Option<String> {
    let t = match c {
        RColor::Reset => return None,
        RColor::Black => Color::Ansi(0),
        RColor::Red => Color::Ansi(1),
        RColor::Green => Color::Ansi(2),
        RColor::Yellow => Color::Ansi(3),
        RColor::Blue => Color::Ansi(4),
        RColor::Magenta => Color::Ansi(5),
        RColor::Cyan => Color::Ansi(6),
        RColor::Gray => Color::Ansi(7),
        RColor::DarkGray => Color::Ansi(8),
        RColor::LightRed => Color::Ansi(9),
        RColor::LightGreen => Color::Ansi(10),
        RColor::LightYellow => Color::Ansi(11),
        RColor::LightBlue => Color::Ansi(12),
        RColor::LightMagenta => Color::Ansi(13),
        RColor::LightCyan => Color::Ansi(14),
        RColor::White => Color::Ansi(15),
        RColor::Indexed(i) => Color::Indexed(i),
        RColor::Rgb(r, g, b) => Color::Rgb(r, g, b),
    };
    t.to_hex()
}
