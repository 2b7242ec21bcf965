//! Naming the variable behind minijinja's bare `undefined value`, with the closest
//! variable that does exist: a typo in user-data (`{{ node.hostnme }}`) should read as
//! one, not as a riddle.

use std::collections::HashSet;

/// `` `node.hostnme` is not defined (did you mean `node.hostname`?) `` for the first
/// variable the template uses that `known` (the render variables as JSON) lacks,
/// preferring one on the error's `line`.
pub fn hint(
    used: &HashSet<String>,
    known: &serde_json::Value,
    text: &str,
    line: Option<usize>,
) -> Option<String> {
    let mut missing: Vec<(String, Vec<String>)> = used
        .iter()
        .filter_map(|path| missing_part(path, known))
        .collect();
    missing.sort();
    let on_line = line
        .and_then(|l| text.lines().nth(l.saturating_sub(1)))
        .unwrap_or_default();
    let pick = missing
        .iter()
        .find(|(name, _)| on_line.contains(name.as_str()))
        .or_else(|| missing.first())?;
    let (name, siblings) = pick;
    let last = name.rsplit('.').next().unwrap_or(name);
    let prefix = name.strip_suffix(last).unwrap_or_default();
    let close = siblings
        .iter()
        .map(|s| (distance(last, s), s))
        .filter(|(d, s)| *d <= 2.max(s.len() / 3))
        .min();
    Some(match close {
        Some((_, s)) => format!("`{name}` is not defined (did you mean `{prefix}{s}`?)"),
        None if siblings.is_empty() => format!("`{name}` is not defined"),
        None => format!(
            "`{name}` is not defined (there is: {})",
            siblings
                .iter()
                .take(12)
                .map(|s| format!("{prefix}{s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The shortest prefix of `path` (`a.b.c`) that `known` lacks, with the keys that
/// exist where it is missing; `None` when the whole path exists (or reaches a value
/// that is not a map, which minijinja reports otherwise).
fn missing_part(path: &str, known: &serde_json::Value) -> Option<(String, Vec<String>)> {
    let mut at = known;
    let mut walked: Vec<&str> = Vec::new();
    for part in path.split('.') {
        let serde_json::Value::Object(map) = at else {
            return None;
        };
        walked.push(part);
        match map.get(part) {
            Some(v) => at = v,
            None => {
                let mut keys: Vec<String> = map.keys().cloned().collect();
                keys.sort();
                return Some((walked.join("."), keys));
            }
        }
    }
    None
}

/// Levenshtein distance (names are short; O(n·m) is nothing).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_typo_and_the_closest() {
        let known = serde_json::json!({"node": {"hostname": "n", "ip": "x"}, "ssh_user": "lab"});
        let used: HashSet<String> = ["node.hostnme".to_string(), "ssh_user".to_string()].into();
        let h = hint(&used, &known, "host: {{ node.hostnme }}", Some(1)).unwrap();
        assert_eq!(
            h,
            "`node.hostnme` is not defined (did you mean `node.hostname`?)"
        );
        let used: HashSet<String> = ["sshuser".to_string()].into();
        let h = hint(&used, &known, "", None).unwrap();
        assert!(h.contains("did you mean `ssh_user`"), "{h}");
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
