//! Flag parsing as agnhost's cobra/pflag does it: `--name=value`, `--name value` (not for
//! booleans), `--bool`, `--bool=false`, `_` and `-` interchangeable in names (component-base's
//! word-separator normalisation), one-letter flags also as `-v 2`/`-v=2`/`-v2`, `--` ends the
//! flags. klog's logging flags (`--v`, `--logtostderr`, …) are accepted everywhere and ignored,
//! as upstream accepts them.
use super::gofmt::{parse_bool, parse_int};
use std::collections::HashMap;

/// The value type of a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--name` alone means true; a value must be attached with `=`.
    Bool,
    /// A Go `int` (`strconv.ParseInt(s, 0, 64)`).
    Int,
    /// A string.
    Str,
}

/// One flag of a subcommand.
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    /// Name with `-` separators.
    pub name: &'static str,
    /// Value type.
    pub kind: Kind,
    /// Default value as text.
    pub default: &'static str,
    /// One line of help.
    pub help: &'static str,
}

/// Shorthand for a table entry.
pub const fn flag(name: &'static str, kind: Kind, default: &'static str, help: &'static str) -> FlagSpec {
    FlagSpec { name, kind, default, help }
}

/// klog's flags (what `klog.InitFlags` registers), accepted and ignored.
pub const KLOG_FLAGS: &[FlagSpec] = &[
    flag("v", Kind::Int, "0", "log level (ignored)"),
    flag("vmodule", Kind::Str, "", "ignored"),
    flag("logtostderr", Kind::Bool, "true", "ignored"),
    flag("alsologtostderr", Kind::Bool, "false", "ignored"),
    flag("log-dir", Kind::Str, "", "ignored"),
    flag("log-file", Kind::Str, "", "ignored"),
    flag("log-file-max-size", Kind::Int, "1800", "ignored"),
    flag("skip-headers", Kind::Bool, "false", "ignored"),
    flag("skip-log-headers", Kind::Bool, "false", "ignored"),
    flag("add-dir-header", Kind::Bool, "false", "ignored"),
    flag("one-output", Kind::Bool, "false", "ignored"),
    flag("stderrthreshold", Kind::Str, "2", "ignored"),
    flag("log-backtrace-at", Kind::Str, "", "ignored"),
    flag("log-flush-frequency", Kind::Str, "5s", "ignored"),
];

/// Why a command line was rejected (texts as cobra/pflag word them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// No such flag.
    #[error("unknown flag: --{0}")]
    Unknown(String),
    /// No such one-letter flag.
    #[error("unknown shorthand flag: '{0}' in {1}")]
    UnknownShorthand(char, String),
    /// A non-boolean flag came last without a value.
    #[error("flag needs an argument: --{0}")]
    NeedsArgument(String),
    /// The value does not parse.
    #[error("invalid argument {value:?} for \"--{name}\" flag: {reason}")]
    Invalid {
        /// The flag.
        name: String,
        /// The value given.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// Positional arguments to a command that takes none.
    #[error("accepts at most {max} arg(s), received {got}")]
    TooManyArgs {
        /// Arguments allowed.
        max: usize,
        /// Arguments given.
        got: usize,
    },
    /// `-h` / `--help`.
    #[error("help requested")]
    Help,
}

/// Parsed flags: every flag of the spec (given or default) and the positional arguments.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    values: HashMap<String, String>,
    given: Vec<String>,
    /// Arguments that are not flags.
    pub positional: Vec<String>,
}

impl Flags {
    /// The text of a flag (its default when not given; "" for a flag not in the spec).
    pub fn str(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    /// A boolean flag (validated at parse time).
    pub fn bool(&self, name: &str) -> bool {
        parse_bool(self.str(name)).unwrap_or(false)
    }

    /// An integer flag (validated at parse time).
    pub fn int(&self, name: &str) -> i64 {
        parse_int(self.str(name)).unwrap_or(0)
    }

    /// Whether the flag was on the command line.
    pub fn was_given(&self, name: &str) -> bool {
        self.given.iter().any(|g| g == name)
    }
}

/// `http_port` → `http-port`.
pub fn normalize(name: &str) -> String {
    name.replace('_', "-")
}

fn find<'a>(specs: &'a [FlagSpec], name: &str) -> Option<&'a FlagSpec> {
    specs.iter().chain(KLOG_FLAGS).find(|s| s.name == name)
}

fn check(spec: &FlagSpec, value: &str) -> Result<(), FlagError> {
    let reason = match spec.kind {
        Kind::Bool => parse_bool(value).err().map(|e| e.to_string()),
        Kind::Int => parse_int(value).err().map(|e| e.to_string()),
        Kind::Str => None,
    };
    match reason {
        Some(reason) => Err(FlagError::Invalid { name: spec.name.into(), value: value.into(), reason }),
        None => Ok(()),
    }
}

