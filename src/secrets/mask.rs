//! Hiding secrets in text shown or sent anywhere but to their node: the console's
//! served-file view and the admin API's redacted lab (`pxelab attach`).
//!
//! Belt and braces: every secret value pxelab knows for the node (k3s token, host
//! private key in OpenSSH and dropbear format, node password) is replaced wherever it
//! appears, and independently any PEM private-key block, any base64 dropbear ed25519
//! key file and any `token`/`password`/`secret` value is hidden.

use super::NodeSecrets;

/// What replaces a secret.
pub const MASK: &str = "•••• masked ••••";

/// Hides every secret in `text`.
pub fn mask(text: &str, s: &NodeSecrets) -> String {
    let mut out = text.to_string();
    let values = [
        Some(s.k3s_token.as_str()),
        s.host_private_key.as_deref(),
        s.host_private_key_dropbear.as_deref(),
        s.node_password.as_deref(),
    ];
    for v in values.into_iter().flatten() {
        let v = v.trim();
        if v.len() >= 4 {
            out = out.replace(v, MASK);
        }
    }
    mask_patterns(&out)
}

const SECRET_WORDS: [&str; 4] = ["token", "password", "secret", "passwd"];

/// Hides PEM private-key blocks, base64 dropbear ed25519 key files (binary, so they are
/// delivered with `encoding: b64` and have no PEM markers) and the values of
/// `token`/`password`-like keys.
pub fn mask_patterns(text: &str) -> String {
    let mut out = Vec::new();
    let mut in_key = false;
    for line in text.lines() {
        let t = line.trim();
        if in_key {
            if t.starts_with("-----END") {
                in_key = false;
            }
            continue;
        }
        if t.starts_with("-----BEGIN") && t.contains("PRIVATE KEY") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push(format!("{indent}{MASK} (private key)"));
            in_key = !t.contains("-----END");
            continue;
        }
        out.push(mask_dropbear_key(&mask_assignment(line)));
    }
    let mut s = out.join("\n");
    if text.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Replaces every word that begins like a base64 dropbear ed25519 private key file.
fn mask_dropbear_key(line: &str) -> String {
    let prefix = super::dropbear::ED25519_B64_PREFIX;
    let mut out = line.to_string();
    while let Some(start) = out.find(prefix) {
        let len = out[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')))
            .unwrap_or(out.len() - start);
        out.replace_range(start..start + len, &format!("{MASK} (private key)"));
    }
    out
}

fn mask_assignment(line: &str) -> String {
    // `key: value`, `KEY=value`, `--token value` / `--token=value`.
    let lower = line.to_lowercase();
    let Some(word) = SECRET_WORDS.iter().find(|w| lower.contains(*w)) else {
        return line.to_string();
    };
    let Some(pos) = lower.find(word) else {
        return line.to_string();
    };
    let after = pos + word.len();
    let rest = &line[after..];
    // Skip the rest of the key name (e.g. `_file`): a key that names a file is not secret.
    let key_tail: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    if key_tail.to_lowercase().contains("file") || key_tail.to_lowercase().contains("path") {
        return line.to_string();
    }
    let rest = &rest[key_tail.len()..];
    let sep_len = rest
        .chars()
        .take_while(|c| matches!(c, ':' | '=' | ' ' | '"' | '\''))
        .map(char::len_utf8)
        .sum::<usize>();
    if sep_len == 0 || sep_len == rest.len() {
        return line.to_string();
    }
    let head = &line[..after + key_tail.len() + sep_len];
    format!("{head}{MASK}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_values_and_patterns() {
        let s = NodeSecrets {
            k3s_token: "K10abcdef::server:s3cr3t".into(),
            node_password: Some("pw-123456".into()),
            ..NodeSecrets::default()
        };
        let text = "runcmd:\n  - echo K10abcdef::server:s3cr3t > /x\n  - echo pw-123456\nk3s_token: whatever\nK3S_TOKEN=abc\ntoken_file: /a/b\nssh_keys:\n  rsa_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    AAAA\n    -----END OPENSSH PRIVATE KEY-----\nend\n";
        let m = mask(text, &s);
        assert!(!m.contains("s3cr3t"), "{m}");
        assert!(!m.contains("pw-123456"), "{m}");
        assert!(!m.contains("whatever"), "{m}");
        assert!(!m.contains("=abc"), "{m}");
        assert!(!m.contains("AAAA"), "{m}");
        assert!(m.contains("token_file: /a/b"), "{m}");
        assert!(m.contains("end"), "{m}");
    }

    #[test]
    fn masks_dropbear_keys_known_or_not() {
        let known = format!("{}{}", super::super::dropbear::ED25519_B64_PREFIX, "KNOWN");
        let s = NodeSecrets {
            host_private_key_dropbear: Some(known.clone()),
            ..NodeSecrets::default()
        };
        let other = format!("{}{}==", super::super::dropbear::ED25519_B64_PREFIX, "x+/Y");
        let text = format!(
            "write_files:\n  - path: /etc/dropbear/dropbear_ed25519_host_key\n    encoding: b64\n    content: \"{known}\"\n  - content: {other}\n  - content: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPUBLIC root@x\n"
        );
        let m = mask(&text, &s);
        assert!(!m.contains("KNOWN"), "{m}");
        assert!(!m.contains("x+/Y"), "{m}");
        assert!(m.contains("AAAAIPUBLIC"), "public keys stay visible: {m}");
        assert!(m.contains("encoding: b64"), "{m}");
    }
}
