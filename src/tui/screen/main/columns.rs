//! Which node-table columns fit a width: columns drop by priority as the terminal
//! narrows, so every column that is drawn is drawn whole.
//!
//! ```text
//!  200 cols: ● HOSTNAME  MAC  ROLE  IP  STEP……………………  UP  LAST
//!  120 cols: ● HOSTNAME  MAC  ROLE  IP  STEP……  UP  LAST
//!   80 cols: ● HOSTNAME  MAC  STEP……                       (UP, ROLE, LAST, IP dropped)
//!   40 cols: ● MAC  STEP                                   (MAC and state go last)
//!
//! The step column keeps room for a failure's sentence (`token mismatch: this agent
//! holds another…`): a column goes before the reason is cut to a stub.
//! ```
//!
//! A held machine's MAC is its only name, so the MAC column is never cut or dropped.

/// A column of the node table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// The state glyph.
    Glyph,
    /// Hostname, `(unknown)` for a held machine.
    Host,
    /// The MAC (never cut).
    Mac,
    /// The role.
    Role,
    /// The address.
    Ip,
    /// The step: state and progress; takes the width left over.
    Step,
    /// Time since the boot started.
    Up,
    /// Age of the last event.
    Last,
}

/// (column, header, width, drop order: higher goes first, 0 never).
const COLS: [(Col, &str, u16, u8); 8] = [
    (Col::Glyph, "", 1, 0),
    (Col::Host, "HOSTNAME", 16, 2),
    (Col::Mac, "MAC", 17, 0),
    (Col::Role, "ROLE", 11, 5),
    (Col::Ip, "IP", 15, 3),
    (Col::Step, "STEP", STEP_MIN, 0),
    (Col::Up, "UP", 7, 6),
    (Col::Last, "LAST", 5, 4),
];

/// The step column's least width (enough for the start of a failure's sentence); it
/// takes whatever is left above that.
pub const STEP_MIN: u16 = 30;

/// The columns that fit in `inner` cells (inside the borders, 1-cell gaps), in order,
/// with their header and width (the step column's is its minimum).
pub fn fit(inner: u16) -> Vec<(Col, &'static str, u16)> {
    let mut cols: Vec<(Col, &'static str, u16, u8)> = COLS.to_vec();
    let need = |c: &[(Col, &str, u16, u8)]| -> u16 {
        c.iter().map(|x| x.2).sum::<u16>() + c.len().saturating_sub(1) as u16
    };
    // Bounded: each turn drops one column; the never-dropped ones end it.
    while need(&cols) > inner {
        let Some(worst) = cols
            .iter()
            .enumerate()
            .filter(|(_, c)| c.3 > 0)
            .max_by_key(|(_, c)| c.3)
            .map(|(i, _)| i)
        else {
            break;
        };
        cols.remove(worst);
    }
    // Below the step's least width (only the never-dropped columns are left), the step
    // takes what remains, so the MAC is still drawn whole.
    let over = need(&cols).saturating_sub(inner);
    cols.into_iter()
        .map(|(c, h, w, _)| match c {
            Col::Step => (c, h, w.saturating_sub(over).max(1)),
            _ => (c, h, w),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(inner: u16) -> Vec<Col> {
        fit(inner).into_iter().map(|c| c.0).collect()
    }

    #[test]
    fn wide_keeps_all_narrow_keeps_mac_and_state() {
        assert_eq!(names(200).len(), 8);
        let n = names(78);
        assert!(n.contains(&Col::Mac) && n.contains(&Col::Host) && !n.contains(&Col::Up));
        assert_eq!(names(38), vec![Col::Glyph, Col::Mac, Col::Step]);
        assert_eq!(names(10), vec![Col::Glyph, Col::Mac, Col::Step]);
    }

    #[test]
    fn at_80_columns_the_step_keeps_room_for_a_reason_and_fits() {
        // 80 columns: 78 inside the borders.
        let cols = fit(78);
        let step = cols.iter().find(|c| c.0 == Col::Step).map(|c| c.2);
        assert!(step >= Some(STEP_MIN), "{cols:?}");
        let used: u16 = cols.iter().map(|c| c.2).sum::<u16>() + cols.len() as u16 - 1;
        assert!(used <= 78, "{cols:?}");
        // Narrower than the MAC and the step's least width: everything still fits.
        for inner in [10, 38, 50] {
            let cols = fit(inner);
            let used: u16 = cols.iter().map(|c| c.2).sum::<u16>() + cols.len() as u16 - 1;
            assert!(used <= inner.max(21), "{inner}: {cols:?}");
        }
    }
}
