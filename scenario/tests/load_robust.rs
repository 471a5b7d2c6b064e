//! The loader never panics: random bytes, mutated fixtures and hostile YAML all end in
//! `Ok` or a `LoadError` with a position. Deterministic (a fixed-seed PRNG), no extra crates;
//! `scenario/fuzz` does the same with libFuzzer when cargo-fuzz is at hand.

use std::path::{Path, PathBuf};

use scenario::load::{LoadError, load_str};

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Bits of YAML and of the scenario format that mutations splice in.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ": ",
    "- ",
    "\n",
    "\n  ",
    "\n- ",
    "\t",
    "\"",
    "'",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "? ",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "!!str ",
    "!tag ",
    "|\n",
    ">-\n",
    "~",
    "null",
    "true",
    "0x1F",
    "1e999",
    "-1s",
    "0s",
    "1.5h",
    "99999999999999999999999h",
    "(",
    ")",
    "(foo[",
    "$",
    "\\",
    "\u{0}",
    "\u{feff}",
    "µs",
    "apply",
    "assert",
    "fault",
    "heal",
    "file",
    "resource",
    "nodes",
    "node-a",
    "cp",
    "partition",
    "link",
    "between",
    "runtime",
    "containerd",
    "holdFor",
    "timeout",
    "duration",
    "steps",
    "try",
    "catch",
    "finally",
    "cleanup",
    "events",
    "wait",
    "for",
    "jsonPath",
    "condition",
    "deletion",
    "count",
    "minCount",
    "apiServer",
    "code",
    "latency",
    "proxy",
    "bindings",
    "pod.yaml",
    "pod-assert.yaml",
    "*.yaml",
    "/",
    "..",
    "0",
    "9",
    "8",
    "-",
    "world",
    "kind: Test",
    "apiVersion: chainsaw.kyverno.io/v1alpha1",
    "($namespace)",
    "namespace",
    "http://x/y.yaml",
    "traffic",
    "capture",
    "hosts",
    "client",
    "from",
    "to",
    "service",
    "nodePort",
    "pod",
    "port",
    "connections",
    "expect",
    "successRate",
    "minEndpoints",
    "refused",
    "- traffic: {to: {service: {name: web, port: 80}}, expect: {successRate: 100}}\n",
    "- capture: {hosts: [node-a, client, cp]}\n",
    "30080",
    "65536",
    "99.5",
];

fn fixtures() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for dir in ["tests/data/good", "tests/data/bad", "tests/data/chainsaw", "tests/data/chainsaw/deployment"] {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
        paths.sort();
        for p in paths {
            if let Ok(text) = std::fs::read_to_string(&p) {
                out.push((p, text));
            }
        }
    }
    assert!(out.len() > 40, "{} fixtures", out.len());
    out
}

