//! Query parameters as the kubelet decodes them (Kubernetes' query-parameter conversions).

/// The first value of `name` in `query` (`a=b&c=d`, percent-decoded, `+` as space).
pub fn first(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Every value of `name` in `query`, in order.
pub fn all(query: &str, name: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == name).map(|(_, v)| v.into_owned()).collect()
}

/// A boolean parameter: "0" and "false" (any case) are false, every other value (even an empty
/// one) is true, as Kubernetes' `[]string` → `bool` conversion decodes it.
pub fn boolean(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_takes_the_first_value() {
        let q = "sinceTime=2024-01-02T03%3A04%3A05Z&cmd=ls+-l&x=1&x=2";
        assert_eq!(first(q, "sinceTime").as_deref(), Some("2024-01-02T03:04:05Z"));
        assert_eq!(first(q, "cmd").as_deref(), Some("ls -l"));
        assert_eq!(first(q, "x").as_deref(), Some("1"));
        assert_eq!(all(q, "x"), ["1", "2"]);
        assert_eq!(first(q, "missing"), None);
        assert_eq!(first("", "x"), None);
    }

    #[test]
    fn booleans_as_kubernetes_converts_them() {
        for t in ["true", "True", "1", "", "yes"] {
            assert!(boolean(t), "{t:?}");
        }
        for f in ["false", "FALSE", "0"] {
            assert!(!boolean(f), "{f:?}");
        }
    }
}
