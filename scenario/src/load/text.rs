//! Text for messages: field paths, lists, "did you mean", DNS labels and file-name wildcards.

/// `parent.key`, or `parent["odd key"]` for keys that are not plain words.
pub(crate) fn child(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// `a`, `a and b`, `a, b and c`.
pub(super) fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A close allowed name, for "did you mean".
pub(super) fn suggest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    allowed
        .iter()
        .copied()
        .filter(|a| a.to_ascii_lowercase() == lower || edit_distance(&lower, &a.to_ascii_lowercase()) <= 2)
        .min_by_key(|a| edit_distance(&lower, &a.to_ascii_lowercase()))
        .filter(|_| key.chars().count() > 2)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `a` + `b.c` → `a.b.c` (`b` empty → `a`).
pub(super) fn join_path(base: &str, sub: &str) -> String {
    if sub.is_empty() {
        base.to_string()
    } else if base.is_empty() {
        sub.to_string()
    } else if sub.starts_with('[') {
        format!("{base}{sub}")
    } else {
        format!("{base}.{sub}")
    }
}

/// Why `s` is not a DNS label, if it is not one.
pub(crate) fn dns_label_problem(s: &str) -> Option<&'static str> {
    const RULE: &str =
        "use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";
    if s.is_empty() || s.len() > 63 {
        return Some(RULE);
    }
    let ok_chars = s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ends_ok = !s.starts_with('-') && !s.ends_with('-');
    if ok_chars && ends_ok { None } else { Some(RULE) }
}

/// `*` any run of characters, `?` one character.
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("*.yaml", "a.yaml"));
        assert!(wildcard("0?-*.yaml", "01-pod.yaml"));
        assert!(!wildcard("*.yaml", "a.yml"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b", "acbd"));
        assert!(wildcard("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn paths() {
        assert_eq!(child("", "spec"), "spec");
        assert_eq!(child("spec", "steps"), "spec.steps");
        assert_eq!(index("spec.steps", 2), "spec.steps[2]");
        assert_eq!(child("metadata.labels", "app.kubernetes.io/name"), "metadata.labels[\"app.kubernetes.io/name\"]");
        assert_eq!(join_path("a.resource", "metadata.name"), "a.resource.metadata.name");
        assert_eq!(join_path("a", ""), "a");
        assert_eq!(and_list(&["apply", "assert"]), "apply and assert");
        assert_eq!(and_list(&["a", "b", "c"]), "a, b and c");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("aply", &["apply", "assert"]), Some("apply"));
        assert_eq!(suggest("holdfor", &["holdFor", "timeout"]), Some("holdFor"));
        assert_eq!(suggest("zzzzzz", &["apply"]), None);
    }

    #[test]
    fn labels() {
        assert!(dns_label_problem("node-a").is_none());
        assert!(dns_label_problem("Node").is_some());
        assert!(dns_label_problem("-a").is_some());
        assert!(dns_label_problem("").is_some());
        assert!(dns_label_problem(&"a".repeat(64)).is_some());
    }
}
