//! `lineinfile`, ported from Ansible's module: the same search order
//! (regexp, then search_string, then the exact line and the
//! insertafter/insertbefore anchor), the same messages ("line added",
//! "line replaced", "N line(s) removed") and return values (`backup`,
//! `found`).
//!
//! Regular expressions are Python's syntax (backreferences, look-around).

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::edit::{WriteOpts, write_text};
use super::files::read_text;
use super::pyre::PyRegex;
use super::{Attrs, B, Ctx, M, Outcome, S, params};
use crate::error::Result;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LineinfileP {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    path: S,
    #[serde(alias = "regex")]
    regexp: Option<S>,
    search_string: Option<S>,
    #[serde(alias = "value")]
    line: Option<S>,
    state: Option<S>,
    insertafter: Option<S>,
    insertbefore: Option<S>,
    create: Option<B>,
    backrefs: Option<B>,
    firstmatch: Option<B>,
    backup: Option<B>,
    mode: Option<M>,
    owner: Option<S>,
    group: Option<S>,
    validate: Option<S>,
    unsafe_writes: Option<B>,
    attributes: Option<S>,
    others: Option<S>,
}

/// Lines as Python's `readlines()`: each keeps its end of line.
pub(crate) fn read_lines(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_string).collect()
}

/// A line as Python's `re.search` sees it for `$`: the final newline is
/// where `$` matches.
fn py(l: &str) -> &str {
    l.strip_suffix('\n').unwrap_or(l)
}

fn strip_eol(l: &str) -> &str {
    l.trim_end_matches(['\r', '\n'])
}

fn regex(what: &str, r: &str) -> std::result::Result<PyRegex, String> {
    PyRegex::new(what, r)
}

/// What `present` does to the lines: the message ("" when unchanged).
pub(crate) struct Present<'a> {
    pub regexp: Option<&'a str>,
    pub search_string: Option<&'a str>,
    pub line: &'a str,
    pub insertafter: Option<&'a str>,
    pub insertbefore: Option<&'a str>,
    pub backrefs: bool,
    pub firstmatch: bool,
}

impl Present<'_> {
    /// Edits `lines` in place; returns the message ("" when unchanged).
    pub(crate) fn apply(&self, lines: &mut Vec<String>) -> std::result::Result<String, String> {
        let sep = "\n";
        let re = self.regexp.map(|r| regex("regexp", r)).transpose()?;
        let ins = match (self.insertafter, self.insertbefore) {
            (Some(a), _) if a != "BOF" && a != "EOF" => Some(regex("insertafter", a)?),
            (_, Some(b)) if b != "BOF" => Some(regex("insertbefore", b)?),
            _ => None,
        };
        let mut index: [i64; 2] = [-1, -1];
        let mut found: Option<usize> = None;
        if let Some(re) = &re {
            for (n, l) in lines.iter().enumerate() {
                if re.is_match(py(l)) {
                    index[0] = n as i64;
                    found = Some(n);
                    if self.firstmatch {
                        break;
                    }
                }
            }
        }
        if let Some(s) = self.search_string {
            for (n, l) in lines.iter().enumerate() {
                if l.contains(s) {
                    index[0] = n as i64;
                    found = Some(n);
                    if self.firstmatch {
                        break;
                    }
                }
            }
        }
        if found.is_none() {
            for (n, l) in lines.iter().enumerate() {
                if strip_eol(l) == self.line {
                    index[0] = n as i64;
                } else if ins.as_ref().is_some_and(|r| r.is_match(py(l))) {
                    if self.insertafter.is_some() {
                        index[1] = n as i64 + 1;
                        if self.firstmatch {
                            break;
                        }
                    }
                    if self.insertbefore.is_some() {
                        index[1] = n as i64;
                        if self.firstmatch {
                            break;
                        }
                    }
                }
            }
        }
        let line = self.line;
        let ends_without_eol =
            |lines: &Vec<String>| lines.last().is_some_and(|l| !l.ends_with(['\n', '\r']));
        let added = "line added".to_string();
        if index[0] != -1 {
            let i0 = index[0] as usize;
            let mut new_line = match (self.backrefs, found, &re) {
                (true, Some(n), Some(re)) => {
                    let cur = lines[n].clone();
                    re.expand(py(&cur), line)
                        .unwrap_or_else(|| line.to_string())
                }
                _ => line.to_string(),
            };
            if !new_line.ends_with(sep) {
                new_line.push_str(sep);
            }
            if lines[i0] != new_line {
                lines[i0] = new_line;
                return Ok("line replaced".into());
            }
            return Ok(String::new());
        }
        if self.backrefs {
            return Ok(String::new());
        }
        if self.insertbefore == Some("BOF") || self.insertafter == Some("BOF") {
            lines.insert(0, format!("{line}{sep}"));
            return Ok(added);
        }
        if self.insertafter == Some("EOF") || index[1] == -1 {
            if ends_without_eol(lines) {
                lines.push(sep.to_string());
            }
            lines.push(format!("{line}{sep}"));
            return Ok(added);
        }
        let i1 = index[1] as usize;
        if self.insertafter.is_some() {
            if lines.len() == i1 {
                if strip_eol(&lines[i1 - 1]) != line {
                    lines.push(format!("{line}{sep}"));
                    return Ok(added);
                }
                return Ok(String::new());
            }
            if strip_eol(&lines[i1]) != line {
                lines.insert(i1, format!("{line}{sep}"));
                return Ok(added);
            }
            return Ok(String::new());
        }
        lines.insert(i1, format!("{line}{sep}"));
        Ok(added)
    }
}

