//! The layering rules, checked on the source instead of trusted to review:
//! - the engine imports no wire server (dhcp, tftp, http, net, syslog), no face (tui,
//!   headless), not the simulator (sim) and not the SSH watcher (watch): data flows from
//!   them into the engine, never the other way;
//! - only the console (src/tui) imports ratatui or crossterm;
//! - no file under src/ is over [`MAX_LINES`] lines, except the data tables named in
//!   [`DATA_TABLES`] (and, until the parallel branches that split them are merged, the
//!   files in [`SPLIT_ELSEWHERE`]).
//!
//! The scan reads paths in code with comments and string literals removed, so a doc link
//! to `crate::watch` is not an import and a `use crate::{dhcp, …}` group is.

use std::path::{Path, PathBuf};

/// The longest a source file may be.
const MAX_LINES: usize = 500;

/// Files allowed over [`MAX_LINES`] because they are data, not logic.
const DATA_TABLES: &[(&str, &str)] = &[
    // No file is a data table over the limit today; add `(path, why)` here when one is.
];

/// TEMPORARY: files over [`MAX_LINES`] that other branches of issue 11 are splitting
/// (plan: src/config/; service: src/engine/; pipeline: src/dhcp/; watch/node.rs). Empty
/// this list when those branches are merged: every entry left here is a file to split.
const SPLIT_ELSEWHERE: &[&str] = &[];

/// Top-level modules the engine must not import.
const NOT_FOR_ENGINE: &[&str] = &[
    "dhcp", "tftp", "http", "net", "syslog", "tui", "headless", "sim", "watch", "fetch",
];

/// Top-level modules the leaf network module must not import (it serves them all).
const NOT_FOR_NET: &[&str] = &[
    "dhcp", "tftp", "http", "engine", "syslog", "tui", "headless", "sim", "watch", "secrets",
];

/// Crates only the console may use.
const TERMINAL_CRATES: &[&str] = &["ratatui", "crossterm"];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/…` with forward slashes, as the rules name files.
fn rel(p: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The source with comments, string and char literals replaced by spaces (line breaks
/// kept, so positions still name lines).
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&b, i) {
            // Raw string r"…" / r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match b.get(j) {
                    None => break,
                    Some('"') if (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some(_) => j += 1,
                }
            }
            for &ch in &b[i..j.min(b.len())] {
                out.push(blank(ch));
            }
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && is_char_literal(&b, i) {
            // 'x', '\n', '\u{…}' (a lifetime `'a` has no closing quote right after).
            let mut j = i + 1;
            if b.get(j) == Some(&'\\') {
                j += 2;
            } else {
                j += 1;
            }
            while j < b.len() && b[j] != '\'' {
                j += 1;
            }
            for _ in i..=j.min(b.len() - 1) {
                out.push(' ');
            }
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

