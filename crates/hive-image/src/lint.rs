//! Static checks of roles, before anything runs: every role named exists
//! and parses, with its dependencies, statically named task files and
//! roles; every module is known (native, or available elsewhere as the
//! caller decides: a project's `lib/`, an installed `ansible-playbook`);
//! every native module's arguments are ones it has (none missing); every
//! static `src` of `copy`/`template` is a file of the role.
//!
//! `hive check` uses it to find, without a server, what `build-images`
//! and `initialize-services` would meet.

use serde_json::Value as Json;

use crate::role::{Action, NATIVE_MODULES, RoleDir, RoleLoader, Task, load_tasks, yml_name};

/// One problem found in the roles: where (`file:line` or a file) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFinding {
    /// `file:line` of the task, or the file, or `from` for a missing role.
    pub location: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

/// Walks roles as the runner would load them.
pub struct RoleLint<'a> {
    loader: &'a RoleLoader,
    known: &'a dyn Fn(&str) -> bool,
    seen: Vec<String>,
    findings: Vec<RoleFinding>,
}

impl<'a> RoleLint<'a> {
    /// A lint finding roles with `loader`; `known` says whether a module
    /// hive does not implement can still run (a project's `lib/` module,
    /// a module of an installed Ansible).
    pub fn new(loader: &'a RoleLoader, known: &'a dyn Fn(&str) -> bool) -> Self {
        RoleLint {
            loader,
            known,
            seen: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// Checks role `name`, named at `from` (where the project names it,
    /// for the message when it does not exist).
    pub fn role(&mut self, name: &str, from: &str) {
        self.role_from(name, None, from);
    }

    /// Every finding so far, in the order found.
    pub fn finish(self) -> Vec<RoleFinding> {
        self.findings
    }

    fn push(&mut self, location: impl Into<String>, message: impl Into<String>) {
        let f = RoleFinding {
            location: location.into(),
            message: message.into(),
        };
        if !self.findings.contains(&f) {
            self.findings.push(f);
        }
    }

    fn role_from(&mut self, name: &str, tasks_from: Option<&str>, from: &str) {
        if name.contains("{{") {
            return;
        }
        let key = format!("{name}/{}", tasks_from.unwrap_or("main"));
        if self.seen.contains(&key) {
            return;
        }
        self.seen.push(key);
        let role = match self.loader.load(name, tasks_from) {
            Ok(r) => r,
            Err(e) => {
                self.push(from, e.to_string());
                return;
            }
        };
        if let Some(t) = tasks_from {
            let rel = format!("tasks/{}", yml_name(t));
            if !role.dir.is_dir("tasks") || matches!(role.dir.read(&rel), Ok(None)) {
                self.push(
                    from,
                    format!("role {name} has no tasks file {rel} (tasks_from: {t})"),
                );
            }
        }
        let meta = role.dir.display("meta/main.yml");
        for (dep, _) in &role.dependencies {
            self.role_from(dep, None, &meta);
        }
        let dir = role.dir.clone();
        self.tasks(&dir, &role.tasks);
        self.tasks(&dir, &role.handlers);
    }

    fn tasks(&mut self, dir: &RoleDir, tasks: &[Task]) {
        for t in tasks {
            self.task(dir, t);
        }
    }

    fn task(&mut self, dir: &RoleDir, t: &Task) {
        match &t.action {
            Action::Module { name, args, .. } => self.module(dir, t, name, args),
            Action::Block {
                block,
                rescue,
                always,
            } => {
                self.tasks(dir, block);
                self.tasks(dir, rescue);
                self.tasks(dir, always);
            }
            Action::IncludeTasks { file } => {
                if file.contains("{{") {
                    return;
                }
                let rel = format!("tasks/{file}");
                match load_tasks(dir, &rel) {
                    Ok(Some(tasks)) => {
                        let key = dir.display(&rel);
                        if !self.seen.contains(&key) {
                            self.seen.push(key);
                            self.tasks(dir, &tasks);
                        }
                    }
                    Ok(None) => self.push(
                        &t.location,
                        format!("included tasks file {} does not exist", dir.display(&rel)),
                    ),
                    Err(e) => self.push(&t.location, e.to_string()),
                }
            }
            Action::IncludeRole { name, tasks_from } => {
                self.role_from(name, tasks_from.as_deref(), &t.location);
            }
        }
    }

    fn module(&mut self, dir: &RoleDir, t: &Task, name: &str, args: &Json) {
        if !NATIVE_MODULES.contains(&name) && !(self.known)(name) {
            self.push(
                &t.location,
                format!(
                    "module {name} is not known: hive does not implement it, the project's lib/ has no {name}.py and no installed ansible-playbook provides it (hive implements {})",
                    NATIVE_MODULES.join(", ")
                ),
            );
            return;
        }
        if let Some(problem) = crate::modules::registry::check_args(name, args) {
            self.push(&t.location, format!("{name}: invalid arguments: {problem}"));
            return;
        }
        let folder = match name {
            "template" => "templates",
            "copy" | "script" | "unarchive" => "files",
            _ => return,
        };
        let remote = args
            .get("remote_src")
            .map(|v| matches!(v, Json::Bool(true)) || v.as_str().is_some_and(truthy))
            .unwrap_or(false);
        let Some(src) = args.get("src").and_then(Json::as_str) else {
            return;
        };
        if remote || src.contains("{{") || src.starts_with('/') || src.ends_with('/') {
            return;
        }
        let found = [format!("{folder}/{src}"), src.to_string()]
            .iter()
            .any(|rel| matches!(dir.read(rel), Ok(Some(_))) || dir.is_dir(rel));
        if !found {
            self.push(
                &t.location,
                format!(
                    "{name}: src {src} is not a file of the role (looked for {})",
                    dir.display(&format!("{folder}/{src}"))
                ),
            );
        }
    }
}

fn truthy(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "yes" | "true" | "on" | "1" | "y"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &std::path::Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn finds_missing_roles_files_modules_and_includes() {
        let dir = tempfile::tempdir().unwrap();
        let roles = dir.path();
        write(
            roles,
            "web/tasks/main.yml",
            "- copy: src=index.html dest=/x\n- template: src=missing.j2 dest=/y\n- no_such_module: a=b\n- include_tasks: gone.yml\n- include_role:\n    name: absent\n- custom_mod: x=1\n- file: path=/x stat=directory\n",
        );
        write(roles, "web/files/index.html", "hi");
        write(roles, "web/meta/main.yml", "dependencies: [base]\n");
        write(roles, "base/tasks/main.yml", "- debug: msg=hi\n");
        let loader = RoleLoader::new([roles.to_path_buf()]);
        let known = |m: &str| m == "custom_mod";
        let mut lint = RoleLint::new(&loader, &known);
        lint.role("web", "hive.yml:3");
        lint.role("nothere", "hive.yml:9");
        let found: Vec<String> = lint
            .finish()
            .into_iter()
            .map(|f| format!("{} {}", f.location, f.message))
            .collect();
        let main = roles.join("web/tasks/main.yml").display().to_string();
        assert_eq!(found.len(), 6, "{found:#?}");
        assert!(found[0].starts_with(&format!("{main}:2 template: src missing.j2")));
        assert!(found[1].starts_with(&format!("{main}:3 module no_such_module is not known")));
        assert!(found[2].contains(":4 included tasks file"), "{}", found[2]);
        assert!(
            found[3].contains(":5 role absent not found"),
            "{}",
            found[3]
        );
        assert!(
            found[4].starts_with(&format!(
                "{main}:8 file: invalid arguments: unknown field `stat`"
            )),
            "{}",
            found[4]
        );
        assert!(found[5].starts_with("hive.yml:9 role nothere not found"));
    }
}
