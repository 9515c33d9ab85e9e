//! Tasks of modules hive does not implement, run through `ansible-playbook`
//! with the task's variables (hive already evaluated loops, conditions and
//! registration).

use std::path::PathBuf;

use serde_json::{Map, Value as Json, json};

use super::{Runner, Scope};
use crate::error::{Error, Result};
use crate::modules::Outcome;
use crate::render::Vars;
use crate::target::Target;

impl Runner {
    pub(super) async fn run_fallback(
        &self,
        target: &dyn Target,
        scope: &Scope,
        raw: &serde_yaml::Value,
        (module, args): (&str, &Json),
        vars: &Vars,
        check: bool,
    ) -> Result<Outcome> {
        let Some(ap) = &self.ansible_playbook else {
            return Ok(Outcome::failed(
                "module not supported and ansible-playbook not available".into(),
            ));
        };
        let (conn, host) = target.ansible_connection();
        let dir = tempfile_dir()?;
        // hive already evaluated the loop, conditions, delegation and
        // registration: Ansible runs the bare task once with the same variables
        let mut task = hive_inventory::yaml_to_json(raw);
        if let Json::Object(m) = &mut task {
            for k in [
                "loop",
                "with_items",
                "with_list",
                "with_dict",
                "with_together",
                "with_sequence",
                "loop_control",
                "when",
                "register",
                "notify",
                "delegate_to",
                "delegate_facts",
                "changed_when",
                "failed_when",
                "ignore_errors",
                "tags",
                "local_action",
            ] {
                m.remove(k);
            }
            // The arguments as hive rendered them: they may use what only
            // hive knows (groups, hostvars and the facts of this run).
            m.insert(module.to_string(), args.clone());
        }
        let play = json!([{
            "hosts": "all",
            "gather_facts": false,
            "connection": conn,
            "tasks": [task],
        }]);
        let play_path = dir.join("task.yml");
        let vars_path = dir.join("vars.json");
        let inv_path = dir.join("inventory");
        let write = |p: &PathBuf, s: String| std::fs::write(p, s).map_err(Error::io(p));
        write(
            &play_path,
            serde_json::to_string_pretty(&play).unwrap_or_default(),
        )?;
        let vars_json: Map<String, Json> = vars
            .iter()
            .filter(|(k, _)| !k.starts_with("ansible_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        write(&vars_path, Json::Object(vars_json).to_string())?;
        let mut line = host;
        for (k, v) in target.ansible_vars() {
            line.push_str(&format!(" {k}={v}"));
        }
        write(&inv_path, format!("{line}\n"))?;
        crate::ansible::write_connection_plugin(&dir)?;
        let mut cmd = tokio::process::Command::new(ap);
        cmd.arg("-i")
            .arg(&inv_path)
            .arg(&play_path)
            .arg("-e")
            .arg(format!("@{}", vars_path.display()));
        if check {
            cmd.arg("--check");
        }
        let mut lib: Vec<String> = self
            .library
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if let Some(p) = scope.role.dir.path() {
            let role_lib = p.join("library");
            lib.push(
                std::path::absolute(&role_lib)
                    .unwrap_or(role_lib)
                    .display()
                    .to_string(),
            );
        }
        cmd.env("ANSIBLE_LIBRARY", lib.join(":"));
        // what the modules of a project's lib/ share (lib/module_utils)
        let utils: Vec<String> = self
            .library
            .iter()
            .map(|p| p.join("module_utils"))
            .filter(|p| p.is_dir())
            .map(|p| p.display().to_string())
            .collect();
        if !utils.is_empty() {
            cmd.env("ANSIBLE_MODULE_UTILS", utils.join(":"));
        }
        cmd.env("ANSIBLE_HOST_KEY_CHECKING", "False");
        cmd.env("ANSIBLE_CONNECTION_PLUGINS", &dir);
        cmd.env("ANSIBLE_PIPELINING", "True");
        cmd.env("ANSIBLE_PYTHON_INTERPRETER", "auto_silent");
        if let Some(p) = scope.role.dir.path() {
            cmd.current_dir(p);
        }
        let out = cmd.output().await.map_err(|e| Error::Transport {
            target: target.name(),
            message: format!("cannot run {}: {e}", ap.display()),
        })?;
        let _ = std::fs::remove_dir_all(&dir);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            // what Ansible says on standard error, then the end of its report
            let all = format!("{}{text}", String::from_utf8_lossy(&out.stderr));
            let tail: Vec<&str> = all.lines().rev().take(15).collect();
            return Ok(Outcome::failed(format!(
                "ansible-playbook failed ({}): {}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        }
        let changed = text
            .lines()
            .any(|l| l.contains("changed=") && !l.contains("changed=0"));
        Ok(Outcome {
            changed,
            ..Default::default()
        })
    }
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "hive-ansible-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&d).map_err(Error::io(&d))?;
    // it holds the run's variables, secrets included
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).map_err(Error::io(&d))?;
    Ok(d)
}