fn is_char_literal(b: &[char], i: usize) -> bool {
    match b.get(i + 1) {
        Some('\\') => true,
        Some(_) => b.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// The module path of a file: `src/engine/state.rs` → [engine, state];
/// `src/engine/mod.rs` → [engine]; `src/lib.rs` → [].
fn module_of(rel_path: &str) -> Vec<String> {
    let p = rel_path.trim_start_matches("src/").trim_end_matches(".rs");
    let mut parts: Vec<String> = p.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Every top-level crate module a file's code names through `crate::…`, `super::…` or
/// `pxelab::…` (groups `{a, b::c}` included), with the line it is on.
fn crate_modules_named(rel_path: &str, code: &str) -> Vec<(String, usize)> {
    let here = module_of(rel_path);
    let words = tokens(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let (w, line) = (&words[i].0, words[i].1);
        let starts_path = i == 0 || words[i - 1].0 != "::";
        if starts_path && (w == "crate" || w == "pxelab" || w == "super") {
            // Resolve the path's base to a module depth.
            let mut depth: Option<usize> = match w.as_str() {
                "crate" | "pxelab" => Some(0),
                _ => None,
            };
            let mut j = i;
            if w == "super" {
                let mut ups = 0;
                while words.get(j).is_some_and(|t| t.0 == "super")
                    && words.get(j + 1).is_some_and(|t| t.0 == "::")
                {
                    ups += 1;
                    j += 2;
                }
                if ups == 0 {
                    // `pub(super)`: a visibility, not a path.
                    i += 1;
                    continue;
                }
                // `module_of` already names a `mod.rs` by its folder, so each `super`
                // is one step up from the file's own module.
                depth = here.len().checked_sub(ups);
                j -= 2;
            }
            let Some(depth) = depth else {
                i += 1;
                continue;
            };
            // Only a path based at the crate root can leave the file's top module.
            if depth == 0 && words.get(j + 1).is_some_and(|t| t.0 == "::") {
                collect_segment(&words, j + 2, &mut out, line);
            }
        }
        i += 1;
    }
    out
}

/// At `words[at]`: an identifier (one module) or a `{…}` group (each first segment).
fn collect_segment(
    words: &[(String, usize)],
    at: usize,
    out: &mut Vec<(String, usize)>,
    line: usize,
) {
    match words.get(at) {
        Some((w, _)) if w == "{" => {
            let mut k = at + 1;
            let mut depth = 1;
            let mut expect_first = true;
            while let Some((t, l)) = words.get(k) {
                match t.as_str() {
                    "{" => depth += 1,
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    "," if depth == 1 => expect_first = true,
                    t if depth == 1 && expect_first && is_ident(t) => {
                        out.push((t.to_string(), *l));
                        expect_first = false;
                    }
                    _ => {}
                }
                k += 1;
            }
        }
        Some((w, _)) if is_ident(w) => out.push((w.clone(), line)),
        _ => {}
    }
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && t.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Identifiers, `::` and single punctuation, each with its 1-based line.
fn tokens(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (n, text) in code.lines().enumerate() {
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_alphanumeric() || c == '_' {
                let s = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push((chars[s..i].iter().collect(), n + 1));
            } else if c == ':' && chars.get(i + 1) == Some(&':') {
                out.push(("::".into(), n + 1));
                i += 2;
            } else if !c.is_whitespace() {
                out.push((c.to_string(), n + 1));
                i += 1;
            } else {
                i += 1;
            }
        }
    }
    out
}

/// Lines where code names one of `crates` as a path root (`ratatui::…`, `use crossterm`).
fn external_crates_named(code: &str, crates: &[&str]) -> Vec<(String, usize)> {
    let words = tokens(code);
    let mut out = Vec::new();
    for (i, (w, line)) in words.iter().enumerate() {
        if !crates.contains(&w.as_str()) {
            continue;
        }
        let prev = i.checked_sub(1).map(|p| words[p].0.as_str());
        let next = words.get(i + 1).map(|t| t.0.as_str());
        let rooted = prev != Some("::") && (next == Some("::") || prev == Some("use"));
        // `extern crate ratatui;`
        let extern_crate = prev == Some("crate") && i >= 2 && words[i - 2].0 == "extern";
        if rooted || extern_crate {
            out.push((w.clone(), *line));
        }
    }
    out
}

/// Every rule broken by one file.
fn violations(rel_path: &str, src: &str) -> Vec<String> {
    let code = code_only(src);
    let mut out = Vec::new();
    if rel_path.starts_with("src/engine/") || rel_path == "src/engine.rs" {
        for (m, line) in crate_modules_named(rel_path, &code) {
            if NOT_FOR_ENGINE.contains(&m.as_str()) {
                out.push(format!(
                    "{rel_path}:{line}: the engine imports `{m}` (wire servers, faces, the simulator and the watcher feed the engine, never the reverse)"
                ));
            }
        }
    }
    if rel_path.starts_with("src/net/") {
        for (m, line) in crate_modules_named(rel_path, &code) {
            if NOT_FOR_NET.contains(&m.as_str()) {
                out.push(format!(
                    "{rel_path}:{line}: the leaf network module imports `{m}` (it takes plain values; servers use it, never the reverse)"
                ));
            }
        }
    }
    if rel_path.starts_with("src/secrets") {
        for (m, line) in crate_modules_named(rel_path, &code) {
            if m == "engine" {
                out.push(format!(
                    "{rel_path}:{line}: secrets imports the engine (secrets are storage; who may have them is the user-data gate's rule)"
                ));
            }
        }
    }
    if !rel_path.starts_with("src/tui/") {
        for (c, line) in external_crates_named(&code, TERMINAL_CRATES) {
            out.push(format!(
                "{rel_path}:{line}: `{c}` outside src/tui (only the console knows terminals)"
            ));
        }
    }
    let lines = src.lines().count();
    let allowed = DATA_TABLES.iter().any(|(p, _)| *p == rel_path)
        || SPLIT_ELSEWHERE
            .iter()
            .any(|p| rel_path == *p || (p.ends_with('/') && rel_path.starts_with(p)));
    if lines > MAX_LINES && !allowed {
        out.push(format!(
            "{rel_path}: {lines} lines (over {MAX_LINES}: split it along its concerns, or name it in DATA_TABLES with why if it is data)"
        ));
    }
    out
}

#[test]
fn src_keeps_the_import_rules_and_file_sizes() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    assert!(
        files.len() > 50,
        "found only {} files under src/",
        files.len()
    );
    let mut broken = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        broken.extend(violations(&rel(f), &src));
    }
    assert!(broken.is_empty(), "rules broken:\n{}", broken.join("\n"));
}

#[test]
fn data_table_entries_name_existing_files_and_say_why() {
    for (p, why) in DATA_TABLES {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
        assert!(
            path.is_file(),
            "DATA_TABLES names {p}, which does not exist"
        );
        assert!(!why.trim().is_empty(), "DATA_TABLES: say why {p} is data");
    }
}

// The scanner itself: each rule catches what it should and lets through what it should.

#[test]
fn engine_importing_a_wire_server_is_caught_in_every_spelling() {
    let cases = [
        ("src/engine/state.rs", "use crate::dhcp::Server;"),
        ("src/engine/state.rs", "use crate::{config::Lab, tftp};"),
        ("src/engine/state.rs", "fn f() { crate::watch::reboot(); }"),
        ("src/engine/state.rs", "use super::super::http::admin;"),
        ("src/engine/mod.rs", "use super::tui::App;"),
        (
            "src/engine/mod.rs",
            "use crate::{\n    net::arp,\n    mac::Mac,\n};",
        ),
        ("src/engine/commands.rs", "use pxelab::sim::Node;"),
    ];
    for (path, src) in cases {
        assert_eq!(violations(path, src).len(), 1, "{path}: {src}");
    }
}

#[test]
fn net_importing_a_server_and_secrets_importing_the_engine_are_caught() {
    for (path, src, broken) in [
        ("src/net/arp.rs", "use crate::dhcp::leases::Leases;", 1),
        ("src/net/path.rs", "use crate::{mac::Mac, http};", 1),
        ("src/net/arp.rs", "use crate::mac::Mac;", 0),
        ("src/secrets.rs", "use crate::engine::Engine;", 1),
        ("src/secrets/dropbear.rs", "use crate::config::Lab;", 0),
    ] {
        assert_eq!(violations(path, src).len(), broken, "{path}: {src}");
    }
}

#[test]
fn engine_naming_its_own_modules_or_comments_is_allowed() {
    let cases = [
        ("src/engine/state.rs", "use super::event::Event;"),
        (
            "src/engine/state.rs",
            "use crate::config::Lab; use crate::mac::Mac;",
        ),
        (
            "src/engine/mod.rs",
            "pub mod inventory; use self::inventory::X;",
        ),
        (
            "src/engine/failure.rs",
            "//! see [`crate::watch::parse`]\n/* crate::dhcp */",
        ),
        (
            "src/engine/failure.rs",
            "const S: &str = \"crate::tui::App\";",
        ),
        (
            "src/engine/failure.rs",
            "let c = '\"'; use crate::config::Lab;",
        ),
        ("src/engine/failure.rs", "let s = r#\"crate::sim\"#;"),
        (
            "src/engine/event.rs",
            "pub struct S { pub tftp: u64, pub http: Http }",
        ),
    ];
    for (path, src) in cases {
        assert!(
            violations(path, src).is_empty(),
            "{path}: {src}: {:?}",
            violations(path, src)
        );
    }
}

#[test]
fn terminal_crates_outside_the_console_are_caught() {
    assert_eq!(violations("src/app.rs", "use ratatui::Frame;").len(), 1);
    assert_eq!(
        violations("src/headless.rs", "fn f() { crossterm::terminal::size(); }").len(),
        1
    );
    assert_eq!(
        violations("src/main.rs", "extern crate crossterm;").len(),
        1
    );
    assert!(violations("src/app.rs", "/// The ratatui console.\nfn f() {}").is_empty());
    assert!(violations("src/tui/paint.rs", "use ratatui::style::Style;").is_empty());
}

#[test]
fn long_files_are_caught_unless_allowed() {
    let long = "fn f() {}\n".repeat(MAX_LINES + 1);
    assert_eq!(violations("src/tui/app.rs", &long).len(), 1);
    assert_eq!(violations("src/config/validate/mod.rs", &long).len(), 1);
    assert_eq!(violations("src/dhcp/server.rs", &long).len(), 1);
    let short = "fn f() {}\n".repeat(MAX_LINES);
    assert!(violations("src/tui/app.rs", &short).is_empty());
}
