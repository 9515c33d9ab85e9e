//! File modules: `copy`, `template`, `replace`, `get_url`, `unarchive` (`file`
//! has a file of its own).

use std::ops::ControlFlow;

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::edit::{WriteOpts, write_text};
use super::pyre::PyRegex;
use super::{Attrs, B, Ctx, L, M, Outcome, S, params, put_content, script_result};
use crate::error::Result;
use crate::target::{ExecRequest, shell_quote};

/// The attributes a task asks for (`mode=preserve` asks for none).
pub(super) fn attrs(mode: &Option<M>, owner: &Option<S>, group: &Option<S>) -> Attrs {
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
    dest: Option<S>,
    mode: Option<M>,
    owner: Option<S>,
    group: Option<S>,
    #[serde(alias = "thirsty")]
    force: Option<B>,
    remote_src: Option<B>,
    backup: Option<B>,
    directory_mode: Option<M>,
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
        &p.validate,
        &p.checksum,
        &p.unsafe_writes,
        &p.attributes,
    );
    let Some(dest) = p.dest.clone().filter(|d| !d.0.is_empty()) else {
        return Ok(Outcome::failed("dest is required".into()));
    };
    if p.src.is_some() && p.content.is_some() {
        return Ok(Outcome::failed(
            "src and content are mutually exclusive".into(),
        ));
    }
    // mode=preserve: the source's mode (a remote source's is kept by cp -a)
    let preserve = p.mode.as_ref().is_some_and(|m| m.0 == "preserve");
    let mut a = attrs(&p.mode, &p.owner, &p.group);
    if preserve {
        a.mode = None;
    }
    let force = p.force.map(|b| b.0).unwrap_or(true);
    if p.remote_src.map(|b| b.0).unwrap_or(false) {
        return copy_remote(&p, &dest.0, &a, force, ctx).await;
    }
    let src = p.src.clone().filter(|s| !s.0.is_empty());
    let (data, base) = match copy_data(&p, src.as_ref(), &dest.0, &mut a, preserve, ctx).await? {
        ControlFlow::Continue(found) => found,
        ControlFlow::Break(done) => return Ok(done),
    };
    let dest = match copy_dest(&p, &dest.0, base.as_deref(), ctx).await? {
        ControlFlow::Continue(dest) => dest,
        ControlFlow::Break(done) => return Ok(done),
    };
    // `diff: yes`: the text before and after, as Ansible's diff
    let before = if ctx.diff {
        Some(
            read_text(ctx, &dest)
                .await?
                .ok()
                .flatten()
                .unwrap_or_default(),
        )
    } else {
        None
    };
    let mut o = put_content(ctx, &dest, base.as_deref(), &data, &a, force).await?;
    if let Some(before) = before.filter(|_| !o.failed) {
        let after_header = src.as_ref().map_or(dest.as_str(), |s| s.0.as_str());
        o.data.insert(
            "diff".into(),
            json!([{
                "before": before,
                "after": String::from_utf8_lossy(&data),
                "before_header": dest,
                "after_header": after_header,
            }]),
        );
    }
    Ok(match &p.src {
        Some(src) if !o.failed => o.with("src", json!(src.0)),
        _ => o,
    })
}

/// `copy` with `remote_src`: the target's own file, or directory, copied
/// to `dest` there.
async fn copy_remote(
    p: &CopyP,
    dest: &str,
    a: &Attrs,
    force: bool,
    ctx: &Ctx<'_>,
) -> Result<Outcome> {
    let Some(src) = &p.src else {
        return Ok(Outcome::failed("remote_src needs src".into()));
    };
    let dir_mode = p.directory_mode.as_ref().map(|m| m.0.clone());
    // a directory: its content (`src/`) or itself (`src`) goes into
    // dest, changed when a file differs or is missing there
    let body = format!(
        "s={s}; d={d}\n[ -e \"$s\" ] || {{ echo \"Source $s not found\" >&2; exit 1; }}\n\
         [ -f \"$s\" ] || [ -d \"$s\" ] || {{ echo \"Source $s is not a file\" >&2; exit 1; }}\n\
         if [ -d \"$s\" ]; then\n\
         case \"$s\" in */) n=;; *) n=$(basename \"$s\");; esac\n{place}\nelse\n\
         case \"$d\" in */) [ -d \"$d\" ] || {{ C=1; hv_do mkdir -p \"$d\"; }};; esac\n\
         [ -d \"$d\" ] && d=\"${{d%/}}/$(basename \"$s\")\"\n\
         if [ -f \"$d\" ] && {{ [ {f} = 0 ] || cmp -s \"$s\" \"$d\"; }}; then :; else C=1; hv_do cp -a \"$s\" \"$d\" || exit 1; fi\nhv_attrs \"$d\" {a}\nfi",
        s = super::shell_path(&src.0),
        d = super::shell_path(dest),
        f = u8::from(force),
        a = a.args(),
        place = super::copydir::place_dir_script(
            a,
            dir_mode.as_deref(),
            p.local_follow.as_ref().is_some_and(|f| f.0)
        )
    );
    let mut o = ctx
        .script_outcome(&format!("{body}\necho \"hv_dest=$d\""), None)
        .await?;
    if let Some(d) = o.data.remove("stdout").and_then(|t| {
        t.as_str().and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("hv_dest="))
                .map(str::to_string)
        })
    }) {
        o.data.insert("dest".into(), json!(d));
        o.data.insert("src".into(), json!(src.0));
    }
    Ok(o)
}

