//! Lookups: `password`, `file`, `env`, `pipe`, `first_found`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};
use rand::Rng;

use super::pyvalue::text;
use super::scope::SCOPE_VAR;

fn lookup_error(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Registers `lookup`, `query` and `q`.
pub(crate) fn register(env: &mut Environment<'static>, root: Arc<PathBuf>) {
    let r = Arc::clone(&root);
    env.add_function(
        "lookup",
        move |state: &State<'_, '_>,
              name: String,
              terms: Rest<Value>,
              kw: Kwargs|
              -> Result<Value, Error> {
            let wantlist: Option<bool> = kw.get("wantlist")?;
            let results = run(state, &r, &name, &terms, &kw)?;
            taint(state, &results);
            if wantlist.unwrap_or(false) {
                return Ok(Value::from(results));
            }
            // Ansible joins text results with commas; other results stay a
            // list (one item: the item itself)
            Ok(match results.len() {
                0 => Value::from(Vec::<Value>::new()),
                1 => results.into_iter().next().unwrap_or_default(),
                _ if results.iter().all(|r| r.kind() == ValueKind::String) => {
                    let parts: Result<Vec<String>, Error> = results.iter().map(text).collect();
                    Value::from(parts?.join(","))
                }
                _ => Value::from(results),
            })
        },
    );
    for name in ["query", "q"] {
        let r = Arc::clone(&root);
        env.add_function(
            name,
            move |state: &State<'_, '_>,
                  name: String,
                  terms: Rest<Value>,
                  kw: Kwargs|
                  -> Result<Value, Error> {
                let results = run(state, &r, &name, &terms, &kw)?;
                taint(state, &results);
                Ok(Value::from(results))
            },
        );
    }
}

fn resolve(root: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    }
}

