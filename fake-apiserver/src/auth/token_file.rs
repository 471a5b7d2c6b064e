//! Upstream's static token authenticator (`--token-auth-file`, `tokenfile.NewCSV`): CSV records
//! `token,user name,user uid[,"group1,group2"]`, and the `Authorization: Bearer` header
//! (`bearertoken.Authenticator`). Pure: the caller reads the file.

use std::collections::HashMap;
use std::path::Path;

use super::user::{ALL_AUTHENTICATED, User};

/// Why a token file cannot be used (kube-apiserver refuses to start on these).
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("token file '{path}': {source}")]
    Read { path: String, source: std::io::Error },
    #[error("token file '{path}': parse error on line {line}, column {column}: {message}")]
    Csv { path: String, line: usize, column: usize, message: &'static str },
    #[error("token file '{path}' must have at least 3 columns (token, user name, user uid), found {found}")]
    Columns { path: String, found: usize },
}

/// The users of a token file, by token.
#[derive(Clone, Default)]
pub struct TokenFile {
    tokens: HashMap<String, User>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens themselves.
        f.debug_struct("TokenFile").field("users", &self.tokens.len()).finish()
    }
}

impl TokenFile {
    /// Reads and parses `path`; the warnings are upstream's (empty and duplicate tokens).
    pub fn load(path: &Path) -> Result<(TokenFile, Vec<String>), TokenFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read { path: shown.clone(), source })?;
        TokenFile::parse(&shown, &text)
    }

    /// Parses the CSV text of the file named `path` as upstream's `tokenfile.NewCSV` does.
    pub fn parse(path: &str, text: &str) -> Result<(TokenFile, Vec<String>), TokenFileError> {
        let mut tokens = HashMap::new();
        let mut warnings = Vec::new();
        let mut record_num = 0;
        for (i, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let record = csv_record(line).map_err(|(column, message)| TokenFileError::Csv { path: path.into(), line: i + 1, column, message })?;
            if record.len() < 3 {
                return Err(TokenFileError::Columns { path: path.into(), found: record.len() });
            }
            record_num += 1;
            if record[0].is_empty() {
                warnings.push(format!("empty token has been found in token file '{path}', record number '{record_num}'"));
                continue;
            }
            let mut user = User { name: record[1].clone(), uid: record[2].clone(), ..User::default() };
            if let Some(groups) = record.get(3) {
                user.groups = groups.split(',').map(str::to_string).collect();
            }
            if tokens.insert(record[0].clone(), user).is_some() {
                warnings.push(format!("duplicate token has been found in token file '{path}', record number '{record_num}'"));
            }
        }
        Ok((TokenFile { tokens }, warnings))
    }

    /// The user of `token` with `system:authenticated` added (upstream's group adder), if the
    /// file has it. Compares every token in constant time, as upstream does.
    pub fn authenticate(&self, token: &str) -> Option<User> {
        let mut found = None;
        for (t, u) in &self.tokens {
            if constant_time_eq(t.as_bytes(), token.as_bytes()) {
                found = Some(u);
            }
        }
        let mut user = found?.clone();
        if !user.in_group(ALL_AUTHENTICATED) {
            user.groups.push(ALL_AUTHENTICATED.into());
        }
        Some(user)
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the file holds no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization` header value: `Bearer <token>` (scheme case-insensitive),
/// `None` when the header is another scheme or carries no token (then no token is attempted).
pub fn bearer_token(header: &str) -> Option<&str> {
    let mut parts = header.trim().splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// One line of Go's `encoding/csv` (one-line records): comma-separated fields, a field may be
/// quoted with `""` for a quote. An error is (1-based column, Go's message).
fn csv_record(line: &str) -> Result<Vec<String>, (usize, &'static str)> {
    let chars: Vec<char> = line.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err((i + 1, "extraneous or missing \" in quoted-field")),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        field.push(*c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None | Some(',') => {}
                Some(_) => return Err((i + 1, "extraneous or missing \" in quoted-field")),
            }
        } else {
            while let Some(c) = chars.get(i).filter(|c| **c != ',') {
                if *c == '"' {
                    return Err((i + 1, "bare \" in non-quoted-field"));
                }
                field.push(*c);
                i += 1;
            }
        }
        fields.push(field);
        if chars.get(i) == Some(&',') {
            i += 1;
            continue;
        }
        return Ok(fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_users_groups_and_upstreams_warnings() {
        let text = "tok-a,alice,uid-a,\"devs,ops\"\n\ntok-b,bob,uid-b\n,nobody,uid-n\ntok-b,bob2,uid-b2\n";
        let (f, warnings) = TokenFile::parse("tokens.csv", text).unwrap();
        assert_eq!(f.len(), 2);
        let a = f.authenticate("tok-a").unwrap();
        assert_eq!((a.name.as_str(), a.uid.as_str()), ("alice", "uid-a"));
        assert_eq!(a.groups, ["devs", "ops", "system:authenticated"]);
        let b = f.authenticate("tok-b").unwrap();
        assert_eq!(b.name, "bob2", "a later duplicate wins, as upstream's map insert");
        assert_eq!(b.groups, ["system:authenticated"]);
        assert!(f.authenticate("tok-c").is_none());
        assert!(f.authenticate("").is_none());
        assert_eq!(
            warnings,
            [
                "empty token has been found in token file 'tokens.csv', record number '3'",
                "duplicate token has been found in token file 'tokens.csv', record number '4'",
            ]
        );
    }

    #[test]
    fn short_records_and_bad_quotes_are_refused_with_upstreams_messages() {
        let e = TokenFile::parse("t.csv", "tok,alice\n").unwrap_err();
        assert_eq!(e.to_string(), "token file 't.csv' must have at least 3 columns (token, user name, user uid), found 2");
        let e = TokenFile::parse("t.csv", "a,b,c\ntok,al\"ice,u\n").unwrap_err();
        assert_eq!(e.to_string(), "token file 't.csv': parse error on line 2, column 7: bare \" in non-quoted-field");
        let e = TokenFile::parse("t.csv", "tok,alice,u,\"g1,g2\n").unwrap_err();
        assert!(e.to_string().contains("line 1") && e.to_string().contains("extraneous or missing \" in quoted-field"), "{e}");
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("  Bearer abc  "), Some("abc"));
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Basic YWxpY2U6cA=="), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
