//! What a step manages on a server, checked in one round-trip and applied in
//! one more.

use sha2::{Digest, Sha256};

use super::error::{Result, SetupHostsError};
use super::shell::{Transport, run_checked};
use hive_model::shell_quote;

/// One thing a step keeps in its desired state on a server.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// A whole file: content, mode and owner.
    File {
        path: String,
        content: Vec<u8>,
        mode: u32,
        owner: String,
        group: String,
        on_change: Vec<String>,
    },
    /// A marked block at the top of a file, the rest left alone.
    Block {
        path: String,
        marker: String,
        content: String,
        on_change: Vec<String>,
    },
    /// A state probed by `check` (exit 0: nothing to do) and reached by
    /// `apply`.
    State {
        what: String,
        check: String,
        apply: String,
        /// Fed to `apply` (which then runs on its own); never logged.
        stdin: Option<Vec<u8>>,
        on_change: Vec<String>,
    },
}

impl Item {
    pub(crate) fn file(path: &str, content: impl Into<Vec<u8>>, mode: u32) -> Item {
        Item::File {
            path: path.to_string(),
            content: content.into(),
            mode,
            owner: "root".into(),
            group: "root".into(),
            on_change: Vec::new(),
        }
    }

    pub(crate) fn state(
        what: impl Into<String>,
        check: impl Into<String>,
        apply: impl Into<String>,
    ) -> Item {
        Item::State {
            what: what.into(),
            check: check.into(),
            apply: apply.into(),
            stdin: None,
            on_change: Vec::new(),
        }
    }

    pub(crate) fn block(path: &str, marker: &str, content: impl Into<String>) -> Item {
        let mut content = content.into();
        if !content.is_empty() && !content.ends_with('\n') {
            content.push('\n');
        }
        Item::Block {
            path: path.to_string(),
            marker: marker.to_string(),
            content,
            on_change: Vec::new(),
        }
    }

    /// Run `handler` once after the step when this item changed.
    pub(crate) fn notify(mut self, handler: impl Into<String>) -> Item {
        match &mut self {
            Item::File { on_change, .. }
            | Item::Block { on_change, .. }
            | Item::State { on_change, .. } => on_change.push(handler.into()),
        }
        self
    }

    pub(crate) fn owned(mut self, user: &str, grp: &str) -> Item {
        if let Item::File { owner, group, .. } = &mut self {
            *owner = user.to_string();
            *group = grp.to_string();
        }
        self
    }

    pub(crate) fn with_stdin(mut self, data: Vec<u8>) -> Item {
        if let Item::State { stdin, .. } = &mut self {
            *stdin = Some(data);
        }
        self
    }

    /// How the report names it.
    pub(crate) fn describe(&self) -> String {
        match self {
            Item::File { path, .. } => format!("file {path}"),
            Item::Block { path, marker, .. } => format!("block {marker} in {path}"),
            Item::State { what, .. } => what.clone(),
        }
    }

    fn handlers(&self) -> &[String] {
        match self {
            Item::File { on_change, .. }
            | Item::Block { on_change, .. }
            | Item::State { on_change, .. } => on_change,
        }
    }

    fn expected(&self) -> String {
        match self {
            Item::File {
                content,
                mode,
                owner,
                group,
                ..
            } => format!("{} {mode:o}:{owner}:{group}", sha256_hex(content)),
            Item::Block { content, .. } => sha256_hex(content.as_bytes()),
            Item::State { .. } => "ok".into(),
        }
    }

    /// Shell text printing `<index> <state>` for this item.
    fn check_script(&self, index: usize) -> String {
        match self {
            Item::File { path, .. } => {
                let p = shell_quote(path);
                format!(
                    "if [ -f {p} ]; then echo \"{index} $(sha256sum <{p} | cut -c1-64) $(stat -c '%a:%U:%G' {p})\"; else echo '{index} absent'; fi\n"
                )
            }
            Item::Block { path, marker, .. } => {
                let (b, e) = block_markers(marker);
                format!(
                    "echo \"{index} $(awk -v b={} -v e={} '$0==b{{f=1;next}} $0==e{{f=0;next}} f' {} 2>/dev/null | sha256sum | cut -c1-64)\"\n",
                    shell_quote(&b),
                    shell_quote(&e),
                    shell_quote(path)
                )
            }
            Item::State { check, .. } => format!(
                "if ( {check}\n) >/dev/null 2>&1 </dev/null; then echo '{index} ok'; else echo '{index} change'; fi\n"
            ),
        }
    }