/// What `copy` writes: `content`, or the role's file `src` and its base
/// name (with `mode=preserve`, its mode goes to `a`); a directory `src`
/// is copied here, and the copy's outcome is the break.
async fn copy_data(
    p: &CopyP,
    src: Option<&S>,
    dest: &str,
    a: &mut Attrs,
    preserve: bool,
    ctx: &Ctx<'_>,
) -> Result<ControlFlow<Outcome, (Vec<u8>, Option<String>)>> {
    let found = match (&p.content, src) {
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
            if let Some(local) = ctx.local_dir("files", &src.0) {
                let dir_mode = p.directory_mode.as_ref().map(|m| m.0.clone());
                return super::copydir::copy_local_dir(
                    ctx,
                    &src.0,
                    &local,
                    dest,
                    p.local_follow.as_ref().is_none_or(|f| f.0),
                    a,
                    dir_mode.as_deref(),
                )
                .await
                .map(ControlFlow::Break);
            }
            let base = src.0.rsplit('/').next().unwrap_or(&src.0).to_string();
            if preserve {
                a.mode = ctx.local_mode("files", &src.0);
            }
            let data = ctx.local_file("files", &src.0)?;
            if super::copydir::vault_encrypted(&data) && p.decrypt.as_ref().is_none_or(|d| d.0) {
                return Ok(ControlFlow::Break(Outcome::failed(
                    super::copydir::vault_message(&src.0),
                )));
            }
            (data, Some(base))
        }
        (None, None) => {
            return Ok(ControlFlow::Break(Outcome::failed(
                "src (or content) is required".into(),
            )));
        }
    };
    Ok(ControlFlow::Continue(found))
}

