//! `blockinfile`, ported from Ansible's module: markers, insertafter/
//! insertbefore (Python regular expressions, `(?m)` searching the whole
//! file), prepend/append_newline, the same messages ("Block inserted",
//! "Block removed", "File created") and `backup_file`.

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::edit::{WriteOpts, write_text};
use super::files::read_text;
use super::lineinfile::read_lines;
use super::pyre::PyRegex;
use super::{Attrs, B, Ctx, M, Outcome, S, params};
use crate::error::Result;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BlockinfileP {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    path: S,
    #[serde(alias = "content")]
    block: Option<S>,
    marker: Option<S>,
    marker_begin: Option<S>,
    marker_end: Option<S>,
    state: Option<S>,
    insertafter: Option<S>,
    insertbefore: Option<S>,
    create: Option<B>,
    backup: Option<B>,
    mode: Option<M>,
    owner: Option<S>,
    group: Option<S>,
    validate: Option<S>,
    append_newline: Option<B>,
    prepend_newline: Option<B>,
    unsafe_writes: Option<B>,
    attributes: Option<S>,
}

/// The block edit: the new lines.
struct Edit<'a> {
    marker0: String,
    marker1: String,
    blocklines: Vec<String>,
    insertafter: Option<&'a str>,
    insertbefore: Option<&'a str>,
    prepend_newline: bool,
    append_newline: bool,
    present: bool,
}

impl Edit<'_> {
    fn apply(&self, original: &str, lines: &mut Vec<String>) -> std::result::Result<(), String> {
        let (after, before) = match (self.insertafter, self.insertbefore) {
            (None, None) => (Some("EOF"), None),
            x => x,
        };
        let insertre = match (after, before) {
            (Some(a), _) if a != "EOF" => Some(PyRegex::new("insertafter", a)?),
            (_, Some(b)) if b != "BOF" => Some(PyRegex::new("insertbefore", b)?),
            _ => None,
        };
        let multiline = after
            .filter(|a| *a != "EOF")
            .or(before.filter(|b| *b != "BOF"))
            .is_some_and(|p| p.starts_with("(?m)"));
        let n0 = lines.iter().rposition(|l| *l == self.marker0);
        let n1 = lines.iter().rposition(|l| *l == self.marker1);
        let mut at = match (n0, n1) {
            (Some(n0), Some(n1)) if n0 < n1 => {
                lines.drain(n0..=n1);
                n0
            }
            (Some(n0), Some(n1)) => {
                lines.drain(n1..=n0);
                n1
            }
            _ => match &insertre {
                Some(re) => {
                    let mut found = None;
                    if multiline {
                        if let Some((s, e)) = re.find_range(original) {
                            let upto = if after.is_some() { e } else { s };
                            found = Some(original[..upto].matches('\n').count());
                        }
                    } else {
                        found = lines
                            .iter()
                            .rposition(|l| re.is_match(l.strip_suffix('\n').unwrap_or(l)));
                    }
                    match found {
                        None => lines.len(),
                        Some(n) if after.is_some() => n + 1,
                        Some(n) => n,
                    }
                }
                None if before.is_some() => 0,
                None => lines.len(),
            },
        };
        if at > 0 && !lines[at - 1].ends_with('\n') {
            lines[at - 1].push('\n');
        }
        if self.prepend_newline && self.present && at != 0 && lines[at - 1] != "\n" {
            lines.insert(at, "\n".into());
            at += 1;
        }
        let n = self.blocklines.len();
        lines.splice(at..at, self.blocklines.iter().cloned());
        if self.append_newline && self.present {
            let next = at + n;
            if next < lines.len() && lines[next] != "\n" {
                lines.insert(next, "\n".into());
            }
        }
        Ok(())
    }
}

pub(super) async fn blockinfile(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: BlockinfileP = params("blockinfile", args, ctx)?;
    let _ = (&p.unsafe_writes, &p.attributes);
    let path = p.path.0.as_str();
    let present = p.state.as_ref().map(|s| s.0.as_str()) != Some("absent");
    let original = match read_text(ctx, path).await? {
        Err(_) => {
            return Ok(
                Outcome::failed(format!("Path {path} is a directory !")).with("rc", json!(256))
            );
        }
        Ok(None) if !present => {
            return Ok(Outcome {
                msg: Some(format!("File {path} not present")),
                ..Default::default()
            });
        }
        Ok(None) if !p.create.is_some_and(|b| b.0) => {
            return Ok(
                Outcome::failed(format!("Path {path} does not exist !")).with("rc", json!(257))
            );
        }
        Ok(t) => t,
    };
    let marker = p
        .marker
        .map(|m| m.0)
        .unwrap_or_else(|| "# {mark} ANSIBLE MANAGED BLOCK".into());
    let mark = |m: Option<S>, d: &str| {
        let v = m.map(|m| m.0).unwrap_or_else(|| d.to_string());
        format!("{}\n", marker.replace("{mark}", &v))
    };
    let (marker0, marker1) = (mark(p.marker_begin, "BEGIN"), mark(p.marker_end, "END"));
    let block = p.block.map(|b| b.0).unwrap_or_default();
    let blocklines = if present && !block.is_empty() {
        let mut b = block;
        if !b.ends_with('\n') {
            b.push('\n');
        }
        let mut v = vec![marker0.clone()];
        v.extend(read_lines(&b));
        v.push(marker1.clone());
        v
    } else {
        vec![]
    };
    let removing = blocklines.is_empty();
    let text = original.clone().unwrap_or_default();
    let mut lines = read_lines(&text);
    let edit = Edit {
        marker0,
        marker1,
        blocklines,
        insertafter: p.insertafter.as_ref().map(|s| s.0.as_str()),
        insertbefore: p.insertbefore.as_ref().map(|s| s.0.as_str()),
        prepend_newline: p.prepend_newline.is_some_and(|b| b.0),
        append_newline: p.append_newline.is_some_and(|b| b.0),
        present,
    };
    if let Err(e) = edit.apply(&text, &mut lines) {
        return Ok(Outcome::failed(e));
    }
    let result = lines.concat();
    let msg = if original.as_deref() == Some(result.as_str()) {
        ""
    } else if original.is_none() {
        "File created"
    } else if removing {
        "Block removed"
    } else {
        "Block inserted"
    };
    let before = if msg.is_empty() {
        Some(result.as_str())
    } else {
        original.as_deref()
    };
    write_text(
        ctx,
        path,
        before,
        &result,
        &Attrs {
            mode: p.mode.map(|m| m.0),
            owner: p.owner.map(|m| m.0),
            group: p.group.map(|m| m.0),
        },
        msg,
        WriteOpts {
            backup: p.backup.is_some_and(|b| b.0),
            validate: p.validate.as_ref().map(|s| s.0.as_str()),
            create_parents: true,
            backup_key: "backup_file",
        },
    )
    .await
}
