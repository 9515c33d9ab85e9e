//! The installation media of the `kickstart` provider: the source image
//! unpacked, a boot menu entry per server, the image written back.

use std::path::{Path, PathBuf};

use crate::error::{ProviderError, Result};
use crate::provider::ServerChange;
use crate::stage::write_atomic;

/// The volume label of the installation media the menus boot from.
pub const MEDIA_LABEL: &str = "HiveInstaller";

/// Records which source image the tree was unpacked from.
const SOURCE_MARK: &str = ".hive-iso-src";

fn xorriso(args: &[&str], dir: Option<&Path>) -> Result<()> {
    let mut cmd = std::process::Command::new("xorriso");
    cmd.args(args).stdin(std::process::Stdio::null());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().map_err(|e| ProviderError::Program {
        program: "xorriso".into(),
        args: args.join(" "),
        message: format!("cannot run it (install xorriso): {e}"),
    })?;
    if !out.status.success() {
        return Err(ProviderError::Program {
            program: "xorriso".into(),
            args: args.join(" "),
            message: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// What identifies a source image: its path, size and modification time.
fn source_identity(src: &Path) -> Result<String> {
    let meta = std::fs::metadata(src).map_err(|e| {
        ProviderError::io(
            "read kickstart_config.iso_src (the installation image)",
            src,
            e,
        )
    })?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(format!("{} {} {mtime}\n", src.display(), meta.len()))
}

fn make_writable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).map_err(|e| ProviderError::io("read", dir, e))? {
        let path = entry.map_err(|e| ProviderError::io("read", dir, e))?.path();
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| ProviderError::io("read", &path, e))?;
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() | 0o200;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| ProviderError::io("make writable", &path, e))?;
        if meta.is_dir() {
            make_writable(&path)?;
        }
    }
    Ok(())
}

/// Unpacks `src` into `dir` unless it was unpacked from the same image
/// already; with `write` false, only tells.
pub(crate) fn unpack(src: &Path, dir: &Path, write: bool) -> Result<ServerChange> {
    let identity = source_identity(src)?;
    let mark = dir.join(SOURCE_MARK);
    let change = match std::fs::read_to_string(&mark) {
        Ok(m) if m == identity => return Ok(ServerChange::Unchanged),
        Ok(_) => ServerChange::Updated,
        Err(_) => ServerChange::Created,
    };
    if write {
        std::fs::create_dir_all(dir).map_err(|e| ProviderError::io("create directory", dir, e))?;
        let (src_text, dir_text) = (src.display().to_string(), dir.display().to_string());
        xorriso(
            &[
                "-osirrox", "on", "-indev", &src_text, "-extract", "/", &dir_text,
            ],
            None,
        )?;
        make_writable(dir)?;
        write_atomic(&mark, identity.as_bytes(), 0o644)?;
    }
    Ok(change)
}