/// The file `copy` writes: `dest`, or the source's `base` name in the
/// directory `dest/` (created when missing); with `follow`, the target of
/// a link there. A directory `dest/` for `content` is the failed break.
async fn copy_dest(
    p: &CopyP,
    dest: &str,
    base: Option<&str>,
    ctx: &Ctx<'_>,
) -> Result<ControlFlow<Outcome, String>> {
    let dest = if dest.ends_with('/') {
        match base {
            Some(b) => {
                // dest/ names a directory, created when missing
                if !ctx.check {
                    ctx.run(ExecRequest::shell(format!(
                        "mkdir -p {}",
                        super::shell_path(dest)
                    )))
                    .await?;
                }
                format!("{dest}{b}")
            }
            None => {
                return Ok(ControlFlow::Break(Outcome::failed(
                    "can not use content with a dir as dest".into(),
                )));
            }
        }
    } else {
        dest.to_string()
    };
    // follow: a link at dest keeps pointing where it did; its target is
    // written (without follow the link is replaced by the file)
    if !p.follow.as_ref().is_some_and(|f| f.0) {
        return Ok(ControlFlow::Continue(dest));
    }
    let out = ctx
        .run(ExecRequest::shell(format!(
            "d={}; if [ -L \"$d\" ]; then readlink -f \"$d\"; else printf '%s\\n' \"$d\"; fi",
            super::shell_path(&dest)
        )))
        .await?;
    Ok(ControlFlow::Continue(
        Some(out.stdout_text().trim_end().to_string())
            .filter(|d| out.status == 0 && !d.is_empty())
            .unwrap_or(dest),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TemplateP {
    src: S,
    dest: S,
    mode: Option<M>,
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
    .map(|o| o.with("src", json!(p.src.0)))
}

/// Reads a text file of the target: `None` when absent.
pub(super) async fn read_text(
    ctx: &Ctx<'_>,
    path: &str,
) -> Result<std::result::Result<Option<String>, String>> {
    let req = ExecRequest::shell(format!(
        "if [ -f {p} ]; then cat {p}; elif [ -e {p} ]; then echo \"{p} is not a regular file\" >&2; exit 2; else exit 3; fi",
        p = super::shell_path(path)
    ));
    let out = ctx.run(req).await?;
    Ok(match out.status {
        0 => Ok(Some(out.stdout_text())),
        3 => Ok(None),
        _ => Err(out.stderr_text()),
    })
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
    mode: Option<M>,
    owner: Option<S>,
    group: Option<S>,
    validate: Option<S>,
    others: Option<S>,
    unsafe_writes: Option<B>,
    attributes: Option<S>,
}

/// `replace`, ported from Ansible's module (Python regular expressions,
/// `after`/`before` delimiting one section, "N replacements made").
pub(super) async fn replace(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: ReplaceP = params("replace", args, ctx)?;
    let _ = (&p.encoding, &p.others, &p.unsafe_writes, &p.attributes);
    let path = p.path.0.as_str();
    let template = p.replace.as_ref().map(|r| r.0.as_str()).unwrap_or("");
    if let Err(e) = PyRegex::check_template(template) {
        return Ok(Outcome::failed(format!(
            "Unable to process replace due to error: {e}"
        )));
    }
    let text = match read_text(ctx, path).await? {
        Err(_) => {
            return Ok(
                Outcome::failed(format!("Path {path} is a directory !")).with("rc", json!(256))
            );
        }
        Ok(None) => {
            return Ok(
                Outcome::failed(format!("Path {path} does not exist !")).with("rc", json!(257))
            );
        }
        Ok(Some(t)) => t,
    };
    let after = p
        .after
        .as_ref()
        .map(|s| s.0.as_str())
        .filter(|s| !s.is_empty());
    let before = p
        .before
        .as_ref()
        .map(|s| s.0.as_str())
        .filter(|s| !s.is_empty());
    let pattern = match (after, before) {
        (Some(a), Some(b)) => Some(format!("(?s){a}(?P<subsection>.*?){b}")),
        (Some(a), None) => Some(format!("(?s){a}(?P<subsection>.*)")),
        (None, Some(b)) => Some(format!("(?s)(?P<subsection>.*){b}")),
        (None, None) => None,
    };
    let (start, end) = match &pattern {
        None => (0, text.len()),
        Some(pat) => {
            let section = match PyRegex::new("after/before", pat) {
                Ok(r) => r,
                Err(e) => return Ok(Outcome::failed(e)),
            };
            match section.group_range(&text, "subsection") {
                Some(r) => r,
                None => {
                    return Ok(Outcome {
                        msg: Some(format!(
                            "Pattern for before/after params did not match the given file: {}",
                            pat.trim_start_matches("(?s)")
                        )),
                        ..Default::default()
                    }
                    .with("rc", json!(0)));
                }
            }
        }
    };
    let re = match PyRegex::new("regexp", &format!("(?m){}", p.regexp.0)) {
        Ok(r) => r,
        Err(e) => {
            return Ok(Outcome::failed(format!(
                "Unable to process replace due to error: {e}"
            )));
        }
    };
    let section = &text[start..end];
    let (new, n) = re.replace_all(
        section,
        p.replace.as_ref().map(|r| r.0.as_str()).unwrap_or(""),
    );
    let (after_text, msg) = if n > 0 && new != section {
        (
            format!("{}{}{}", &text[..start], new, &text[end..]),
            format!("{n} replacements made"),
        )
    } else {
        (text.clone(), String::new())
    };
    let mut o = write_text(
        ctx,
        path,
        Some(&text),
        &after_text,
        &attrs(&p.mode, &p.owner, &p.group),
        &msg,
        WriteOpts {
            backup: p.backup.is_some_and(|b| b.0),
            validate: p.validate.as_ref().map(|s| s.0.as_str()),
            create_parents: false,
            backup_key: "backup_file",
        },
    )
    .await?;
    o.data.insert("rc".into(), json!(0));
    Ok(o)
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
    mode: Option<M>,
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
    mode: Option<M>,
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
