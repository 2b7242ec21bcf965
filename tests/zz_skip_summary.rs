//! The last integration test of a `cargo test` run (cargo runs test binaries in name
//! order): lists every test of this run that skipped, why, and the `apt-get install`
//! that would let it run. A passing test's output is captured by libtest, so without
//! this list a skip looks like a pass. See tests/common/skips.rs for how the list is
//! kept to this run.

mod common;

use common::skips;

#[test]
fn list_what_this_run_skipped() {
    let skipped = skips::this_run();
    if common::in_ci() {
        // Under PXELAB_CI a missing requirement fails its test instead of skipping.
        assert!(
            skipped.is_empty(),
            "PXELAB_CI is set but tests skipped: {skipped:?}"
        );
        skips::say("pxelab skip summary: PXELAB_CI is set, no test skipped.\n");
        return;
    }
    if skipped.is_empty() {
        skips::say("pxelab skip summary: no test skipped in this run.\n");
        return;
    }
    let mut text = format!(
        "\npxelab skip summary: {} test(s) skipped in this run (listed in {}):\n",
        skipped.len(),
        skips::summary_file().display()
    );
    for s in &skipped {
        text.push_str(&format!(
            "  {}: needs {} ({})\n",
            s.name(),
            s.what,
            s.remedy
        ));
    }
    let mut packages: Vec<&str> = skipped
        .iter()
        .filter_map(|s| s.package.as_deref())
        .collect();
    packages.sort_unstable();
    packages.dedup();
    if !packages.is_empty() {
        text.push_str(&format!(
            "To run them: apt-get install -y {}\n",
            packages.join(" ")
        ));
    }
    let mut other: Vec<&str> = skipped
        .iter()
        .filter(|s| s.package.is_none())
        .map(|s| s.remedy.as_str())
        .collect();
    other.sort_unstable();
    other.dedup();
    for r in other {
        text.push_str(&format!("and: {r}\n"));
    }
    text.push_str("(PXELAB_CI=1 turns every skip into a failure.)\n");
    skips::say(&text);
}
