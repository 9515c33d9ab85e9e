//! The modules hive runs natively. Each has a typed parameter struct with
//! the real module's argument names and aliases (unknown arguments are
//! errors), does its work in as few commands on the target as it can, and
//! honours check mode. [`registry`] is the one table of them.
//!
//! Deliberate differences from Ansible's modules:
//! - `command` expands `$VAR` in its words with the target's `sh`: a variable
//!   that is not set becomes empty (Python's `expandvars` leaves it as
//!   written).
//! - Regular expressions go through a backtracking engine with Python's
//!   syntax ([`pyre`]); Python-only constructs it lacks (e.g. conditional
//!   groups) are refused with the pattern named.
//! - `copy` and `template` ignore `validate` (lineinfile, blockinfile and
//!   replace honour it).
//! - `copy` has no vault password: a vault-encrypted source fails the task,
//!   with Ansible's message for a run without one.
//! - `file`'s `modification_time`/`access_time` read `now`, `preserve` and
//!   times in the default format `%Y%m%d%H%M.%S` only (other formats fail
//!   the task, naming the format); times are whole seconds.
//! - A relative `src` not found in the role is read from the directory
//!   hive runs in (Ansible's playbook directory).
//! - Text edits keep the file's mode, owner and ACLs but not its SELinux
//!   context or extended attributes.

mod blockinfile;
mod command;
mod copydir;
mod edit;
mod file;
mod files;
mod lineinfile;
mod packages;
mod pyre;
pub(crate) mod registry;
mod stat;
mod system;
mod vars;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value as Json, json};
use sha1::Digest;

use crate::error::{Error, Result};
use crate::render::{Renderer, Vars};
use crate::role::RoleDir;
use crate::target::{ExecOutput, ExecRequest, Target, shell_quote};

/// What a module execution gave.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Something was (or would be) changed.
    pub changed: bool,
    /// The module failed.
    pub failed: bool,
    /// Skipped (e.g. commands in check mode).
    pub skipped: bool,
    /// Message.
    pub msg: Option<String>,
    /// Return values (what `register` stores).
    pub data: Map<String, Json>,
    /// Facts to set on the host.
    pub facts: Option<Map<String, Json>>,
    /// The facts (of `set_fact`) whose values are unsafe: rendered from a
    /// template that read an unsafe value, never templated again.
    pub unsafe_facts: Vec<String>,
}

impl Outcome {
    pub(crate) fn failed(msg: String) -> Self {
        Outcome {
            failed: true,
            msg: Some(msg),
            ..Default::default()
        }
    }
    fn ok(changed: bool) -> Self {
        Outcome {
            changed,
            ..Default::default()
        }
    }
    fn with(mut self, k: &str, v: Json) -> Self {
        self.data.insert(k.into(), v);
        self
    }
}

/// What a module sees of the run.
pub(crate) struct Ctx<'a> {
    pub target: &'a dyn Target,
    pub check: bool,
    /// The task asked for `diff`.
    pub diff: bool,
    pub role: &'a RoleDir,
    pub renderer: &'a Renderer,
    pub vars: &'a Vars,
    pub user: Option<String>,
    pub env: Vec<(String, String)>,
    pub task: String,
}

/// A text argument (any scalar is accepted, as Ansible does).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct S(pub String);
impl<'de> Deserialize<'de> for S {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Json::deserialize(d)? {
            Json::String(s) => Ok(S(s)),
            Json::Null => Ok(S(String::new())),
            Json::Number(n) => Ok(S(n.to_string())),
            Json::Bool(b) => Ok(S(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string, got {other}"
            ))),
        }
    }
}

/// A file mode: text as written (`'0644'`, `u+rwx`), or a number, which
/// YAML 1.1 reads in octal when written `0644` (Ansible's `mode: 0644`):
/// numbers are given back in octal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct M(pub String);
impl<'de> Deserialize<'de> for M {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Json::deserialize(d)? {
            Json::Number(n) => match n.as_u64() {
                Some(v) => Ok(M(format!("0{v:o}"))),
                None => Err(serde::de::Error::custom(format!(
                    "expected a mode, got {n}"
                ))),
            },
            other => S::deserialize(other)
                .map(|s| M(s.0))
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A boolean argument (`yes`/`no`/`true`/`1` … accepted).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct B(pub bool);
impl<'de> Deserialize<'de> for B {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Json::deserialize(d)? {
            Json::Bool(b) => Ok(B(b)),
            Json::Number(n) => Ok(B(n.as_i64() != Some(0))),
            Json::String(s) => match s.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" | "1" | "y" => Ok(B(true)),
                "no" | "false" | "off" | "0" | "n" | "" => Ok(B(false)),
                _ => Err(serde::de::Error::custom(format!(
                    "expected a boolean, got {s}"
                ))),
            },
            other => Err(serde::de::Error::custom(format!(
                "expected a boolean, got {other}"
            ))),
        }
    }
}