pub(super) async fn lineinfile(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: LineinfileP = params("lineinfile", args, ctx)?;
    let _ = (&p.unsafe_writes, &p.attributes, &p.others);
    let path = p.path.0.as_str();
    let present = p.state.as_ref().map(|s| s.0.as_str()) != Some("absent");
    let backrefs = p.backrefs.is_some_and(|b| b.0);
    let regexp = p.regexp.as_ref().map(|s| s.0.as_str());
    let search = p.search_string.as_ref().map(|s| s.0.as_str());
    if backrefs && regexp.is_none() {
        return Ok(Outcome::failed(
            "regexp is required with backrefs=true".into(),
        ));
    }
    if present && p.line.is_none() {
        return Ok(Outcome::failed(
            "line is required with state=present".into(),
        ));
    }
    if !present && regexp.is_none() && search.is_none() && p.line.is_none() {
        return Ok(Outcome::failed(
            "one of line, search_string, or regexp is required with state=absent".into(),
        ));
    }
    let mut warnings = vec![];
    if regexp == Some("") || search == Some("") {
        let mut w = format!(
            "The {} is an empty string, which will match every line in the file. This may have unintended consequences, such as replacing the last line in the file rather than appending.",
            if regexp == Some("") {
                "regular expression"
            } else {
                "search string"
            }
        );
        if regexp == Some("") {
            w.push_str(" If this is desired, use '^' to match every line in the file and avoid this warning.");
        }
        warnings.push(w);
    }
    let a = Attrs {
        mode: p.mode.map(|m| m.0),
        owner: p.owner.map(|m| m.0),
        group: p.group.map(|m| m.0),
    };
    let text = match read_text(ctx, path).await? {
        Err(_) if ctx_is_dir(ctx, path).await? => {
            return Ok(
                Outcome::failed(format!("Path {path} is a directory !")).with("rc", json!(256))
            );
        }
        Err(e) => return Ok(Outcome::failed(e)),
        Ok(None) if !present => {
            return Ok(Outcome {
                msg: Some("file not present".into()),
                ..Default::default()
            });
        }
        Ok(None) if !p.create.is_some_and(|b| b.0) => {
            return Ok(
                Outcome::failed(format!("Destination {path} does not exist !"))
                    .with("rc", json!(257)),
            );
        }
        Ok(t) => t,
    };
    let mut lines = read_lines(text.as_deref().unwrap_or(""));
    let line = p.line.as_ref().map(|s| s.0.as_str()).unwrap_or("");
    let (msg, found) = if present {
        let edit = Present {
            regexp,
            search_string: search,
            line,
            insertafter: p.insertafter.as_ref().map(|s| s.0.as_str()),
            insertbefore: p.insertbefore.as_ref().map(|s| s.0.as_str()),
            backrefs,
            firstmatch: p.firstmatch.is_some_and(|b| b.0),
        };
        match edit.apply(&mut lines) {
            Ok(m) => (m, None),
            Err(e) => return Ok(Outcome::failed(e)),
        }
    } else {
        let re = match regexp.map(|r| regex("regexp", r)).transpose() {
            Ok(r) => r,
            Err(e) => return Ok(Outcome::failed(e)),
        };
        let before = lines.len();
        lines.retain(|l| match (&re, search) {
            (Some(r), _) => !r.is_match(py(l)),
            (None, Some(s)) => !l.contains(s),
            (None, None) => strip_eol(l) != line,
        });
        let n = before - lines.len();
        let msg = if n > 0 {
            format!("{n} line(s) removed")
        } else {
            String::new()
        };
        (msg, Some(n))
    };
    let after: String = lines.concat();
    let before = if msg.is_empty() {
        Some(after.as_str())
    } else {
        text.as_deref()
    };
    let mut o = write_text(
        ctx,
        path,
        before,
        &after,
        &a,
        &msg,
        WriteOpts {
            backup: p.backup.is_some_and(|b| b.0),
            validate: p.validate.as_ref().map(|s| s.0.as_str()),
            create_parents: true,
            backup_key: "backup",
        },
    )
    .await?;
    if let Some(n) = found {
        o.data.insert("found".into(), json!(n));
    }
    if !warnings.is_empty() {
        o.data.insert("warnings".into(), json!(warnings));
    }
    Ok(o)
}

