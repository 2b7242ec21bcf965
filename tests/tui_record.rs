//! The recording the screen snapshots replay (`tests/golden/demo-lab.jsonl`, see
//! tests/tui_support/recording.rs) is what pxelab produces today: a fresh run of the
//! demo lab through the real servers and watcher tells each machine's story the same
//! way (states reached, final state, failure in words). When the product changes what
//! it says, this fails; rewrite the recording with
//! `PXELAB_RECORD_GOLDEN=1 cargo test --test tui_record`, review the snapshot diffs
//! (`cargo insta review`), and run scripts/screenshots.sh.

mod tui_support;

use std::time::Duration;

use tui_support::recording;

#[test]
fn the_recording_is_what_a_fresh_run_of_the_demo_lab_produces() {
    let (lab_text, events) = recording::run_demo_lab(10.0, Duration::from_secs(120));
    let fresh = tui_support::TestLab::new(&lab_text);
    recording::replay(&fresh.engine, &events);
    let fresh_story = recording::stories(&fresh.engine);
    if std::env::var_os("PXELAB_RECORD_GOLDEN").is_some() {
        recording::save(&lab_text, &events);
        eprintln!(
            "rewrote tests/golden/demo-lab.{{yaml,jsonl}}: {} events",
            events.len()
        );
    }
    let (golden_lab, golden_events) = recording::load();
    let golden = tui_support::TestLab::new(&golden_lab);
    recording::replay(&golden.engine, &golden_events);
    let golden_story = recording::stories(&golden.engine);
    assert_eq!(
        fresh_story, golden_story,
        "the demo lab tells another story than tests/golden/demo-lab.jsonl: rewrite it (see the module doc)"
    );
    // The run really settled: five Ready, node-5 failed in words, the unknown one held.
    let all = golden_story.join("\n");
    assert_eq!(all.matches("now ready").count(), 5, "{all}");
    assert!(all.contains("now failed") && all.contains("token"), "{all}");
    assert!(all.contains("now held"), "{all}");
}
