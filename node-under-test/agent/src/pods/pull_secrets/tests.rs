use super::*;

use k8s_openapi::ByteString;

/// `base64("foo:bar")`.
const FOO_BAR: &str = "Zm9vOmJhcg==";

fn secret(kind: Option<&str>, key: &str, value: &[u8]) -> Secret {
    Secret {
        type_: kind.map(str::to_string),
        data: Some([(key.to_string(), ByteString(value.to_vec()))].into()),
        ..Default::default()
    }
}

fn dockercfg(json: &str) -> Secret {
    secret(Some(TYPE_DOCKERCFG), KEY_DOCKERCFG, json.as_bytes())
}

fn dockerconfigjson(json: &str) -> Secret {
    secret(Some(TYPE_DOCKER_CONFIG_JSON), KEY_DOCKER_CONFIG_JSON, json.as_bytes())
}

fn ring(secrets: &[Secret]) -> Keyring {
    keyring(secrets).unwrap()
}

fn cred(username: &str, password: &str) -> Credential {
    Credential { username: username.into(), password: password.into() }
}

/// One `.dockercfg` entry `{"<location>": {"email": …, "auth": base64(foo:bar)}}`, as
/// upstream's keyring tests write them.
fn foo_bar_at(location: &str) -> Keyring {
    ring(&[dockercfg(&format!(r#"{{"{location}": {{"email": "foo@bar.baz", "auth": "{FOO_BAR}"}}}}"#))])
}

/// Upstream's `TestUrlsMatch` (`pkg/credentialprovider/keyring_test.go`).
#[test]
fn urls_match_is_upstreams() {
    let cases = [
        ("*.kubernetes.io", "prefix.kubernetes.io", true),
        ("prefix.*.io", "prefix.kubernetes.io", true),
        ("prefix.kubernetes.*", "prefix.kubernetes.io", true),
        ("*-good.kubernetes.io", "prefix-good.kubernetes.io", true),
        ("*.kubernetes.io/blah", "prefix.kubernetes.io/blah", true),
        ("prefix.*.io/foo", "prefix.kubernetes.io/foo/bar", true),
        ("*.kubernetes.io:1111/blah", "prefix.kubernetes.io:1111/blah", true),
        ("prefix.*.io:1111/foo", "prefix.kubernetes.io:1111/foo/bar", true),
        ("*.kubernetes.io", "kubernetes.io", false),
        ("*.*.kubernetes.io", "prefix.kubernetes.io", false),
        ("*.*.kubernetes.io", "kubernetes.io", false),
        ("kubernetes.io", "kubernetes.com", false),
        ("k*.io", "quay.io", false),
        ("*.kubernetes.io:1234/blah", "prefix.kubernetes.io:1111/blah", false),
        ("prefix.*.io/foo", "prefix.kubernetes.io:1111/foo/bar", false),
    ];
    for (glob, target, want) in cases {
        assert_eq!(urls_match_str(glob.as_bytes(), target.as_bytes()), want, "{glob} vs {target}");
    }
}

/// Upstream's `TestDockerKeyringForGlob`: each key finds `<target>/foo/bar`.
#[test]
fn glob_keys_find_their_images() {
    let cases = [
        ("https://hello.kubernetes.io", "hello.kubernetes.io"),
        ("https://*.docker.io", "prefix.docker.io"),
        ("https://prefix.*.io", "prefix.docker.io"),
        ("https://prefix.docker.*", "prefix.docker.io"),
        ("https://*.docker.io/path", "prefix.docker.io/path"),
        ("https://prefix.*.io/path", "prefix.docker.io/path/subpath"),
        ("https://prefix.docker.*/path", "prefix.docker.io/path"),
        ("https://*.docker.io:8888", "prefix.docker.io:8888"),
        ("https://prefix.*.io:8888", "prefix.docker.io:8888"),
        ("https://prefix.docker.*:8888", "prefix.docker.io:8888"),
        ("https://*.docker.io/path:1111", "prefix.docker.io/path:1111"),
        ("https://*.docker.io/v1/", "prefix.docker.io/path:1111"),
        ("https://*.docker.io/v2/", "prefix.docker.io/path:1111"),
        ("https://prefix.docker.*/path:1111", "prefix.docker.io/path:1111"),
        ("prefix.docker.io:1111", "prefix.docker.io:1111/path"),
        ("*.docker.io:1111", "prefix.docker.io:1111/path"),
    ];
    for (glob, target) in cases {
        let found = foo_bar_at(glob).lookup(&format!("{target}/foo/bar"));
        assert_eq!(found.first(), Some(&cred("foo", "bar")), "{glob} should find {target}");
    }
}

/// Upstream's `TestKeyringMiss`.
#[test]
fn glob_keys_miss_other_images() {
    let cases = [
        ("https://hello.kubernetes.io", "world.mesos.org/foo/bar"),
        ("https://*.docker.com", "prefix.docker.io"),
        ("https://suffix.*.io", "prefix.docker.io"),
        ("https://prefix.docker.c*", "prefix.docker.io"),
        ("https://prefix.*.io/path:1111", "prefix.docker.io/path/subpath:1111"),
        ("suffix.*.io", "prefix.docker.io"),
    ];
    for (glob, lookup) in cases {
        assert_eq!(foo_bar_at(glob).lookup(&format!("{lookup}/foo/bar")), vec![], "{glob} should miss {lookup}");
    }
}

/// Upstream's `TestKeyringMissWithDockerHubCredentials`, `TestKeyringHitWithUnqualifiedDockerHub`,
/// `TestKeyringHitWithUnqualifiedLibraryDockerHub` and `TestKeyringHitWithQualifiedDockerHub`,
/// plus the normalised names the kubelet really looks up.
#[test]
fn docker_hub_credentials_serve_docker_hub_images_only() {
    let hub = foo_bar_at("https://index.docker.io/v1/");
    assert_eq!(hub.lookup("world.mesos.org/foo/bar"), vec![]);
    assert_eq!(hub.lookup("google/docker-registry"), vec![cred("foo", "bar")]);
    assert_eq!(hub.lookup("jenkins"), vec![cred("foo", "bar")]);
    let qualified = hub.lookup("index.docker.io/v1//google/docker-registry");
    assert!(!qualified.is_empty() && qualified.len() <= 2 && qualified[0] == cred("foo", "bar"), "{qualified:?}");
    for image in ["busybox", "user/app:1", "docker.io/library/nginx@sha256:0123"] {
        assert_eq!(hub.lookup(&repo_to_pull(image)), vec![cred("foo", "bar")], "{image}");
    }
    assert_eq!(hub.lookup(&repo_to_pull("quay.io/user/app")), vec![]);
    assert_eq!(hub.lookup(&repo_to_pull("localhost:5000/app")), vec![]);
}

/// A `docker.io` key matches `docker.io/…` directly, so the default-registry fallback is not
/// needed (nor taken) then.
#[test]
fn fallback_only_when_nothing_matched() {
    let both = ring(&[dockercfg(&format!(
        r#"{{"https://index.docker.io/v1/": {{"username": "hub", "password": "h"}}, "docker.io": {{"auth": "{FOO_BAR}"}}}}"#
    ))]);
    assert_eq!(both.lookup("docker.io/library/busybox"), vec![cred("foo", "bar")]);
    assert_eq!(both.lookup("busybox"), vec![cred("hub", "h")]);
}

/// Upstream's `TestIsDefaultRegistryMatch`.
#[test]
fn default_registry_match_is_upstreams() {
    let cases = [
        ("foo/bar", true),
        ("docker.io/foo/bar", true),
        ("index.docker.io/foo/bar", true),
        ("foo", true),
        ("", false),
        ("registry.tld/foo/bar", false),
        ("registry:5000/foo/bar", false),
        ("myhostdocker.io/foo/bar", false),
        ("/foo", false),
    ];
    for (image, want) in cases {
        assert_eq!(is_default_registry_match(image.as_bytes()), want, "{image:?}");
    }
}

/// Upstream's `TestDockerKeyringLookup`: the deeper key first, then the host's.
#[test]
fn more_specific_keys_come_first() {
    let dk = ring(&[dockercfg(
        r#"{"bar.example.com/pong": {"username": "grace", "password": "squash"},
            "bar.example.com": {"username": "ada", "password": "smash"}}"#,
    )]);
    let (ada, grace) = (cred("ada", "smash"), cred("grace", "squash"));
    let cases = [
        ("bar.example.com", vec![ada.clone()]),
        ("bar.example.com/pong", vec![grace.clone(), ada.clone()]),
        ("bar.example.com/ping", vec![ada.clone()]),
        ("bar.example.com/pongz", vec![grace.clone(), ada.clone()]),
        ("bar.example.com/pong/pang", vec![grace.clone(), ada.clone()]),
        ("example.com", vec![]),
        ("foo.example.com", vec![]),
    ];
    for (image, want) in cases {
        assert_eq!(dk.lookup(image), want, "{image}");
    }
}

/// Upstream's `TestIssue3797`, and `/v2/` like `/v1/`: a scheme and a `/v1/` path mean the bare
/// host; any other path stays part of the key.
#[test]
fn v1_and_v2_paths_mean_the_host() {
    for location in ["https://quay.io/v1/", "https://quay.io/v2/", "quay.io/v2/", "http://quay.io/"] {
        let dk = ring(&[dockercfg(&format!(r#"{{"{location}": {{"username": "rex", "password": "tiny arms"}}}}"#))]);
        for image in ["quay.io", "quay.io/foo", "quay.io/foo/bar"] {
            assert_eq!(dk.lookup(image), vec![cred("rex", "tiny arms")], "{location} for {image}");
        }
    }
    let deeper = ring(&[dockercfg(r#"{"https://quay.io/v1/team": {"username": "t", "password": "p"}}"#)]);
    assert_eq!(deeper.lookup("quay.io/team/app"), vec![cred("t", "p")]);
    assert_eq!(deeper.lookup("quay.io/other/app"), vec![]);
    assert_eq!(deeper.index, vec![b"quay.io/team".to_vec()]);
}

/// Ports are compared as strings, absent ≠ present.
#[test]
fn ports_must_be_equal() {
    let dk = ring(&[dockercfg(r#"{"reg.io:5000": {"username": "p", "password": "x"}, "plain.io": {"username": "n", "password": "x"}}"#)]);
    assert_eq!(dk.lookup("reg.io:5000/app"), vec![cred("p", "x")]);
    assert_eq!(dk.lookup("reg.io/app"), vec![]);
    assert_eq!(dk.lookup("reg.io:5001/app"), vec![]);
    assert_eq!(dk.lookup("plain.io:443/app"), vec![]);
    assert_eq!(dk.lookup("plain.io/app"), vec![cred("n", "x")]);
}

/// Globs per label: classes work; `^` (not allowed in a URL host) drops the key, `?` cuts the
/// key at a query, a malformed class matches nothing.
#[test]
fn globs_follow_go_url_and_filepath_rules() {
    let classes = ring(&[dockercfg(r#"{"reg-[0-9].example.com": {"username": "c", "password": "x"}}"#)]);
    assert_eq!(classes.lookup("reg-1.example.com/app"), vec![cred("c", "x")]);
    assert_eq!(classes.lookup("reg-a.example.com/app"), vec![]);
    let negated = ring(&[dockercfg(r#"{"reg-[^0-9].example.com": {"username": "n", "password": "x"}}"#)]);
    assert!(negated.is_empty());
    let question = ring(&[dockercfg(r#"{"r?g.io": {"username": "q", "password": "x"}}"#)]);
    assert_eq!(question.index, vec![b"r".to_vec()]);
    assert_eq!(question.lookup("reg.io/app"), vec![]);
    assert_eq!(question.lookup("r/app"), vec![cred("q", "x")]);
    let malformed = ring(&[dockercfg(r#"{"reg-[.example.com": {"username": "m", "password": "x"}}"#)]);
    assert_eq!(malformed.lookup("reg-[.example.com/app"), vec![]);
    assert_eq!(malformed.lookup("reg-1.example.com/app"), vec![]);
}

/// `path/filepath.Match`'s own semantics.
#[test]
fn filepath_match_is_gos() {
    let cases: [(&str, &str, Result<bool, ()>); 16] = [
        ("abc", "abc", Ok(true)),
        ("*", "abc", Ok(true)),
        ("*", "", Ok(true)),
        ("*c", "abc", Ok(true)),
        ("a*", "a/b", Ok(false)),
        ("a*b", "a/b", Ok(false)),
        ("a?c", "abc", Ok(true)),
        ("a?c", "a/c", Ok(false)),
        ("[a-c]x", "bx", Ok(true)),
        ("[^a-c]x", "bx", Ok(false)),
        ("[^a-c]x", "dx", Ok(true)),
        ("\\*", "*", Ok(true)),
        ("\\*", "x", Ok(false)),
        ("[", "a", Err(())),
        ("a[", "a", Err(())),
        ("[]a]", "a", Err(())),
    ];
    for (pattern, name, want) in cases {
        assert_eq!(filepath_match(pattern.as_bytes(), name.as_bytes()), want, "{pattern:?} vs {name:?}");
    }
    assert_eq!(filepath_match("[é-ü]".as_bytes(), "ö".as_bytes()), Ok(true));
    assert_eq!(filepath_match(b"x*[", b"xyz"), Err(()));
}

/// Upstream's `Test_MakeDockerKeyring` (`pkg/credentialprovider/secrets/secrets_test.go`):
/// both secret types, with `auth` or username/password; the other type's key is ignored.
#[test]
fn both_secret_types_are_read() {
    let want = vec![cred("user", "password")];
    let secrets = [
        dockerconfigjson(r#"{"auths": {"test.registry.io": {"auth": "dXNlcjpwYXNzd29yZA=="}}}"#),
        dockercfg(r#"{"test.registry.io": {"auth": "dXNlcjpwYXNzd29yZA=="}}"#),
        dockerconfigjson(r#"{"auths": {"test.registry.io": {"username": "user", "password": "password"}}}"#),
        dockercfg(r#"{"test.registry.io": {"username": "user", "password": "password"}}"#),
    ];
    for s in secrets {
        assert_eq!(ring(std::slice::from_ref(&s)).lookup("test.registry.io"), want, "{s:?}");
    }
    let json = br#"{"auths": {"test.registry.io": {"auth": "dXNlcjpwYXNzd29yZA=="}}}"#;
    let cfg = br#"{"test.registry.io": {"auth": "dXNlcjpwYXNzd29yZA=="}}"#;
    let ignored = [
        secret(Some(TYPE_DOCKERCFG), KEY_DOCKER_CONFIG_JSON, json),
        secret(Some(TYPE_DOCKER_CONFIG_JSON), KEY_DOCKERCFG, cfg),
        secret(Some("Opaque"), KEY_DOCKER_CONFIG_JSON, json),
        secret(None, KEY_DOCKER_CONFIG_JSON, json),
        secret(Some(TYPE_DOCKER_CONFIG_JSON), KEY_DOCKER_CONFIG_JSON, b""),
        secret(Some(TYPE_DOCKERCFG), KEY_DOCKERCFG, b""),
        Secret { type_: Some(TYPE_DOCKER_CONFIG_JSON.into()), ..Default::default() },
        // Ignored types are not even parsed.
        secret(Some("Opaque"), KEY_DOCKER_CONFIG_JSON, b"{not json"),
    ];
    for s in ignored {
        let ring = ring(std::slice::from_ref(&s));
        assert!(ring.is_empty() && ring.lookup("test.registry.io").is_empty(), "{s:?}");
    }
    assert!(ring(&[]).is_empty());
}

/// Credentials under one key keep their order across secrets and within one.
#[test]
fn credentials_of_one_key_keep_their_order() {
    let dk = ring(&[
        dockerconfigjson(r#"{"auths": {"r.io": {"username": "first", "password": "1"}}}"#),
        dockercfg(r#"{"https://r.io": {"username": "second", "password": "2"}, "r.io/v1/": {"username": "third", "password": "3"}}"#),
    ]);
    assert_eq!(dk.lookup("r.io/app"), vec![cred("first", "1"), cred("second", "2"), cred("third", "3")]);
    assert_eq!(dk.index, vec![b"r.io".to_vec()]);
}

/// What a key is made of: user info, query and fragment dropped; `%` escapes in the path
/// decoded; an entry that is no URL (a port that is not digits, a bad escape) skipped.
#[test]
fn keys_are_parsed_urls() {
    let dk = ring(&[dockercfg(
        r#"{"https://user:pw@r.io/p?x=1#frag": {"username": "a", "password": "x"},
            "bad.io:port": {"username": "b", "password": "x"},
            "bad.io/%zz": {"username": "c", "password": "x"},
            "esc.io/%61pp": {"username": "e", "password": "x"}}"#,
    )]);
    assert_eq!(dk.index, vec![b"r.io/p".to_vec(), b"esc.io/app".to_vec()]);
    assert_eq!(dk.lookup("r.io/p/app"), vec![cred("a", "x")]);
    assert_eq!(dk.lookup("esc.io/app"), vec![cred("e", "x")]);
    assert_eq!(dk.lookup("bad.io/app"), vec![]);
}

/// Upstream's `TestDockerConfigEntryJSONDecode` and `TestDecodeDockerConfigFieldAuth`
/// (`pkg/credentialprovider/config_test.go`), with upstream's error texts.
#[test]
fn auth_field_is_decoded_as_upstream() {
    let entry = |body: &str| keyring(&[dockercfg(&format!(r#"{{"r.io": {body}}}"#))]).map(|k| k.lookup("r.io"));
    assert_eq!(entry(r#"{"username": "foo", "password": "bar", "email": "foo@example.com"}"#), Ok(vec![cred("foo", "bar")]));
    assert_eq!(entry(r#"{"auth": "Zm9vOmJhcg==", "email": "foo@example.com"}"#), Ok(vec![cred("foo", "bar")]));
    assert_eq!(entry(r#"{"username": "foo", "password": "bar", "auth": "cGluZzpwb25n"}"#), Ok(vec![cred("ping", "pong")]));
    assert_eq!(entry(r#"{"auth": "Zm9vOmJhcg"}"#), Ok(vec![cred("foo", "bar")]));
    assert_eq!(entry(r#"{"auth": "Zm9vOmJhcgo="}"#), Ok(vec![cred("foo", "bar\n")]));
    assert_eq!(entry(r#"{"auth": "OmE6Yg=="}"#), Ok(vec![cred("", "a:b")]));
    assert_eq!(entry(r#"{"username": "u", "auth": ""}"#), Ok(vec![cred("u", "")]));
    let bad = |auth: &str| entry(&format!(r#"{{"auth": "{auth}"}}"#)).unwrap_err();
    assert_eq!(bad("pants"), "illegal base64 data at input byte 4");
    assert_eq!(bad("cGFudHM="), "unable to parse auth field, must be formatted as base64(username:password)");
    assert_eq!(bad("Zm9v YmFy"), "illegal base64 data at input byte 4");
    assert!(entry(r#"{"email": false}"#).is_err(), "a field of the wrong type fails the secret");
    assert!(keyring(&[dockerconfigjson("not json")]).is_err());
    assert!(keyring(&[dockerconfigjson(r#"{"auths": "x"}"#)]).is_err());
}

/// Secret credentials carry only a username and password (no server address: upstream's
/// `Add` sets none), and `to_cri` sends just those.
#[test]
fn credentials_go_to_cri_as_user_and_password() {
    let found = ring(&[dockercfg(&format!(r#"{{"https://r.io/v1/": {{"auth": "{FOO_BAR}", "email": "e@x"}}}}"#))]).lookup("r.io/app");
    assert_eq!(found, vec![cred("foo", "bar")]);
    let cri = found[0].to_cri();
    assert_eq!(
        (cri.username.as_str(), cri.password.as_str(), cri.auth.as_str(), cri.server_address.as_str(), cri.identity_token.as_str(), cri.registry_token.as_str()),
        ("foo", "bar", "", "", "", "")
    );
}

/// `ParseImageName`'s repository.
#[test]
fn repo_to_pull_is_the_normalised_name() {
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let cases = [
        ("busybox".to_string(), "docker.io/library/busybox"),
        ("busybox:1.36".to_string(), "docker.io/library/busybox"),
        (format!("busybox@{digest}"), "docker.io/library/busybox"),
        ("user/app:1".to_string(), "docker.io/user/app"),
        (format!("a.io:5000/x@{digest}"), "a.io:5000/x"),
        (format!("a.io:5000/x:tag@{digest}"), "a.io:5000/x"),
        ("localhost/x".to_string(), "localhost/x"),
        ("localhost:5000/x:tag".to_string(), "localhost:5000/x"),
        ("index.docker.io/foo".to_string(), "docker.io/library/foo"),
        ("docker.io/foo/bar:1".to_string(), "docker.io/foo/bar"),
        ("registry.k8s.io/pause:3.10".to_string(), "registry.k8s.io/pause"),
        ("quay.io/a/b/c".to_string(), "quay.io/a/b/c"),
        ("Foo/bar".to_string(), "Foo/bar"),
        ("[::1]:5000/app".to_string(), "[::1]:5000/app"),
    ];
    for (image, want) in cases {
        assert_eq!(repo_to_pull(&image), want, "{image}");
    }
}

/// `utilerrors.NewAggregate(errs).Error()`.
#[test]
fn aggregate_is_upstreams() {
    let s = |v: &[&str]| v.iter().map(|e| e.to_string()).collect::<Vec<_>>();
    assert_eq!(aggregate(&[]), "");
    assert_eq!(aggregate(&s(&["a"])), "a");
    assert_eq!(aggregate(&s(&["a", "b"])), "[a, b]");
    assert_eq!(aggregate(&s(&["a", "a"])), "a");
    assert_eq!(aggregate(&s(&["a", "b", "a", "c"])), "[a, b, c]");
    assert_eq!(aggregate(&s(&["", "x"])), "[, x]");
}

/// No input panics: arbitrary bytes as either secret, arbitrary keys and lookups.
#[test]
fn arbitrary_input_never_panics() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"{}[]\":,\\u0123abcdef*?[]^-./@%#:tnrl \x01\xff\xe2\x82";
    let pick = |n: u64| alphabet[(n as usize) % alphabet.len()];
    for _ in 0..3000 {
        let len = (next() % 40) as usize;
        let junk: Vec<u8> = (0..len).map(|_| pick(next())).collect();
        let _ = keyring(&[secret(Some(TYPE_DOCKER_CONFIG_JSON), KEY_DOCKER_CONFIG_JSON, &junk)]);
        let _ = keyring(&[secret(Some(TYPE_DOCKERCFG), KEY_DOCKERCFG, &junk)]);
        let text = String::from_utf8_lossy(&junk).into_owned();
        let key = serde_json::to_string(&text).unwrap();
        if let Ok(dk) = keyring(&[dockercfg(&format!(r#"{{{key}: {{"username": "u"}}}}"#))]) {
            let _ = dk.lookup(&text);
            let _ = dk.lookup(&repo_to_pull(&text));
        }
        let _ = filepath_match(&junk, &junk[..len / 2]);
        let _ = split_host_port(&junk);
    }
}
