//! lab.yaml parsing and validation (`pxelab check`): any text gets a report, never a
//! panic; every problem has a location inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("/nonexistent-fuzz-dir/lab.yaml");
    let report = pxelab::config::check_text(path, text);
    for p in &report.problems {
        let _ = p.to_string();
    }
    if let Some(lab) = &report.lab {
        let _ = pxelab::cli::plan(lab);
    }
});
