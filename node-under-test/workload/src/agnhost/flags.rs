//! Flag parsing as agnhost's cobra/pflag does it: `--name=value`, `--name value` (not for
//! booleans), `--bool`, `--bool=false`, `_` and `-` interchangeable in names (component-base's
//! word-separator normalisation), one-letter flags (a flag's shorthand, like klog's `v`) also
//! as `-v 2`/`-v=2`/`-v2`, `--` ends the flags. klog's logging flags (`--v`, `--logtostderr`, …) are accepted everywhere and ignored,
//! as upstream accepts them.
use super::gofmt::{parse_bool, parse_duration, parse_int};
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
    /// A Go `time.Duration` (`time.ParseDuration`).
    Duration,
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
    /// The one-letter form (`-t 5`), as pflag's `…VarP` registers it.
    pub short: Option<char>,
}

/// Shorthand for a table entry.
pub const fn flag(name: &'static str, kind: Kind, default: &'static str, help: &'static str) -> FlagSpec {
    FlagSpec { name, kind, default, help, short: None }
}

impl FlagSpec {
    /// The flag with a one-letter form too.
    pub const fn with_short(self, c: char) -> FlagSpec {
        FlagSpec { short: Some(c), ..self }
    }

    /// The flag as pflag names it in errors: `--name`, or `-s, --name` with a shorthand.
    pub fn display(&self) -> String {
        match self.short {
            Some(c) => format!("-{c}, --{}", self.name),
            None => format!("--{}", self.name),
        }
    }
}

/// klog's flags (what `klog.InitFlags` registers), accepted and ignored.
pub const KLOG_FLAGS: &[FlagSpec] = &[
    flag("v", Kind::Int, "0", "log level (ignored)").with_short('v'),
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
    /// A non-boolean one-letter flag came last without a value.
    #[error("flag needs an argument: '{0}' in {1}")]
    ShorthandNeedsArgument(char, String),
    /// The value does not parse.
    #[error("invalid argument {value:?} for \"{flag}\" flag: {reason}")]
    Invalid {
        /// The flag as pflag names it (`--name` or `-s, --name`).
        flag: String,
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

    /// A duration flag in signed nanoseconds, as Go's `time.Duration` holds it (validated at
    /// parse time).
    pub fn duration_nanos(&self, name: &str) -> i64 {
        parse_duration(self.str(name)).unwrap_or(0)
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
        Kind::Duration => parse_duration(value).err().map(|e| e.to_string()),
        Kind::Str => None,
    };
    match reason {
        Some(reason) => Err(FlagError::Invalid { flag: spec.display(), value: value.into(), reason }),
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
        let (name, attached, short) = if let Some(long) = arg.strip_prefix("--") {
            let (n, v) = long.split_once('=').map_or((long, None), |(n, v)| (n, Some(v.to_string())));
            (normalize(n), v, None)
        } else if arg.len() > 1 && arg.starts_with('-') {
            let (n, v, c) = shorthand(&arg, specs)?;
            (n, v, Some(c))
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
            (None, _) => it.next().ok_or_else(|| match short {
                Some(c) => FlagError::ShorthandNeedsArgument(c, arg.clone()),
                None => FlagError::NeedsArgument(name.clone()),
            })?,
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

/// `-v`, `-v=2`, `-v2`, `-t 5`, `-h`: the long name of the one-letter flag, an attached value,
/// and the letter.
fn shorthand(arg: &str, specs: &[FlagSpec]) -> Result<(String, Option<String>, char), FlagError> {
    let body = &arg[1..];
    let mut chars = body.chars();
    let c = chars.next().unwrap_or('-');
    let rest = chars.as_str();
    if c == 'h' && rest.is_empty() {
        return Ok(("help".into(), None, c));
    }
    let spec = specs.iter().chain(KLOG_FLAGS).find(|s| s.short == Some(c)).ok_or_else(|| FlagError::UnknownShorthand(c, arg.to_string()))?;
    let value = match (rest, spec.kind) {
        ("", _) => None,
        (r, _) if r.starts_with('=') => Some(r[1..].to_string()),
        // pflag reads what follows a boolean's letter as more one-letter flags; none here take it.
        (r, Kind::Bool) => return Err(FlagError::UnknownShorthand(r.chars().next().unwrap_or('-'), arg.to_string())),
        (r, _) => Some(r.to_string()),
    };
    Ok((spec.name.to_string(), value, c))
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
                Kind::Duration => " duration".into(),
            };
            let short = s.short.map_or_else(|| "    ".to_string(), |c| format!("-{c}, "));
            format!("  {short}--{}{value}   {} (default {:?})\n", s.name, s.help, s.default)
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
        flag("lines", Kind::Int, "0", "").with_short('t'),
        flag("run-duration", Kind::Duration, "0s", "").with_short('d'),
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
    fn shorthands_and_durations_like_pflag() {
        for form in [&["-t", "5"][..], &["-t5"], &["-t=5"], &["--lines=5"], &["--lines", "5"]] {
            assert_eq!(p(form).unwrap().int("lines"), 5, "{form:?}");
        }
        assert!(p(&["-t5"]).unwrap().was_given("lines"));
        for form in [&["-d", "1m30s"][..], &["-d1m30s"], &["-d=1m30s"], &["--run-duration=1m30s"], &["--run_duration", "1m30s"]] {
            assert_eq!(p(form).unwrap().duration_nanos("run-duration"), 90_000_000_000, "{form:?}");
        }
        assert_eq!(p(&[]).unwrap().duration_nanos("run-duration"), 0);
        assert_eq!(p(&["-d", "-2ms"]).unwrap().duration_nanos("run-duration"), -2_000_000);
        assert_eq!(
            p(&["--run-duration=10"]).unwrap_err().to_string(),
            "invalid argument \"10\" for \"-d, --run-duration\" flag: time: invalid duration \"10\""
        );
        assert_eq!(
            p(&["-tx"]).unwrap_err().to_string(),
            "invalid argument \"x\" for \"-t, --lines\" flag: strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert_eq!(p(&["-t"]).unwrap_err().to_string(), "flag needs an argument: 't' in -t");
        assert_eq!(p(&["--lines"]).unwrap_err().to_string(), "flag needs an argument: --lines");
        assert_eq!(p(&["-v=x"]).unwrap_err().to_string(), "invalid argument \"x\" for \"-v, --v\" flag: strconv.ParseInt: parsing \"x\": invalid syntax");
        let u = usage(SPECS);
        assert!(u.contains("  -d, --run-duration duration   "), "{u}");
        assert!(u.contains("      --http-port int   "), "{u}");
    }

    #[test]
    fn double_dash_ends_flags() {
        let v: Vec<String> = ["--http-port=1", "--", "--close"].iter().map(|s| s.to_string()).collect();
        let f = parse(&v, SPECS, None).unwrap();
        assert_eq!(f.positional, vec!["--close".to_string()]);
        assert!(!f.bool("close"));
    }
}