fn flat_terms(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for t in terms {
        if t.kind() == ValueKind::Seq {
            out.extend(t.try_iter()?);
        } else {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// Marks the render unsafe when a lookup gave results: as Ansible's, they
/// are unsafe, and so is a template that gets any.
fn taint(state: &State<'_, '_>, results: &[Value]) {
    if !results.is_empty()
        && let Some(scope) = state.lookup(SCOPE_VAR)
        && let Some(scope) = scope.downcast_object_ref::<super::scope::Scope>()
    {
        scope.ctx.taint();
    }
}

fn run(
    state: &State<'_, '_>,
    root: &Path,
    name: &str,
    terms: &[Value],
    kw: &Kwargs,
) -> Result<Vec<Value>, Error> {
    let name = name.strip_prefix("ansible.builtin.").unwrap_or(name);
    if super::loops::LIST_LOOKUPS.contains(&name) {
        kw.assert_all_used()?;
        let json = terms
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| lookup_error(format!("{name} lookup: {e}")))?;
        let items = super::loops::list_lookup(name, &serde_json::Value::Array(json))
            .unwrap_or_else(|| Ok(vec![]))
            .map_err(lookup_error)?;
        return Ok(items.iter().map(Value::from_serialize).collect());
    }
    match name {
        "file" => {
            let rstrip: Option<bool> = kw.get("rstrip")?;
            let lstrip: Option<bool> = kw.get("lstrip")?;
            kw.assert_all_used()?;
            let mut out = Vec::new();
            for t in flat_terms(terms)? {
                let p = text(&t)?;
                let path = resolve(root, &p);
                let content = std::fs::read_to_string(&path).map_err(|_| {
                    lookup_error(format!(
                        "The 'file' lookup had an issue accessing the file '{}'. file not found",
                        path.display()
                    ))
                })?;
                let mut s = content.as_str();
                if rstrip.unwrap_or(true) {
                    s = s.trim_end();
                }
                if lstrip.unwrap_or(false) {
                    s = s.trim_start();
                }
                out.push(Value::from(s));
            }
            Ok(out)
        }
        "env" => {
            let default: Option<String> = kw.get("default")?;
            kw.assert_all_used()?;
            flat_terms(terms)?
                .iter()
                .map(|t| {
                    let n = text(t)?;
                    Ok(Value::from(
                        std::env::var(&n)
                            .ok()
                            .or_else(|| default.clone())
                            .unwrap_or_default(),
                    ))
                })
                .collect()
        }
        "pipe" => {
            kw.assert_all_used()?;
            let mut out = Vec::new();
            for t in flat_terms(terms)? {
                let cmd = text(&t)?;
                let o = std::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(&cmd)
                    .current_dir(root)
                    .output()
                    .map_err(|e| lookup_error(format!("pipe lookup cannot run '{cmd}': {e}")))?;
                if !o.status.success() {
                    return Err(lookup_error(format!(
                        "lookup_plugin.pipe({cmd}) returned {}",
                        o.status
                    )));
                }
                out.push(Value::from(
                    String::from_utf8_lossy(&o.stdout).trim_end().to_string(),
                ));
            }
            Ok(out)
        }
        "password" => {
            kw.assert_all_used()?;
            flat_terms(terms)?
                .iter()
                .map(|t| password(root, &text(t)?).map(Value::from))
                .collect()
        }
        "first_found" => first_found(root, terms, kw),
        "template" => {
            kw.assert_all_used()?;
            let scope = state.lookup(SCOPE_VAR).unwrap_or_default();
            let mut out = Vec::new();
            for t in flat_terms(terms)? {
                let p = text(&t)?;
                let candidates = [resolve(root, &p), root.join("templates").join(&p)];
                let path = candidates.iter().find(|c| c.is_file()).ok_or_else(|| {
                    lookup_error(format!(
                        "the template file {p} could not be found for the lookup (looked in {} and its templates/)",
                        root.display()
                    ))
                })?;
                let src = std::fs::read_to_string(path)
                    .map_err(|e| lookup_error(format!("cannot read {}: {e}", path.display())))?;
                let rendered = state.env().template_from_str(&src)?.render(&scope)?;
                out.push(Value::from(super::engine::restore_newlines(&src, rendered)));
            }
            Ok(out)
        }
        other => Err(lookup_error(format!(
            "lookup plugin '{other}' not found (known: file, env, pipe, password, first_found, template, {})",
            super::loops::LIST_LOOKUPS.join(", ")
        ))),
    }
}

fn first_found(root: &Path, terms: &[Value], kw: &Kwargs) -> Result<Vec<Value>, Error> {
    let mut files: Vec<String> = Vec::new();
    let mut paths: Vec<String> = Vec::new();
    let mut skip: bool = kw.get::<Option<bool>>("skip")?.unwrap_or(false);
    if let Some(f) = kw.get::<Option<Value>>("files")? {
        files.extend(
            flat_terms(&[f])?
                .iter()
                .map(text)
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    if let Some(p) = kw.get::<Option<Value>>("paths")? {
        paths.extend(
            flat_terms(&[p])?
                .iter()
                .map(text)
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    kw.assert_all_used()?;
    for t in flat_terms(terms)? {
        if t.kind() == ValueKind::Map {
            if let Ok(f) = t.get_attr("files") {
                if !f.is_undefined() {
                    files.extend(
                        flat_terms(&[f])?
                            .iter()
                            .map(text)
                            .collect::<Result<Vec<_>, _>>()?,
                    );
                }
            }
            if let Ok(p) = t.get_attr("paths") {
                if !p.is_undefined() {
                    paths.extend(
                        flat_terms(&[p])?
                            .iter()
                            .map(text)
                            .collect::<Result<Vec<_>, _>>()?,
                    );
                }
            }
            if let Ok(s) = t.get_attr("skip") {
                skip = skip || s.is_true();
            }
        } else {
            files.push(text(&t)?);
        }
    }
    let split = |v: Vec<String>| -> Vec<String> {
        v.iter()
            .flat_map(|s| {
                s.split([',', ';'])
                    .map(str::trim)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (files, paths) = (split(files), split(paths));
    for f in &files {
        let candidates: Vec<PathBuf> = if paths.is_empty() {
            vec![resolve(root, f)]
        } else {
            paths.iter().map(|p| resolve(root, p).join(f)).collect()
        };
        if let Some(found) = candidates.into_iter().find(|p| p.is_file()) {
            return Ok(vec![Value::from(found.to_string_lossy().into_owned())]);
        }
    }
    if skip {
        Ok(Vec::new())
    } else {
        Err(lookup_error("No file was found when using first_found."))
    }
}

fn charset(spec: &str) -> Vec<char> {
    let mut out: Vec<char> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    // ",," stands for a literal comma
    for (i, part) in spec.replace(",,", "\u{0}").split(',').enumerate() {
        let _ = i;
        names.push(part.replace('\u{0}', ","));
    }
    for n in names {
        match n.as_str() {
            "ascii_letters" => out.extend(('a'..='z').chain('A'..='Z')),
            "ascii_lowercase" => out.extend('a'..='z'),
            "ascii_uppercase" => out.extend('A'..='Z'),
            "digits" => out.extend('0'..='9'),
            "hexdigits" => out.extend(('0'..='9').chain('a'..='f').chain('A'..='F')),
            "octdigits" => out.extend('0'..='7'),
            "punctuation" => out.extend(r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##.chars()),
            other => out.extend(other.chars()),
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The `password` lookup: the file's content when it exists, otherwise a new
/// random password written to it (mode 0600, directories 0700).
fn password(root: &Path, term: &str) -> Result<String, Error> {
    let mut parts = term.split_whitespace();
    let path = parts
        .next()
        .ok_or_else(|| lookup_error("password lookup needs a file name"))?;
    let mut length = 20usize;
    let mut chars = charset("ascii_letters,digits,.,,:-_");
    for p in parts {
        match p.split_once('=') {
            Some(("length", l)) => {
                length = l
                    .parse()
                    .map_err(|_| lookup_error(format!("password lookup: invalid length '{l}'")))?;
            }
            Some(("chars", c)) => chars = charset(c),
            Some(("encrypt" | "ident" | "seed", _)) => {}
            _ => {
                return Err(lookup_error(format!(
                    "password lookup: unrecognized parameter '{p}' (valid: length, chars)"
                )));
            }
        }
    }
    if chars.is_empty() {
        return Err(lookup_error("password lookup: empty chars"));
    }
    let path = resolve(root, path);
    let devnull = path == Path::new("/dev/null");
    if !devnull {
        if let Ok(content) = std::fs::read_to_string(&path) {
            let line = content.lines().next().unwrap_or_default();
            let pw = line.split(" salt=").next().unwrap_or_default();
            return Ok(pw.to_string());
        }
    }
    let mut rng = rand::thread_rng();
    let pw: String = (0..length)
        .map(|_| chars[rng.gen_range(0..chars.len())])
        .collect();
    if !devnull {
        write_secret(&path, &format!("{pw}\n")).map_err(|e| {
            lookup_error(format!(
                "password lookup cannot write '{}': {e}",
                path.display()
            ))
        })?;
    }
    Ok(pw)
}

fn write_secret(path: &Path, content: &str) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    hive_model::fs::write_atomic(path, content.as_bytes(), 0o600)
}
