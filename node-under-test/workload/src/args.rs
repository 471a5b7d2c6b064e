//! Command-line parsing: subcommand selection (`argv[1]` or `argv[0]` basename), flags and durations.
use crate::{Error, Result};
use std::collections::HashMap;
use std::time::Duration;

/// Flags that take no value.
const SWITCHES: &[&str] = &["ignore-sigterm", "help"];

/// What to do on SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermPolicy {
    /// Exit 0 promptly.
    Exit,
    /// Keep running for this long, then exit 0.
    Delay(Duration),
    /// Ignore SIGTERM.
    Ignore,
}

/// A parsed command line.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The subcommand.
    pub command: String,
    /// Positional arguments after the subcommand.
    pub positional: Vec<String>,
    /// `--name value` / `--name=value` flags of the subcommand.
    pub flags: HashMap<String, String>,
    /// SIGTERM behaviour (global flags and environment).
    pub term: TermPolicy,
}

impl Invocation {
    /// Parses argv (`argv[0]` included), reading `WORKLOAD_TERM_DELAY` / `WORKLOAD_IGNORE_SIGTERM`.
    pub fn parse(argv: Vec<String>) -> Result<Self> {
        let env_delay = std::env::var("WORKLOAD_TERM_DELAY").ok();
        let env_ignore = std::env::var("WORKLOAD_IGNORE_SIGTERM").ok();
        Self::parse_with_env(argv, env_delay.as_deref(), env_ignore.as_deref())
    }

    /// Parses argv with explicit values for the environment variables.
    pub fn parse_with_env(argv: Vec<String>, env_delay: Option<&str>, env_ignore: Option<&str>) -> Result<Self> {
        let mut it = argv.into_iter();
        let argv0 = it.next().unwrap_or_default();
        let base = argv0.rsplit('/').next().unwrap_or_default().to_string();
        let mut rest: Vec<String> = it.collect();
        let mut command = if crate::cmd::is_command(&base) { Some(base) } else { None };
        let mut positional = Vec::new();
        let mut flags = HashMap::new();
        let mut ignore = matches!(env_ignore, Some(v) if !v.is_empty() && v != "0" && v != "false");
        let mut delay = match env_delay {
            Some(v) if !v.is_empty() => Some(parse_duration(v)?),
            _ => None,
        };
        rest.reverse();
        while let Some(arg) = rest.pop() {
            if arg == "--" {
                while let Some(a) = rest.pop() {
                    push_positional(&mut command, &mut positional, a);
                }
                break;
            }
            if let Some(name) = arg.strip_prefix("--") {
                let (name, value) = match name.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (name.to_string(), None),
                };
                let value = if SWITCHES.contains(&name.as_str()) {
                    value.unwrap_or_else(|| "true".into())
                } else {
                    match value {
                        Some(v) => v,
                        None => rest.pop().ok_or_else(|| Error::Usage(format!("--{name} needs a value")))?,
                    }
                };
                match name.as_str() {
                    "term-delay" => delay = Some(parse_duration(&value)?),
                    "ignore-sigterm" => ignore = value != "false",
                    _ => {
                        flags.insert(name, value);
                    }
                }
            } else {
                push_positional(&mut command, &mut positional, arg);
            }
        }
        let command = command.ok_or_else(|| Error::Usage("no subcommand given".into()))?;
        if !crate::cmd::is_command(&command) {
            return Err(Error::Usage(format!("unknown subcommand {command:?}")));
        }
        let term = if ignore {
            TermPolicy::Ignore
        } else if let Some(d) = delay {
            TermPolicy::Delay(d)
        } else {
            TermPolicy::Exit
        };
        Ok(Invocation { command, positional, flags, term })
    }

    /// A flag's value, if given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }

    /// A flag parsed as a number, with a default.
    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.flag(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| Error::Usage(format!("--{name}: not a number: {v:?}"))),
        }
    }

    /// A required numeric flag.
    pub fn num_required<T: std::str::FromStr>(&self, name: &str) -> Result<T> {
        let v = self.flag(name).ok_or_else(|| Error::Usage(format!("--{name} is required")))?;
        v.parse().map_err(|_| Error::Usage(format!("--{name}: not a number: {v:?}")))
    }

    /// A flag parsed as a duration, with a default.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration> {
        self.flag(name).map_or(Ok(default), parse_duration)
    }

    /// The n-th positional argument, required.
    pub fn arg(&self, n: usize, what: &str) -> Result<&str> {
        self.positional
            .get(n)
            .map(String::as_str)
            .ok_or_else(|| Error::Usage(format!("{} needs {what}", self.command)))
    }
}

fn push_positional(command: &mut Option<String>, positional: &mut Vec<String>, arg: String) {
    if command.is_none() {
        *command = Some(arg);
    } else {
        positional.push(arg);
    }
}

/// Parses `500ms`, `2s`, `1.5s`, `3m`, `1h`, `100us` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| Error::Usage(format!("bad duration {s:?}")))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "ns" => value / 1e9,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(Error::Usage(format!("bad duration unit in {s:?}"))),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(Error::Usage(format!("bad duration {s:?}")));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn subcommand_from_argv1_and_flags() {
        let inv = Invocation::parse_with_env(argv(&["/workload", "exit", "--code", "3", "--after=1s"]), None, None)
            .unwrap();
        assert_eq!(inv.command, "exit");
        assert_eq!(inv.num_required::<i32>("code").unwrap(), 3);
        assert_eq!(inv.duration("after", Duration::ZERO).unwrap(), Duration::from_secs(1));
        assert_eq!(inv.term, TermPolicy::Exit);
    }

    #[test]
    fn multi_call_by_basename() {
        let inv = Invocation::parse_with_env(argv(&["/pause"]), None, None).unwrap();
        assert_eq!(inv.command, "pause");
        let inv = Invocation::parse_with_env(argv(&["/bin/check-file", "/x"]), None, None).unwrap();
        assert_eq!(inv.command, "check-file");
        assert_eq!(inv.positional, vec!["/x".to_string()]);
    }

    #[test]
    fn global_term_flags_and_env() {
        let inv = Invocation::parse_with_env(argv(&["w", "--term-delay", "2s", "pause"]), None, None).unwrap();
        assert_eq!(inv.term, TermPolicy::Delay(Duration::from_secs(2)));
        let inv = Invocation::parse_with_env(argv(&["w", "pause"]), Some("500ms"), None).unwrap();
        assert_eq!(inv.term, TermPolicy::Delay(Duration::from_millis(500)));
        let inv = Invocation::parse_with_env(argv(&["w", "pause", "--ignore-sigterm"]), Some("1s"), None).unwrap();
        assert_eq!(inv.term, TermPolicy::Ignore);
        let inv = Invocation::parse_with_env(argv(&["w", "pause"]), None, Some("1")).unwrap();
        assert_eq!(inv.term, TermPolicy::Ignore);
    }

    #[test]
    fn errors() {
        assert!(Invocation::parse_with_env(argv(&["w"]), None, None).is_err());
        assert!(Invocation::parse_with_env(argv(&["w", "nope"]), None, None).is_err());
        assert!(Invocation::parse_with_env(argv(&["w", "exit", "--code"]), None, None).is_err());
        assert!(Invocation::parse_with_env(argv(&["w", "pause"]), Some("bad"), None).is_err());
    }
}
