//! The `file` module: a path made a file, directory, link or hard link,
//! touched or removed, with its attributes and times, reporting the state
//! before and after as Ansible's diff does.

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::files::attrs;
use super::{Attrs, B, Ctx, M, Outcome, S, params};
use crate::error::Result;
use crate::target::shell_quote;

/// The argument of the script's `hv_time` for `modification_time` or
/// `access_time`: `preserve`, `now`, or the time as `date -d` reads it.
/// `touch` defaults to `now`, other states to `preserve`. Only the default
/// format `%Y%m%d%H%M.%S` is read (the time is local, as Ansible's).
fn time_spec(
    value: &Option<S>,
    format: &Option<S>,
    touching: bool,
) -> std::result::Result<String, String> {
    let v = match value.as_ref().map(|v| v.0.as_str()) {
        None | Some("") => return Ok(if touching { "now" } else { "preserve" }.into()),
        Some(v @ ("now" | "preserve")) => return Ok(v.into()),
        Some(v) => v,
    };
    let fmt = format.as_ref().map_or("%Y%m%d%H%M.%S", |f| f.0.as_str());
    let digits: Vec<char> = v.chars().collect();
    let ok = fmt == "%Y%m%d%H%M.%S"
        && digits.len() == 15
        && digits[12] == '.'
        && digits
            .iter()
            .enumerate()
            .all(|(i, c)| i == 12 || c.is_ascii_digit());
    if !ok {
        return Err(format!(
            "failed to convert {v} with format {fmt} (hive reads %Y%m%d%H%M.%S times, now and preserve)"
        ));
    }
    let t: String = digits.iter().collect();
    Ok(shell_quote(&format!(
        "{}-{}-{} {}:{}:{}",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[8..10],
        &t[10..12],
        &t[13..15]
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileP {
    #[serde(alias = "dest", alias = "name")]
    path: S,
    state: Option<S>,
    src: Option<S>,
    mode: Option<M>,
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
    /// Ansible's internal probe: is the file binary? (changes nothing)
    #[serde(rename = "_diff_peek")]
    diff_peek: Option<B>,
}

pub(super) async fn file(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: FileP = params("file", args, ctx)?;
    let _ = (&p.follow, &p.unsafe_writes, &p.attributes);
    if p.diff_peek.is_some() {
        return diff_peek(&p.path.0, ctx).await;
    }
    let a = attrs(&p.mode, &p.owner, &p.group);
    let touching = p.state.as_ref().is_some_and(|s| s.0 == "touch");
    let times = match (
        time_spec(&p.modification_time, &p.modification_time_format, touching),
        time_spec(&p.access_time, &p.access_time_format, touching),
    ) {
        (Ok(m), Ok(at)) => format!("\nhv_time -m {m} %Y\nhv_time -a {at} %X"),
        (Err(e), _) | (_, Err(e)) => return Ok(Outcome::failed(e).with("path", json!(p.path.0))),
    };
    let path = super::shell_path(&p.path.0);
    let state = p
        .state
        .as_ref()
        .map(|s| s.0.clone())
        .unwrap_or_else(|| "file".into());
    if p.src.is_some() && !matches!(state.as_str(), "link" | "hard") {
        return Ok(
            Outcome::failed("src option requires state to be 'link' or 'hard'".into())
                .with("path", json!(p.path.0)),
        );
    }
    let body = match state_script(&p, &state, &path, &a) {
        Ok(body) => body,
        Err(msg) => return Ok(Outcome::failed(msg)),
    };
    let body = match state.as_str() {
        "absent" | "link" | "hard" => body,
        _ => format!("{body}{times}"),
    };
    // the state before and after, for Ansible's diff
    let probe = "hv_st() { if [ -L \"$1\" ]; then echo link; elif [ -d \"$1\" ]; then echo directory; \
                 elif [ -e \"$1\" ]; then if [ \"$(stat -c %h \"$1\")\" -gt 1 ]; then echo hard; else echo file; fi; else echo absent; fi; }\n\
                 hv_desc() { echo \"$(hv_st \"$1\")|$(readlink \"$1\")|$(stat -c %a \"$1\" 2>/dev/null)\"; }";
    let script = format!(
        "{probe}\np={path}\necho \"hv_before=$(hv_desc \"$p\")\"\n{body}\necho \"hv_after=$(hv_desc \"$p\")\""
    );
    let out = ctx.script(&script, None).await?;
    let mut o = super::script_result(&out);
    o.data.remove("stdout");
    o.data.insert("path".into(), json!(p.path.0));
    file_states(&mut o, &out.stdout_text(), &p.path.0, &state, ctx.check);
    Ok(o)
}

/// Ansible's `_diff_peek` probe of a file task: does `path` look binary?
async fn diff_peek(path: &str, ctx: &Ctx<'_>) -> Result<Outcome> {
    let script = format!(
        "head -c 8192 {} 2>/dev/null | od -An -tx1 | grep -qw 00 && echo binary; true",
        super::shell_path(path)
    );
    let o = ctx.script_outcome(&script, None).await?;
    let binary = o.data.get("stdout").and_then(Json::as_str) == Some("binary");
    Ok(Outcome::ok(false)
        .with("path", json!(path))
        .with("appears_binary", json!(binary)))
}

/// The script that brings the file task's `path` (shell-quoted) to
/// `state` with the attributes `a`, or why that state cannot be asked.
fn state_script(
    p: &FileP,
    state: &str,
    path: &str,
    a: &Attrs,
) -> std::result::Result<String, String> {
    // without state, a directory stays one (Ansible keeps the current state)
    let explicit = u8::from(p.state.is_some());
    Ok(match state {
        "directory" => directory_script(path, a, p.recurse.map(|b| b.0).unwrap_or(false)),
        "file" => format!(
            "p={path}\nif [ ! -e \"$p\" ]; then echo \"file ($p) is absent, cannot continue\" >&2; exit 1; fi\n\
             if [ {explicit} = 1 ] && [ -d \"$p\" ] && [ ! -L \"$p\" ]; then echo \"file ($p) is directory, cannot continue\" >&2; exit 1; fi\nhv_attrs \"$p\" {a}",
            a = a.args()
        ),
        "touch" => format!(
            "p={path}\nif [ ! -e \"$p\" ]; then C=1; hv_do touch \"$p\" || exit 1; fi\nhv_attrs \"$p\" {a}",
            a = a.args()
        ),

        "absent" => format!(
            "p={path}\nif [ -e \"$p\" ] || [ -L \"$p\" ]; then C=1; hv_do rm -rf \"$p\" || exit 1; fi"
        ),
        "link" | "hard" => link_script(p, state, path, a)?,
        other => {
            return Err(format!(
                "state must be one of absent, directory, file, hard, link, touch; got {other}"
            ));
        }
    })
}

/// `state=directory`: `path` made a directory; with `recurse`, the owner
/// and group set on all within.
fn directory_script(path: &str, a: &Attrs, recurse: bool) -> String {
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

/// `state=link` or `state=hard`: `path` made a link to `src` (with
/// `force`, in place of a file or an empty directory), or why it cannot.
fn link_script(
    p: &FileP,
    state: &str,
    path: &str,
    a: &Attrs,
) -> std::result::Result<String, String> {
    let force = u8::from(p.force.map(|b| b.0).unwrap_or(false));
    // without src, an existing link keeps its target
    let s = match &p.src {
        Some(src) => shell_quote(&src.0),
        None if state == "link" => format!(
            "\"$(readlink {path})\"; [ -n \"$s\" ] || {{ echo 'src is required for creating new symlinks' >&2; exit 1; }}"
        ),
        None => {
            return Err(format!("src is required for state={state}"));
        }
    };
    if state != "link" {
        return Ok(format!(
            "p={path}; s={s}\nif [ \"$p\" -ef \"$s\" ]; then :; else C=1; hv_do ln -f \"$s\" \"$p\" || exit 1; fi\nhv_attrs \"$p\" {a}",
            a = a.args()
        ));
    }
    Ok(format!(
        "p={path}; s={s}\ncase \"$s\" in /*) a=\"$s\";; *) a=\"$(dirname \"$p\")/$s\";; esac\n\
         if [ ! -e \"$a\" ] && [ {force} = 0 ]; then echo \"src file does not exist, use \\\"force=yes\\\" if you really want to create the link: $a\" >&2; exit 1; fi\n\
         if [ -L \"$p\" ] && [ \"$(readlink \"$p\")\" = \"$s\" ]; then :; else\n  if [ -d \"$p\" ] && [ ! -L \"$p\" ]; then if [ {force} = 0 ]; then echo \"refusing to convert from directory to symlink for $p\" >&2; exit 1; \
         elif [ -n \"$(ls -A \"$p\")\" ]; then echo \"the directory $p is not empty, refusing to convert it\" >&2; exit 1; else hv_do rmdir \"$p\"; fi; fi\n\
         if [ -e \"$p\" ] && [ ! -L \"$p\" ] && [ {force} = 0 ]; then echo \"refusing to convert from file to symlink for $p\" >&2; exit 1; fi\n  C=1; hv_do ln -sfn \"$s\" \"$p\" || exit 1; fi\nhv_attrs \"$p\" '' {o} {g}\nif [ -n {m} ] && [ {follow} = 1 ] && [ -e \"$p\" ]; then hv_attrs \"$(readlink -f \"$p\")\" {m} '' ''; fi",
        m = shell_quote(a.mode.as_deref().unwrap_or("")),
        follow = u8::from(p.follow.as_ref().is_none_or(|f| f.0)),
        o = shell_quote(a.owner.as_deref().unwrap_or("")),
        g = shell_quote(a.group.as_deref().unwrap_or(""))
    ))
}

/// The file task's `state` (and `mode`, and the diff) from its script's
/// output `text`: what it found when it failed, else what `path` is now
/// (in check mode, the `state` asked).
fn file_states(o: &mut Outcome, text: &str, path: &str, state: &str, check: bool) {
    if o.failed {
        // a failed task reports the state it found, as Ansible's
        let found = text
            .lines()
            .find_map(|l| l.strip_prefix("hv_before="))
            .and_then(|l| l.split('|').next())
            .unwrap_or("absent");
        o.data.insert("state".into(), json!(found));
        return;
    }
    o.data.insert("diff".into(), file_diff(text, path));
    // what the path is now (Ansible's path information), as a
    // check-mode run says what was asked
    let after: Vec<&str> = text
        .lines()
        .find_map(|l| l.strip_prefix("hv_after="))
        .unwrap_or("")
        .splitn(3, '|')
        .collect();
    let now = after.first().copied().filter(|s| !s.is_empty() && !check);
    o.data.insert("state".into(), json!(now.unwrap_or(state)));
    if let Some(m) = after.get(2).filter(|m| !m.is_empty() && !check) {
        o.data
            .entry("mode")
            .or_insert_with(|| json!(format!("{m:0>4}")));
    }
}

/// The `diff` of a file task, as Ansible's: the path, and on each side
/// only what changes (state, link source, mode, and the times `hv_time`
/// sets) from the script's `hv_before=`/`hv_after=`/`hv_set-m=` lines.
fn file_diff(text: &str, path: &str) -> Json {
    let fields = |key: &str| -> Vec<String> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or("absent||");
        line.splitn(3, '|').map(str::to_string).collect()
    };
    let (b, a) = (fields("hv_before="), fields("hv_after="));
    let mut before = serde_json::Map::new();
    let mut after = serde_json::Map::new();
    before.insert("path".into(), json!(path));
    after.insert("path".into(), json!(path));
    let get = |f: &[String], i: usize| f.get(i).cloned().unwrap_or_default();
    if b[0] != a[0] {
        before.insert("state".into(), json!(b[0]));
        after.insert("state".into(), json!(a[0]));
    }
    if (b[0] == "link" || a[0] == "link") && get(&b, 1) != get(&a, 1) {
        before.insert("src".into(), json!(get(&b, 1)));
        after.insert("src".into(), json!(get(&a, 1)));
    }
    let mode = |f: &[String]| {
        let m = get(f, 2);
        (!m.is_empty()).then(|| format!("{m:0>4}"))
    };
    if mode(&b) != mode(&a) {
        if let Some(m) = mode(&b) {
            before.insert("mode".into(), json!(m));
        }
        if let Some(m) = mode(&a) {
            after.insert("mode".into(), json!(m));
        }
    }
    for (flag, key) in [("-m", "mtime"), ("-a", "atime")] {
        let set = text.lines().find_map(|l| {
            l.strip_prefix(&format!("hv_set{flag}="))
                .and_then(|v| v.split_once('|'))
        });
        if let Some((old, new)) = set {
            let num = |v: &str| {
                v.parse::<i64>()
                    .map(Json::from)
                    .or_else(|_| v.parse::<f64>().map(Json::from))
                    .unwrap_or(json!(v))
            };
            before.insert(key.into(), num(old));
            after.insert(key.into(), num(new));
        }
    }
    json!({"before": before, "after": after})
}
