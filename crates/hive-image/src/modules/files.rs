//! File modules.

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{Attrs, B, Ctx, L, Outcome, S, params, put_content, script_result};
use crate::error::Result;
use crate::target::{ExecRequest, shell_quote};

fn attrs(mode: &Option<S>, owner: &Option<S>, group: &Option<S>) -> Attrs {
    Attrs {
        mode: mode
            .as_ref()
            .map(|m| m.0.clone())
            .filter(|m| !m.is_empty() && m != "preserve"),
        owner: owner.as_ref().map(|m| m.0.clone()),
        group: group.as_ref().map(|m| m.0.clone()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CopyP {
    src: Option<S>,
    content: Option<Json>,
    dest: S,
    mode: Option<S>,
    owner: Option<S>,
    group: Option<S>,
    #[serde(alias = "thirsty")]
    force: Option<B>,
    remote_src: Option<B>,
    backup: Option<B>,
    directory_mode: Option<S>,
    validate: Option<S>,
    follow: Option<B>,
    local_follow: Option<B>,
    decrypt: Option<B>,
    checksum: Option<S>,
    unsafe_writes: Option<B>,
    attributes: Option<S>,
}

pub(super) async fn copy(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: CopyP = params("copy", args, ctx)?;
    let _ = (
        &p.backup,
        &p.directory_mode,
        &p.validate,
        &p.follow,
        &p.local_follow,
        &p.decrypt,
        &p.checksum,
        &p.unsafe_writes,
        &p.attributes,
    );
    let a = attrs(&p.mode, &p.owner, &p.group);
    let force = p.force.map(|b| b.0).unwrap_or(true);
    if p.remote_src.map(|b| b.0).unwrap_or(false) {
        let Some(src) = p.src else {
            return Ok(Outcome::failed("remote_src needs src".into()));
        };
        let body = format!(
            "s={s}; d={d}; [ -d \"$d\" ] && d=\"$d/$(basename \"$s\")\"\n\
             if [ -f \"$d\" ] && {{ [ {f} = 0 ] || cmp -s \"$s\" \"$d\"; }}; then :; else C=1; hv_do cp -a \"$s\" \"$d\" || exit 1; fi\nhv_attrs \"$d\" {a}",
            s = shell_quote(&src.0),
            d = shell_quote(&p.dest.0),
            f = u8::from(force),
            a = a.args()
        );
        return ctx.script_outcome(&body, None).await;
    }
    let (data, base) = match (&p.content, &p.src) {
        (Some(c), _) => (
            match c {
                Json::String(s) => s.clone().into_bytes(),
                other => serde_json::to_string(other)
                    .unwrap_or_default()
                    .into_bytes(),
            },
            None,
        ),
        (None, Some(src)) => {
            if ctx
                .role
                .is_dir(&format!("files/{}", src.0.trim_end_matches('/')))
            {
                return Ok(Outcome::failed(format!(
                    "copying the directory {} is not supported by hive; copy its files one by one",
                    src.0
                )));
            }
            let base = src.0.rsplit('/').next().unwrap_or(&src.0).to_string();
            (ctx.local_file("files", &src.0)?, Some(base))
        }
        (None, None) => return Ok(Outcome::failed("copy needs src or content".into())),
    };
    let dest = if p.dest.0.ends_with('/') {
        match &base {
            Some(b) => format!("{}{b}", p.dest.0),
            None => {
                return Ok(Outcome::failed(
                    "dest must be a file when content is given".into(),
                ));
            }
        }
    } else {
        p.dest.0.clone()
    };
    put_content(ctx, &dest, base.as_deref(), &data, &a, force).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TemplateP {
    src: S,
    dest: S,
    mode: Option<S>,
    owner: Option<S>,
    group: Option<S>,
    force: Option<B>,
    backup: Option<B>,
    newline_sequence: Option<S>,
    trim_blocks: Option<B>,
    lstrip_blocks: Option<B>,
    validate: Option<S>,
    follow: Option<B>,
    output_encoding: Option<S>,
    variable_start_string: Option<S>,
    variable_end_string: Option<S>,
    block_start_string: Option<S>,
    block_end_string: Option<S>,
    comment_start_string: Option<S>,
    comment_end_string: Option<S>,
    unsafe_writes: Option<B>,
    attributes: Option<S>,
}

pub(super) async fn template(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: TemplateP = params("template", args, ctx)?;
    let _ = (
        &p.backup,
        &p.newline_sequence,
        &p.trim_blocks,
        &p.lstrip_blocks,
        &p.validate,
        &p.follow,
        &p.output_encoding,
    );
    let _ = (
        &p.variable_start_string,
        &p.variable_end_string,
        &p.block_start_string,
        &p.block_end_string,
        &p.comment_start_string,
        &p.comment_end_string,
        &p.unsafe_writes,
        &p.attributes,
    );
    let src = ctx.local_file("templates", &p.src.0)?;
    let mut vars = ctx.vars.clone();
    vars.insert(
        "template_path".into(),
        json!(ctx.role.display(&format!("templates/{}", p.src.0))),
    );
    vars.insert("ansible_managed".into(), json!("Ansible managed"));
    let text = ctx
        .renderer
        .render_text(&String::from_utf8_lossy(&src), &vars)
        .map_err(|m| crate::error::Error::Template {
            context: ctx.role.display(&format!("templates/{}", p.src.0)),
            message: m,
        })?;
    let base = p
        .src
        .0
        .rsplit('/')
        .next()
        .map(|b| b.trim_end_matches(".j2").to_string());
    put_content(
        ctx,
        &p.dest.0,
        base.as_deref(),
        text.as_bytes(),
        &attrs(&p.mode, &p.owner, &p.group),
        p.force.map(|b| b.0).unwrap_or(true),
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileP {
    #[serde(alias = "dest", alias = "name")]
    path: S,
    state: Option<S>,
    src: Option<S>,
    mode: Option<S>,
    owner: Option<S>,
    group: Option<S>,
    recurse: Option<B>,
    force: Option<B>,
    follow: Option<B>,
    modification_time: Option<S>,
    modification_time_format: Option<S>,
    access_time: Option<S>,
    access_time_format: Option<S>,
    unsafe_writes: Option<B>,
    attributes: Option<S>,
}

pub(super) async fn file(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: FileP = params("file", args, ctx)?;
    let _ = (
        &p.follow,
        &p.modification_time,
        &p.modification_time_format,
        &p.access_time,
        &p.access_time_format,
        &p.unsafe_writes,
        &p.attributes,
    );
    let a = attrs(&p.mode, &p.owner, &p.group);
    let path = shell_quote(&p.path.0);
    let state = p.state.map(|s| s.0).unwrap_or_else(|| {
        if p.src.is_some() {
            "link".into()
        } else {
            "file".into()
        }
    });
    let force = u8::from(p.force.map(|b| b.0).unwrap_or(false));
    let recurse = p.recurse.map(|b| b.0).unwrap_or(false);
    let body = match state.as_str() {
        "directory" => {
            let mut b = format!(
                "p={path}\nif [ ! -d \"$p\" ]; then if [ -e \"$p\" ]; then echo \"$p exists and is not a directory\" >&2; exit 1; fi; C=1; hv_do mkdir -p \"$p\" || exit 1; fi\nhv_attrs \"$p\" {a}",
                a = a.args()
            );
            if recurse {
                if let Some(o) = &a.owner {
                    b.push_str(&format!("\nif [ -n \"$(find \"$p\" ! -user {o} 2>/dev/null | head -1)\" ]; then C=1; hv_do chown -R {o} \"$p\"; fi", o = shell_quote(o)));
                }
                if let Some(g) = &a.group {
                    b.push_str(&format!("\nif [ -n \"$(find \"$p\" ! -group {g} 2>/dev/null | head -1)\" ]; then C=1; hv_do chgrp -R {g} \"$p\"; fi", g = shell_quote(g)));
                }
            }
            b
        }
        "file" => format!(
            "p={path}\nif [ ! -e \"$p\" ]; then echo \"file $p is absent, cannot continue\" >&2; exit 1; fi\nhv_attrs \"$p\" {a}",
            a = a.args()
        ),
        "touch" => format!(
            "p={path}\nif [ ! -e \"$p\" ]; then C=1; hv_do touch \"$p\" || exit 1; fi\nhv_attrs \"$p\" {a}",
            a = a.args()
        ),
        "absent" => format!(
            "p={path}\nif [ -e \"$p\" ] || [ -L \"$p\" ]; then C=1; hv_do rm -rf \"$p\" || exit 1; fi"
        ),
        "link" | "hard" => {
            let Some(src) = p.src else {
                return Ok(Outcome::failed(format!(
                    "src is required for state={state}"
                )));
            };
            let s = shell_quote(&src.0);
            if state == "link" {
                format!(
                    "p={path}; s={s}\nif [ -L \"$p\" ] && [ \"$(readlink \"$p\")\" = \"$s\" ]; then :; else\n  if [ -e \"$p\" ] && [ ! -L \"$p\" ] && [ {force} = 0 ]; then echo \"refusing to replace $p by a link (force: false)\" >&2; exit 1; fi\n  C=1; hv_do ln -sfn \"$s\" \"$p\" || exit 1; fi\nhv_attrs \"$p\" '' {o} {g}",
                    o = shell_quote(a.owner.as_deref().unwrap_or("")),
                    g = shell_quote(a.group.as_deref().unwrap_or(""))
                )
            } else {
                format!(
                    "p={path}; s={s}\nif [ \"$p\" -ef \"$s\" ]; then :; else C=1; hv_do ln -f \"$s\" \"$p\" || exit 1; fi\nhv_attrs \"$p\" {a}",
                    a = a.args()
                )
            }
        }
        other => {
            return Ok(Outcome::failed(format!(
                "state must be one of absent, directory, file, hard, link, touch; got {other}"
            )));
        }
    };
    let mut o = ctx.script_outcome(&body, None).await?;
    o.data.insert("path".into(), json!(p.path.0));
    o.data.insert("state".into(), json!(state));
    Ok(o)
}

/// Reads a text file of the target: `None` when absent.
async fn read_text(
    ctx: &Ctx<'_>,
    path: &str,
) -> Result<std::result::Result<Option<String>, String>> {
    let req = ExecRequest::shell(format!(
        "if [ -f {p} ]; then cat {p}; elif [ -e {p} ]; then echo \"{p} is not a regular file\" >&2; exit 2; else exit 3; fi",
        p = shell_quote(path)
    ));
    let out = ctx.run(req).await?;
    Ok(match out.status {
        0 => Ok(Some(out.stdout_text())),
        3 => Ok(None),
        _ => Err(out.stderr_text()),
    })
}

fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(|l| l.to_string()).collect()
}

fn join_lines(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("{}\n", lines.join("\n"))
    }
}

async fn write_edit(
    ctx: &Ctx<'_>,
    path: &str,
    before: Option<&str>,
    after: &str,
    a: &Attrs,
    msg: &str,
) -> Result<Outcome> {
    let mut o = put_content(ctx, path, None, after.as_bytes(), a, true).await?;
    if before == Some(after) && !o.changed {
        o.msg = Some(String::new());
    } else {
        o.msg = Some(msg.to_string());
    }
    Ok(o)
}

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
    mode: Option<S>,
    owner: Option<S>,
    group: Option<S>,
    validate: Option<S>,
    unsafe_writes: Option<B>,
    attributes: Option<S>,
    others: Option<S>,
}

/// The pure edit of lineinfile: the new lines.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lineinfile_edit(
    lines: &[String],
    regexp: Option<&regex::Regex>,
    search: Option<&str>,
    line: Option<&str>,
    present: bool,
    insertafter: Option<&str>,
    insertbefore: Option<&str>,
    backrefs: bool,
) -> std::result::Result<Vec<String>, String> {
    let matches = |l: &str| -> bool {
        match (regexp, search) {
            (Some(r), _) => r.is_match(l),
            (None, Some(s)) => l.contains(s),
            (None, None) => Some(l) == line,
        }
    };
    let mut out = lines.to_vec();
    if !present {
        out.retain(|l| !matches(l));
        return Ok(out);
    }
    let line = line.ok_or("line is required with state=present")?;
    if let Some(i) = out.iter().rposition(|l| matches(l)) {
        let new = match (backrefs, regexp) {
            (true, Some(r)) => {
                let rep = crate::render::python_replacement(line);
                r.replace(&out[i], rep.as_str()).into_owned()
            }
            _ => line.to_string(),
        };
        out[i] = new;
        return Ok(out);
    }
    if backrefs {
        return Ok(out);
    }
    if (regexp.is_some() || search.is_some()) && out.iter().any(|l| l == line) {
        return Ok(out);
    }
    let pos = match (insertafter, insertbefore) {
        (Some(a), _) if a != "EOF" => {
            let r = regex::Regex::new(a).map_err(|e| format!("insertafter: {e}"))?;
            out.iter()
                .rposition(|l| r.is_match(l))
                .map(|i| i + 1)
                .unwrap_or(out.len())
        }
        (_, Some("BOF")) => 0,
        (_, Some(b)) => {
            let r = regex::Regex::new(b).map_err(|e| format!("insertbefore: {e}"))?;
            out.iter().rposition(|l| r.is_match(l)).unwrap_or(out.len())
        }
        _ => out.len(),
    };
    out.insert(pos, line.to_string());
    Ok(out)
}

pub(super) async fn lineinfile(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: LineinfileP = params("lineinfile", args, ctx)?;
    let _ = (
        &p.firstmatch,
        &p.backup,
        &p.validate,
        &p.unsafe_writes,
        &p.attributes,
        &p.others,
    );
    let re = match &p.regexp {
        Some(r) => match regex::Regex::new(&r.0) {
            Ok(x) => Some(x),
            Err(e) => return Ok(Outcome::failed(format!("invalid regexp: {e}"))),
        },
        None => None,
    };
    let present = p.state.as_ref().map(|s| s.0.as_str()) != Some("absent");
    let a = attrs(&p.mode, &p.owner, &p.group);
    let text = match read_text(ctx, &p.path.0).await? {
        Err(e) => return Ok(Outcome::failed(e)),
        Ok(None) if present && !p.create.map(|b| b.0).unwrap_or(false) => {
            return Ok(Outcome::failed(format!(
                "Destination {} does not exist !",
                p.path.0
            )));
        }
        Ok(None) if !present => return Ok(Outcome::ok(false)),
        Ok(t) => t,
    };
    let lines = lines_of(text.as_deref().unwrap_or(""));
    let new = match lineinfile_edit(
        &lines,
        re.as_ref(),
        p.search_string.as_ref().map(|s| s.0.as_str()),
        p.line.as_ref().map(|s| s.0.as_str()),
        present,
        p.insertafter.as_ref().map(|s| s.0.as_str()),
        p.insertbefore.as_ref().map(|s| s.0.as_str()),
        p.backrefs.map(|b| b.0).unwrap_or(false),
    ) {
        Ok(n) => n,
        Err(e) => return Ok(Outcome::failed(e)),
    };
    let after = if new == lines {
        text.clone().unwrap_or_default()
    } else {
        join_lines(&new)
    };
    write_edit(ctx, &p.path.0, text.as_deref(), &after, &a, "line changed").await
}

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
    mode: Option<S>,
    owner: Option<S>,
    group: Option<S>,
    validate: Option<S>,
    append_newline: Option<B>,
    prepend_newline: Option<B>,
    unsafe_writes: Option<B>,
    attributes: Option<S>,
}

pub(super) async fn blockinfile(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: BlockinfileP = params("blockinfile", args, ctx)?;
    let _ = (
        &p.backup,
        &p.validate,
        &p.append_newline,
        &p.prepend_newline,
        &p.unsafe_writes,
        &p.attributes,
    );
    let marker = p
        .marker
        .map(|m| m.0)
        .unwrap_or_else(|| "# {mark} ANSIBLE MANAGED BLOCK".into());
    let begin = marker.replace(
        "{mark}",
        p.marker_begin
            .as_ref()
            .map(|m| m.0.as_str())
            .unwrap_or("BEGIN"),
    );
    let end = marker.replace(
        "{mark}",
        p.marker_end.as_ref().map(|m| m.0.as_str()).unwrap_or("END"),
    );
    let present = p.state.as_ref().map(|s| s.0.as_str()) != Some("absent");
    let text = match read_text(ctx, &p.path.0).await? {
        Err(e) => return Ok(Outcome::failed(e)),
        Ok(None) if present && !p.create.map(|b| b.0).unwrap_or(false) => {
            return Ok(Outcome::failed(format!(
                "Path {} does not exist !",
                p.path.0
            )));
        }
        Ok(None) if !present => return Ok(Outcome::ok(false)),
        Ok(t) => t,
    };
    let mut lines = lines_of(text.as_deref().unwrap_or(""));
    let b = lines.iter().position(|l| *l == begin);
    let e = lines.iter().position(|l| *l == end);
    let mut insert_at = None;
    if let (Some(b), Some(e)) = (b, e) {
        if b < e {
            lines.drain(b..=e);
            insert_at = Some(b);
        }
    }
    let block = p.block.map(|b| b.0).unwrap_or_default();
    if present && !block.is_empty() {
        let mut new = vec![begin.clone()];
        new.extend(block.trim_end_matches('\n').lines().map(|l| l.to_string()));
        new.push(end.clone());
        let at = insert_at.unwrap_or_else(|| match (&p.insertafter, &p.insertbefore) {
            (Some(a), _) if a.0 != "EOF" => regex::Regex::new(&a.0)
                .ok()
                .and_then(|r| lines.iter().rposition(|l| r.is_match(l)))
                .map(|i| i + 1)
                .unwrap_or(lines.len()),
            (_, Some(b)) if b.0 == "BOF" => 0,
            (_, Some(b)) => regex::Regex::new(&b.0)
                .ok()
                .and_then(|r| lines.iter().rposition(|l| r.is_match(l)))
                .unwrap_or(lines.len()),
            _ => lines.len(),
        });
        lines.splice(at..at, new);
    }
    let after = join_lines(&lines);
    let a = attrs(&p.mode, &p.owner, &p.group);
    if !present
        && text
            .as_deref()
            .map(|t| lines_of(t) == lines)
            .unwrap_or(true)
    {
        return Ok(Outcome::ok(false));
    }
    let before = text.as_deref().map(|t| {
        if lines_of(t) == lines {
            after.as_str()
        } else {
            t
        }
    });
    write_edit(
        ctx,
        &p.path.0,
        before,
        if before == Some(after.as_str()) {
            text.as_deref().unwrap_or("")
        } else {
            &after
        },
        &a,
        "Block inserted",
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplaceP {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    path: S,
    regexp: S,
    replace: Option<S>,
    after: Option<S>,
    before: Option<S>,
    backup: Option<B>,
    encoding: Option<S>,
    mode: Option<S>,
    owner: Option<S>,
    group: Option<S>,
    validate: Option<S>,
    others: Option<S>,
    unsafe_writes: Option<B>,
    attributes: Option<S>,
}

pub(super) async fn replace(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: ReplaceP = params("replace", args, ctx)?;
    let _ = (
        &p.backup,
        &p.encoding,
        &p.validate,
        &p.others,
        &p.unsafe_writes,
        &p.attributes,
    );
    let re = match regex::RegexBuilder::new(&p.regexp.0)
        .multi_line(true)
        .build()
    {
        Ok(r) => r,
        Err(e) => return Ok(Outcome::failed(format!("invalid regexp: {e}"))),
    };
    let text = match read_text(ctx, &p.path.0).await? {
        Err(e) => return Ok(Outcome::failed(e)),
        Ok(None) => {
            return Ok(Outcome::failed(format!(
                "Path {} does not exist !",
                p.path.0
            )));
        }
        Ok(Some(t)) => t,
    };
    let start = p
        .after
        .as_ref()
        .and_then(|a| regex::Regex::new(&a.0).ok())
        .and_then(|r| r.find(&text).map(|m| m.end()))
        .unwrap_or(0);
    let end = p
        .before
        .as_ref()
        .and_then(|b| regex::Regex::new(&b.0).ok())
        .and_then(|r| r.find(&text[start..]).map(|m| start + m.start()))
        .unwrap_or(text.len());
    let rep =
        crate::render::python_replacement(p.replace.as_ref().map(|r| r.0.as_str()).unwrap_or(""));
    let mid = re.replace_all(&text[start..end], rep.as_str());
    let after = format!("{}{}{}", &text[..start], mid, &text[end..]);
    write_edit(
        ctx,
        &p.path.0,
        Some(&text),
        &after,
        &attrs(&p.mode, &p.owner, &p.group),
        "replaced",
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatP {
    #[serde(alias = "dest", alias = "name")]
    path: S,
    follow: Option<B>,
    get_checksum: Option<B>,
    checksum_algorithm: Option<S>,
    get_mime: Option<B>,
    get_attributes: Option<B>,
    get_md5: Option<B>,
}

pub(super) async fn stat(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: StatP = params("stat", args, ctx)?;
    let _ = (&p.get_mime, &p.get_attributes, &p.get_md5);
    let follow = if p.follow.map(|b| b.0).unwrap_or(false) {
        "-L "
    } else {
        ""
    };
    let sum = if p.get_checksum.map(|b| b.0).unwrap_or(true) {
        match p
            .checksum_algorithm
            .as_ref()
            .map(|a| a.0.as_str())
            .unwrap_or("sha1")
        {
            "sha256" => "sha256sum",
            "md5" => "md5sum",
            _ => "sha1sum",
        }
    } else {
        ""
    };
    let script = format!(
        "p={q}\nif [ -e \"$p\" ] || [ -L \"$p\" ]; then stat {follow}-c '%F|%a|%U|%G|%u|%g|%s|%Y|%i|%h' \"$p\"; \
         if [ -n '{sum}' ] && [ -f \"$p\" ] && [ -r \"$p\" ]; then {sum} <\"$p\" | cut -d' ' -f1; else echo; fi; readlink \"$p\" || echo; else echo ABSENT; fi",
        q = shell_quote(&p.path.0)
    );
    let out = ctx.run(ExecRequest::shell(script)).await?;
    if out.status != 0 {
        return Ok(Outcome::failed(out.stderr_text()));
    }
    let text = out.stdout_text();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("ABSENT");
    let st = if first == "ABSENT" {
        json!({"exists": false})
    } else {
        let f: Vec<&str> = first.split('|').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        let num = |i: usize| get(i).parse::<i64>().unwrap_or(0);
        let kind = get(0);
        let checksum = lines.next().unwrap_or("").to_string();
        let target = lines.next().unwrap_or("").to_string();
        let mut m = json!({
            "exists": true, "path": p.path.0, "mode": format!("{:0>4}", get(1)),
            "pw_name": get(2), "gr_name": get(3), "uid": num(4), "gid": num(5), "size": num(6),
            "mtime": num(7), "inode": num(8), "nlink": num(9),
            "isdir": kind == "directory", "isreg": kind.starts_with("regular"), "islnk": kind == "symbolic link",
            "isfifo": kind == "fifo", "issock": kind == "socket", "isblk": kind.starts_with("block"), "ischr": kind.starts_with("character"),
        });
        if !checksum.is_empty() {
            m["checksum"] = json!(checksum);
        }
        if !target.is_empty() {
            m["lnk_source"] = json!(target);
            m["lnk_target"] = json!(target);
        }
        m
    };
    Ok(Outcome::ok(false).with("stat", st))
}

/// Fetches a URL on the target with curl or wget, or on the mother machine
/// when the target has neither; returns (status code, body).
pub(super) async fn fetch(
    ctx: &Ctx<'_>,
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    timeout: u64,
    insecure: bool,
) -> Result<std::result::Result<(u16, Vec<u8>), String>> {
    let mut curl = format!(
        "curl -sS -L -m {timeout} -X {} -o \"$o\" -w '%{{http_code}}'",
        shell_quote(method)
    );
    if insecure {
        curl.push_str(" -k");
    }
    for (k, v) in headers {
        curl.push_str(&format!(" -H {}", shell_quote(&format!("{k}: {v}"))));
    }
    if body.is_some() {
        curl.push_str(" --data-binary @-");
    }
    curl.push(' ');
    curl.push_str(&shell_quote(url));
    let wget = format!(
        "wget -q -T {timeout} -O \"$o\" {} && echo 200",
        shell_quote(url)
    );
    let script = format!(
        "o=$(mktemp); if command -v curl >/dev/null 2>&1; then code=$({curl}) || {{ rm -f \"$o\"; exit 1; }}; \
         elif command -v wget >/dev/null 2>&1 && [ {get} = 1 ]; then code=$({wget}) || {{ rm -f \"$o\"; exit 1; }}; else exit 127; fi; \
         printf '%s\\n' \"$code\"; cat \"$o\"; rm -f \"$o\"",
        get = u8::from(method == "GET" && body.is_none() && headers.is_empty())
    );
    let mut req = ExecRequest::shell(script.clone());
    req.stdin = body.map(|b| b.to_vec());
    let mut out = ctx.run(req.clone()).await?;
    if out.status == 127 {
        // neither curl nor wget on the target: fetch from the mother machine
        out = crate::target::Target::exec(&crate::target::LocalTarget, &req).await?;
    }
    if out.status != 0 {
        return Ok(Err(format!(
            "fetching {url} failed: {}",
            out.stderr_text().trim()
        )));
    }
    let nl = out
        .stdout
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(out.stdout.len());
    let code = String::from_utf8_lossy(&out.stdout[..nl])
        .trim()
        .parse()
        .unwrap_or(0);
    let data = out.stdout.get(nl + 1..).unwrap_or_default().to_vec();
    Ok(Ok((code, data)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetUrlP {
    url: S,
    dest: S,
    mode: Option<S>,
    owner: Option<S>,
    group: Option<S>,
    force: Option<B>,
    checksum: Option<S>,
    sha256sum: Option<S>,
    headers: Option<Json>,
    timeout: Option<S>,
    validate_certs: Option<B>,
    url_username: Option<S>,
    #[serde(alias = "password")]
    url_password: Option<S>,
    force_basic_auth: Option<B>,
    tmp_dest: Option<S>,
    backup: Option<B>,
    use_proxy: Option<B>,
    http_agent: Option<S>,
    unsafe_writes: Option<B>,
    attributes: Option<S>,
}

pub(super) async fn get_url(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: GetUrlP = params("get_url", args, ctx)?;
    let _ = (
        &p.tmp_dest,
        &p.backup,
        &p.use_proxy,
        &p.http_agent,
        &p.unsafe_writes,
        &p.attributes,
        &p.url_username,
        &p.url_password,
        &p.force_basic_auth,
    );
    let a = attrs(&p.mode, &p.owner, &p.group);
    let force = p.force.map(|b| b.0).unwrap_or(false);
    let want_sum = p
        .checksum
        .as_ref()
        .map(|c| c.0.clone())
        .or(p.sha256sum.as_ref().map(|s| format!("sha256:{}", s.0)));
    if !force {
        let check = match &want_sum {
            Some(c) => {
                let (alg, sum) = c.split_once(':').unwrap_or(("sha256", c));
                format!(
                    "[ -f {d} ] && [ \"$({alg}sum <{d} | cut -d' ' -f1)\" = {s} ]",
                    d = shell_quote(&p.dest.0),
                    s = shell_quote(sum)
                )
            }
            None => format!("[ -e {d} ] && [ ! -d {d} ]", d = shell_quote(&p.dest.0)),
        };
        let out = ctx
            .script(
                &format!(
                    "if {check}; then hv_attrs {d} {a}; echo present; fi",
                    d = shell_quote(&p.dest.0),
                    a = a.args()
                ),
                None,
            )
            .await?;
        if out.stdout_text().contains("present") {
            let o = script_result(&out);
            return Ok(Outcome::ok(o.changed).with("dest", json!(p.dest.0)));
        }
    }
    if ctx.check {
        return Ok(Outcome::ok(true).with("dest", json!(p.dest.0)));
    }
    let headers: Vec<(String, String)> = match &p.headers {
        Some(Json::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), crate::role::json_text(v)))
            .collect(),
        _ => vec![],
    };
    let timeout = p
        .timeout
        .as_ref()
        .and_then(|t| t.0.parse().ok())
        .unwrap_or(10);
    let insecure = !p.validate_certs.map(|b| b.0).unwrap_or(true);
    let (code, data) = match fetch(ctx, &p.url.0, "GET", &headers, None, timeout, insecure).await? {
        Ok(x) => x,
        Err(e) => return Ok(Outcome::failed(e)),
    };
    if !(200..300).contains(&code) {
        return Ok(
            Outcome::failed(format!("Request failed: HTTP {code} for {}", p.url.0))
                .with("status_code", json!(code)),
        );
    }
    let base = p.url.0.rsplit('/').next().map(|s| s.to_string());
    let mut o = put_content(ctx, &p.dest.0, base.as_deref(), &data, &a, true).await?;
    o.data.insert("status_code".into(), json!(code));
    Ok(o)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UnarchiveP {
    src: S,
    dest: S,
    remote_src: Option<B>,
    copy: Option<B>,
    creates: Option<S>,
    list_files: Option<B>,
    exclude: Option<L>,
    include: Option<L>,
    keep_newer: Option<B>,
    extra_opts: Option<L>,
    mode: Option<S>,
    owner: Option<S>,
    group: Option<S>,
    validate_certs: Option<B>,
    decrypt: Option<B>,
    io_buffer_size: Option<S>,
    unsafe_writes: Option<B>,
    attributes: Option<S>,
}

pub(super) async fn unarchive(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: UnarchiveP = params("unarchive", args, ctx)?;
    let _ = (
        &p.list_files,
        &p.include,
        &p.keep_newer,
        &p.validate_certs,
        &p.decrypt,
        &p.io_buffer_size,
        &p.unsafe_writes,
        &p.attributes,
        &p.mode,
    );
    let remote =
        p.remote_src.map(|b| b.0).unwrap_or(false) || p.copy.map(|b| !b.0).unwrap_or(false);
    if let Some(c) = &p.creates {
        let out = ctx
            .run(ExecRequest::shell(format!("[ -e {} ]", shell_quote(&c.0))))
            .await?;
        if out.status == 0 {
            return Ok(Outcome::ok(false).with("dest", json!(p.dest.0)));
        }
    }
    let mut cleanup = String::from(":");
    let archive = if remote {
        p.src.0.clone()
    } else {
        let data = ctx.local_file("files", &p.src.0)?;
        let tmp = format!("/tmp/.hive-unarchive-{}", super::sha1_hex(&data));
        ctx.target
            .put_file(
                &tmp,
                &data,
                crate::target::FileAttrs {
                    mode: 0o600,
                    uid: 0,
                    gid: 0,
                },
            )
            .await?;
        cleanup = format!("rm -f {}", shell_quote(&tmp));
        tmp
    };
    let excl: String = p
        .exclude
        .map(|l| {
            l.0.iter()
                .map(|e| format!(" --exclude={}", shell_quote(e)))
                .collect()
        })
        .unwrap_or_default();
    let extra: String = p
        .extra_opts
        .map(|l| l.0.iter().map(|e| format!(" {}", shell_quote(e))).collect())
        .unwrap_or_default();
    let owner = p
        .owner
        .as_ref()
        .map(|o| format!(" --owner={}", shell_quote(&o.0)))
        .unwrap_or_default();
    let group = p
        .group
        .as_ref()
        .map(|g| format!(" --group={}", shell_quote(&g.0)))
        .unwrap_or_default();
    let body = format!(
        "a={a}; d={d}\n[ -d \"$d\" ] || {{ echo \"destination $d is not a directory\" >&2; {cleanup}; exit 1; }}\n\
         case \"$a\" in\n  *.zip) if [ -n \"$(unzip -l \"$a\" >/dev/null 2>&1 && echo ok)\" ]; then C=1; hv_do unzip -o -q \"$a\" -d \"$d\" || exit 1; else echo 'unzip is needed for zip archives' >&2; exit 1; fi;;\n  \
         *) if tar -d -f \"$a\" -C \"$d\"{excl}{extra} >/dev/null 2>&1; then :; else C=1; hv_do tar -x -f \"$a\" -C \"$d\"{excl}{extra}{owner}{group} || exit 1; fi;;\nesac\n{cleanup}",
        a = shell_quote(&archive),
        d = shell_quote(&p.dest.0),
    );
    let mut o = ctx.script_outcome(&body, None).await?;
    o.data.insert("dest".into(), json!(p.dest.0));
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::lineinfile_edit;

    fn check(
        lines: &[&str],
        regexp: Option<&str>,
        line: &str,
        present: bool,
        after: Option<&str>,
        expected: &[&str],
    ) {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        let re = regexp.map(|r| regex::Regex::new(r).unwrap());
        let out = lineinfile_edit(
            &lines,
            re.as_ref(),
            None,
            Some(line),
            present,
            after,
            None,
            false,
        )
        .unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn lineinfile_edits() {
        check(&["a", "b"], None, "c", true, None, &["a", "b", "c"]);
        check(&["a", "c"], None, "c", true, None, &["a", "c"]);
        check(
            &["x=1", "y=2"],
            Some("^x="),
            "x=3",
            true,
            None,
            &["x=3", "y=2"],
        );
        check(
            &["x=1", "y=2"],
            Some("^z="),
            "z=3",
            true,
            Some("^x="),
            &["x=1", "z=3", "y=2"],
        );
        check(&["x=1", "y=2"], Some("^x="), "", false, None, &["y=2"]);
    }
}