fn mutate(rng: &mut Rng, text: &str, other: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(9) {
            0 => {
                if at < bytes.len() {
                    bytes[at] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let end = (at + rng.below(16)).min(bytes.len());
                bytes.drain(at..end);
            }
            2 | 3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                bytes.splice(at..at, token.bytes());
            }
            4 => {
                // Duplicate a line.
                let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
                let i = rng.below(lines.len());
                let line = lines[i].to_vec();
                bytes.splice(at..at, line.into_iter().chain([b'\n']));
            }
            5 => {
                // Splice in a piece of another fixture.
                let o = other.as_bytes();
                let start = rng.below(o.len());
                let end = (start + rng.below(200)).min(o.len());
                bytes.splice(at..at, o[start..end].iter().copied());
            }
            6 => bytes.truncate(at),
            7 => {
                // Re-indent a line.
                let spaces = rng.below(6);
                bytes.splice(at..at, std::iter::repeat_n(b' ', spaces));
            }
            _ => {
                let b = rng.next() as u8;
                bytes.insert(at.min(bytes.len()), b);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check(text: &str, origin: &Path) -> Result<usize, LoadError> {
    match load_str(text, origin) {
        Ok(s) => Ok(s.len()),
        Err(e) => {
            // Every error renders, and a position in the file has a line when it has a column.
            let shown = e.to_string();
            assert!(!shown.is_empty());
            assert!(e.line > 0 || e.column == 0, "{shown}");
            assert!(!e.message.is_empty(), "{shown}");
            Err(e)
        }
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let fixtures = fixtures();
    let mut rng = Rng(0x5EED_0001);
    let (mut ok, mut refused) = (0usize, 0usize);
    for _ in 0..6000 {
        let (path, text) = &fixtures[rng.below(fixtures.len())];
        let other = &fixtures[rng.below(fixtures.len())].1;
        let input = mutate(&mut rng, text, other);
        match check(&input, path) {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
    }
    // Both outcomes happen: the mutations are neither all fatal nor all harmless.
    assert!(ok > 20 && refused > 1000, "ok {ok}, refused {refused}");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x5EED_0002);
    let origin = Path::new("tests/data/good/random.yaml");
    for _ in 0..4000 {
        let len = rng.below(300);
        let alphabet = rng.below(3);
        let bytes: Vec<u8> = (0..len)
            .map(|_| match alphabet {
                // Anything.
                0 => rng.next() as u8,
                // YAML punctuation and letters.
                1 => {
                    const PUNCT: &[u8] = b"{}[]:,-?&*!|>'\"#%@` \n\tabcs0129.";
                    PUNCT[rng.below(PUNCT.len())]
                }
                // Printable ASCII.
                _ => 0x20 + (rng.next() % 95) as u8,
            })
            .collect();
        let _ = check(&String::from_utf8_lossy(&bytes), origin);
    }
}

#[test]
fn token_soup_never_panics() {
    let mut rng = Rng(0x5EED_0003);
    let origin = Path::new("tests/data/good/soup.yaml");
    for _ in 0..4000 {
        let mut text = String::from("apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nspec:\n");
        for _ in 0..rng.below(60) {
            text.push_str(TOKENS[rng.below(TOKENS.len())]);
            if rng.below(3) == 0 {
                text.push(' ');
            }
        }
        let _ = check(&text, origin);
    }
}

#[test]
fn hostile_yaml_is_refused_with_a_position() {
    let origin = Path::new("hostile.yaml");
    let deep_flow = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_block: String = (0..2000).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
    let laughs = {
        let mut s = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        let mut prev = 'a';
        for c in 'b'..='j' {
            s.push_str(&format!(
                "{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
            prev = c;
        }
        s
    };
    let many_docs = "---\n".repeat(100_000);
    let long_line = format!("apiVersion: {}", "x".repeat(1_000_000));
    let many_keys: String = (0..50_000).map(|i| format!("k{i}: v\n")).collect();
    let deep_spec = format!(
        "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: s}}\nspec:\n  steps:\n  - try:\n    - apply: {{resource: {}1{}}}\n",
        "{a: ".repeat(60),
        "}".repeat(60)
    );
    let deep_assert = |levels: usize| {
        format!(
            "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: s}}\nspec:\n  steps:\n  - try:\n    - assert: {{resource: {{apiVersion: v1, kind: Pod, x: {}1{}}}}}\n",
            "{(a): ".repeat(levels),
            "}".repeat(levels)
        )
    };
    let cases = [
        deep_flow,
        deep_block,
        laughs,
        many_docs,
        long_line,
        many_keys,
        deep_spec,
        "\u{feff}apiVersion: v1".to_string(),
        "\0".to_string(),
        "a: !!binary AAAA".to_string(),
        "a: !!binary \"not base64\"".to_string(),
        "a: !!int x".to_string(),
        "? [a, b]\n: c".to_string(),
        "*a".to_string(),
        "&a [*a]".to_string(),
        "<<: 1".to_string(),
        "%TAG ! tag:x,2000:\n--- !x a".to_string(),
        "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nspec:\n  steps:\n  - try:\n    - apply: {file: /dev/zero}\n"
            .to_string(),
        "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nspec:\n  steps:\n  - try:\n    - apply: {file: /}\n"
            .to_string(),
        "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nspec:\n  steps:\n  - try:\n    - sleep: {duration: 99999999999999999999999999999h}\n"
            .to_string(),
    ];
    for (i, text) in cases.iter().enumerate() {
        let started = std::time::Instant::now();
        let result = check(text, origin);
        assert!(result.is_err(), "case {i} loaded");
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "case {i} took {:?}", started.elapsed());
    }
    // Deep, but within the budget: loads (and the matcher checks every level).
    let all = check(&deep_assert(50), origin).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all, 1);
    let e = check(&deep_assert(60), origin).unwrap_err();
    assert!(e.message.contains("limits breached"), "{e}");
}

#[test]
fn load_file_takes_any_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x5EED_0004);
    let path = dir.path().join("x.yaml");
    for _ in 0..200 {
        let bytes: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        if let Err(e) = scenario::load::load_file(&path) {
            assert!(!e.to_string().is_empty());
        }
    }
    std::fs::write(&path, b"apiVersion: \xff\xfe\n").expect("write");
    let e = scenario::load::load_file(&path).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.message.contains("not UTF-8"), "{e}");
}