    /// Shell text that brings this item to its desired state.
    fn apply_script(&self) -> String {
        match self {
            Item::File {
                path,
                content,
                mode,
                owner,
                group,
                ..
            } => {
                let p = shell_quote(path);
                let mut s = format!(
                    "d=$(dirname {p}); mkdir -p \"$d\"; t=$(mktemp \"$d/.hive.XXXXXX\")\nbase64 -d >\"$t\" <<'HIVE_EOF'\n{}\nHIVE_EOF\nchmod {mode:o} \"$t\"; chown {}:{} \"$t\"\n",
                    wrap_base64(content),
                    shell_quote(owner),
                    shell_quote(group)
                );
                s.push_str(&format!("mv -f \"$t\" {p}\n"));
                s
            }
            Item::Block {
                path,
                marker,
                content,
                ..
            } => {
                let (b, e) = block_markers(marker);
                let p = shell_quote(path);
                format!(
                    "touch {p}; t=$(mktemp); {{ printf '%s\\n' {b}; base64 -d <<'HIVE_EOF'\n{}\nHIVE_EOF\nprintf '%s\\n' {e}; awk -v b={b} -v e={e} '$0==b{{f=1;next}} $0==e{{f=0;next}} !f' {p}; }} >\"$t\"; cat \"$t\" >{p}; rm -f \"$t\"\n",
                    wrap_base64(content.as_bytes()),
                    b = shell_quote(&b),
                    e = shell_quote(&e),
                )
            }
            Item::State { apply, .. } => format!("{apply}\n"),
        }
    }
}

fn block_markers(marker: &str) -> (String, String) {
    (
        format!("# BEGIN HIVE MANAGED BLOCK {marker}"),
        format!("# END HIVE MANAGED BLOCK {marker}"),
    )
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn wrap_base64(data: &[u8]) -> String {
    use base64::Engine as _;
    let s = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(s.len() + s.len() / 76 + 1);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && i % 76 == 0 {
            out.push('\n');
        }
        out.push(c);
    }
    out
}

/// The script that checks every item at once.
pub(crate) fn check_script(items: &[Item]) -> String {
    let mut s = String::from("export LC_ALL=C\n");
    for (i, item) in items.iter().enumerate() {
        s.push_str(&item.check_script(i));
    }
    s
}

/// Which items differ from their desired state, from the check script's
/// output.
pub(crate) fn parse_check(items: &[Item], output: &str) -> std::result::Result<Vec<bool>, String> {
    let mut changed = vec![None; items.len()];
    for line in output.lines() {
        let Some((idx, state)) = line.split_once(' ') else {
            continue;
        };
        let Ok(idx) = idx.parse::<usize>() else {
            continue;
        };
        let Some(item) = items.get(idx) else {
            return Err(format!("line for item {idx} of {}", items.len()));
        };
        changed[idx] = Some(state.trim() != item.expected());
    }
    changed
        .into_iter()
        .enumerate()
        .map(|(i, c)| c.ok_or_else(|| format!("no line for item {i} ({})", items[i].describe())))
        .collect()
}

/// The scripts that apply the `changed` items, in order, then their
/// handlers once each. Items that need standard input get a script of their
/// own.
pub(crate) fn apply_scripts<'a>(
    items: &'a [Item],
    changed: &[bool],
) -> Vec<(String, Option<&'a [u8]>)> {
    let mut scripts = Vec::new();
    let mut current = String::new();
    let mut handlers: Vec<&str> = Vec::new();
    let header = "set -e\nexport LC_ALL=C DEBIAN_FRONTEND=noninteractive\nhive_item=start\ntrap 'echo \"hive: failed at: $hive_item\" >&2' EXIT\n";
    let footer = "trap - EXIT\n";
    for (item, _) in items.iter().zip(changed).filter(|(_, c)| **c) {
        for h in item.handlers() {
            if !handlers.contains(&h.as_str()) {
                handlers.push(h);
            }
        }
        let mark = format!("hive_item={}\n", shell_quote(&item.describe()));
        if let Item::State {
            stdin: Some(data), ..
        } = item
        {
            if !current.is_empty() {
                scripts.push((format!("{header}{current}{footer}"), None));
                current.clear();
            }
            scripts.push((
                format!("{header}{mark}{}{footer}", item.apply_script()),
                Some(data.as_slice()),
            ));
        } else {
            current.push_str(&mark);
            current.push_str(&item.apply_script());
        }
    }
    for h in handlers {
        current.push_str(&format!(
            "hive_item={}\n{h}\n",
            shell_quote(&format!("handler: {h}"))
        ));
    }
    if !current.is_empty() {
        scripts.push((format!("{header}{current}{footer}"), None));
    }
    scripts
}

