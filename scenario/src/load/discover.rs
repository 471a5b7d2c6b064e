//! Finding scenario files: [`discover`] walks directories and keeps the files that hold a
//! `Scenario` or a `Test`.

use std::path::{Path, PathBuf};

use super::yaml::{Node, Yaml};
use super::{INTERNAL, KINDS_ALLOWED, LoadError, parse_yaml, read_text, with_big_stack};

/// The scenario files to run: files as given (each must hold a `Scenario` or a `Test`);
/// directories: every `*.yaml` / `*.yml` inside, recursively (hidden entries and symbolic links
/// to directories are not followed), sorted, skipping the files that hold no `Scenario` or
/// `Test` (objects that scenarios reference with `file:`, Chainsaw configurations…).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for path in paths {
        let io_err =
            |message: String| LoadError { file: path.clone(), line: 0, column: 0, path: String::new(), message };
        let meta = std::fs::metadata(path).map_err(|e| io_err(format!("cannot read: {e}")))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk_dir(path, 0, &mut found)?;
            found.sort();
            for file in found {
                if holds_scenario(&file)?.is_ok() {
                    out.push(file);
                }
            }
        } else {
            holds_scenario(path)??;
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk_dir(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let io_err =
        |message: String| LoadError { file: dir.to_path_buf(), line: 0, column: 0, path: String::new(), message };
    if depth > 64 {
        return Err(io_err("directories nested more than 64 deep".to_string()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| io_err(format!("cannot read directory: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(format!("cannot read directory: {e}")))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| io_err(format!("cannot read directory: {e}")))?;
        if file_type.is_dir() {
            walk_dir(&path, depth + 1, found)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            // A symbolic link counts when it leads to a file.
            if file_type.is_file() || std::fs::metadata(&path).map(|m| m.is_file()).unwrap_or(false) {
                found.push(path);
            }
        }
    }
    Ok(())
}

/// `Ok(Ok(()))` when the file holds a Scenario or Test; `Ok(Err(why))` when it holds none;
/// `Err` when it cannot be read or is not YAML.
fn holds_scenario(path: &Path) -> Result<Result<(), LoadError>, LoadError> {
    let err = |line: usize, column: usize, message: String| LoadError {
        file: path.to_path_buf(),
        line,
        column,
        path: String::new(),
        message,
    };
    let text = read_text(path).map_err(|m| err(0, 0, m))?;
    let docs = with_big_stack(|| parse_yaml(&text))
        .ok_or_else(|| err(1, 1, INTERNAL.to_string()))?
        .map_err(|e| err(e.line, e.column, e.message))?;
    let mut first: Option<(usize, usize, String)> = None;
    for doc in &docs {
        let Yaml::Map(entries) = &doc.v else {
            first.get_or_insert((doc.line, doc.column, "a document that is not a mapping".to_string()));
            continue;
        };
        let get =
            |name: &str| entries.iter().find(|(k, _)| matches!(&k.v, Yaml::Str(s) if s == name)).map(|(k, v)| (k, v));
        let text_of = |e: Option<(&Node, &Node)>| match e {
            Some((_, v)) => match &v.v {
                Yaml::Str(s) => s.clone(),
                _ => String::new(),
            },
            None => String::new(),
        };
        let api_version = text_of(get("apiVersion"));
        let kind = text_of(get("kind"));
        if is_scenario_kind(&api_version, &kind) {
            return Ok(Ok(()));
        }
        let at = get("kind").map(|(k, _)| k).unwrap_or(doc);
        let what = if kind.is_empty() {
            "a document without a kind".to_string()
        } else if api_version.is_empty() {
            format!("kind {kind}")
        } else {
            format!("kind {kind} (apiVersion {api_version})")
        };
        first.get_or_insert((at.line, at.column, what));
    }
    let (line, column, what) = first.unwrap_or((1, 1, "no document".to_string()));
    Ok(Err(err(line, column, format!("not a scenario: this file holds {what}; {KINDS_ALLOWED}"))))
}

/// Whether a document looks like something the loader takes (it may still refuse it, e.g. an
/// unknown version: then the loader says why).
fn is_scenario_kind(api_version: &str, kind: &str) -> bool {
    (kind == "Scenario" && api_version.starts_with("nodekit.dev/"))
        || (kind == "Test" && api_version.starts_with("chainsaw.kyverno.io/"))
}