/// A list argument (a list, or a comma-separated string).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct L(pub Vec<String>);
impl<'de> Deserialize<'de> for L {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Json::deserialize(d)? {
            Json::Array(a) => Ok(L(a.iter().map(crate::role::json_text).collect())),
            Json::String(s) => Ok(L(s
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect())),
            Json::Null => Ok(L(vec![])),
            other => Ok(L(vec![crate::role::json_text(&other)])),
        }
    }
}

pub(crate) fn params<P: DeserializeOwned>(module: &str, args: Json, ctx: &Ctx<'_>) -> Result<P> {
    serde_json::from_value(args).map_err(|e| Error::Args {
        task: ctx.task.clone(),
        module: module.into(),
        message: e.to_string(),
    })
}

/// `s` in double quotes for `sh`: `$VAR` still expands, nothing else.
pub(crate) fn double_quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '`') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// A path for a module script: quoted, with a leading `~` and `$VAR`s
/// expanded on the target (Ansible expands both in path arguments, with
/// the remote user's environment).
pub(crate) fn shell_path(p: &str) -> String {
    let home = "\"${HOME:-$(getent passwd \"$(id -u)\" | cut -d: -f6)}\"";
    let (prefix, rest) = match p.strip_prefix('~') {
        Some("") => return home.to_string(),
        Some(r) if r.starts_with('/') => (home, r),
        _ => ("", p),
    };
    let quoted = if rest.contains('$') {
        double_quote(rest)
    } else {
        shell_quote(rest)
    };
    format!("{prefix}{quoted}")
}

pub(crate) fn sha1_hex(data: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(data))
}

/// Shell functions every module script starts with.
const PRELUDE: &str = r#"C=0
hv_do() { [ "$CHECK" = 1 ] || "$@"; }
hv_time() {
  case "$2" in
    preserve) return 0 ;;
    now) t=$(date +%s.%N); case "$t" in *N) t=$(date +%s) ;; esac ;;
    *) t=$(date -d "$2" +%s) || exit 1 ;;
  esac
  o=$(stat -c "$3" "$p" 2>/dev/null)
  if [ "$2" = now ] || [ "$o" != "$t" ]; then
    C=1; echo "hv_set$1=$o|$t"; hv_do touch -c "$1" -d "@$t" "$p"
  fi
}
hv_attrs() {
  [ -e "$1" ] || [ -L "$1" ] || return 0
  if [ -n "$2" ]; then
    case "$2" in
      [0-7]*) cur=$(stat -c %a "$1"); want=$(echo "$2" | sed 's/^0*//'); [ -n "$want" ] || want=0
        if [ "$cur" != "$want" ]; then hv_do chmod "$2" "$1" || exit 1; C=1; fi;;
      *) b=$(stat -c %a "$1"); hv_do chmod "$2" "$1" || exit 1; [ "$b" = "$(stat -c %a "$1")" ] || C=1;;
    esac
  fi
  if [ -n "$3" ] && [ "$3" != "$(stat -c %U "$1")" ] && [ "$3" != "$(stat -c %u "$1")" ]; then hv_do chown -h "$3" "$1" || exit 1; C=1; fi
  if [ -n "$4" ] && [ "$4" != "$(stat -c %G "$1")" ] && [ "$4" != "$(stat -c %g "$1")" ]; then hv_do chgrp -h "$4" "$1" || exit 1; C=1; fi
}
"#;

