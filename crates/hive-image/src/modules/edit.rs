//! Writing a text file edited in place (lineinfile, blockinfile, replace)
//! as Ansible does: parent directories made on `create`, the new content
//! validated before it replaces the file, a backup kept on request, then
//! owner, group and mode; one command on the target.

use serde_json::json;

use super::{Attrs, Ctx, Outcome, script_result};
use crate::error::Result;
use crate::target::shell_quote;

/// How an edited file is written.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WriteOpts<'a> {
    /// Keep a copy of the old file (`path.PID.DATE@TIME~`).
    pub backup: bool,
    /// A command that must accept the new content (`%s`: its path).
    pub validate: Option<&'a str>,
    /// Make missing parent directories.
    pub create_parents: bool,
    /// The key the backup's path is returned under (`backup` for
    /// lineinfile, `backup_file` for the others).
    pub backup_key: &'a str,
}

/// Writes `after` to `path` when it differs from `before` (the current
/// content, `None` when absent) and fixes attributes. `msg` describes the
/// content change; attribute changes are added to it as Ansible words them.
pub(crate) async fn write_text(
    ctx: &Ctx<'_>,
    path: &str,
    before: Option<&str>,
    after: &str,
    a: &Attrs,
    msg: &str,
    opts: WriteOpts<'_>,
) -> Result<Outcome> {
    let differ = before != Some(after);
    if let Some(v) = opts.validate {
        if !v.contains("%s") {
            return Ok(Outcome::failed(format!("validate must contain %s: {v}")));
        }
    }
    let body = format!(
        "d={d}\nB=\nif [ {differ} = 1 ]; then C=1\n if [ \"$CHECK\" != 1 ]; then\n  \
         p=$(dirname \"$d\"); if [ ! -d \"$p\" ]; then if [ {create} = 1 ]; then mkdir -p \"$p\" || exit 1; \
         else echo \"Destination directory $p does not exist\" >&2; exit 1; fi; fi\n  \
         t=\"$p/.hive-tmp.$$\"; cat >\"$t\" || exit 1\n  \
         if [ -n {v} ]; then cmd=$(printf '%s' {v} | sed \"s|%s|$t|g\"); out=$(sh -c \"$cmd\" 2>&1); rc=$?; \
         if [ $rc != 0 ]; then rm -f \"$t\"; echo \"failed to validate: rc:$rc error:$out\" >&2; exit 1; fi; fi\n  \
         if [ -f \"$d\" ]; then chmod --reference=\"$d\" \"$t\"; chown --reference=\"$d\" \"$t\" 2>/dev/null; \
         if command -v getfacl >/dev/null; then getfacl -p \"$d\" 2>/dev/null | setfacl --set-file=- \"$t\" 2>/dev/null; fi; \
         if [ {backup} = 1 ]; then B=\"$d.$$.$(date +%Y-%m-%d@%H:%M:%S)~\"; cp -p \"$d\" \"$B\" || exit 1; fi; fi\n  \
         mv -f \"$t\" \"$d\" || exit 1\n fi\nfi\n\
         CC=$C; C=0; hv_attrs \"$d\" {attrs}; echo \"attrs=$C\"; echo \"backup=$B\"; [ $CC = 1 ] && C=1",
        d = super::shell_path(path),
        differ = u8::from(differ),
        create = u8::from(opts.create_parents),
        v = shell_quote(opts.validate.unwrap_or("")),
        backup = u8::from(opts.backup),
        attrs = a.args(),
    );
    let out = ctx
        .script(&body, differ.then(|| after.as_bytes().to_vec()))
        .await?;
    let mut o = script_result(&out);
    if o.failed {
        return Ok(o);
    }
    let text = out.stdout_text();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
            .to_string()
    };
    let attrs_changed = field("attrs") == "1";
    let mut message = if differ {
        msg.to_string()
    } else {
        String::new()
    };
    if attrs_changed {
        if !message.is_empty() {
            message.push_str(" and ");
        }
        message.push_str("ownership, perms or SE linux context changed");
    }
    o.data.clear();
    o.msg = Some(message);
    o.data.insert(
        "diff".into(),
        json!([
            {"before": before.unwrap_or(""), "after": after,
             "before_header": format!("{path} (content)"), "after_header": format!("{path} (content)")},
            {"before_header": format!("{path} (file attributes)"), "after_header": format!("{path} (file attributes)")},
        ]),
    );
    let backup = field("backup");
    if opts.backup_key == "backup" || !backup.is_empty() {
        o.data.insert(opts.backup_key.into(), json!(backup));
    }
    Ok(o)
}

/// Adds what Ansible's file modules return about the file they leave
/// (`dest` or `path` of the result): state, mode, owner, group, ids, size.
pub(crate) async fn add_file_result(ctx: &Ctx<'_>, o: &mut Outcome) -> Result<()> {
    let Some(path) = o
        .data
        .get("dest")
        .or_else(|| o.data.get("path"))
        .and_then(|p| p.as_str())
        .map(str::to_string)
    else {
        return Ok(());
    };
    let out = ctx
        .run(crate::target::ExecRequest::shell(format!(
            "p={p}; stat -c '%F|%a|%U|%G|%u|%g|%s' \"$p\" 2>/dev/null || echo absent; \
             if [ {sum} = 1 ] && [ -f \"$p\" ]; then md5sum <\"$p\" | cut -c1-32; fi",
            p = shell_quote(&path),
            sum = u8::from(o.data.contains_key("checksum")),
        )))
        .await?;
    let text = out.stdout_text();
    let mut lines = text.lines();
    let f: Vec<&str> = lines.next().unwrap_or("").trim().split('|').collect();
    if let Some(md5) = lines.next().filter(|l| l.len() == 32) {
        o.data.insert("md5sum".into(), json!(md5));
    }
    if f.len() < 7 {
        o.data.entry("state").or_insert(json!("absent"));
        return Ok(());
    }
    let state = match f[0] {
        "directory" => "directory",
        "symbolic link" => "link",
        k if k.starts_with("regular") => "file",
        _ => "file",
    };
    let num = |s: &str| s.parse::<i64>().unwrap_or(0);
    o.data.entry("state").or_insert(json!(state));
    o.data.insert("mode".into(), json!(format!("{:0>4}", f[1])));
    o.data.insert("owner".into(), json!(f[2]));
    o.data.insert("group".into(), json!(f[3]));
    o.data.insert("uid".into(), json!(num(f[4])));
    o.data.insert("gid".into(), json!(num(f[5])));
    o.data.insert("size".into(), json!(num(f[6])));
    Ok(())
}
