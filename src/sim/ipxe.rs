//! Reads an iPXE script the way a simulated iPXE needs to: settings expanded, then either
//! a boot (kernel, initrds, command line) or a chain to another script after a sleep
//! (the wait loop pxelab gives a held machine).

use crate::mac::Mac;

/// What a script tells iPXE to do.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptAction {
    /// `kernel URL args…`, `initrd URL`…, `boot`.
    Boot {
        /// The kernel URL.
        kernel: String,
        /// The words after the kernel URL (the kernel command line).
        cmdline: String,
        /// Initrd URLs, in order.
        initrds: Vec<String>,
    },
    /// `sleep N` then `chain URL` (a wait loop), or a plain chain.
    Chain {
        /// The next script.
        url: String,
        /// Seconds slept before chaining.
        sleep_s: u64,
    },
}

/// Why a script could not be followed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScriptError {
    /// The first line is not `#!ipxe`.
    #[error("not an iPXE script (first line {first:?})")]
    NotIpxe {
        /// The first line.
        first: String,
    },
    /// No kernel and no chain.
    #[error("script neither boots a kernel nor chains")]
    NothingToDo,
}

/// iPXE's settings for one machine (BIOS undionly).
pub fn expand(text: &str, mac: Mac) -> String {
    text.replace("${net0/mac}", &mac.to_string())
        .replace("${mac}", &mac.to_string())
        .replace("${mac:hexhyp}", &mac.hyphenated())
        .replace("${buildarch}", "i386")
        .replace("${platform}", "pcbios")
}

fn strip_options(words: &mut Vec<&str>) {
    while words.first().is_some_and(|w| w.starts_with("--")) {
        words.remove(0);
    }
}

/// Parses a script for `mac`.
pub fn parse(text: &str, mac: Mac) -> Result<ScriptAction, ScriptError> {
    let text = expand(text, mac);
    let first = text.lines().next().unwrap_or("").trim().to_string();
    if !first.starts_with("#!ipxe") {
        return Err(ScriptError::NotIpxe { first });
    }
    let mut kernel: Option<(String, String)> = None;
    let mut initrds = Vec::new();
    let mut sleep_s = 0u64;
    let mut chain: Option<String> = None;
    for raw in text.lines().skip(1) {
        // `cmd || goto x`: the part before `||` is the command.
        let line = raw.split("||").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(':') {
            continue;
        }
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let cmd = words.remove(0);
        match cmd {
            "kernel" | "imgexec" | "linux" => {
                strip_options(&mut words);
                if let Some((url, rest)) = words.split_first() {
                    kernel = Some((url.to_string(), rest.join(" ")));
                }
            }
            "initrd" | "module" | "imgfetch" => {
                strip_options(&mut words);
                if let Some(url) = words.first() {
                    initrds.push(url.to_string());
                }
            }
            "sleep" => {
                sleep_s += words.first().and_then(|w| w.parse().ok()).unwrap_or(0);
            }
            "chain" => {
                strip_options(&mut words);
                if chain.is_none() {
                    chain = words.first().map(|w| w.to_string());
                }
            }
            _ => {}
        }
    }
    if let Some((kernel, cmdline)) = kernel {
        return Ok(ScriptAction::Boot {
            kernel,
            cmdline,
            initrds,
        });
    }
    match chain {
        Some(url) => Ok(ScriptAction::Chain { url, sleep_s }),
        None => Err(ScriptError::NothingToDo),
    }
}

/// The NoCloud seed URL from `ds=nocloud;s=URL` (or `nocloud-net`), when present.
pub fn nocloud_seed(cmdline: &str) -> Option<String> {
    let ds = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ds="))?;
    let mut parts = ds.split(';');
    let name = parts.next()?;
    if name != "nocloud" && name != "nocloud-net" {
        return None;
    }
    parts
        .find_map(|p| p.strip_prefix("s=").or_else(|| p.strip_prefix("seedfrom=")))
        .map(str::to_string)
}

/// The value of a `key=value` kernel parameter.
pub fn param<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac() -> Mac {
        "52:54:00:12:34:56".parse().unwrap()
    }

    #[test]
    fn boot_script() {
        let s = "#!ipxe\nkernel http://1.2.3.4:80/assets/vmlinuz-lts initrd=initramfs-lts ip=dhcp modloop=http://1.2.3.4:80/assets/modloop-lts ds=nocloud;s=http://1.2.3.4:80/nocloud/52:54:00:12:34:56/\ninitrd http://1.2.3.4:80/assets/initramfs-lts\nboot\n";
        match parse(s, mac()).unwrap() {
            ScriptAction::Boot {
                kernel,
                cmdline,
                initrds,
            } => {
                assert_eq!(kernel, "http://1.2.3.4:80/assets/vmlinuz-lts");
                assert_eq!(initrds, vec!["http://1.2.3.4:80/assets/initramfs-lts"]);
                assert_eq!(
                    nocloud_seed(&cmdline).as_deref(),
                    Some("http://1.2.3.4:80/nocloud/52:54:00:12:34:56/")
                );
                assert_eq!(
                    param(&cmdline, "modloop"),
                    Some("http://1.2.3.4:80/assets/modloop-lts")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wait_loop_chains_after_sleep() {
        let s = "#!ipxe\necho waiting\n:again\nsleep 3\nchain --autofree http://h:1/boot.ipxe?mac=${net0/mac} || goto again\n";
        assert_eq!(
            parse(s, mac()).unwrap(),
            ScriptAction::Chain {
                url: "http://h:1/boot.ipxe?mac=52:54:00:12:34:56".to_string(),
                sleep_s: 3
            }
        );
    }

    #[test]
    fn rejects_non_scripts() {
        assert!(matches!(
            parse("<html>", mac()),
            Err(ScriptError::NotIpxe { .. })
        ));
        assert_eq!(
            parse("#!ipxe\necho hi\n", mac()),
            Err(ScriptError::NothingToDo)
        );
    }
}