impl Ctx<'_> {
    /// Runs a module script (prelude included); its last output line is
    /// `changed=0|1`.
    pub(crate) async fn script(&self, body: &str, stdin: Option<Vec<u8>>) -> Result<ExecOutput> {
        let script = format!(
            "CHECK={}\n{PRELUDE}{body}\necho \"changed=$C\"\n",
            u8::from(self.check)
        );
        let mut req = ExecRequest::shell(script);
        req.stdin = stdin;
        req.user = self.user.clone();
        req.env = self.env.clone();
        self.target.exec(&req).await
    }

    /// Runs a script and turns its result into an outcome.
    pub(crate) async fn script_outcome(
        &self,
        body: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<Outcome> {
        let out = self.script(body, stdin).await?;
        Ok(script_result(&out))
    }

    /// Runs a command as given (no prelude).
    pub(crate) async fn run(&self, mut req: ExecRequest) -> Result<ExecOutput> {
        if req.user.is_none() {
            req.user = self.user.clone();
        }
        let mut env = self.env.clone();
        env.extend(req.env);
        req.env = env;
        self.target.exec(&req).await
    }

    /// A directory of the role (`files/x`, `x`) or a local directory that
    /// `src` names, when it is one.
    pub(crate) fn local_dir(&self, sub: &str, src: &str) -> Option<std::path::PathBuf> {
        let src = src.trim_end_matches('/');
        let candidates = if src.starts_with('/') {
            vec![std::path::PathBuf::from(src)]
        } else {
            let root = self.role.path()?;
            vec![root.join(sub).join(src), root.join(src), src.into()]
        };
        candidates.into_iter().find(|p| p.is_dir())
    }

    /// The mode (`0644`) of a file [`Ctx::local_file`] reads.
    pub(crate) fn local_mode(&self, sub: &str, src: &str) -> Option<String> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = if src.starts_with('/') {
            std::path::PathBuf::from(src)
        } else {
            let root = self.role.path()?;
            [root.join(sub).join(src), root.join(src), src.into()]
                .into_iter()
                .find(|p| p.exists())?
        };
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
        Some(format!("{mode:04o}"))
    }

    /// A file of the role (`files/` or `templates/`), or a local path.
    pub(crate) fn local_file(&self, sub: &str, src: &str) -> Result<Vec<u8>> {
        if src.starts_with('/') {
            return std::fs::read(src).map_err(Error::io(src));
        }
        for rel in [format!("{sub}/{src}"), src.to_string()] {
            if let Some(b) = self.role.read(&rel)? {
                return Ok(b);
            }
        }
        // last, as Ansible's playbook directory: where hive runs
        if let Ok(b) = std::fs::read(src) {
            return Ok(b);
        }
        Err(Error::Args {
            task: self.task.clone(),
            module: sub.trim_end_matches('s').into(),
            message: format!(
                "could not find {src} in {}, the role or the current directory",
                self.role.display(sub)
            ),
        })
    }
}

pub(crate) fn script_result(out: &ExecOutput) -> Outcome {
    let text = out.stdout_text();
    let changed = text
        .lines()
        .last()
        .map(|l| l.trim() == "changed=1")
        .unwrap_or(false);
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("changed="))
        .collect::<Vec<_>>()
        .join("\n");
    if out.status != 0 {
        let err = out.stderr_text();
        let msg = if err.trim().is_empty() {
            body.clone()
        } else {
            err.trim().to_string()
        };
        return Outcome::failed(format!("rc={}: {msg}", out.status)).with("rc", json!(out.status));
    }
    let mut o = Outcome::ok(changed);
    o.data.insert("stdout".into(), json!(body));
    o
}

