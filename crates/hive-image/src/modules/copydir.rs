//! `copy` of a directory: a directory of the role (or a local path) goes
//! to the target as one archive unpacked in a staging directory; from there,
//! as from a directory on the target (`remote_src`), its content (`src/`)
//! or the directory itself (`src`) is placed in `dest`, changed when a file
//! differs or is missing there. Symbolic links are kept as links unless
//! `local_follow` (the default) follows them.

use serde_json::json;

use super::{Attrs, Ctx, Outcome, shell_path, shell_quote};
use crate::error::{Error, Result};
use crate::target::FileAttrs;

/// The script placing directory `$s` in `$d` (as `$d/$n`, or its content
/// in `$d` when `$n` is empty); leaves `$d` naming the copy. Links in it
/// are copied as links, or what they point to when `follow`.
pub(super) fn place_dir_script(
    attrs: &Attrs,
    directory_mode: Option<&str>,
    follow: bool,
) -> String {
    let (diff, cp) = if follow {
        ("diff -rq", "cp -aL")
    } else {
        ("diff -rq --no-dereference", "cp -a")
    };
    let mut script = format!(
        "if [ -n \"$n\" ]; then t=\"${{d%/}}/$n\"; else t=\"$d\"; fi\n\
         if [ -d \"$t\" ] && [ -z \"$({diff} \"${{s%/}}\" \"$t\" 2>&1 | grep -v \"^Only in ${{t%/}}\")\" ]; then :; \
         else C=1; hv_do mkdir -p \"$t\" && hv_do {cp} \"${{s%/}}/.\" \"$t/\" || exit 1; fi\nd=$t",
    );
    if let Some(m) = directory_mode {
        script.push_str(&format!(
            "\n[ \"$CHECK\" = 1 ] || find \"$d\" -type d -exec chmod {} {{}} +",
            shell_quote(m)
        ));
    }
    if let Some(m) = &attrs.mode {
        script.push_str(&format!(
            "\n[ \"$CHECK\" = 1 ] || find \"$d\" -type f -exec chmod {} {{}} +",
            shell_quote(m)
        ));
    }
    for (flag, value) in [("-user", &attrs.owner), ("-group", &attrs.group)] {
        if let Some(v) = value {
            let cmd = if flag == "-user" { "chown" } else { "chgrp" };
            script.push_str(&format!(
                "\nif [ -n \"$(find \"$d\" ! {flag} {v} 2>/dev/null | head -1)\" ]; then C=1; hv_do {cmd} -hR {v} \"$d\"; fi",
                v = shell_quote(v)
            ));
        }
    }
    script
}

/// Adds the tree under `dir` to the archive as `rel`: a link whose target
/// exists is followed when `follow`, others are kept as links.
fn append_tree(
    b: &mut tar::Builder<Vec<u8>>,
    dir: &std::path::Path,
    rel: &std::path::Path,
    follow: bool,
) -> std::io::Result<()> {
    append_tree_in(b, dir, rel, follow, &mut vec![])
}

/// [`append_tree`] below the directories `above` (canonical paths): a link
/// back to one of them stays a link (following it would never end).
fn append_tree_in(
    b: &mut tar::Builder<Vec<u8>>,
    dir: &std::path::Path,
    rel: &std::path::Path,
    follow: bool,
    above: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    b.append_dir(rel, dir)?;
    above.push(std::fs::canonicalize(dir)?);
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = rel.join(e.file_name());
        let link = std::fs::symlink_metadata(&path)?.file_type().is_symlink();
        let cycle = link && std::fs::canonicalize(&path).is_ok_and(|c| above.contains(&c));
        let resolved = std::fs::metadata(&path)
            .ok()
            .filter(|_| (follow || !link) && !cycle);
        match resolved {
            Some(m) if m.is_dir() => append_tree_in(b, &path, &name, follow, above)?,
            Some(_) => b.append_path_with_name(std::fs::canonicalize(&path)?, &name)?,
            None => b.append_path_with_name(&path, &name)?,
        }
    }
    above.pop();
    Ok(())
}

/// Whether a file is encrypted with Ansible Vault (hive has no vault
/// password: such a file fails the task, as in Ansible without one).
pub(super) fn vault_encrypted(data: &[u8]) -> bool {
    data.starts_with(b"$ANSIBLE_VAULT;")
}

/// The failure for a vault-encrypted file, as Ansible words it.
pub(super) fn vault_message(path: &str) -> String {
    format!("A vault password or secret must be specified to decrypt {path}")
}

/// The first vault-encrypted file under `dir`: a directory's files (in
/// name order) before its subdirectories, as Ansible walks it.
fn find_vault_file(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    let (dirs, files): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|p| p.is_dir() && !p.is_symlink());
    files
        .into_iter()
        .find(|p| std::fs::read(p).is_ok_and(|d| vault_encrypted(&d)))
        .or_else(|| dirs.iter().find_map(|d| find_vault_file(d)))
}

/// Copies local directory `local` (named `src` in the task) to `dest`.
pub(super) async fn copy_local_dir(
    ctx: &Ctx<'_>,
    src: &str,
    local: &std::path::Path,
    dest: &str,
    follow: bool,
    attrs: &Attrs,
    directory_mode: Option<&str>,
) -> Result<Outcome> {
    if let Some(v) = find_vault_file(local) {
        return Ok(Outcome::failed(vault_message(&v.display().to_string())));
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    append_tree(&mut builder, local, std::path::Path::new("."), follow)
        .map_err(Error::io(local))?;
    let archive = builder.into_inner().map_err(Error::io(local))?;
    let stage = format!(
        "/tmp/.hive-copy-{}",
        super::sha1_hex(format!("{dest}{src}{:?}", std::time::SystemTime::now()).as_bytes())
    );
    ctx.target
        .put_file(
            &format!("{stage}.tar"),
            &archive,
            FileAttrs {
                mode: 0o600,
                uid: 0,
                gid: 0,
            },
        )
        .await?;
    let name = if src.ends_with('/') {
        String::new()
    } else {
        src.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(src)
            .to_string()
    };
    let script = format!(
        "st={stage}; trap 'rm -rf \"$st\" \"$st.tar\"' EXIT\nmkdir -p \"$st\" && tar -xf \"$st.tar\" -C \"$st\" || exit 1\n\
         s=\"$st/\"; n={n}; d={d}\n{place}\necho \"hv_dest=$d\"",
        stage = shell_quote(&stage),
        n = shell_quote(&name),
        d = shell_path(dest),
        place = place_dir_script(attrs, directory_mode, false)
    );
    let out = ctx.script(&script, None).await?;
    let mut o = super::script_result(&out);
    let text = out.stdout_text();
    o.data.remove("stdout");
    if let Some(d) = text.lines().find_map(|l| l.strip_prefix("hv_dest=")) {
        o.data.insert("dest".into(), json!(d));
        o.data.insert("src".into(), json!(src));
    }
    Ok(o)
}
