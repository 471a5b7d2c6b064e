//! Arbitrary bytes into the scenario loader: it must answer `Ok` or a `LoadError`, never panic,
//! overflow its stack or hang. `file:` references resolve next to the test fixtures, so
//! `file: pod.yaml` reads a real file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let origin = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/good/fuzz.yaml"));
    match scenario::load::load_str(&text, origin) {
        Ok(scenarios) => {
            // What loads can be written down (the record of a run serialises it).
            for s in &scenarios {
                let _ = serde_json::to_string(s);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