/// Parses `args` (everything after the subcommand name) against `specs` plus klog's flags;
/// at most `max_args` positional arguments (None: any number).
pub fn parse(args: &[String], specs: &[FlagSpec], max_args: Option<usize>) -> Result<Flags, FlagError> {
    let mut out = Flags::default();
    for s in specs.iter().chain(KLOG_FLAGS) {
        out.values.insert(s.name.to_string(), s.default.to_string());
    }
    let mut it = args.iter().cloned();
    while let Some(arg) = it.next() {
        if arg == "--" {
            out.positional.extend(it.by_ref());
            break;
        }
        let (name, attached) = if let Some(long) = arg.strip_prefix("--") {
            let (n, v) = long.split_once('=').map_or((long, None), |(n, v)| (n, Some(v.to_string())));
            (normalize(n), v)
        } else if arg.len() > 1 && arg.starts_with('-') {
            shorthand(&arg)?
        } else {
            out.positional.push(arg);
            continue;
        };
        if name == "help" || name == "h" {
            return Err(FlagError::Help);
        }
        let spec = find(specs, &name).ok_or_else(|| FlagError::Unknown(name.clone()))?;
        let value = match (attached, spec.kind) {
            (Some(v), _) => v,
            (None, Kind::Bool) => "true".to_string(),
            (None, _) => it.next().ok_or_else(|| FlagError::NeedsArgument(name.clone()))?,
        };
        check(spec, &value)?;
        out.values.insert(spec.name.to_string(), value);
        out.given.push(spec.name.to_string());
    }
    if let Some(max) = max_args
        && out.positional.len() > max
    {
        return Err(FlagError::TooManyArgs { max, got: out.positional.len() });
    }
    Ok(out)
}

/// `-v`, `-v=2`, `-v2`, `-h`: the one-letter name and an attached value.
fn shorthand(arg: &str) -> Result<(String, Option<String>), FlagError> {
    let body = &arg[1..];
    let mut chars = body.chars();
    let c = chars.next().unwrap_or('-');
    let rest = chars.as_str();
    match c {
        'h' if rest.is_empty() => Ok(("help".into(), None)),
        'v' if rest.is_empty() => Ok(("v".into(), None)),
        'v' => Ok(("v".into(), Some(rest.strip_prefix('=').unwrap_or(rest).to_string()))),
        _ => Err(FlagError::UnknownShorthand(c, arg.to_string())),
    }
}

/// Usage lines of a flag table.
pub fn usage(specs: &[FlagSpec]) -> String {
    specs
        .iter()
        .map(|s| {
            let value = match s.kind {
                Kind::Bool => String::new(),
                Kind::Int => " int".into(),
                Kind::Str => " string".into(),
            };
            format!("      --{}{value}   {} (default {:?})\n", s.name, s.help, s.default)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[FlagSpec] = &[
        flag("http-port", Kind::Int, "8080", ""),
        flag("udp-port", Kind::Int, "8081", ""),
        flag("http-override", Kind::Str, "", ""),
        flag("http", Kind::Bool, "true", ""),
        flag("close", Kind::Bool, "false", ""),
    ];

    fn p(args: &[&str]) -> Result<Flags, FlagError> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&v, SPECS, Some(0))
    }

    #[test]
    fn equals_and_separate_values() {
        assert_eq!(p(&["--http-port=9000"]).unwrap().int("http-port"), 9000);
        assert_eq!(p(&["--http-port", "9000"]).unwrap().int("http-port"), 9000);
        let f = p(&[]).unwrap();
        assert_eq!((f.int("http-port"), f.int("udp-port")), (8080, 8081));
        assert!(!f.was_given("http-port"));
        assert_eq!(p(&["--udp-port=-1"]).unwrap().int("udp-port"), -1);
        assert_eq!(p(&["--udp-port", "-1"]).unwrap().int("udp-port"), -1);
        assert_eq!(p(&["--http-override=/echo?msg=a=b"]).unwrap().str("http-override"), "/echo?msg=a=b");
    }

    #[test]
    fn underscores_are_dashes() {
        let f = p(&["--http_port=7000"]).unwrap();
        assert_eq!(f.int("http-port"), 7000);
        assert!(f.was_given("http-port"));
    }

    #[test]
    fn booleans() {
        assert!(p(&["--close"]).unwrap().bool("close"));
        assert!(!p(&["--http=false"]).unwrap().bool("http"));
        assert!(p(&[]).unwrap().bool("http"));
        // A boolean takes no separate value: `false` is a positional argument.
        assert_eq!(p(&["--http", "false"]).unwrap_err(), FlagError::TooManyArgs { max: 0, got: 1 });
        assert!(matches!(p(&["--close=maybe"]), Err(FlagError::Invalid { .. })));
    }

    #[test]
    fn klog_flags_are_accepted() {
        assert!(p(&["--v=2", "--logtostderr", "--log_dir", "/x", "--http-port=1"]).is_ok());
        assert!(p(&["-v", "4"]).is_ok());
        assert!(p(&["-v=4"]).is_ok());
        assert!(p(&["-v4"]).is_ok());
    }

    #[test]
    fn errors_read_like_pflag() {
        assert_eq!(p(&["--nope"]).unwrap_err().to_string(), "unknown flag: --nope");
        assert_eq!(p(&["--http-port"]).unwrap_err().to_string(), "flag needs an argument: --http-port");
        assert_eq!(
            p(&["--http-port=abc"]).unwrap_err().to_string(),
            "invalid argument \"abc\" for \"--http-port\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(p(&["-x"]).unwrap_err().to_string(), "unknown shorthand flag: 'x' in -x");
        assert_eq!(p(&["extra"]).unwrap_err().to_string(), "accepts at most 0 arg(s), received 1");
        assert_eq!(p(&["--help"]).unwrap_err(), FlagError::Help);
        assert_eq!(p(&["-h"]).unwrap_err(), FlagError::Help);
    }

    #[test]
    fn double_dash_ends_flags() {
        let v: Vec<String> = ["--http-port=1", "--", "--close"].iter().map(|s| s.to_string()).collect();
        let f = parse(&v, SPECS, None).unwrap();
        assert_eq!(f.positional, vec!["--close".to_string()]);
        assert!(!f.bool("close"));
    }
}
