//! `command`, `shell` and `raw`, with Ansible's results: `cmd` (the argv
//! list for command, the text for shell), `rc`, `stdout`/`stderr` and
//! their lines, `start`/`end`/`delta`, `msg`, the skip messages of
//! `creates`/`removes`, and the warning for `executable` with command.
//!
//! `command` runs its words without a shell, as Ansible does: the text is
//! split as `shlex.split` does and each word passed as one argument; `$VAR`
//! and a leading `~` are still expanded (`expand_argument_vars`).

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{B, Ctx, L, Outcome, S, params};
use crate::error::Result;
use crate::target::{ExecRequest, shell_quote};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandP {
    #[serde(rename = "_raw_params")]
    raw: Option<S>,
    cmd: Option<S>,
    argv: Option<L>,
    chdir: Option<S>,
    creates: Option<S>,
    removes: Option<S>,
    executable: Option<S>,
    stdin: Option<S>,
    stdin_add_newline: Option<B>,
    strip_empty_ends: Option<B>,
    warn: Option<B>,
    expand_argument_vars: Option<B>,
}

/// Python's `shlex.split` (POSIX mode): quotes removed, backslash escapes.
pub(crate) fn shlex_split(s: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut any = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                any = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '"' => {
                any = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            cur.extend(chars.next());
                        }
                        q => cur.push(q),
                    }
                }
            }
            '\\' => {
                any = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One argument for `sh`: `$VAR` and a leading `~` expanded when `expand`.
fn arg_word(a: &str, expand: bool) -> String {
    if !expand {
        return shell_quote(a);
    }
    let (home, rest) = match a.strip_prefix('~') {
        Some(r) if r.is_empty() || r.starts_with('/') => ("~", r),
        _ => ("", a),
    };
    format!("{home}{}", super::double_quote(rest))
}

fn failed(r: &mut serde_json::Map<String, Json>, msg: &str) -> Outcome {
    r.insert("rc".into(), json!(256));
    Outcome {
        failed: true,
        msg: Some(msg.into()),
        data: std::mem::take(r),
        ..Default::default()
    }
}

pub(super) async fn command(module: &str, args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let mut p: CommandP = params(module, args, ctx)?;
    let _ = &p.warn;
    let shell = module != "command";
    let mut r = serde_json::Map::new();
    for k in ["stdout", "stderr"] {
        r.insert(k.into(), json!(""));
    }
    for k in ["rc", "cmd", "start", "end", "delta"] {
        r.insert(k.into(), Json::Null);
    }
    if shell && p.expand_argument_vars.is_some() {
        return Ok(Outcome::failed(format!(
            "Unsupported parameters for ({module}) module: expand_argument_vars"
        )));
    }
    let executable = executable(&p, shell, &mut r);
    let text = p
        .raw
        .take()
        .or(p.cmd.take())
        .map(|s| s.0)
        .filter(|t| !t.trim().is_empty());
    let argv = p.argv.take().map(|l| l.0).filter(|a| !a.is_empty());
    let words = match command_words(&text, &argv, shell) {
        Ok(words) => words,
        Err(msg) => return Ok(failed(&mut r, msg)),
    };
    r.insert(
        "cmd".into(),
        match (&text, shell) {
            (Some(t), true) => json!(t),
            _ => json!(words),
        },
    );
    if let Some(skip) = skipped_by_guard(&p, ctx, &mut r).await? {
        return Ok(skip);
    }
    if ctx.check {
        r.insert("rc".into(), json!(0));
        let guarded = p.creates.is_some() || p.removes.is_some();
        return Ok(Outcome {
            changed: guarded,
            skipped: !guarded,
            msg: Some("Command would have run if not in check mode".into()),
            data: r,
            ..Default::default()
        });
    }
    let req = exec_request(&p, text.as_deref().filter(|_| shell), &words, executable);
    let start = time::OffsetDateTime::now_utc();
    let out = ctx.run(req).await?;
    let end = time::OffsetDateTime::now_utc();
    let stdout = out.stdout_text();
    if out.status == 97 && stdout == "__hive_chdir__" {
        let dir = p.chdir.map(|d| d.0).unwrap_or_default();
        return Ok(Outcome {
            failed: true,
            msg: Some(format!(
                "Unable to change directory before execution: [Errno 2] No such file or directory: b'{dir}'"
            )),
            data: r,
            ..Default::default()
        });
    }
    let strip = p.strip_empty_ends.is_none_or(|b| b.0);
    record_run(
        &mut r,
        out.status,
        stdout,
        out.stderr_text(),
        strip,
        start,
        end,
    );
    let failed = out.status != 0;
    Ok(Outcome {
        changed: true,
        failed,
        msg: Some(if failed {
            "non-zero return code".into()
        } else {
            String::new()
        }),
        data: r,
        ..Default::default()
    })
}

/// The shell of `executable`; with `command` none, and the warning that
/// it is not used goes to the result `r`.
fn executable(p: &CommandP, shell: bool, r: &mut serde_json::Map<String, Json>) -> Option<String> {
    let mut warnings = vec![];
    let mut executable = p.executable.as_ref().map(|e| e.0.clone());
    if !shell && executable.is_some() {
        warnings.push(format!(
            "As of Ansible 2.4, the parameter 'executable' is no longer supported with the 'command' module. Not using '{}'.",
            executable.take().unwrap_or_default()
        ));
    }
    if !warnings.is_empty() {
        r.insert("warnings".into(), json!(warnings));
    }
    executable
}

/// The words `command` runs (none for a shell's text), or why there are
/// none to run.
fn command_words(
    text: &Option<String>,
    argv: &Option<Vec<String>>,
    shell: bool,
) -> std::result::Result<Vec<String>, &'static str> {
    match (text, argv) {
        (None, None) => Err("no command given"),
        (Some(_), Some(_)) => Err("only command or argv can be given, not both"),
        (Some(t), None) if !shell => Ok(shlex_split(t)),
        (None, Some(a)) => Ok(a.clone()),
        (Some(_), None) => Ok(vec![]),
    }
}

