//! What a node was (or will be) served, for the detail screen, with secrets masked.
//!
//! Masking is belt and braces: every secret value pxelab knows for the node (k3s token,
//! host private key in OpenSSH and dropbear format, node password) is replaced wherever
//! it appears, and independently any PEM private-key block, any base64 dropbear ed25519
//! key file and any `token`/`password`/`secret` value is hidden.

use std::sync::Arc;

use crate::config::Lab;
use crate::mac::Mac;
use crate::secrets::NodeSecrets;

/// What replaces a secret on screen.
pub const MASK: &str = "•••• masked ••••";

/// One served file: title and (masked) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// `iPXE script`, `cmdline`, `meta-data`, `user-data`.
    pub title: String,
    /// The text, secrets masked; or why it could not be rendered.
    pub text: String,
}

/// Renders what `mac` gets from the lab right now.
pub fn served(lab: &Lab, mac: Mac) -> Vec<Served> {
    let Some(node) = lab.node_by_mac(&mac) else {
        return vec![Served {
            title: "hold script".into(),
            text: crate::render::hold_script(lab, mac),
        }];
    };
    let secrets = match crate::secrets::for_node(lab, mac) {
        Ok(s) => s,
        Err(e) => {
            return vec![Served {
                title: "error".into(),
                text: format!("secrets unavailable: {e}"),
            }]
        }
    };
    let one = |title: &str, r: Result<String, crate::render::RenderError>| Served {
        title: title.into(),
        text: match r {
            Ok(t) => mask(&t, &secrets),
            Err(e) => format!("cannot render: {e}"),
        },
    };
    vec![
        one("iPXE script", crate::render::ipxe_script(lab, node)),
        one("cmdline", crate::render::kernel_cmdline(lab, node)),
        one("meta-data", crate::render::meta_data(lab, node)),
        one("user-data", crate::render::user_data(lab, node, &secrets)),
    ]
}

/// What one node is served, rendered once per (node, lab) and kept.
///
/// Rendering every template and reading the node's secrets from disk is templating and
/// file I/O on the UI task; the detail asks again at every engine change (thousands a
/// second while a lab boots), yet what a node is served changes only with the lab. The
/// engine replaces its `Arc<Lab>` on every reload or write-back, so that `Arc`'s
/// identity is the lab's version: the files are rendered again only when the node or
/// the lab changed. A render that could not read the secrets is not kept, so it is
/// tried again at the next ask.
#[derive(Clone, Default)]
pub struct ServedCache {
    key: Option<(Mac, Arc<Lab>)>,
    files: Vec<Served>,
    renders: u64,
}

impl ServedCache {
    /// What `mac` gets from `lab`, rendered only if not already for this node and lab.
    pub fn get(&mut self, lab: &Arc<Lab>, mac: Mac) -> &[Served] {
        let fresh = matches!(&self.key, Some((m, l)) if *m == mac && Arc::ptr_eq(l, lab));
        if !fresh {
            self.files = served(lab, mac);
            self.renders += 1;
            let failed = self.files.iter().any(|s| s.title == "error");
            self.key = (!failed).then(|| (mac, lab.clone()));
        }
        &self.files
    }

    /// How many times files were rendered (to check the cache holds).
    pub fn renders(&self) -> u64 {
        self.renders
    }
}

impl std::fmt::Debug for ServedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedCache")
            .field("mac", &self.key.as_ref().map(|(m, _)| *m))
            .field("files", &self.files.len())
            .field("renders", &self.renders)
            .finish()
    }
}

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
    let prefix = crate::secrets::dropbear::ED25519_B64_PREFIX;
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
    fn served_files_are_rendered_once_per_node_and_lab() {
        let d = tempfile::tempdir().unwrap();
        let text = "name: t\nserver_address: 10.0.0.1\nboot:\n  kernel: k\nnodes:\n  - mac: 52:54:00:00:00:01\n    hostname: a\n    role: k3s-agent\n";
        let path = d.path().join("lab.yaml");
        let lab = Arc::new(Lab::parse(&path, text).unwrap());
        let known: Mac = "52:54:00:00:00:01".parse().unwrap();
        let other: Mac = "52:54:00:00:00:02".parse().unwrap();
        let mut cache = ServedCache::default();

        let files = cache.get(&lab, known).to_vec();
        let titles: Vec<&str> = files.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["iPXE script", "cmdline", "meta-data", "user-data"]);
        let token = crate::secrets::for_node(&lab, known).unwrap().k3s_token;
        assert!(token.len() >= 4);
        assert!(files.iter().all(|s| !s.text.contains(&token)), "{files:?}");
        assert_eq!(cache.renders(), 1);
        // Engine changes with the same lab: nothing rendered again.
        for _ in 0..100 {
            assert_eq!(cache.get(&lab, known), &files[..]);
        }
        assert_eq!(cache.renders(), 1);
        // Another node, then back: each is a new key.
        assert_eq!(cache.get(&lab, other)[0].title, "hold script");
        assert_eq!(cache.renders(), 2);
        cache.get(&lab, known);
        assert_eq!(cache.renders(), 3);
        // A reloaded lab (a new `Arc`, even with the same text) is a new version.
        let reloaded = Arc::new(Lab::parse(&path, text).unwrap());
        assert_eq!(cache.get(&reloaded, known), &files[..]);
        assert_eq!(cache.renders(), 4);
    }

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
        let known = format!(
            "{}{}",
            crate::secrets::dropbear::ED25519_B64_PREFIX,
            "KNOWN"
        );
        let s = NodeSecrets {
            host_private_key_dropbear: Some(known.clone()),
            ..NodeSecrets::default()
        };
        let other = format!(
            "{}{}==",
            crate::secrets::dropbear::ED25519_B64_PREFIX,
            "x+/Y"
        );
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
