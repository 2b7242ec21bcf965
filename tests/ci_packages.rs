//! CI must pass on a fresh machine: every program a test requires or runs has a Debian
//! package in tests/common/packages.rs, and `.ci/run` installs every such package.
//! (Under PXELAB_CI a missing program fails its test, so a package missing from
//! `.ci/run` passes only where someone installed it by hand.) No root, no network.

mod common;

use std::path::{Path, PathBuf};

use common::packages::{package_of, BASE_PACKAGES, PROGRAMS};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// The string literals in `text` (no escapes needed for program names).
fn literals(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The text between the `(` at `open` and its matching `)`.
fn call_args(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    &text[open + 1..]
}

/// A program some test needs, and where.
#[derive(Debug)]
struct Use {
    program: String,
    at: String,
}

/// Programs named in requirement calls (`require_program("x")`, `require_programs(&[…])`),
/// `which("x")`, and the programs tests start (`Command::new("x")`, the first word of
/// `.command(&[…])`, `.exec(&[…])`, `.exec_ok(&[…])`, `sh("x", …)`). A requirement
/// call without a literal name is reported as a problem: this test could not check it.
fn program_uses(file: &Path, text: &str, problems: &mut Vec<String>) -> Vec<Use> {
    let rel = file
        .strip_prefix(repo())
        .unwrap_or(file)
        .display()
        .to_string();
    let in_common = rel.starts_with("tests/common/");
    let mut uses = Vec::new();
    let mut add = |program: &str, offset: usize| {
        let program = program.rsplit('/').next().unwrap_or(program).to_string();
        uses.push(Use {
            program,
            at: format!("{rel}:{}", line_of(text, offset)),
        });
    };
    for pat in ["require_program(", "require_programs("] {
        for (off, _) in text.match_indices(pat) {
            let before = &text[..off];
            if in_common || before.ends_with("fn ") {
                continue; // the definitions and their own calls
            }
            let args = call_args(text, off + pat.len() - 1);
            let names = literals(args);
            if names.is_empty() {
                problems.push(format!(
                    "{rel}:{}: {pat}{args}): name the program(s) literally so this test can check them",
                    line_of(text, off)
                ));
            }
            for n in names {
                add(&n, off);
            }
        }
    }
    for pat in [
        "which(",
        "Command::new(",
        ".command(",
        ".exec(",
        ".exec_ok(",
        "sh(",
    ] {
        for (off, _) in text.match_indices(pat) {
            if text[..off].ends_with("fn ") || (pat == "sh(" && !starts_word(text, off)) {
                continue;
            }
            let args = call_args(text, off + pat.len() - 1);
            let first = args.trim_start().trim_start_matches("&[").trim_start();
            if let Some(rest) = first.strip_prefix('"') {
                if let Some(name) = rest.split('"').next() {
                    add(name, off);
                }
            }
        }
    }
    uses
}

/// Whether `text[off..]` starts a word (so `sh(` is not the tail of `push(`, `flush(`).
fn starts_word(text: &str, off: usize) -> bool {
    text[..off]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
}

/// The Debian packages a `.ci/run` text installs with `apt-get install`.
fn apt_packages(ci_run: &str) -> Vec<String> {
    let joined = ci_run.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let Some((_, rest)) = line.split_once("apt-get install") else {
            continue;
        };
        for w in rest.split_whitespace() {
            if w.starts_with('>') || w.starts_with('&') || w == "|" || w == ";" {
                break;
            }
            if w.starts_with('-') {
                continue;
            }
            out.push(w.to_string());
        }
    }
    out
}

/// Packages named in requirement messages (`require(…, "the ipxe package")`).
fn packages_in_messages(file: &Path, text: &str) -> Vec<(String, String)> {
    let rel = file
        .strip_prefix(repo())
        .unwrap_or(file)
        .display()
        .to_string();
    let mut out = Vec::new();
    for (off, _) in text.match_indices("require(") {
        if !starts_word(text, off) || text[..off].ends_with("fn ") {
            continue;
        }
        for lit in literals(call_args(text, off + "require".len())) {
            let words: Vec<&str> = lit
                .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
                .collect();
            for w in words.windows(3) {
                if w[0] == "the" && w[2] == "package" {
                    out.push((w[1].to_string(), format!("{rel}:{}", line_of(text, off))));
                }
            }
        }
    }
    out
}

