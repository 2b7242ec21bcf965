//! What a simulated node takes from its NoCloud data, as tiny-cloud would: hostname from
//! meta-data; authorised keys, files (the pinned host key, k3s config) and the k3s role
//! and token from user-data.

use base64::Engine as _;

/// The parts of the NoCloud data a simulated node acts on.
#[derive(Default, Clone)]
pub struct Seed {
    /// `hostname` (or `local-hostname`) from meta-data.
    pub hostname: Option<String>,
    /// Every `ssh_authorized_keys` entry found in user-data.
    pub authorized_keys: Vec<String>,
    /// The ed25519 host private key written by `write_files` (OpenSSH PEM; a dropbear
    /// role's dropbear-format key is converted to it).
    pub host_private_key: Option<String>,
    /// The k3s token (config.yaml `token:` or `K3S_TOKEN=`).
    pub k3s_token: Option<String>,
    /// `Some(true)` when user-data configures a k3s server, `Some(false)` an agent.
    pub k3s_server: Option<bool>,
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seed")
            .field("hostname", &self.hostname)
            .field("authorized_keys", &self.authorized_keys.len())
            .field("host_private_key", &self.host_private_key.is_some())
            .field("k3s_token", &self.k3s_token.is_some())
            .field("k3s_server", &self.k3s_server)
            .finish()
    }
}

/// Reads `hostname:` from meta-data (simple `key: value` YAML).
pub fn meta_hostname(meta: &str) -> Option<String> {
    let v: yaml_serde::Value = yaml_serde::from_str(meta).ok()?;
    ["hostname", "local-hostname"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|h| h.as_str()).map(str::to_string))
}

fn collect_keys(v: &yaml_serde::Value, out: &mut Vec<String>) {
    match v {
        yaml_serde::Value::Mapping(m) => {
            for (k, val) in m {
                if k.as_str() == Some("ssh_authorized_keys") {
                    if let Some(seq) = val.as_sequence() {
                        out.extend(seq.iter().filter_map(|s| s.as_str().map(str::to_string)));
                    }
                } else {
                    collect_keys(val, out);
                }
            }
        }
        yaml_serde::Value::Sequence(s) => s.iter().for_each(|x| collect_keys(x, out)),
        _ => {}
    }
}

fn file_content(entry: &yaml_serde::Value) -> Option<String> {
    let content = entry.get("content")?.as_str()?;
    let enc = entry.get("encoding").and_then(|e| e.as_str()).unwrap_or("");
    match enc {
        "b64" | "base64" => base64::engine::general_purpose::STANDARD
            .decode(content.split_whitespace().collect::<String>())
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        "" | "text/plain" => Some(content.to_string()),
        _ => None,
    }
}

/// A `write_files` entry holding a dropbear ed25519 key file (`encoding: b64`), as the
/// OpenSSH PEM the simulated sshd loads.
fn dropbear_key_pem(entry: &yaml_serde::Value) -> Option<String> {
    use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
    let content = entry.get("content")?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(content.split_whitespace().collect::<String>())
        .ok()?;
    let (seed, public) = crate::secrets::dropbear::decode_ed25519(&bytes)?;
    let pair = Ed25519Keypair::from_seed(&seed);
    if pair.public.0 != public {
        return None;
    }
    let key = russh::keys::PrivateKey::new(KeypairData::Ed25519(pair), "").ok()?;
    key.to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .ok()
        .map(|p| p.to_string())
}

fn token_in(text: &str) -> Option<String> {
    for line in text.lines() {
        let l = line.trim();
        if let Some(t) = l.strip_prefix("token:") {
            return Some(t.trim().trim_matches(|c| c == '"' || c == '\'').to_string());
        }
        if let Some(i) = l.find("K3S_TOKEN=") {
            let t = &l[i + "K3S_TOKEN=".len()..];
            let t = t.split_whitespace().next().unwrap_or("");
            return Some(t.trim_matches(|c| c == '"' || c == '\'').to_string());
        }
    }
    None
}

fn role_in(text: &str) -> Option<bool> {
    if text.contains("K3S_EXEC=\"server") || text.contains("K3S_EXEC=server") {
        Some(true)
    } else if text.contains("K3S_EXEC=\"agent") || text.contains("K3S_EXEC=agent") {
        Some(false)
    } else {
        None
    }
}