/// Puts `block` between the markers of `host` in `text`: in place of the
/// block already there, else before the first line starting with `before`,
/// else at the end (as Ansible's `blockinfile` with `insertbefore`).
fn with_block(text: &str, host: &str, block: &str, before: &str) -> String {
    let begin = format!("# BEGIN ANSIBLE MANAGED BLOCK for {host}");
    let end = format!("# END ANSIBLE MANAGED BLOCK for {host}");
    let mut lines: Vec<&str> = text.lines().collect();
    let wrapped: Vec<&str> = std::iter::once(begin.as_str())
        .chain(block.lines())
        .chain(std::iter::once(end.as_str()))
        .collect();
    let start = lines.iter().position(|l| *l == begin);
    let stop = lines.iter().position(|l| *l == end);
    match (start, stop) {
        (Some(s), Some(e)) if s < e => {
            lines.splice(s..=e, wrapped);
        }
        _ => {
            let at = lines
                .iter()
                .position(|l| l.trim_start().starts_with(before))
                .unwrap_or(lines.len());
            lines.splice(at..at, wrapped);
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The boot entry of `host` in the menu `rel` (BIOS or UEFI), booting the
/// installer with its kickstart file from the media.
fn menu_entry(rel: &str, host: &str, short: &str) -> String {
    let media = format!("hd:LABEL={MEDIA_LABEL}");
    let boot = format!("inst.stage2={media} inst.repo={media}:/ inst.ks={media}:/{short}.ks");
    if rel.starts_with("isolinux") {
        format!(
            "label kickstart\n  menu label ^Kickstart {MEDIA_LABEL} for {host}\n  kernel vmlinuz\n  append initrd=initrd.img {boot} net.ifnames=0\n"
        )
    } else {
        format!(
            "menuentry 'Install kickstart {MEDIA_LABEL} for {host}' --class fedora --class gnu-linux --class gnu --class os {{\n  linuxefi /images/pxeboot/vmlinuz {boot}\n  initrdefi /images/pxeboot/initrd.img\n}}\n"
        )
    }
}

/// Adds a boot menu entry per server (`hosts`, inventory names) to the BIOS
/// and UEFI menus of the unpacked tree in `dir`.
pub(crate) fn menus(
    dir: &Path,
    hosts: &[String],
    write: bool,
) -> Result<Vec<(PathBuf, ServerChange)>> {
    const MENUS: [(&str, &str); 2] = [
        ("isolinux/isolinux.cfg", "label linux"),
        ("EFI/BOOT/grub.cfg", "menuentry 'Test this media"),
    ];
    let mut out = Vec::new();
    for (rel, before) in MENUS {
        let path = dir.join(rel);
        let old = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            // Not unpacked yet (check mode): the entries would be added.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !write => {
                out.push((path, ServerChange::Updated));
                continue;
            }
            Err(e) => {
                return Err(ProviderError::io(
                    "read the boot menu of kickstart_config.iso_src",
                    &path,
                    e,
                ));
            }
        };
        let mut text = old.clone();
        for host in hosts {
            let short = host.split('.').next().unwrap_or(host);
            text = with_block(&text, host, &menu_entry(rel, host, short), before);
        }
        let change = if text == old {
            ServerChange::Unchanged
        } else {
            ServerChange::Updated
        };
        if write && change != ServerChange::Unchanged {
            write_atomic(&path, text.as_bytes(), 0o644)?;
        }
        out.push((path, change));
    }
    Ok(out)
}

/// Writes the tree in `dir` as a bootable image at `dest` (a file or a
/// device) when it is missing or the tree `changed`.
pub(crate) fn write_image(
    dir: &Path,
    dest: &Path,
    changed: bool,
    write: bool,
) -> Result<ServerChange> {
    let change = if !dest.exists() {
        ServerChange::Created
    } else if changed {
        ServerChange::Updated
    } else {
        return Ok(ServerChange::Unchanged);
    };
    if write {
        let dest_text = dest.display().to_string();
        xorriso(
            &[
                "-as",
                "mkisofs",
                "-iso-level",
                "3",
                "-full-iso9660-filenames",
                "-output",
                &dest_text,
                "-eltorito-boot",
                "isolinux/isolinux.bin",
                "-eltorito-catalog",
                "isolinux/boot.cat",
                "-volid",
                MEDIA_LABEL,
                "-no-emul-boot",
                "-boot-load-size",
                "4",
                "-boot-info-table",
                "-eltorito-alt-boot",
                "-e",
                "images/efiboot.img",
                "-no-emul-boot",
                "-isohybrid-gpt-basdat",
                "-m",
                SOURCE_MARK,
                "./",
            ],
            Some(dir),
        )?;
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::with_block;

    #[test]
    fn a_block_goes_before_its_anchor_once() {
        let menu = "default vesamenu.c32\nlabel linux\n  kernel vmlinuz\n";
        let once = with_block(menu, "p-hive0.pdns", "label kickstart\n", "label linux");
        assert_eq!(
            once,
            "default vesamenu.c32\n# BEGIN ANSIBLE MANAGED BLOCK for p-hive0.pdns\nlabel kickstart\n# END ANSIBLE MANAGED BLOCK for p-hive0.pdns\nlabel linux\n  kernel vmlinuz\n"
        );
        assert_eq!(
            with_block(&once, "p-hive0.pdns", "label kickstart\n", "label linux"),
            once
        );
        let changed = with_block(&once, "p-hive0.pdns", "label other\n", "label linux");
        assert!(changed.contains("label other\n") && !changed.contains("label kickstart"));
    }

    #[test]
    fn without_its_anchor_a_block_goes_at_the_end() {
        let out = with_block("a\n", "h", "b\n", "label linux");
        assert_eq!(
            out,
            "a\n# BEGIN ANSIBLE MANAGED BLOCK for h\nb\n# END ANSIBLE MANAGED BLOCK for h\n"
        );
    }
}