/// Attributes shared by modules that write files.
#[derive(Debug, Default, Clone)]
pub(crate) struct Attrs {
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl Attrs {
    pub(crate) fn args(&self) -> String {
        format!(
            "{} {} {}",
            shell_quote(self.mode.as_deref().unwrap_or("")),
            shell_quote(self.owner.as_deref().unwrap_or("")),
            shell_quote(self.group.as_deref().unwrap_or(""))
        )
    }
}

/// Size above which file content goes through the target's file upload
/// instead of the command's standard input.
const STDIN_LIMIT: usize = 64 * 1024;

/// Puts `data` at `dest` when its content differs, then fixes attributes.
/// `basename`: when `dest` is a directory, the file goes inside under this
/// name. One command when the content is small.
pub(crate) async fn put_content(
    ctx: &Ctx<'_>,
    dest: &str,
    basename: Option<&str>,
    data: &[u8],
    attrs: &Attrs,
    force: bool,
) -> Result<Outcome> {
    let sum = sha1_hex(data);
    let into_dir = match basename {
        Some(b) => format!("if [ -d \"$d\" ]; then d=\"$d\"/{}; fi\n", shell_quote(b)),
        None => {
            "if [ -d \"$d\" ]; then echo 'can not use content with a dir as dest' >&2; exit 1; fi\n"
                .to_string()
        }
    };
    let same = format!(
        "[ -f \"$d\" ] && {{ [ {force} = 0 ] || [ \"$(sha1sum <\"$d\" | cut -c1-40)\" = {sum} ]; }}",
        force = u8::from(force)
    );
    let mode = attrs.mode.clone().unwrap_or_default();
    if data.len() <= STDIN_LIMIT {
        let body = format!(
            "d={dest}\n{into_dir}case \"$d\" in */) echo \"destination directory $d does not exist\" >&2; exit 1;; esac\n\
             if {same}; then :; else C=1\n  if [ \"$CHECK\" != 1 ]; then t=\"$d.hive-tmp$$\"; m={mode}; \
             [ -n \"$m\" ] || {{ [ -f \"$d\" ] && m=$(stat -c %a \"$d\"); }}; cat >\"$t\" || exit 1; \
             [ -z \"$m\" ] || chmod \"$m\" \"$t\"; mv -f \"$t\" \"$d\" || exit 1; fi\nfi\nhv_attrs \"$d\" {attrs}\necho \"$d\"",
            dest = shell_path(dest),
            mode = shell_quote(&mode),
            attrs = attrs.args()
        );
        let out = ctx.script(&body, Some(data.to_vec())).await?;
        let mut o = script_result(&out);
        if !o.failed {
            let path = out
                .stdout_text()
                .lines()
                .rev()
                .nth(1)
                .unwrap_or(dest)
                .to_string();
            o.data.clear();
            o.data.insert("dest".into(), json!(path));
            o.data.insert("checksum".into(), json!(sum));
        }
        return Ok(o);
    }
    // large content: compare first, upload through the target's file
    // transfer only when different
    let probe = format!(
        "d={dest}\n{into_dir}if {same}; then echo same; else echo differ; fi\necho \"$d\"",
        dest = shell_path(dest)
    );
    let out = ctx.script(&probe, None).await?;
    let text = out.stdout_text();
    let mut lines = text.lines();
    let differ = lines.next() == Some("differ");
    let path = lines.next().unwrap_or(dest).to_string();
    let mut changed = false;
    if differ {
        changed = true;
        if !ctx.check {
            let m = u32::from_str_radix(mode.trim_start_matches('0'), 8).unwrap_or(0o644);
            ctx.target
                .put_file(
                    &path,
                    data,
                    crate::target::FileAttrs {
                        mode: if mode.is_empty() { 0o644 } else { m },
                        uid: 0,
                        gid: 0,
                    },
                )
                .await?;
        }
    }
    let fix = format!("hv_attrs {} {}", shell_quote(&path), attrs.args());
    let mut o = ctx.script_outcome(&fix, None).await?;
    o.changed |= changed;
    o.data.clear();
    o.data.insert("dest".into(), json!(path));
    o.data.insert("checksum".into(), json!(sum));
    Ok(o)
}

/// Modules whose result describes the file they leave (`state`, `mode`,
/// `owner`, `group`, `uid`, `gid`, `size`), as Ansible's file modules do.
const FILE_RESULT: &[&str] = &["copy", "template", "file"];

/// Runs module `name` with rendered `args` (through the [`registry`]).
pub(crate) async fn run(name: &str, args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    match registry::find(name) {
        Some(m) => {
            let mut o = (m.run)(name, args, ctx).await?;
            if FILE_RESULT.contains(&name) && !o.failed {
                edit::add_file_result(ctx, &mut o).await?;
            }
            Ok(o)
        }
        None => Err(Error::Args {
            task: ctx.task.clone(),
            module: name.into(),
            message: "module not implemented".into(),
        }),
    }
}

pub(crate) fn set_fact(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let template_error = |message| Error::Template {
        context: ctx.task.clone(),
        message,
    };
    // arguments as written; a template for all of them is rendered first
    let (args, rendered) = match args {
        Json::Object(_) => (args, None),
        other => {
            let (v, tainted) = ctx
                .renderer
                .render_value_marked(&other, ctx.vars)
                .map_err(template_error)?;
            (v, Some(tainted))
        }
    };
    let Json::Object(mut m) = args else {
        return Err(Error::Args {
            task: ctx.task.clone(),
            module: "set_fact".into(),
            message: "expects a mapping of variables".into(),
        });
    };
    m.remove("cacheable");
    // as Ansible's set_fact: keys are templates too (`"{{ item.0 }}=x"`),
    // and the strings true/false/yes/no become booleans
    let mut facts = Map::new();
    let mut unsafe_facts = vec![];
    for (k, v) in m {
        let key = if k.contains("{{") {
            ctx.renderer
                .render_str(&k, ctx.vars)
                .map(|j| crate::role::json_text(&j))
                .map_err(template_error)?
        } else {
            k
        };
        if key.is_empty() || !key.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Ok(Outcome::failed(format!(
                "The variable name '{key}' is not valid. Variables must start with a letter or underscore character, and contain only letters, numbers and underscores."
            )));
        }
        let (v, tainted) = match rendered {
            Some(tainted) => (v, tainted),
            None => ctx
                .renderer
                .render_value_marked(&v, ctx.vars)
                .map_err(template_error)?,
        };
        if v.as_str() == Some(ctx.renderer.omit_token()) {
            continue;
        }
        if tainted {
            unsafe_facts.push(key.clone());
        }
        let v = match v {
            Json::String(s) if matches!(s.to_ascii_lowercase().as_str(), "true" | "yes") => {
                Json::Bool(true)
            }
            Json::String(s) if matches!(s.to_ascii_lowercase().as_str(), "false" | "no") => {
                Json::Bool(false)
            }
            other => other,
        };
        facts.insert(key, v);
    }
    let m = facts;
    let mut o = Outcome::ok(false);
    o.data
        .insert("ansible_facts".into(), Json::Object(m.clone()));
    o.facts = Some(m);
    o.unsafe_facts = unsafe_facts;
    Ok(o)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DebugP {
    msg: Option<Json>,
    var: Option<S>,
    verbosity: Option<S>,
}

pub(crate) fn debug(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: DebugP = params("debug", args, ctx)?;
    let _ = p.verbosity;
    let mut data = Map::new();
    let msg = match (p.msg, p.var) {
        (Some(m), _) => crate::role::json_text(&m),
        (None, Some(v)) => {
            let val = ctx
                .renderer
                .render_str(&format!("{{{{ {} }}}}", v.0), ctx.vars)
                .unwrap_or(Json::String("VARIABLE IS NOT DEFINED!".into()));
            // the result holds the variable, as Ansible's debug gives it
            data.insert(v.0.clone(), val.clone());
            format!("{}: {}", v.0, val)
        }
        (None, None) => "Hello world!".into(),
    };
    Ok(Outcome {
        msg: Some(msg),
        data,
        ..Default::default()
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailP {
    msg: Option<S>,
}

pub(crate) fn fail(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: FailP = params("fail", args, ctx)?;
    Ok(Outcome::failed(
        p.msg
            .map(|m| m.0)
            .unwrap_or_else(|| "Failed as requested from task".into()),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssertP {
    that: L,
    #[serde(alias = "msg")]
    fail_msg: Option<S>,
    success_msg: Option<S>,
    quiet: Option<B>,
}

pub(crate) fn assert(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let that = match args.get("that") {
        Some(Json::String(s)) => Json::Array(vec![Json::String(s.clone())]),
        Some(other) => other.clone(),
        None => Json::Null,
    };
    let mut args = args;
    if let Json::Object(m) = &mut args {
        m.insert("that".into(), that);
    }
    let p: AssertP = params("assert", args, ctx)?;
    let _ = p.quiet;
    for cond in &p.that.0 {
        let ok = ctx
            .renderer
            .is_true(cond, ctx.vars)
            .map_err(|m| Error::Template {
                context: ctx.task.clone(),
                message: m,
            })?;
        if !ok {
            return Ok(Outcome::failed(
                p.fail_msg
                    .map(|m| m.0)
                    .unwrap_or_else(|| format!("Assertion failed: {cond}")),
            ));
        }
    }
    Ok(Outcome {
        msg: Some(
            p.success_msg
                .map(|m| m.0)
                .unwrap_or_else(|| "All assertions passed".into()),
        ),
        ..Default::default()
    })
}