async fn ctx_is_dir(ctx: &Ctx<'_>, path: &str) -> Result<bool> {
    let out = ctx
        .run(crate::target::ExecRequest::shell(format!(
            "[ -d {} ]",
            super::shell_path(path)
        )))
        .await?;
    Ok(out.status == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(text: &str, p: Present<'_>) -> (String, String) {
        let mut lines = read_lines(text);
        let msg = p.apply(&mut lines).unwrap();
        (lines.concat(), msg)
    }

    fn edit<'a>(regexp: Option<&'a str>, line: &'a str, after: Option<&'a str>) -> Present<'a> {
        Present {
            regexp,
            search_string: None,
            line,
            insertafter: after,
            insertbefore: None,
            backrefs: false,
            firstmatch: false,
        }
    }

    #[test]
    fn lineinfile_as_ansible() {
        assert_eq!(
            present("a\nb\n", edit(None, "c", None)),
            ("a\nb\nc\n".into(), "line added".into())
        );
        assert_eq!(
            present("a\nc\n", edit(None, "c", None)),
            ("a\nc\n".into(), String::new())
        );
        assert_eq!(
            present("x=1\ny=2\n", edit(Some("^x="), "x=3", None)),
            ("x=3\ny=2\n".into(), "line replaced".into())
        );
        assert_eq!(
            present("x=1\ny=2\n", edit(Some("^z="), "z=3", Some("^x="))),
            ("x=1\nz=3\ny=2\n".into(), "line added".into())
        );
        // a file without a final newline gets one before the added line
        assert_eq!(
            present("a", edit(None, "b", None)),
            ("a\nb\n".into(), "line added".into())
        );
        let mut p = edit(Some("^(\\w+)=.*"), "\\1=on", None);
        p.backrefs = true;
        assert_eq!(
            present("x=1\n", p),
            ("x=on\n".into(), "line replaced".into())
        );
    }
}