/// Reads a `#cloud-config` user-data document. Unparseable data gives an empty seed.
pub fn parse(meta: &str, user: &str) -> Seed {
    let mut seed = Seed {
        hostname: meta_hostname(meta),
        ..Seed::default()
    };
    let Ok(v) = yaml_serde::from_str::<yaml_serde::Value>(user) else {
        return seed;
    };
    collect_keys(&v, &mut seed.authorized_keys);
    if let Some(files) = v.get("write_files").and_then(|w| w.as_sequence()) {
        for f in files {
            let path = f.get("path").and_then(|p| p.as_str()).unwrap_or("");
            if path.ends_with("dropbear_ed25519_host_key") {
                // A dropbear role's key (binary, base64): the same key, as OpenSSH PEM.
                if let Some(pem) = dropbear_key_pem(f) {
                    seed.host_private_key = Some(pem);
                }
                continue;
            }
            let Some(content) = file_content(f) else {
                continue;
            };
            if path.ends_with("ssh_host_ed25519_key") {
                seed.host_private_key = Some(content);
            } else if path.contains("rancher/k3s/config.yaml") || path.contains("conf.d/k3s") {
                if seed.k3s_token.is_none() {
                    seed.k3s_token = token_in(&content);
                }
                if seed.k3s_server.is_none() {
                    seed.k3s_server = role_in(&content);
                }
            }
        }
    }
    // runcmd / anything else: look for K3S_TOKEN= and K3S_EXEC= in the whole text.
    if seed.k3s_token.is_none() {
        seed.k3s_token = user
            .lines()
            .find(|l| l.contains("K3S_TOKEN="))
            .and_then(token_in);
    }
    if seed.k3s_server.is_none() {
        seed.k3s_server = role_in(user);
    }
    seed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_files_and_role() {
        let user = r#"#cloud-config
users:
  - name: lab
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3Nza operator
write_files:
  - path: /etc/ssh/ssh_host_ed25519_key
    permissions: "0600"
    content: |
      -----BEGIN OPENSSH PRIVATE KEY-----
      abc
      -----END OPENSSH PRIVATE KEY-----
  - path: /etc/rancher/k3s/config.yaml
    encoding: b64
    content: dG9rZW46IEsxMGFiYzo6c2VydmVyOnh5Cg==
  - path: /etc/conf.d/k3s
    content: |
      K3S_EXEC="agent"
"#;
        let s = parse("instance-id: x\nhostname: node-1\n", user);
        assert_eq!(s.hostname.as_deref(), Some("node-1"));
        assert_eq!(s.authorized_keys, vec!["ssh-ed25519 AAAAC3Nza operator"]);
        assert!(s.host_private_key.unwrap().contains("BEGIN OPENSSH"));
        assert_eq!(s.k3s_token.as_deref(), Some("K10abc::server:xy"));
        assert_eq!(s.k3s_server, Some(false));
    }

    #[test]
    fn reads_a_dropbear_roles_key_as_the_same_key() {
        use base64::Engine as _;
        use russh::keys::ssh_key::private::Ed25519Keypair;
        let seed = [7u8; 32];
        let public = Ed25519Keypair::from_seed(&seed).public.0;
        let b64 = base64::engine::general_purpose::STANDARD
            .encode(crate::secrets::dropbear::encode_ed25519(&seed, &public));
        let user = format!(
            "#cloud-config\nwrite_files:\n  - path: /etc/dropbear/dropbear_ed25519_host_key\n    encoding: b64\n    content: \"{b64}\"\n"
        );
        let pem = parse("", &user).host_private_key.unwrap();
        let key = russh::keys::PrivateKey::from_openssh(&pem).unwrap();
        let russh::keys::ssh_key::public::KeyData::Ed25519(k) = key.public_key().key_data() else {
            panic!("not ed25519");
        };
        assert_eq!(k.0, public);
    }

    #[test]
    fn garbage_gives_empty_seed() {
        let s = parse(": :", "\u{0}not yaml: [");
        assert!(s.hostname.is_none() && s.authorized_keys.is_empty());
    }
}
