//! `stat` (what Ansible's stat returns, in one command) and `tempfile`.

use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::{B, Ctx, Outcome, S, params};
use crate::error::Result;
use crate::target::{ExecRequest, shell_quote};

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

/// The `stat -c` format: type, octal mode, owner, group, uid, gid, size,
/// mtime, atime, ctime, inode, links, device (major*256+minor of the
/// filesystem), raw mode in hex.
const FORMAT: &str = "%F|%a|%U|%G|%u|%g|%s|%.9Y|%.9X|%.9Z|%i|%h|%d|%f";

pub(super) async fn stat(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: StatP = params("stat", args, ctx)?;
    let _ = (&p.get_attributes, &p.get_md5);
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
            "sha224" => "sha224sum",
            "sha384" => "sha384sum",
            "sha512" => "sha512sum",
            "md5" => "md5sum",
            _ => "sha1sum",
        }
    } else {
        ""
    };
    let mime = p.get_mime.map(|b| b.0).unwrap_or(true);
    let script = format!(
        "p={q}\nif [ -e \"$p\" ] || [ -L \"$p\" ]; then stat {follow}-c '{FORMAT}' \"$p\"; \
         if [ -n '{sum}' ] && [ -f \"$p\" ] && [ -r \"$p\" ]; then {sum} <\"$p\" | cut -d' ' -f1; else echo; fi; \
         readlink \"$p\" || echo; readlink -f \"$p\" || echo; \
         if [ {mime} = 1 ] && command -v file >/dev/null; then file {fl}--mime-type --mime-encoding -b \"$p\" 2>/dev/null || echo; else echo; fi; \
         a=; [ -r \"$p\" ] && a=${{a}}r; [ -w \"$p\" ] && a=${{a}}w; [ -x \"$p\" ] && a=${{a}}x; echo \"$a\"; \
         else echo ABSENT; fi",
        q = super::shell_path(&p.path.0),
        mime = u8::from(mime),
        fl = if follow.is_empty() { "" } else { "-L " },
    );
    let out = ctx.run(ExecRequest::shell(script)).await?;
    if out.status != 0 {
        return Ok(Outcome::failed(out.stderr_text()));
    }
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    let st = match lines.first() {
        None | Some(&"ABSENT") => json!({"exists": false}),
        Some(first) => describe(&p.path.0, first, &lines[1..], !sum.is_empty()),
    };
    let mut o = Outcome::default();
    o.data.insert("stat".into(), st);
    Ok(o)
}

/// The `stat` mapping from the script's lines.
fn describe(path: &str, first: &str, rest: &[&str], checksum_wanted: bool) -> Json {
    let f: Vec<&str> = first.split('|').collect();
    let get = |i: usize| f.get(i).copied().unwrap_or("");
    let num = |i: usize| get(i).parse::<i64>().unwrap_or(0);
    let float = |i: usize| get(i).parse::<f64>().unwrap_or(0.0);
    let line = |i: usize| rest.get(i).copied().unwrap_or("").to_string();
    let kind = get(0);
    let raw = u32::from_str_radix(get(13), 16).unwrap_or(0);
    let bit = |b: u32| raw & b != 0;
    let access = line(4);
    let mut m: Map<String, Json> = Map::new();
    let mut put = |k: &str, v: Json| {
        m.insert(k.into(), v);
    };
    put("exists", json!(true));
    put("path", json!(path));
    put("mode", json!(format!("{:0>4}", get(1))));
    put("pw_name", json!(get(2)));
    put("gr_name", json!(get(3)));
    put("uid", json!(num(4)));
    put("gid", json!(num(5)));
    put("size", json!(num(6)));
    put("mtime", json!(float(7)));
    put("atime", json!(float(8)));
    put("ctime", json!(float(9)));
    put("inode", json!(num(10)));
    put("nlink", json!(num(11)));
    put("dev", json!(num(12)));
    put("isdir", json!(kind == "directory"));
    put("isreg", json!(kind.starts_with("regular")));
    put("islnk", json!(kind == "symbolic link"));
    put("isfifo", json!(kind == "fifo"));
    put("issock", json!(kind == "socket"));
    put("isblk", json!(kind.starts_with("block")));
    put("ischr", json!(kind.starts_with("character")));
    put("isuid", json!(bit(0o4000)));
    put("isgid", json!(bit(0o2000)));
    for (k, b) in [
        ("rusr", 0o400),
        ("wusr", 0o200),
        ("xusr", 0o100),
        ("rgrp", 0o040),
        ("wgrp", 0o020),
        ("xgrp", 0o010),
        ("roth", 0o004),
        ("woth", 0o002),
        ("xoth", 0o001),
    ] {
        put(k, json!(bit(b)));
    }
    put("readable", json!(access.contains('r')));
    put("writeable", json!(access.contains('w')));
    put("executable", json!(access.contains('x')));
    let checksum = line(0);
    if !checksum.is_empty() {
        put("checksum", json!(checksum));
    } else if checksum_wanted && kind.starts_with("regular") {
        put("checksum", json!(""));
    }
    let target = line(1);
    if !target.is_empty() {
        put("lnk_source", json!(line(2)));
        put("lnk_target", json!(target));
    }
    let mime = line(3);
    if let Some((t, charset)) = mime.split_once(';') {
        put("mimetype", json!(t.trim()));
        put(
            "charset",
            json!(charset.trim().trim_start_matches("charset=")),
        );
    } else if !mime.is_empty() {
        put("mimetype", json!(mime.trim()));
    }
    Json::Object(m)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TempfileP {
    state: Option<S>,
    path: Option<S>,
    prefix: Option<S>,
    suffix: Option<S>,
}

/// `tempfile`: a file or directory made with `mktemp` (in `path`, or the
/// target's temporary directory), its path and state returned.
pub(super) async fn tempfile(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: TempfileP = params("tempfile", args, ctx)?;
    let state = p.state.map(|s| s.0).unwrap_or_else(|| "file".into());
    let flag = match state.as_str() {
        "file" => "",
        "directory" => "-d ",
        other => {
            return Ok(Outcome::failed(format!(
                "value of state must be one of: directory, file, got: {other}"
            )));
        }
    };
    let prefix = p.prefix.map(|s| s.0).unwrap_or_else(|| "ansible.".into());
    let suffix = p.suffix.map(|s| s.0).unwrap_or_default();
    let dir = match p.path {
        Some(d) if !d.0.is_empty() => shell_quote(&d.0),
        _ => "\"${TMPDIR:-/tmp}\"".into(),
    };
    if ctx.check {
        let mut o = Outcome {
            changed: true,
            ..Default::default()
        };
        o.data.insert("state".into(), json!(state));
        return Ok(o);
    }
    let template = format!("{prefix}XXXXXXXX{suffix}");
    let script = format!("mktemp {flag}-p {dir} {t}", t = shell_quote(&template));
    let out = ctx.run(ExecRequest::shell(script)).await?;
    if out.status != 0 {
        return Ok(Outcome::failed(format!(
            "cannot create the temporary {state}: {}",
            out.stderr_text().trim()
        )));
    }
    let path = out.stdout_text().trim().to_string();
    let mut o = Outcome {
        changed: true,
        ..Default::default()
    };
    o.data.insert("path".into(), json!(path));
    o.data.insert("state".into(), json!(state));
    Ok(o)
}
