//! Package modules.

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{B, Ctx, L, Outcome, S, params};
use crate::error::Result;
use crate::target::{ExecRequest, shell_quote};
use hive_model::shell_join;

/// Generic install/remove script: `installed` tests one package (`$p`).
fn pkg_script(
    names: &[String],
    state: &str,
    installed: &str,
    install: &str,
    remove: &str,
    update: &str,
    upgrade_cmd: &str,
) -> String {
    format!(
        "miss=''; have=''\nfor p in {names}; do n=${{p%%=*}}; if {installed}; then have=\"$have $p\"; else miss=\"$miss $p\"; fi; done\n\
         case {state} in\n  present|installed) if [ -n \"$miss\" ]; then C=1; if [ \"$CHECK\" != 1 ]; then {update} {install} $miss || exit 1; fi; fi;;\n  \
         latest) if [ -n \"$miss\" ]; then C=1; fi; if [ \"$CHECK\" != 1 ]; then {update} out=$({upgrade_cmd} {names} 2>&1) || {{ echo \"$out\" >&2; exit 1; }}; echo \"$out\" | grep -qiE '^(0 upgraded, 0 newly installed|nothing to do|ok:)' || C=1; fi;;\n  \
         absent|removed|purged) if [ -n \"$have\" ]; then C=1; hv_do {remove} $have || exit 1; fi;;\n  \
         *) echo 'state must be present, installed, latest or absent' >&2; exit 1;;\nesac",
        names = shell_join(names),
        state = shell_quote(state),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AptP {
    #[serde(alias = "pkg", alias = "package")]
    name: Option<L>,
    state: Option<S>,
    #[serde(alias = "update-cache")]
    update_cache: Option<B>,
    #[serde(alias = "update-cache-retries")]
    update_cache_retries: Option<S>,
    cache_valid_time: Option<S>,
    #[serde(alias = "install-recommends")]
    install_recommends: Option<B>,
    purge: Option<B>,
    autoremove: Option<B>,
    autoclean: Option<B>,
    force: Option<B>,
    deb: Option<S>,
    #[serde(alias = "default-release")]
    default_release: Option<S>,
    dpkg_options: Option<S>,
    upgrade: Option<S>,
    only_upgrade: Option<B>,
    allow_unauthenticated: Option<B>,
    allow_downgrade: Option<B>,
    allow_change_held_packages: Option<B>,
    clean: Option<B>,
    policy_rc_d: Option<S>,
    lock_timeout: Option<S>,
    fail_on_autoremove: Option<B>,
    force_apt_get: Option<B>,
}

pub(super) async fn apt(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: AptP = params("apt", args, ctx)?;
    let _ = (
        &p.update_cache_retries,
        &p.cache_valid_time,
        &p.autoclean,
        &p.force,
        &p.deb,
        &p.default_release,
        &p.dpkg_options,
        &p.upgrade,
        &p.only_upgrade,
        &p.allow_unauthenticated,
        &p.allow_downgrade,
        &p.allow_change_held_packages,
        &p.policy_rc_d,
        &p.lock_timeout,
        &p.fail_on_autoremove,
        &p.force_apt_get,
    );
    let names = p.name.map(|n| n.0).unwrap_or_default();
    let update = p.update_cache.map(|b| b.0).unwrap_or(false);
    let state = p.state.map(|s| s.0).unwrap_or_else(|| "present".into());
    let rec = if p.install_recommends.map(|b| b.0).unwrap_or(false) {
        ""
    } else {
        " --no-install-recommends"
    };
    let upd = if update {
        "apt-get update -q >/dev/null || exit 1;"
    } else {
        "[ -n \"$(ls /var/lib/apt/lists/ 2>/dev/null | grep _Packages)\" ] || apt-get update -q >/dev/null || exit 1;"
    };
    let remove = if p.purge.map(|b| b.0).unwrap_or(false) || state == "purged" {
        "apt-get purge -y -q"
    } else {
        "apt-get remove -y -q"
    };
    let mut body = String::from("export DEBIAN_FRONTEND=noninteractive\n");
    if names.is_empty() {
        if update && !ctx.check {
            body.push_str("apt-get update -q >/dev/null || exit 1\n");
        }
    } else {
        body.push_str(&pkg_script(
            &names,
            &state,
            "dpkg-query -W -f='${Status}' \"$n\" 2>/dev/null | grep -q 'ok installed'",
            &format!("apt-get install -y -q{rec}"),
            remove,
            upd,
            &format!("apt-get install -y -q{rec}"),
        ));
    }
    if p.autoremove.map(|b| b.0).unwrap_or(false) {
        body.push_str("\nhv_do apt-get autoremove -y -q >/dev/null");
    }
    if p.clean.map(|b| b.0).unwrap_or(false) {
        body.push_str("\nhv_do apt-get clean");
    }
    ctx.script_outcome(&body, None).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApkP {
    #[serde(alias = "pkg", alias = "package")]
    name: Option<L>,
    state: Option<S>,
    update_cache: Option<B>,
    upgrade: Option<B>,
    available: Option<B>,
    repository: Option<L>,
    no_cache: Option<B>,
    world: Option<S>,
}

pub(super) async fn apk(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: ApkP = params("apk", args, ctx)?;
    let _ = (&p.available, &p.world);
    if !has(ctx, "apk").await? {
        return Ok(missing_manager(ctx, "apk"));
    }
    let names = p.name.map(|n| n.0).unwrap_or_default();
    let state = p.state.map(|s| s.0).unwrap_or_else(|| "present".into());
    let mut opts = String::new();
    if p.no_cache.map(|b| b.0).unwrap_or(false) {
        opts.push_str(" --no-cache");
    }
    for r in p.repository.map(|r| r.0).unwrap_or_default() {
        opts.push_str(&format!(" --repository {}", shell_quote(&r)));
    }
    let upd = if p.update_cache.map(|b| b.0).unwrap_or(false) {
        "apk update -q >/dev/null || exit 1;"
    } else {
        ""
    };
    let mut body = pkg_script(
        &names,
        &state,
        "apk info -e \"$n\" >/dev/null 2>&1",
        &format!("apk add -q{opts}"),
        "apk del -q",
        upd,
        &format!("apk add -u -q{opts}"),
    );
    if p.upgrade.map(|b| b.0).unwrap_or(false) {
        body.push_str("\nhv_do apk upgrade -q >/dev/null");
    }
    ctx.script_outcome(&body, None).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct YumP {
    #[serde(alias = "pkg")]
    name: Option<L>,
    state: Option<S>,
    update_cache: Option<B>,
    enablerepo: Option<L>,
    disablerepo: Option<L>,
    disable_gpg_check: Option<B>,
    install_weak_deps: Option<B>,
    exclude: Option<L>,
    security: Option<B>,
    skip_broken: Option<B>,
    update_only: Option<B>,
    allowerasing: Option<B>,
    nobest: Option<B>,
    autoremove: Option<B>,
    releasever: Option<S>,
    installroot: Option<S>,
    conf_file: Option<S>,
    lock_timeout: Option<S>,
    validate_certs: Option<B>,
    use_backend: Option<S>,
}

pub(super) async fn yum(module: &str, args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: YumP = params(module, args, ctx)?;
    let _ = (
        &p.exclude,
        &p.security,
        &p.skip_broken,
        &p.update_only,
        &p.allowerasing,
        &p.nobest,
        &p.autoremove,
        &p.releasever,
        &p.installroot,
        &p.conf_file,
        &p.lock_timeout,
        &p.validate_certs,
        &p.use_backend,
        &p.install_weak_deps,
    );
    let tool = if has(ctx, "dnf").await? {
        "dnf"
    } else if has(ctx, "yum").await? {
        "yum"
    } else {
        return Ok(missing_manager(ctx, module));
    };
    let names = p.name.map(|n| n.0).unwrap_or_default();
    let state = p.state.map(|s| s.0).unwrap_or_else(|| "present".into());
    let mut opts = String::from(" -y -q");
    for r in p.enablerepo.map(|r| r.0).unwrap_or_default() {
        opts.push_str(&format!(" --enablerepo={}", shell_quote(&r)));
    }
    for r in p.disablerepo.map(|r| r.0).unwrap_or_default() {
        opts.push_str(&format!(" --disablerepo={}", shell_quote(&r)));
    }
    if p.disable_gpg_check.map(|b| b.0).unwrap_or(false) {
        opts.push_str(" --nogpgcheck");
    }
    let upd = if p.update_cache.map(|b| b.0).unwrap_or(false) {
        format!("{tool} makecache -q >/dev/null;")
    } else {
        String::new()
    };
    let body = pkg_script(
        &names,
        &state,
        "rpm -q \"$n\" >/dev/null 2>&1",
        &format!("{tool} install{opts}"),
        &format!("{tool} remove{opts}"),
        &upd,
        &format!("{tool} upgrade{opts}"),
    );
    ctx.script_outcome(&body, None).await
}

async fn has(ctx: &Ctx<'_>, tool: &str) -> Result<bool> {
    Ok(ctx
        .run(ExecRequest::shell(format!(
            "command -v {tool} >/dev/null 2>&1"
        )))
        .await?
        .status
        == 0)
}

fn missing_manager(ctx: &Ctx<'_>, tool: &str) -> Outcome {
    if ctx.check {
        // what would happen cannot be known; report the intended change
        let mut o = Outcome::ok(true);
        o.msg = Some(format!("{tool} not found on the target; would install"));
        o
    } else {
        Outcome::failed(format!("{tool} not found on the target"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PackageP {
    name: L,
    state: Option<S>,
    #[serde(rename = "use")]
    use_: Option<S>,
}

pub(super) async fn package(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: PackageP = params("package", args, ctx)?;
    let args = json!({"name": p.name.0, "state": p.state.map(|s| s.0).unwrap_or_else(|| "present".into())});
    let manager = match p.use_.map(|u| u.0) {
        Some(u) if u != "auto" => u,
        _ => {
            let out = ctx.run(ExecRequest::shell("for t in apt-get apk dnf yum; do command -v $t >/dev/null 2>&1 && { echo $t; exit 0; }; done; exit 1")).await?;
            out.stdout_text().trim().to_string()
        }
    };
    match manager.as_str() {
        "apt-get" | "apt" => apt(args, ctx).await,
        "apk" => apk(args, ctx).await,
        "dnf" | "yum" => yum(&manager, args, ctx).await,
        _ => Ok(missing_manager(
            ctx,
            "a package manager (apt-get, apk, dnf, yum)",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PipP {
    name: Option<L>,
    state: Option<S>,
    version: Option<S>,
    requirements: Option<S>,
    virtualenv: Option<S>,
    virtualenv_command: Option<S>,
    virtualenv_python: Option<S>,
    virtualenv_site_packages: Option<B>,
    extra_args: Option<S>,
    executable: Option<S>,
    chdir: Option<S>,
    editable: Option<B>,
    umask: Option<S>,
    break_system_packages: Option<B>,
}

pub(super) async fn pip(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: PipP = params("pip", args, ctx)?;
    let _ = (&p.virtualenv_site_packages, &p.editable, &p.umask);
    let mut pre = String::new();
    if let Some(d) = &p.chdir {
        pre.push_str(&format!("cd {} || exit 1\n", shell_quote(&d.0)));
    }
    let pipcmd = match (&p.executable, &p.virtualenv) {
        (Some(e), _) => shell_quote(&e.0),
        (None, Some(v)) => {
            let venv_cmd = p
                .virtualenv_command
                .as_ref()
                .map(|c| c.0.clone())
                .unwrap_or_else(|| {
                    format!(
                        "{} -m venv",
                        p.virtualenv_python
                            .as_ref()
                            .map(|x| x.0.as_str())
                            .unwrap_or("python3")
                    )
                });
            pre.push_str(&format!(
                "if [ ! -x {v}/bin/pip ]; then C=1; hv_do {venv_cmd} {v} || exit 1; fi\n",
                v = shell_quote(&v.0)
            ));
            format!("{}/bin/pip", shell_quote(&v.0))
        }
        _ => "$(command -v pip3 || command -v pip || echo 'python3 -m pip')".to_string(),
    };
    let extra = p
        .extra_args
        .map(|e| format!(" {}", e.0))
        .unwrap_or_default();
    let extra = if p.break_system_packages.map(|b| b.0).unwrap_or(false) {
        format!("{extra} --break-system-packages")
    } else {
        extra
    };
    let state = p.state.map(|s| s.0).unwrap_or_else(|| "present".into());
    let mut names = p.name.map(|n| n.0).unwrap_or_default();
    if let (Some(v), 1) = (&p.version, names.len()) {
        names[0] = format!("{}=={}", names[0], v.0);
    }
    let mut body = format!(
        "{pre}pip={pipcmd}\nif [ \"$CHECK\" != 1 ] && ! $pip --version >/dev/null 2>&1; then echo 'pip not found on the target' >&2; exit 1; fi\n"
    );
    if let Some(r) = &p.requirements {
        body.push_str(&format!("out=$($pip install -r {}{extra} 2>&1) || {{ echo \"$out\" >&2; exit 1; }}; echo \"$out\" | grep -q 'Successfully installed' && C=1\n", shell_quote(&r.0)));
    }
    for n in &names {
        let base = n.split(['=', '<', '>', '~', '!', '[']).next().unwrap_or(n);
        let q = shell_quote(n);
        let b = shell_quote(base);
        body.push_str(&match state.as_str() {
            "absent" => format!("if $pip show {b} >/dev/null 2>&1; then C=1; hv_do $pip uninstall -y {b} >/dev/null || exit 1; fi\n"),
            "latest" => format!("if [ \"$CHECK\" = 1 ]; then C=1; else out=$($pip install -U {q}{extra} 2>&1) || {{ echo \"$out\" >&2; exit 1; }}; echo \"$out\" | grep -q 'Successfully installed' && C=1; fi\n"),
            "forcereinstall" => format!("C=1; hv_do $pip install --force-reinstall {q}{extra} >/dev/null || exit 1\n"),
            _ => format!("if ! $pip show {b} >/dev/null 2>&1 || {{ [ {q} != {b} ] && ! $pip freeze 2>/dev/null | grep -qix {q}; }}; then C=1; hv_do $pip install {q}{extra} >/dev/null || exit 1; fi\n"),
        });
    }
    ctx.script_outcome(&body, None).await
}