/// Everything wrong, given the test sources and `.ci/run`'s text.
fn problems(sources: &[(PathBuf, String)], ci_run: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let installed = apt_packages(ci_run);
    if installed.is_empty() {
        problems.push("found no `apt-get install` package list in .ci/run".to_string());
    }
    let ok = |p: &str| installed.iter().any(|i| i == p) || BASE_PACKAGES.contains(&p);
    for (file, text) in sources {
        for u in program_uses(file, text, &mut problems) {
            match package_of(&u.program) {
                None => problems.push(format!(
                    "{}: `{}` is not in tests/common/packages.rs PROGRAMS (add it with its Debian package: dpkg -S $(command -v {}))",
                    u.at, u.program, u.program
                )),
                Some(p) if !ok(p) => problems.push(format!(
                    "{}: `{}` comes from package {p}, which .ci/run does not install",
                    u.at, u.program
                )),
                Some(_) => {}
            }
        }
        for (p, at) in packages_in_messages(file, text) {
            if !ok(&p) {
                problems.push(format!(
                    "{at}: a requirement names package {p}, which .ci/run does not install"
                ));
            }
        }
    }
    for (program, p) in PROGRAMS {
        if !ok(p) {
            problems.push(format!(
                "tests/common/packages.rs: `{program}` comes from package {p}, which .ci/run does not install"
            ));
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// The test sources, but not this file: its examples of what to find are not uses.
fn sources() -> Vec<(PathBuf, String)> {
    let me = repo().join(file!());
    rust_files(&repo().join("tests"))
        .into_iter()
        .filter(|p| *p != me)
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            (p, t)
        })
        .collect()
}

fn ci_run() -> String {
    std::fs::read_to_string(repo().join(".ci/run")).unwrap()
}

#[test]
fn every_required_program_has_a_package_that_ci_installs() {
    let p = problems(&sources(), &ci_run());
    assert!(p.is_empty(), "{} problem(s):\n{}", p.len(), p.join("\n"));
}

#[test]
fn the_check_finds_what_is_missing() {
    let src = sources();
    let ci = ci_run();
    // The scan sees the requirement call sites it must (literal, list, which()).
    let mut scratch = Vec::new();
    let seen: Vec<String> = src
        .iter()
        .flat_map(|(f, t)| program_uses(f, t, &mut scratch))
        .map(|u| u.program)
        .collect();
    for p in [
        "atftp", "in.tftpd", "dnsmasq", "dhclient", "perfdhcp", "sshd", "kill",
    ] {
        assert!(seen.iter().any(|s| s == p), "{p} not found in {seen:?}");
    }
    assert!(apt_packages(&ci).iter().any(|p| p == "tftpd-hpa"));
    // A package dropped from .ci/run is reported, naming the program that needs it.
    let without = ci.replace(" atftp", "");
    let p = problems(&src, &without);
    assert!(
        p.iter()
            .any(|l| l.contains("`atftp` comes from package atftp")),
        "{p:?}"
    );
    // A program the table does not know is reported where it is required.
    let fake = (
        repo().join("tests/fake.rs"),
        "fn t() { if !common::require_program(\"frobnicate\") { return; } }\n\
         fn u(ps: &[&str]) { common::require_programs(ps); }\n\
         fn v() { require(false, \"firmware (the no-such-pkg package)\"); }\n"
            .to_string(),
    );
    let p = problems(&[fake], &ci);
    assert!(
        p.iter()
            .any(|l| l.starts_with("tests/fake.rs:1: `frobnicate` is not in")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|l| l.contains("name the program(s) literally")),
        "{p:?}"
    );
    assert!(p.iter().any(|l| l.contains("package no-such-pkg")), "{p:?}");
}
