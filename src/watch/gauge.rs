//! Memory and root-filesystem gauges read over the watcher's SSH session: the seed
//! boards have 2 GB and run from RAM (root is a tmpfs), so memory and disk are the same
//! budget and running out of either kills k3s without a k3s line to say why.

use crate::engine::event::Gauge;

/// Below this share free, the node gets one `resources-low` warning per boot and kind.
pub const LOW_PCT: u64 = 10;

/// `MemTotal` and `MemAvailable` (kB) from `/proc/meminfo`.
pub fn meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

/// Size and available (kB) of `/` from `df -k /` (busybox or coreutils).
pub fn df(text: &str) -> Option<(u64, u64)> {
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let f: Vec<&str> = last.split_whitespace().collect();
    // Filesystem 1K-blocks Used Available Use% Mounted-on (a long device name may
    // wrap onto its own line: count from the end).
    if f.len() < 5 || f.last() != Some(&"/") {
        return None;
    }
    let n = f.len();
    Some((f[n - 5].parse().ok()?, f[n - 3].parse().ok()?))
}

/// The gauge, from both outputs.
pub fn read(meminfo_out: &str, df_out: &str) -> Option<Gauge> {
    let (mem_total_kb, mem_avail_kb) = meminfo(meminfo_out)?;
    let (root_total_kb, root_avail_kb) = df(df_out)?;
    Some(Gauge {
        mem_total_kb,
        mem_avail_kb,
        root_total_kb,
        root_avail_kb,
    })
}

/// Which budgets are low: (`memory`|`root`, per cent free, kB free).
pub fn low(g: &Gauge) -> Vec<(&'static str, u64, u64)> {
    let mut out = Vec::new();
    for (what, total, avail) in [
        ("memory", g.mem_total_kb, g.mem_avail_kb),
        ("root", g.root_total_kb, g.root_avail_kb),
    ] {
        if total > 0 && avail * 100 < total * LOW_PCT {
            out.push((what, avail * 100 / total, avail));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:        2009876 kB\nMemFree:          123456 kB\nMemAvailable:     150000 kB\nBuffers:            1024 kB\n";
    const DF_BUSYBOX: &str = "Filesystem           1K-blocks      Used Available Use% Mounted on\ntmpfs                  1004938    341679    663259  34% /\n";
    const DF_WRAPPED: &str = "Filesystem     1K-blocks   Used Available Use% Mounted on\n/dev/mapper/very-long-volume-name\n                 1000000 960000     40000  96% /\n";

    #[test]
    fn reads_real_outputs() {
        assert_eq!(meminfo(MEMINFO), Some((2_009_876, 150_000)));
        assert_eq!(df(DF_BUSYBOX), Some((1_004_938, 663_259)));
        assert_eq!(df(DF_WRAPPED), Some((1_000_000, 40_000)));
        assert_eq!(meminfo("MemTotal: 1 kB\n"), None);
        assert_eq!(df("df: /: No such file or directory\n"), None);
    }

    #[test]
    fn low_below_ten_per_cent() {
        let g = read(MEMINFO, DF_WRAPPED).unwrap();
        assert_eq!(low(&g), vec![("memory", 7, 150_000), ("root", 4, 40_000)]);
        let ok = read(MEMINFO.replace("150000", "1500000").as_str(), DF_BUSYBOX).unwrap();
        assert!(low(&ok).is_empty());
    }
}