/// Check `items` on the server and, unless `check_only`, apply what differs.
/// Returns the descriptions of the items that differed.
pub(crate) async fn converge(
    server: &dyn Transport,
    what: &str,
    items: &[Item],
    check_only: bool,
) -> Result<Vec<String>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let out = run_checked(server, &check_script(items), None, &format!("{what} check")).await?;
    let changed =
        parse_check(items, &out.stdout_text()).map_err(|detail| SetupHostsError::Unexpected {
            host: server.host().to_string(),
            what: format!("{what} check"),
            detail,
        })?;
    let names: Vec<String> = items
        .iter()
        .zip(&changed)
        .filter(|(_, c)| **c)
        .map(|(i, _)| i.describe())
        .collect();
    if check_only || names.is_empty() {
        return Ok(names);
    }
    for (script, stdin) in apply_scripts(items, &changed) {
        run_checked(server, &script, stdin, what).await?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_output_is_compared_with_desired_state() {
        let items = vec![
            Item::file("/etc/a", "hello\n", 0o644),
            Item::block("/etc/hosts", "servers", "10.0.0.1 h0"),
            Item::state("packages x", "true", "true"),
        ];
        let a = sha256_hex(b"hello\n");
        let block = sha256_hex(b"10.0.0.1 h0\n");
        let out = format!("0 {a} 644:root:root\n1 {block}\n2 ok\n");
        assert_eq!(
            parse_check(&items, &out).unwrap(),
            vec![false, false, false]
        );
        let out = format!("0 {a} 600:root:root\n1 {a}\n2 change\n");
        assert_eq!(parse_check(&items, &out).unwrap(), vec![true, true, true]);
        let out = "0 absent\n1 x\n".to_string();
        assert!(
            parse_check(&items, &out)
                .unwrap_err()
                .contains("packages x")
        );
    }

    #[test]
    fn apply_runs_changed_items_then_handlers_once() {
        let items = vec![
            Item::file("/etc/a", "x", 0o600).notify("systemctl restart a"),
            Item::file("/etc/b", "y", 0o644).notify("systemctl restart a"),
            Item::state("loaded", "false", "docker load").with_stdin(vec![1, 2]),
            Item::state("unchanged", "true", "echo never"),
        ];
        let scripts = apply_scripts(&items, &[true, true, true, false]);
        // Files, then the item with standard input alone, then the handlers.
        assert_eq!(scripts.len(), 3);
        assert!(scripts[0].1.is_none() && scripts[2].1.is_none());
        assert_eq!(scripts[1].1, Some(&[1u8, 2][..]));
        assert!(scripts[1].0.contains("docker load"));
        assert!(scripts[0].0.contains("/etc/a") && scripts[0].0.contains("/etc/b"));
        assert!(scripts[2].0.contains("systemctl restart a"));
        let all: String = scripts.iter().map(|s| s.0.clone()).collect();
        assert_eq!(all.matches("\nsystemctl restart a\n").count(), 1, "{all}");
        assert!(!all.contains("echo never"));
    }

    #[test]
    fn apply_scripts_round_trip_in_a_real_shell() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f.conf");
        let h = dir.path().join("hosts");
        std::fs::write(&h, "127.0.0.1 localhost\n").unwrap();
        let me = nix::unistd::User::from_uid(nix::unistd::getuid())
            .unwrap()
            .unwrap()
            .name;
        let grp = nix::unistd::Group::from_gid(nix::unistd::getgid())
            .unwrap()
            .unwrap()
            .name;
        let items = vec![
            Item::file(f.to_str().unwrap(), "a 'quoted' line\n", 0o640).owned(&me, &grp),
            Item::block(h.to_str().unwrap(), "servers", "10.0.0.1 h0\n10.0.0.2 h1"),
        ];
        let run = |script: &str| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let changed = parse_check(&items, &run(&check_script(&items))).unwrap();
        assert_eq!(changed, vec![true, true]);
        for (s, _) in apply_scripts(&items, &changed) {
            run(&s);
        }
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "a 'quoted' line\n");
        let hosts = std::fs::read_to_string(&h).unwrap();
        assert!(
            hosts
                .starts_with("# BEGIN HIVE MANAGED BLOCK servers\n10.0.0.1 h0\n10.0.0.2 h1\n# END"),
            "{hosts}"
        );
        assert!(hosts.ends_with("127.0.0.1 localhost\n"), "{hosts}");
        let changed = parse_check(&items, &run(&check_script(&items))).unwrap();
        assert_eq!(changed, vec![false, false]);
        // A changed block replaces the old one.
        let items2 = vec![Item::block(h.to_str().unwrap(), "servers", "10.0.0.9 h9")];
        for (s, _) in apply_scripts(&items2, &[true]) {
            run(&s);
        }
        let hosts = std::fs::read_to_string(&h).unwrap();
        assert_eq!(hosts.matches("BEGIN HIVE").count(), 1, "{hosts}");
        assert!(
            hosts.contains("10.0.0.9 h9") && !hosts.contains("h1"),
            "{hosts}"
        );
    }
}
