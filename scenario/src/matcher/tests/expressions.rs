//! Refused expressions and syntax, limits, odd and generated inputs, messages.

use serde_json::Map;

use super::*;
use crate::matcher::syntax::{Body, parse_syntax};

#[test]
fn bad_expressions_are_refused_with_their_path() {
    let expected = json!({"status": {"(conditions[?type == 'Ready')": [{"status": "True"}]}});
    let err = check_expressions(&expected).unwrap_err();
    match &err {
        Error::Expression {
            path,
            expression,
            message,
        } => {
            assert_eq!(path, "status.(conditions[?type == 'Ready')");
            assert_eq!(expression, "(conditions[?type == 'Ready')");
            assert!(message.starts_with("Parse error"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("status.(conditions[?type == 'Ready'): bad expression")
    );
    // mismatches refuses too, even where matching would not reach
    assert!(mismatches(&json!({}), &expected).is_err());
    assert!(matches(&json!({}), &expected).is_err());
    // in a value, inside an array
    let expected = json!({"spec": {"containers": [{"name": "(foo[)"}]}});
    match check_expressions(&expected).unwrap_err() {
        Error::Expression { path, .. } => assert_eq!(path, "spec.containers[0].name"),
        other => panic!("{other:?}"),
    }
    // an unknown function
    let err = check_expressions(&json!({"(lookup('v1', 'Pod'))": 1})).unwrap_err();
    assert!(
        err.to_string()
            .contains("no such JMESPath function: lookup()"),
        "{err}"
    );
    // jmespath-community syntax standard JMESPath lacks
    for bad in ["(a + b)", "($x)", "(replicas > 3)", "( )", "(a[::0])"] {
        assert!(
            matches!(
                check_expressions(&json!({ bad: 1 })),
                Err(Error::Expression { .. })
            ),
            "{bad}"
        );
    }
    // the root
    let err = check_expressions(&json!("(a[)")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("<root>: bad expression \"(a[)\""),
        "{err}"
    );
    assert!(check_expressions(&pod()).is_ok());
    assert!(check_expressions(&yaml(READY)).is_ok());
}

#[test]
fn unsupported_syntax_is_refused() {
    let cases = [
        json!({"(bar + bat)->sum": {"($sum)": 10}}),
        json!({"(a) -> b": 1}),
        json!({"~index.(containers)": {"name": "x"}}),
        json!({"(cel;object.spec)": 1}),
        json!({"(python;x)": 1}),
        json!({"a": "~.(x)"}),
        json!({"a": "x -> y"}),
        json!({"a": "(cel;x)"}),
    ];
    for case in cases {
        match check_expressions(&case) {
            Err(Error::Unsupported { .. }) => {}
            other => panic!("{case}: {other:?}"),
        }
    }
    let err = check_expressions(&json!({"spec": {"~i.(containers)": 1}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.~i.(containers): \"~i.(containers)\": a named foreach (`~i.`) binds `$i`, and \
         expressions here have no variables; write `~.`"
    );
}

#[test]
fn syntax_follows_kyverno_json_regexes() {
    let s = parse_syntax("~.(containers)");
    assert_eq!(s.foreach, Some(None));
    assert_eq!(
        s.body,
        Body::Expression {
            engine: None,
            statement: "containers"
        }
    );
    let s = parse_syntax("~idx.\\baz\\");
    assert_eq!(s.foreach, Some(Some("idx")));
    assert_eq!(s.body, Body::Escaped("baz"));
    let s = parse_syntax("(bar + bat)->sum");
    assert_eq!(s.binding, Some("sum"));
    assert_eq!(
        s.body,
        Body::Expression {
            engine: None,
            statement: "bar + bat"
        }
    );
    // the greedy prefix keeps the space, so this is no longer an expression upstream either
    let s = parse_syntax("(a) -> b");
    assert_eq!(s.binding, Some("b"));
    assert_eq!(s.body, Body::Plain("(a) "));
    assert_eq!(
        parse_syntax("(cel;x)").body,
        Body::Expression {
            engine: Some("cel"),
            statement: "x"
        }
    );
    assert_eq!(
        parse_syntax("(a;)").body,
        Body::Expression {
            engine: None,
            statement: "a;"
        }
    );
    assert_eq!(parse_syntax("()").body, Body::Plain("()"));
    assert_eq!(parse_syntax("(").body, Body::Plain("("));
    assert_eq!(parse_syntax("(a").body, Body::Plain("(a"));
    assert_eq!(parse_syntax("(a\nb)").body, Body::Plain("(a\nb)"));
    assert_eq!(parse_syntax("\\\\").body, Body::Plain("\\\\"));
    assert_eq!(parse_syntax("~x").foreach, None);
    assert_eq!(parse_syntax("->").binding, None);
    assert_eq!(parse_syntax("a->b").binding, Some("b"));
}

#[test]
fn odd_keys_are_plain_fields() {
    for key in [
        "(",
        "()",
        "(a",
        ")",
        "a)",
        "~",
        "~x",
        "->",
        "-> ",
        "ünï(κ)",
        "(\n)",
        "",
        " ",
        "🙂",
    ] {
        let actual = json!({ key: 1 });
        let expected = json!({ key: 1 });
        assert!(matches(&actual, &expected).unwrap(), "{key:?}");
        assert_eq!(
            found(&json!({}), &expected),
            one(key, "field missing"),
            "{key:?}"
        );
    }
    // unicode inside an expression
    let actual = json!({"ключ": {"ü": "ß"}});
    assert!(matches(&actual, &json!({"(\"ключ\".\"ü\")": "ß"})).unwrap());
    assert!(matches(&actual, &json!({"(ключ)": 1})).is_err());
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let mut expected = json!(1);
    for _ in 0..1000 {
        expected = json!({ "a": expected });
    }
    assert!(matches!(
        check_expressions(&expected),
        Err(Error::TooDeep { .. })
    ));
    assert!(matches!(
        mismatches(&json!({}), &expected),
        Err(Error::TooDeep { .. })
    ));
    let _ = diff(&json!({}), &expected);

    // built without json!, which serializes its arguments recursively
    let deep = || {
        let mut value = json!(1);
        for _ in 0..2000 {
            value = Value::Array(vec![value]);
        }
        let mut map = Map::new();
        map.insert("a".to_owned(), value);
        Value::Object(map)
    };
    let got = found(&deep(), &json!({"(a)": 1}));
    assert_eq!(got.len(), 1);
    assert!(got[0].1.contains("not evaluated"), "{}", got[0].1);
    assert!(!matches(&deep(), &json!({"a": "(`1`)"})).unwrap());
    assert!(!matches(&deep(), &json!({"a": [[1]]})).unwrap());
    assert!(!matches(&deep(), &json!({"a": "(@)"})).unwrap());
    let _ = diff(&deep(), &json!({"a": [1]}));
    let _ = diff(&deep(), &json!({"a": 1}));
    let _ = diff(&deep(), &json!({"a": "(@)"}));

    // expressions that would recurse deeply in the parser or interpreter
    let parens = format!("({}a{})", "(".repeat(5000), ")".repeat(5000));
    assert!(check_expressions(&json!({ parens: 1 })).is_err());
    let nots = format!("({}a)", "!".repeat(60));
    assert!(check_expressions(&json!({ nots: true })).is_ok());
    let chain = format!("({})", vec!["a"; 2000].join("."));
    assert!(check_expressions(&json!({ chain: 1 })).is_err());
    let chain = format!("({})", vec!["a"; 50].join("."));
    assert!(check_expressions(&json!({ chain: 1 })).is_ok());
    let long = format!("({})", "a".repeat(10_000));
    assert!(check_expressions(&json!({ long: 1 })).is_err());
    let brackets = format!("(a{})", "[0]".repeat(60));
    assert!(matches(&json!({"a": 1}), &json!({ brackets: null })).unwrap());
}

#[test]
fn odd_slices_do_not_panic() {
    let actual = json!({"a": [1, 2, 3]});
    for expr in [
        "(a[1::2147483647])",
        "(a[::-2147483647])",
        "(a[2147483647:])",
        "(a[-2147483647])",
    ] {
        let _ = mismatches(&actual, &json!({ expr: [] }));
    }
    assert!(check_expressions(&json!({"(a[1::2147483647])": 1})).is_err());
    assert!(matches(&actual, &json!({"(a[::-1])": [3, 2, 1]})).unwrap());
    assert!(matches(&actual, &json!({"(a[-1])": 3})).unwrap());
}

/// Many generated keys and values over a small alphabet full of syntax: no panic.
#[test]
fn generated_inputs_do_not_panic() {
    const ALPHABET: &[&str] = &[
        "(", ")", "[", "]", "{", "}", "~", ".", "\\", "-", ">", ";", "?", "@", "`", "'", "\"", "*",
        "|", "&", "!", "=", "<", ":", ",", "$", " ", "\n", "a", "b", "0", "1", "-1", "ü", "🙂",
        "jp;", "cel;", "length(", "[?", "==", "->", "~.",
    ];
    let actual = json!({"a": [1, {"b": "x"}, null], "b": {"c": true}, "": 0, "(a)": 1});
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let len = (next() % 12) as usize;
        let text: String = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        for expected in [
            json!({ text.clone(): 1 }),
            json!({ "a": text.clone() }),
            json!({ text.clone(): { "b": text.clone() } }),
            json!([text.clone()]),
            json!({ format!("({text})"): [text.clone()] }),
        ] {
            let _ = check_expressions(&expected);
            let _ = mismatches(&actual, &expected);
            let _ = diff(&actual, &expected);
        }
    }
}

#[test]
fn mismatch_and_error_display() {
    let m = Mismatch {
        path: "status.phase".to_owned(),
        message: "field missing".to_owned(),
    };
    assert_eq!(m.to_string(), "status.phase: field missing");
    let m = Mismatch {
        path: String::new(),
        message: "expected a value, found null".to_owned(),
    };
    assert_eq!(m.to_string(), "<root>: expected a value, found null");
    let long = "x".repeat(500);
    let got = found(&json!({ "a": long }), &json!({"a": "y"}));
    assert!(
        got[0].1.ends_with('…') && got[0].1.chars().count() < 230,
        "{}",
        got[0].1
    );
}
