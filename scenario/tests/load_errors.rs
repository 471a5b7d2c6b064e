//! Every fixture under tests/data/bad/ is refused with exactly the message its first line
//! (`# expect: …`) gives.

use std::path::{Path, PathBuf};

use scenario::load;

fn bad_fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("tests/data/bad")
        .expect("tests/data/bad")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn expected(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("fixture");
    let first = text.lines().next().unwrap_or_default();
    first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{}: first line must be `# expect: …`", path.display()))
        .to_string()
}

#[test]
fn every_bad_fixture_is_refused_with_its_message() {
    let files = bad_fixtures();
    assert!(files.len() > 30, "{} fixtures", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let want = expected(path);
        match load::load_file(path) {
            Ok(s) => failures.push(format!("{}: loaded {} scenario(s), want: {want}", path.display(), s.len())),
            Err(e) => {
                let got = e.to_string();
                if got != want {
                    failures.push(format!("{}:\n  got:  {got}\n  want: {want}", path.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
