//! Docker config JSON read as Go's `encoding/json` reads it into upstream's types
//! (`DockerConfigJSON`, `DockerConfig`, `dockerConfigEntryWithAuth`): an object member sets the
//! struct field whose name it equals, or equals ignoring case (`"Auths"`, `"USERNAME"`), later
//! members over earlier ones; `null` leaves a string field as it was, makes a map nil and an
//! entry empty; a second `auths` adds to the first. A value of the wrong JSON type fails with
//! Go's `UnmarshalTypeError` wording for the struct it is in; syntax errors keep serde_json's.

use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One `DockerConfigEntry` as written.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct RawEntry {
    pub username: String,
    pub password: String,
    pub auth: String,
}

/// A JSON value, object members in document order.
#[derive(Debug)]
enum Json {
    Null,
    Bool,
    Number,
    String(String),
    Array,
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Go's name for the kind of value in a type error.
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool => "bool",
            Json::Number => "number",
            Json::String(_) => "string",
            Json::Array => "array",
            Json::Object(_) => "object",
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Json, E> {
                Ok(Json::Bool)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Json, E> {
                Ok(Json::Number)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Json, E> {
                Ok(Json::Number)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
                Ok(Json::Number)
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Json::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Json>()? {
                    members.push(member);
                }
                Ok(Json::Object(members))
            }
        }
        d.deserialize_any(V)
    }
}

fn parse(data: &[u8]) -> Result<Json, String> {
    serde_json::from_slice(data).map_err(|e| e.to_string())
}

/// Whether a member named `key` sets the field `name` (Go's exact, then case-folded match).
fn sets(key: &str, name: &str) -> bool {
    key == name || key.to_lowercase() == name.to_lowercase()
}

fn type_error(v: &Json, into: &str) -> String {
    format!("json: cannot unmarshal {} into {into}", v.kind())
}

/// `json.Unmarshal(data, &DockerConfigJSON{})`: its `auths`.
pub(super) fn docker_config_json(data: &[u8]) -> Result<BTreeMap<String, RawEntry>, String> {
    let mut auths = BTreeMap::new();
    let members = match parse(data)? {
        Json::Null => return Ok(auths),
        Json::Object(m) => m,
        other => return Err(type_error(&other, "Go value of type credentialprovider.DockerConfigJSON")),
    };
    for (_, value) in members.into_iter().filter(|(k, _)| sets(k, "auths")) {
        match value {
            Json::Null => auths.clear(),
            Json::Object(m) => add_entries(&mut auths, m)?,
            other => return Err(type_error(&other, "Go struct field DockerConfigJSON.auths of type credentialprovider.DockerConfig")),
        }
    }
    Ok(auths)
}

/// `json.Unmarshal(data, &DockerConfig{})`: the map itself.
pub(super) fn dockercfg(data: &[u8]) -> Result<BTreeMap<String, RawEntry>, String> {
    let mut config = BTreeMap::new();
    match parse(data)? {
        Json::Null => {}
        Json::Object(m) => add_entries(&mut config, m)?,
        other => return Err(type_error(&other, "Go value of type credentialprovider.DockerConfig")),
    }
    Ok(config)
}

/// Each member as one entry (`DockerConfigEntry.UnmarshalJSON`); a repeated key replaces.
fn add_entries(config: &mut BTreeMap<String, RawEntry>, members: Vec<(String, Json)>) -> Result<(), String> {
    for (location, value) in members {
        let fields = match value {
            Json::Null => Vec::new(),
            Json::Object(m) => m,
            other => return Err(type_error(&other, "Go value of type credentialprovider.dockerConfigEntryWithAuth")),
        };
        let mut entry = RawEntry::default();
        for (key, value) in fields {
            let Some(name) = ["username", "password", "email", "auth"].into_iter().find(|name| sets(&key, name)) else { continue };
            let text = match value {
                Json::Null => continue,
                Json::String(s) => s,
                other => return Err(type_error(&other, &format!("Go struct field dockerConfigEntryWithAuth.{name} of type string"))),
            };
            match name {
                "username" => entry.username = text,
                "password" => entry.password = text,
                // The email is read (a non-string fails) but not kept: the CRI has no field.
                "auth" => entry.auth = text,
                _ => {}
            }
        }
        config.insert(location, entry);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(u: &str, p: &str, a: &str) -> RawEntry {
        RawEntry { username: u.into(), password: p.into(), auth: a.into() }
    }

    /// Field names match ignoring case, null leaves a field or empties an entry, a later
    /// member wins, a second `auths` adds to the first, and `auths: null` drops what came before.
    #[test]
    fn decodes_as_go_does() {
        let got = docker_config_json(br#"{"Auths": {"a.io": {"USERNAME": "u", "Password": "p", "auth": null}}, "auths": {"b.io": null}}"#).unwrap();
        assert_eq!(got.into_iter().collect::<Vec<_>>(), [("a.io".to_string(), entry("u", "p", "")), ("b.io".to_string(), RawEntry::default())]);
        let got = docker_config_json(br#"{"auths": {"a.io": {"username": "first", "Username": "second"}}}"#).unwrap();
        assert_eq!(got["a.io"].username, "second");
        assert!(docker_config_json(br#"{"auths": {"a.io": {}}, "AUTHS": null}"#).unwrap().is_empty());
        assert!(docker_config_json(b"null").unwrap().is_empty());
        assert!(dockercfg(b"null").unwrap().is_empty());
        let got = dockercfg(br#"{"a.io": {"username": "x"}, "a.io": {"password": "y"}}"#).unwrap();
        assert_eq!(got["a.io"], entry("", "y", ""));
        assert_eq!(dockercfg(br#"{"a.io": {"email": null, "Email": "e@x", "other": 1}}"#).unwrap()["a.io"], RawEntry::default());
    }

    /// A value of the wrong type fails with Go's wording; invalid JSON fails.
    #[test]
    fn wrong_types_fail() {
        assert_eq!(
            docker_config_json(br#"{"auths": {"a.io": {"username": 5}}}"#).unwrap_err(),
            "json: cannot unmarshal number into Go struct field dockerConfigEntryWithAuth.username of type string"
        );
        assert_eq!(
            docker_config_json(br#"{"auths": "x"}"#).unwrap_err(),
            "json: cannot unmarshal string into Go struct field DockerConfigJSON.auths of type credentialprovider.DockerConfig"
        );
        assert_eq!(dockercfg(b"[]").unwrap_err(), "json: cannot unmarshal array into Go value of type credentialprovider.DockerConfig");
        assert_eq!(
            dockercfg(br#"{"a.io": true}"#).unwrap_err(),
            "json: cannot unmarshal bool into Go value of type credentialprovider.dockerConfigEntryWithAuth"
        );
        assert!(dockercfg(br#"{"a.io": {"email": false}}"#).is_err());
        assert!(docker_config_json(b"{not json").is_err());
    }
}