/// The outcome of a command `creates`/`removes` skips (the path exists,
/// or does not), its result filled in from `r`.
async fn skipped_by_guard(
    p: &CommandP,
    ctx: &Ctx<'_>,
    r: &mut serde_json::Map<String, Json>,
) -> Result<Option<Outcome>> {
    let shoulda = if ctx.check { "Would" } else { "Did" };
    for (path, want, what) in [
        (&p.creates, true, "exists"),
        (&p.removes, false, "does not exist"),
    ] {
        let Some(path) = path else { continue };
        let probe = format!(
            "for f in {}; do [ -e \"$f\" ] && exit 0; done; exit 1",
            path.0.replace(' ', "\\ ")
        );
        let out = ctx.run(ExecRequest::shell(probe)).await?;
        if (out.status == 0) == want {
            r.insert("rc".into(), json!(0));
            r.insert(
                "stdout".into(),
                json!(format!("skipped, since {} {what}", path.0)),
            );
            return Ok(Some(Outcome {
                msg: Some(format!(
                    "{shoulda} not run command since '{}' {what}",
                    path.0
                )),
                data: std::mem::take(r),
                ..Default::default()
            }));
        }
    }
    Ok(None)
}

/// The script that runs the command: `chdir` first, then the shell's
/// `text` with `executable` (default `/bin/sh`), or else the `words`; with
/// `stdin` as its input.
fn exec_request(
    p: &CommandP,
    shell_text: Option<&str>,
    words: &[String],
    executable: Option<String>,
) -> ExecRequest {
    let mut pre = String::new();
    if let Some(d) = &p.chdir {
        pre.push_str(&format!(
            "cd -P {} 2>/dev/null || {{ printf '__hive_chdir__'; exit 97; }}\n",
            super::shell_path(&d.0)
        ));
    }
    let expand = p.expand_argument_vars.is_none_or(|b| b.0);
    let run = match shell_text {
        Some(t) => {
            let sh = executable.unwrap_or_else(|| "/bin/sh".into());
            format!("exec {} -c {}", shell_quote(&sh), shell_quote(t))
        }
        None => format!(
            "exec {}",
            words
                .iter()
                .map(|a| arg_word(a, expand))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    };
    let mut req = ExecRequest::shell(format!("{pre}{run}"));
    if let Some(s) = &p.stdin {
        let mut data = s.0.clone();
        if p.stdin_add_newline.is_none_or(|b| b.0) {
            data.push('\n');
        }
        req.stdin = Some(data.into_bytes());
    }
    req
}

/// Ansible's time stamp: `2024-01-31 12:00:00.000000`.
fn stamp(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Puts a finished command's times, `rc` and output (and its lines) in
/// the result `r`; `strip` removes the outputs' trailing newlines.
fn record_run(
    r: &mut serde_json::Map<String, Json>,
    rc: i32,
    mut stdout: String,
    mut stderr: String,
    strip: bool,
    start: time::OffsetDateTime,
    end: time::OffsetDateTime,
) {
    if strip {
        stdout = stdout.trim_end_matches(['\n', '\r']).to_string();
        stderr = stderr.trim_end_matches(['\n', '\r']).to_string();
    }
    let delta = end - start;
    r.insert("start".into(), json!(stamp(start)));
    r.insert("end".into(), json!(stamp(end)));
    r.insert(
        "delta".into(),
        json!(format!(
            "0:00:{:02}.{:06}",
            delta.whole_seconds(),
            delta.subsec_microseconds()
        )),
    );
    r.insert("rc".into(), json!(rc));
    r.insert(
        "stdout_lines".into(),
        json!(stdout.lines().collect::<Vec<_>>()),
    );
    r.insert(
        "stderr_lines".into(),
        json!(stderr.lines().collect::<Vec<_>>()),
    );
    r.insert("stdout".into(), json!(stdout));
    r.insert("stderr".into(), json!(stderr));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_as_shlex() {
        assert_eq!(
            shlex_split(r#"echo "a b" 'c d' e\ f > x"#),
            ["echo", "a b", "c d", "e f", ">", "x"]
        );
        assert_eq!(arg_word("~/x", true), "~\"/x\"");
        assert_eq!(arg_word("$HOME", true), "\"$HOME\"");
    }
}
