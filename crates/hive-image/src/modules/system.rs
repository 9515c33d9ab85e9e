//! Command, account, service, mount and network modules.

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{B, Ctx, L, Outcome, S, params};
use crate::error::Result;
use crate::target::{ExecRequest, shell_quote};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScriptP {
    #[serde(rename = "_raw_params")]
    raw: Option<S>,
    cmd: Option<S>,
    chdir: Option<S>,
    creates: Option<S>,
    removes: Option<S>,
    executable: Option<S>,
    decrypt: Option<B>,
}

pub(super) async fn script(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: ScriptP = params("script", args, ctx)?;
    let _ = &p.decrypt;
    let Some(line) = p.raw.or(p.cmd).map(|s| s.0) else {
        return Ok(Outcome::failed("no script given".into()));
    };
    let (path, rest) = line.split_once(' ').unwrap_or((&line, ""));
    let data = ctx.local_file("files", path)?;
    let mut pre = String::new();
    if let Some(c) = &p.creates {
        pre.push_str(&format!(
            "[ -e {} ] && {{ printf '__hive_skip__'; exit 0; }}\n",
            shell_quote(&c.0)
        ));
    }
    if let Some(r) = &p.removes {
        pre.push_str(&format!(
            "[ -e {} ] || {{ printf '__hive_skip__'; exit 0; }}\n",
            shell_quote(&r.0)
        ));
    }
    if ctx.check {
        let out = ctx.run(ExecRequest::shell(format!("{pre}exit 3"))).await?;
        if out.stdout_text() == "__hive_skip__" {
            return Ok(Outcome::default());
        }
        return Ok(Outcome {
            skipped: true,
            ..Default::default()
        });
    }
    if let Some(d) = &p.chdir {
        pre.push_str(&format!("cd {} || exit 1\n", shell_quote(&d.0)));
    }
    let exe = p
        .executable
        .map(|e| format!("{} ", e.0))
        .unwrap_or_default();
    let body = format!(
        "{pre}t=$(mktemp); cat >\"$t\"; chmod 700 \"$t\"; {exe}\"$t\" {rest} </dev/null; rc=$?; rm -f \"$t\"; exit $rc"
    );
    let out = ctx.run(ExecRequest::shell(body).with_stdin(data)).await?;
    let stdout = out.stdout_text();
    if stdout == "__hive_skip__" && out.status == 0 {
        return Ok(Outcome::default());
    }
    Ok(Outcome {
        changed: true,
        failed: out.status != 0,
        msg: (out.status != 0).then(|| {
            format!(
                "script failed with {}: {}",
                out.status,
                out.stderr_text().trim()
            )
        }),
        ..Default::default()
    }
    .with("rc", json!(out.status))
    .with("stdout", json!(stdout))
    .with("stderr", json!(out.stderr_text())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserP {
    #[serde(alias = "user")]
    name: S,
    uid: Option<S>,
    group: Option<S>,
    groups: Option<L>,
    append: Option<B>,
    shell: Option<S>,
    home: Option<S>,
    #[serde(alias = "createhome")]
    create_home: Option<B>,
    system: Option<B>,
    state: Option<S>,
    remove: Option<B>,
    force: Option<B>,
    password: Option<S>,
    update_password: Option<S>,
    comment: Option<S>,
    move_home: Option<B>,
    non_unique: Option<B>,
    expires: Option<S>,
    password_lock: Option<B>,
    skeleton: Option<S>,
    umask: Option<S>,
    local: Option<B>,
    generate_ssh_key: Option<B>,
    ssh_key_bits: Option<S>,
    ssh_key_type: Option<S>,
    ssh_key_file: Option<S>,
    ssh_key_comment: Option<S>,
    ssh_key_passphrase: Option<S>,
    hidden: Option<B>,
    seuser: Option<S>,
    profile: Option<S>,
    authorization: Option<S>,
    role: Option<S>,
    login_class: Option<S>,
}

pub(super) async fn user(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: UserP = params("user", args, ctx)?;
    let _ = (
        &p.force,
        &p.update_password,
        &p.expires,
        &p.password_lock,
        &p.umask,
        &p.local,
        &p.generate_ssh_key,
        &p.ssh_key_bits,
        &p.ssh_key_type,
        &p.ssh_key_file,
        &p.ssh_key_comment,
        &p.ssh_key_passphrase,
        &p.hidden,
        &p.seuser,
        &p.profile,
        &p.authorization,
        &p.role,
        &p.login_class,
    );
    let n = shell_quote(&p.name.0);
    let q = |o: &Option<S>| shell_quote(o.as_ref().map(|x| x.0.as_str()).unwrap_or(""));
    let groups = p.groups.as_ref().map(|g| g.0.join(","));
    let body = if p.state.as_ref().map(|s| s.0.as_str()) == Some("absent") {
        format!(
            "if getent passwd {n} >/dev/null; then C=1; hv_do userdel {r} {n} || exit 1; fi",
            r = if p.remove.map(|b| b.0).unwrap_or(false) {
                "-r"
            } else {
                ""
            }
        )
    } else {
        let create = p.create_home.map(|b| b.0).unwrap_or(true);
        let mut add = String::from("useradd");
        if create {
            add.push_str(" -m")
        } else {
            add.push_str(" -M")
        }
        if p.system.map(|b| b.0).unwrap_or(false) {
            add.push_str(" -r")
        }
        if p.non_unique.map(|b| b.0).unwrap_or(false) {
            add.push_str(" -o")
        }
        if let Some(s) = &p.skeleton {
            add.push_str(&format!(" -k {}", shell_quote(&s.0)))
        }
        for (flag, v) in [
            ("-u", &p.uid),
            ("-g", &p.group),
            ("-s", &p.shell),
            ("-d", &p.home),
            ("-c", &p.comment),
            ("-p", &p.password),
        ] {
            if let Some(v) = v {
                add.push_str(&format!(" {flag} {}", shell_quote(&v.0)))
            }
        }
        if let Some(g) = &groups {
            if !g.is_empty() {
                add.push_str(&format!(" -G {}", shell_quote(g)))
            }
        }
        let move_home = if p.move_home.map(|b| b.0).unwrap_or(false) {
            " -m"
        } else {
            ""
        };
        format!(
            "if e=$(getent passwd {n}); then\n  IFS=: read -r _ _ cuid cgid cgecos chome cshell <<EOF\n$e\nEOF\n  m=''\n  \
             u={uid}; [ -z \"$u\" ] || [ \"$u\" = \"$cuid\" ] || m=\"$m -u $u\"\n  \
             s={shell}; [ -z \"$s\" ] || [ \"$s\" = \"$cshell\" ] || m=\"$m -s $s\"\n  \
             h={home}; [ -z \"$h\" ] || [ \"$h\" = \"$chome\" ] || m=\"$m -d $h{move_home}\"\n  \
             c={comment}; [ -z \"$c\" ] || [ \"$c\" = \"$cgecos\" ] || m=\"$m -c $c\"\n  \
             g={group}; if [ -n \"$g\" ]; then gid=$(getent group \"$g\" | cut -d: -f3); [ \"$g\" = \"$cgid\" ] || [ \"$gid\" = \"$cgid\" ] || m=\"$m -g $g\"; fi\n  \
             gs={groups}; if [ -n \"$gs\" ]; then cur=\" $(id -Gn {n}) \"; miss=''; for x in $(echo \"$gs\" | tr , ' '); do case \"$cur\" in *\" $x \"*) ;; *) miss=1;; esac; done; \
             if [ {append} = 0 ]; then for x in $(id -Gn {n}); do [ \"$(id -gn {n})\" = \"$x\" ] && continue; case \",$gs,\" in *\",$x,\"*) ;; *) miss=1;; esac; done; fi; \
             [ -z \"$miss\" ] || m=\"$m {gflag} $gs\"; fi\n  \
             if [ -n \"$m\" ]; then C=1; hv_do usermod $m {n} || exit 1; fi\n\
             else C=1; hv_do {add} {n} || exit 1; fi",
            uid = q(&p.uid),
            shell = q(&p.shell),
            home = q(&p.home),
            comment = q(&p.comment),
            group = q(&p.group),
            groups = shell_quote(groups.as_deref().unwrap_or("")),
            append = u8::from(p.append.map(|b| b.0).unwrap_or(false)),
            gflag = if p.append.map(|b| b.0).unwrap_or(false) {
                "-a -G"
            } else {
                "-G"
            },
        )
    };
    // what Ansible returns of the account: its ids, home and shell
    let body = format!(
        "{body}\ngetent passwd {n} | cut -d: -f3,4,6,7 | sed 's/^/hv_user=/'",
        n = shell_quote(&p.name.0)
    );
    let mut o = ctx.script_outcome(&body, None).await?;
    let stdout = o.data.remove("stdout").unwrap_or_default();
    if let Some(line) = stdout
        .as_str()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("hv_user=")))
    {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() == 4 {
            o.data
                .insert("uid".into(), json!(f[0].parse::<i64>().unwrap_or(0)));
            o.data
                .insert("group".into(), json!(f[1].parse::<i64>().unwrap_or(0)));
            o.data.insert("home".into(), json!(f[2]));
            o.data.insert("shell".into(), json!(f[3]));
        }
    }
    let absent = o.data.get("home").is_none();
    o.data.insert(
        "state".into(),
        json!(if absent { "absent" } else { "present" }),
    );
    o.data.insert("name".into(), json!(p.name.0));
    Ok(o)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupP {
    name: S,
    gid: Option<S>,
    state: Option<S>,
    system: Option<B>,
    local: Option<B>,
    non_unique: Option<B>,
    force: Option<B>,
}

pub(super) async fn group(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: GroupP = params("group", args, ctx)?;
    let _ = (&p.local, &p.force);
    let n = shell_quote(&p.name.0);
    let body = if p.state.as_ref().map(|s| s.0.as_str()) == Some("absent") {
        format!("if getent group {n} >/dev/null; then C=1; hv_do groupdel {n} || exit 1; fi")
    } else {
        let gid = p
            .gid
            .as_ref()
            .map(|g| shell_quote(&g.0))
            .unwrap_or_default();
        let mut add = String::from("groupadd");
        if p.system.map(|b| b.0).unwrap_or(false) {
            add.push_str(" -r")
        }
        if p.non_unique.map(|b| b.0).unwrap_or(false) {
            add.push_str(" -o")
        }
        if !gid.is_empty() {
            add.push_str(&format!(" -g {gid}"))
        }
        format!(
            "if e=$(getent group {n}); then g='{gid}'; if [ -n \"$g\" ] && [ \"$(echo \"$e\" | cut -d: -f3)\" != \"$g\" ]; then C=1; hv_do groupmod -g \"$g\" {n} || exit 1; fi\nelse C=1; hv_do {add} {n} || exit 1; fi",
            gid = p
                .gid
                .as_ref()
                .map(|g| g.0.replace('\'', ""))
                .unwrap_or_default()
        )
    };
    // the result names the group and its gid, as Ansible's
    let body = format!("{body}\necho \"hv_gid=$(getent group {n} | cut -d: -f3)\"");
    let mut o = ctx.script_outcome(&body, None).await?;
    let stdout = o.data.remove("stdout");
    if !o.failed {
        let absent = p.state.as_ref().is_some_and(|s| s.0 == "absent");
        o.data.insert("name".into(), json!(p.name.0));
        o.data.insert(
            "state".into(),
            json!(if absent { "absent" } else { "present" }),
        );
        let gid = stdout
            .as_ref()
            .and_then(Json::as_str)
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("hv_gid=")))
            .and_then(|g| g.trim().parse::<u64>().ok());
        if let Some(g) = gid.filter(|_| !absent) {
            o.data.insert("gid".into(), json!(g));
            o.data
                .insert("system".into(), json!(p.system.is_some_and(|b| b.0)));
        }
    }
    Ok(o)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServiceP {
    #[serde(alias = "service", alias = "unit")]
    name: Option<S>,
    state: Option<S>,
    enabled: Option<B>,
    #[serde(alias = "daemon-reload")]
    daemon_reload: Option<B>,
    #[serde(alias = "daemon-reexec")]
    daemon_reexec: Option<B>,
    masked: Option<B>,
    scope: Option<S>,
    force: Option<B>,
    no_block: Option<B>,
    runlevel: Option<S>,
    sleep: Option<S>,
    pattern: Option<S>,
    #[serde(alias = "args")]
    arguments: Option<S>,
    #[serde(rename = "use")]
    use_: Option<S>,
}

pub(super) async fn service(module: &str, args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: ServiceP = params(module, args, ctx)?;
    let _ = (
        &p.daemon_reexec,
        &p.scope,
        &p.force,
        &p.no_block,
        &p.runlevel,
        &p.sleep,
        &p.pattern,
        &p.arguments,
        &p.use_,
    );
    let mut body = String::from(
        "sd=0; [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && sd=1\n",
    );
    if p.daemon_reload.map(|b| b.0).unwrap_or(false) {
        body.push_str("[ $sd = 1 ] && hv_do systemctl daemon-reload\n");
    }
    if let Some(n) = &p.name {
        let n = shell_quote(&n.0);
        if let Some(m) = p.masked {
            body.push_str(&if m.0 {
                format!("[ \"$(systemctl is-enabled {n} 2>/dev/null)\" = masked ] || {{ C=1; hv_do systemctl mask {n} || exit 1; }}\n")
            } else {
                format!("[ \"$(systemctl is-enabled {n} 2>/dev/null)\" != masked ] || {{ C=1; hv_do systemctl unmask {n} || exit 1; }}\n")
            });
        }
        if let Some(e) = p.enabled {
            // systemctl enable works without a running systemd (it only makes links)
            body.push_str(&format!(
                "if command -v systemctl >/dev/null 2>&1; then st=$(systemctl is-enabled {n} 2>/dev/null); \
                 if [ {e} = 1 ]; then case \"$st\" in enabled|static|alias) ;; *) C=1; hv_do systemctl enable {n} >/dev/null 2>&1 || {{ echo 'cannot enable {n}' >&2; exit 1; }};; esac; \
                 else [ \"$st\" != enabled ] || {{ C=1; hv_do systemctl disable {n} >/dev/null 2>&1 || exit 1; }}; fi\n\
                 elif command -v update-rc.d >/dev/null 2>&1; then if [ {e} = 1 ]; then ls /etc/rc2.d/S*{n} >/dev/null 2>&1 || {{ C=1; hv_do update-rc.d {n} enable >/dev/null || exit 1; }}; \
                 else ls /etc/rc2.d/S*{n} >/dev/null 2>&1 && {{ C=1; hv_do update-rc.d {n} disable >/dev/null || exit 1; }}; fi\n\
                 elif command -v rc-update >/dev/null 2>&1; then if [ {e} = 1 ]; then rc-update show default | grep -qw {n} || {{ C=1; hv_do rc-update add {n} default >/dev/null || exit 1; }}; \
                 else rc-update show default | grep -qw {n} && {{ C=1; hv_do rc-update del {n} default >/dev/null || exit 1; }}; fi\n\
                 else echo 'no service manager found to enable {n}' >&2; exit 1; fi\n",
                e = u8::from(e.0)
            ));
        }
        if let Some(s) = &p.state {
            let act = |verb: &str| {
                format!(
                    "if [ $sd = 1 ]; then hv_do systemctl {verb} {n} || exit 1; elif command -v rc-service >/dev/null 2>&1; then hv_do rc-service {n} {verb} || exit 1; else hv_do service {n} {verb} || exit 1; fi"
                )
            };
            body.push_str(&format!(
                "if [ $sd = 1 ]; then systemctl is-active -q {n}; else service {n} status >/dev/null 2>&1 || rc-service {n} status >/dev/null 2>&1; fi; up=$?\n"
            ));
            body.push_str(&match s.0.as_str() {
                "started" => format!("if [ $up != 0 ]; then C=1; {}; fi\n", act("start")),
                "stopped" => format!("if [ $up = 0 ]; then C=1; {}; fi\n", act("stop")),
                "restarted" => format!("C=1; {}\n", act("restart")),
                "reloaded" => format!("C=1; {}\n", act("reload")),
                other => {
                    return Ok(Outcome::failed(format!(
                        "state must be started, stopped, restarted or reloaded; got {other}"
                    )));
                }
            });
        }
    }
    ctx.script_outcome(&body, None).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SysctlP {
    #[serde(alias = "key")]
    name: S,
    #[serde(alias = "val")]
    value: Option<S>,
    state: Option<S>,
    reload: Option<B>,
    sysctl_file: Option<S>,
    ignoreerrors: Option<B>,
    sysctl_set: Option<B>,
}

pub(super) async fn sysctl(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: SysctlP = params("sysctl", args, ctx)?;
    let file = p
        .sysctl_file
        .map(|f| f.0)
        .unwrap_or_else(|| "/etc/sysctl.conf".into());
    let present = p.state.as_ref().map(|s| s.0.as_str()) != Some("absent");
    let value = p.value.map(|v| v.0).unwrap_or_default();
    if present && value.is_empty() {
        return Ok(Outcome::failed(
            "value is required with state=present".into(),
        ));
    }
    let key_re = regex::escape(&p.name.0);
    let line = format!("{}={}", p.name.0, value);
    let (f, k, l) = (shell_quote(&file), shell_quote(&key_re), shell_quote(&line));
    let mut body = format!(
        "f={f}; [ -f \"$f\" ] || {{ C=1; hv_do mkdir -p \"$(dirname \"$f\")\" && hv_do touch \"$f\" || exit 1; }}\ncur=$(grep -E \"^[[:space:]]*\"{k}\"[[:space:]]*=\" \"$f\" 2>/dev/null | tail -1 | sed 's/[[:space:]]*=[[:space:]]*/=/; s/^[[:space:]]*//')\n"
    );
    if present {
        body.push_str(&format!(
            "if [ \"$cur\" != {l} ]; then C=1; if [ \"$CHECK\" != 1 ]; then grep -vE \"^[[:space:]]*\"{k}\"[[:space:]]*=\" \"$f\" >\"$f.hive\"; echo {l} >>\"$f.hive\"; cat \"$f.hive\" >\"$f\" || exit 1; rm -f \"$f.hive\"; fi; fi\n"
        ));
    } else {
        body.push_str(&format!(
            "if [ -n \"$cur\" ]; then C=1; if [ \"$CHECK\" != 1 ]; then grep -vE \"^[[:space:]]*\"{k}\"[[:space:]]*=\" \"$f\" >\"$f.hive\"; cat \"$f.hive\" >\"$f\" || exit 1; rm -f \"$f.hive\"; fi; fi\n"
        ));
    }
    let ign = p.ignoreerrors.map(|b| b.0).unwrap_or(false);
    if present && p.sysctl_set.map(|b| b.0).unwrap_or(false) {
        body.push_str(&format!(
            "if [ \"$(sysctl -n {n} 2>/dev/null)\" != {v} ]; then C=1; hv_do sysctl -w {l} >/dev/null || [ {i} = 1 ] || exit 1; fi\n",
            n = shell_quote(&p.name.0), v = shell_quote(&value), i = u8::from(ign)
        ));
    } else if p.reload.map(|b| b.0).unwrap_or(true) {
        body.push_str(&format!(
            "if [ $C = 1 ]; then hv_do sysctl -p \"$f\" >/dev/null || [ {} = 1 ] || exit 1; fi\n",
            u8::from(ign)
        ));
    }
    ctx.script_outcome(&body, None).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WaitForP {
    host: Option<S>,
    port: Option<S>,
    path: Option<S>,
    state: Option<S>,
    timeout: Option<S>,
    delay: Option<S>,
    sleep: Option<S>,
    connect_timeout: Option<S>,
    #[serde(alias = "regexp")]
    search_regex: Option<S>,
    msg: Option<S>,
    active_connection_states: Option<L>,
    exclude_hosts: Option<L>,
}

pub(super) async fn wait_for(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: WaitForP = params("wait_for", args, ctx)?;
    let _ = (
        &p.connect_timeout,
        &p.active_connection_states,
        &p.exclude_hosts,
    );
    if ctx.check {
        return Ok(Outcome {
            skipped: true,
            ..Default::default()
        });
    }
    let timeout: u64 = p
        .timeout
        .as_ref()
        .and_then(|t| t.0.parse().ok())
        .unwrap_or(300);
    let delay: u64 = p.delay.as_ref().and_then(|t| t.0.parse().ok()).unwrap_or(0);
    let sleep = p
        .sleep
        .as_ref()
        .map(|s| s.0.clone())
        .unwrap_or_else(|| "1".into());
    let state = p.state.map(|s| s.0).unwrap_or_else(|| "started".into());
    let host = p.host.map(|h| h.0).unwrap_or_else(|| "127.0.0.1".into());
    let probe = match (&p.port, &p.path) {
        (Some(port), _) => format!(
            "{{ command -v nc >/dev/null 2>&1 && nc -z -w 1 {h} {pt}; }} || {{ command -v bash >/dev/null 2>&1 && timeout 2 bash -c \"exec 3<>/dev/tcp/\"{h}\"/\"{pt} 2>/dev/null; }}",
            h = shell_quote(&host),
            pt = shell_quote(&port.0)
        ),
        (None, Some(path)) => match &p.search_regex {
            Some(r) => format!(
                "grep -qE {} {} 2>/dev/null",
                shell_quote(&r.0),
                shell_quote(&path.0)
            ),
            None => format!("[ -e {} ]", shell_quote(&path.0)),
        },
        (None, None) => "true".into(),
    };
    let want_up = matches!(state.as_str(), "started" | "present");
    let body = format!(
        "sleep {delay}; end=$(( $(date +%s) + {timeout} ))\nwhile :; do if {probe}; then r=0; else r=1; fi\n  [ $r = {w} ] && break\n  [ $(date +%s) -ge $end ] && {{ echo {msg} >&2; exit 1; }}\n  sleep {sleep}\ndone",
        w = if want_up { 0 } else { 1 },
        msg = shell_quote(
            &p.msg
                .map(|m| m.0)
                .unwrap_or_else(|| format!("Timeout when waiting for {state}"))
        ),
    );
    let out = ctx.run(ExecRequest::shell(body)).await?;
    if out.status != 0 {
        return Ok(Outcome::failed(out.stderr_text().trim().to_string()));
    }
    Ok(Outcome::default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UriP {
    url: S,
    method: Option<S>,
    body: Option<Json>,
    body_format: Option<S>,
    headers: Option<Json>,
    status_code: Option<L>,
    return_content: Option<B>,
    #[serde(alias = "user")]
    url_username: Option<S>,
    #[serde(alias = "password")]
    url_password: Option<S>,
    force_basic_auth: Option<B>,
    validate_certs: Option<B>,
    timeout: Option<S>,
    dest: Option<S>,
    creates: Option<S>,
    removes: Option<S>,
    follow_redirects: Option<S>,
    src: Option<S>,
    unix_socket: Option<S>,
    http_agent: Option<S>,
    use_proxy: Option<B>,
}

pub(super) async fn uri(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    use base64::Engine as _;
    let p: UriP = params("uri", args, ctx)?;
    let _ = (
        &p.dest,
        &p.follow_redirects,
        &p.src,
        &p.unix_socket,
        &p.http_agent,
        &p.use_proxy,
        &p.force_basic_auth,
    );
    if let Some(c) = &p.creates {
        if ctx
            .run(ExecRequest::shell(format!("[ -e {} ]", shell_quote(&c.0))))
            .await?
            .status
            == 0
        {
            return Ok(Outcome {
                skipped: true,
                ..Default::default()
            });
        }
    }
    if let Some(r) = &p.removes {
        if ctx
            .run(ExecRequest::shell(format!("[ -e {} ]", shell_quote(&r.0))))
            .await?
            .status
            != 0
        {
            return Ok(Outcome {
                skipped: true,
                ..Default::default()
            });
        }
    }
    let method = p
        .method
        .map(|m| m.0.to_uppercase())
        .unwrap_or_else(|| "GET".into());
    if ctx.check && method != "GET" {
        return Ok(Outcome {
            skipped: true,
            ..Default::default()
        });
    }
    let mut headers: Vec<(String, String)> = match &p.headers {
        Some(Json::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), crate::role::json_text(v)))
            .collect(),
        _ => vec![],
    };
    if let (Some(u), Some(pw)) = (&p.url_username, &p.url_password) {
        let tok = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", u.0, pw.0));
        headers.push(("Authorization".into(), format!("Basic {tok}")));
    }
    let body = match (&p.body, p.body_format.as_ref().map(|f| f.0.as_str())) {
        (Some(b), Some("json")) => {
            headers.push(("Content-Type".into(), "application/json".into()));
            Some(match b {
                Json::String(s) => s.clone().into_bytes(),
                other => other.to_string().into_bytes(),
            })
        }
        (Some(Json::Object(m)), Some("form-urlencoded")) => {
            headers.push((
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
            Some(
                m.iter()
                    .map(|(k, v)| format!("{k}={}", crate::role::json_text(v)))
                    .collect::<Vec<_>>()
                    .join("&")
                    .into_bytes(),
            )
        }
        (Some(b), _) => Some(crate::role::json_text(b).into_bytes()),
        (None, _) => None,
    };
    let timeout = p
        .timeout
        .as_ref()
        .and_then(|t| t.0.parse().ok())
        .unwrap_or(30);
    let insecure = !p.validate_certs.map(|b| b.0).unwrap_or(true);
    let (code, data) = match super::files::fetch(
        ctx,
        &p.url.0,
        &method,
        &headers,
        body.as_deref(),
        timeout,
        insecure,
    )
    .await?
    {
        Ok(x) => x,
        Err(e) => return Ok(Outcome::failed(e)),
    };
    let ok_codes: Vec<u16> = p
        .status_code
        .map(|l| l.0.iter().filter_map(|c| c.parse().ok()).collect())
        .unwrap_or_else(|| vec![200]);
    let text = String::from_utf8_lossy(&data).into_owned();
    let mut o = if ok_codes.contains(&code) {
        Outcome::default()
    } else {
        Outcome::failed(format!("Status code was {code} and not {ok_codes:?}"))
    };
    o.data.insert("status".into(), json!(code));
    o.data.insert("url".into(), json!(p.url.0));
    if let Ok(j) = serde_json::from_str::<Json>(&text) {
        o.data.insert("json".into(), j);
    }
    if p.return_content.map(|b| b.0).unwrap_or(false) {
        o.data.insert("content".into(), json!(text));
    }
    Ok(o)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IpifyP {
    api_url: Option<S>,
    timeout: Option<S>,
    validate_certs: Option<B>,
}

pub(super) async fn ipify_facts(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: IpifyP = params("ipify_facts", args, ctx)?;
    let url = p
        .api_url
        .map(|u| u.0)
        .unwrap_or_else(|| "https://api.ipify.org/".into());
    let timeout = p
        .timeout
        .as_ref()
        .and_then(|t| t.0.parse().ok())
        .unwrap_or(10);
    let insecure = !p.validate_certs.map(|b| b.0).unwrap_or(true);
    let (code, data) =
        match super::files::fetch(ctx, &url, "GET", &[], None, timeout, insecure).await? {
            Ok(x) => x,
            Err(e) => return Ok(Outcome::failed(e)),
        };
    if code != 200 {
        return Ok(Outcome::failed(format!("{url} answered {code}")));
    }
    let ip = String::from_utf8_lossy(&data).trim().to_string();
    let mut facts = serde_json::Map::new();
    facts.insert("ipify_public_ip".into(), json!(ip));
    let mut o = Outcome::default();
    o.data
        .insert("ansible_facts".into(), Json::Object(facts.clone()));
    o.facts = Some(serde_json::Map::from_iter([(
        "ansible_facts".to_string(),
        Json::Object(facts),
    )]));
    Ok(o)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PauseP {
    seconds: Option<S>,
    minutes: Option<S>,
    prompt: Option<S>,
    echo: Option<B>,
}

pub(super) async fn pause(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: PauseP = params("pause", args, ctx)?;
    let _ = (&p.prompt, &p.echo);
    let secs: u64 = p.seconds.and_then(|s| s.0.parse().ok()).unwrap_or(0)
        + 60 * p.minutes.and_then(|m| m.0.parse().ok()).unwrap_or(0);
    if !ctx.check {
        tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    }
    Ok(Outcome::default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MountP {
    #[serde(alias = "name")]
    path: S,
    src: Option<S>,
    fstype: Option<S>,
    opts: Option<S>,
    dump: Option<S>,
    passno: Option<S>,
    state: S,
    fstab: Option<S>,
    boot: Option<B>,
    backup: Option<B>,
    opts_no_log: Option<B>,
}

/// The states of `mount`, in the order Ansible's message lists them.
const MOUNT_STATES: [&str; 7] = [
    "absent",
    "absent_from_fstab",
    "mounted",
    "present",
    "unmounted",
    "remounted",
    "ephemeral",
];

/// A field of an fstab line: spaces, tabs, newlines and backslashes as
/// octal escapes, as mount(8) reads them.
fn fstab_field(s: &str) -> String {
    s.replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012")
}

/// `mount` (ansible.posix.mount): an fstab entry (`present`,
/// `absent_from_fstab`), a mounted file system (`mounted`, `unmounted`,
/// `remounted`, `absent`: both), or a mount without an entry (`ephemeral`).
pub(super) async fn mount(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: MountP = params("mount", args, ctx)?;
    let _ = &p.opts_no_log;
    let state = p.state.0.as_str();
    if !MOUNT_STATES.contains(&state) {
        return Ok(Outcome::failed(format!(
            "value of state must be one of: {}, got: {state}",
            MOUNT_STATES.join(", ")
        )));
    }
    let text =
        |v: &Option<S>, default: &str| v.as_ref().map_or(default.to_string(), |s| s.0.clone());
    let (src, fstype) = (text(&p.src, ""), text(&p.fstype, ""));
    if matches!(state, "present" | "mounted" | "ephemeral") && (src.is_empty() || fstype.is_empty())
    {
        return Ok(Outcome::failed(format!(
            "state is {state} but all of the following are missing: {}",
            [("src", &src), ("fstype", &fstype)]
                .iter()
                .filter(|(_, v)| v.is_empty())
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let boot = p.boot.is_none_or(|b| b.0);
    let mut opts: Vec<String> = text(&p.opts, "defaults")
        .split(',')
        .map(str::to_string)
        .collect();
    if !boot {
        opts.retain(|o| o != "defaults");
        if !opts.iter().any(|o| o == "noauto") {
            opts.push("noauto".into());
        }
    }
    let opts = opts.join(",");
    let (dump, passno) = (text(&p.dump, "0"), text(&p.passno, "0"));
    let fstab = text(&p.fstab, "/etc/fstab");
    let path = p.path.0.trim_end_matches('/').to_string();
    let path = if path.is_empty() { "/".into() } else { path };
    let line = [&src, &path, &fstype, &opts, &dump, &passno]
        .iter()
        .map(|f| fstab_field(f))
        .collect::<Vec<_>>()
        .join(" ");
    let q = shell_quote;
    let other_fstab = if fstab == "/etc/fstab" {
        String::new()
    } else {
        format!("-T {} ", q(&fstab))
    };
    // The entries of the path are replaced by (or appended as) the new
    // line, or dropped; the file is rewritten in place only when it changes.
    let mut body = format!(
        "f={f}; p={p}; B=; FS=0\nexport P={ep} L={l}\n\
         hv_fstab() {{\n  old=$(cat \"$f\" 2>/dev/null)\n  \
         if [ \"$1\" = set ]; then new=$(printf '%s\\n' \"$old\" | awk 'NF && !/^[[:space:]]*#/ && $2 == ENVIRON[\"P\"] {{ print ENVIRON[\"L\"]; found = 1; next }} {{ print }} END {{ if (!found) print ENVIRON[\"L\"] }}' | sed '/./,$!d')\n  \
         else new=$(printf '%s\\n' \"$old\" | awk '!(NF && !/^[[:space:]]*#/ && $2 == ENVIRON[\"P\"])'); fi\n  \
         [ \"$new\" = \"$old\" ] && return 0\n  C=1; FS=1\n  [ \"$CHECK\" = 1 ] && return 0\n  \
         if [ {backup} = 1 ] && [ -e \"$f\" ]; then B=\"$f.$$.$(date +%Y-%m-%d@%H:%M:%S)~\"; cp -p \"$f\" \"$B\" || exit 1; fi\n  \
         [ -e \"$f\" ] || {{ mkdir -p \"$(dirname \"$f\")\" && : >\"$f\" && chmod 0644 \"$f\"; }} || exit 1\n  \
         printf '%s\\n' \"$new\" >\"$f\" || exit 1\n}}\n\
         hv_mounted() {{ mountpoint -q \"$p\" 2>/dev/null; }}\n",
        f = q(&fstab),
        p = q(&path),
        ep = q(&fstab_field(&path)),
        l = q(&line),
        backup = u8::from(p.backup.is_some_and(|b| b.0)),
    );
    let mkdir = "[ -d \"$p\" ] || { C=1; hv_do mkdir -p \"$p\" || exit 1; }\n";
    body.push_str(&match state {
        "present" => "hv_fstab set\n".to_string(),
        "absent_from_fstab" => "hv_fstab unset\n".to_string(),
        // as Ansible's: unmounted and its directory removed only when
        // the entry was there
        "absent" => "hv_fstab unset\n\
             if [ $FS = 1 ] && [ \"$CHECK\" != 1 ]; then\n  \
             if hv_mounted; then umount \"$p\" || exit 1; fi\n  \
             if [ -d \"$p\" ]; then rmdir \"$p\" || exit 1; fi\nfi\n"
            .to_string(),
        "mounted" => format!(
            "hv_fstab set\n{mkdir}\
             if ! hv_mounted; then C=1; hv_do mount {other_fstab}\"$p\" || exit 1;\n\
             elif [ $FS = 1 ]; then hv_do mount -o remount {other_fstab}\"$p\" || exit 1; fi\n"
        ),
        "unmounted" => "if hv_mounted; then C=1; hv_do umount \"$p\" || exit 1; fi\n".to_string(),
        "remounted" => format!(
            "hv_mounted || {{ echo \"$p is not mounted\" >&2; exit 1; }}\n\
             C=1; hv_do mount -o remount {other_fstab}\"$p\" || exit 1\n"
        ),
        _ => format!(
            "{mkdir}if hv_mounted; then\n  \
             have=$(findmnt -n -o SOURCE,FSTYPE --mountpoint \"$p\" | awk '{{print $1\" \"$2}}')\n  \
             [ \"$have\" = {want} ] || {{ echo \"$p is already mounted: $have\" >&2; exit 1; }}\n\
             else C=1; hv_do mount -t {t} -o {o} {s} \"$p\" || exit 1; fi\n",
            want = q(&format!("{src} {fstype}")),
            t = q(&fstype),
            o = q(&opts),
            s = q(&src),
        ),
    });
    body.push_str("echo \"backup=$B\"\n");
    let out = ctx.script(&body, None).await?;
    let mut o = super::script_result(&out);
    if o.failed {
        return Ok(o);
    }
    let stdout = o.data.remove("stdout").unwrap_or_default();
    if let Some(b) = stdout
        .as_str()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("backup=")))
        .filter(|b| !b.is_empty())
    {
        o.data.insert("backup_file".into(), json!(b));
    }
    for (k, v) in [
        ("name", &path),
        ("src", &src),
        ("fstype", &fstype),
        ("opts", &opts),
        ("dump", &dump),
        ("passno", &passno),
        ("fstab", &fstab),
    ] {
        o.data.insert(k.into(), json!(v));
    }
    o.data
        .insert("boot".into(), json!(if boot { "yes" } else { "no" }));
    Ok(o)
}
