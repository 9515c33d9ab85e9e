//! Roles on disk (or built in) and their tasks.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::error::{Error, Result};
pub use crate::kv::{decode_escapes, split_kv};
use crate::kv::{shell_words, strip_special_words};
use crate::render::Vars;

/// Where a role's files come from.
#[derive(Debug, Clone)]
pub enum RoleDir {
    /// A directory `roles/<name>`.
    Dir(PathBuf),
    /// A role compiled into hive: (relative path, content) pairs.
    Builtin(&'static [(&'static str, &'static str)]),
}

impl RoleDir {
    /// Reads a file of the role (`tasks/main.yml`, `files/x`, …).
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match self {
            RoleDir::Dir(d) => {
                let p = d.join(rel);
                match std::fs::read(&p) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::Io { path: p, source: e }),
                }
            }
            RoleDir::Builtin(files) => Ok(files
                .iter()
                .find(|(p, _)| *p == rel)
                .map(|(_, c)| c.as_bytes().to_vec())),
        }
    }
    /// A displayable path of a role file.
    pub fn display(&self, rel: &str) -> String {
        match self {
            RoleDir::Dir(d) => d.join(rel).display().to_string(),
            RoleDir::Builtin(_) => format!("<builtin>/{rel}"),
        }
    }
    /// Lists files under a subdirectory (for `copy` of a directory).
    pub fn is_dir(&self, rel: &str) -> bool {
        match self {
            RoleDir::Dir(d) => d.join(rel).is_dir(),
            RoleDir::Builtin(files) => files.iter().any(|(p, _)| p.starts_with(&format!("{rel}/"))),
        }
    }
    /// The directory on disk, when the role has one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            RoleDir::Dir(d) => Some(d),
            RoleDir::Builtin(_) => None,
        }
    }
}

/// A loaded role.
#[derive(Debug, Clone)]
pub struct Role {
    /// Its name.
    pub name: String,
    /// Its files.
    pub dir: RoleDir,
    /// `tasks/main.yml`.
    pub tasks: Vec<Task>,
    /// `handlers/main.yml`.
    pub handlers: Vec<Task>,
    /// `defaults/main.yml`.
    pub defaults: Vars,
    /// `vars/main.yml`.
    pub vars: Vars,
    /// `meta/main.yml` dependencies: role name and its parameters.
    pub dependencies: Vec<(String, Vars)>,
}

/// How a task loops.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopKind {
    /// `loop:` (items as given: a list is required).
    Loop,
    /// `with_<lookup>:` (`with_items`, `with_dict`, `with_together`,
    /// `with_sequence`, `with_nested`, …): the items the lookup of that name
    /// returns for the templated value.
    With(String),
}

/// `loop_control` besides `loop_var`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoopControl {
    /// `index_var`: the variable holding the item's index.
    pub index_var: Option<String>,
    /// `extended`: `ansible_loop` is set; `Some(false)` when
    /// `extended_allitems: no` leaves out `allitems`.
    pub extended: Option<bool>,
    /// `pause`: seconds between items.
    pub pause: f64,
    /// `label`: the template naming each item, rendered after the item ran
    /// (it may read the item's registered result).
    pub label: Option<String>,
}

/// What a task does.
#[derive(Debug, Clone)]
pub enum Action {
    /// A module call (set_fact, debug, fail, assert and meta included).
    Module {
        /// Module name without collection prefix.
        name: String,
        /// Raw arguments (free-form text under `_raw_params`).
        args: Json,
        /// The task as written (for the Ansible fallback).
        raw: serde_yaml::Value,
    },
    /// `block` with `rescue` and `always`.
    Block {
        /// Main tasks.
        block: Vec<Task>,
        /// Run when a task of `block` fails.
        rescue: Vec<Task>,
        /// Always run.
        always: Vec<Task>,
    },
    /// `include_tasks` / `import_tasks`.
    IncludeTasks {
        /// File name (may be templated).
        file: String,
    },
    /// `include_role` / `import_role`.
    IncludeRole {
        /// Role name (may be templated).
        name: String,
        /// Tasks file other than main.
        tasks_from: Option<String>,
    },
}

/// One task with its keywords.
#[derive(Debug, Clone)]
pub struct Task {
    /// `name`.
    pub name: Option<String>,
    /// What it does.
    pub action: Action,
    /// `when` conditions (all must hold).
    pub when: Vec<String>,
    /// `loop` / `with_*` value and kind.
    pub looping: Option<(Json, LoopKind)>,
    /// `loop_control.loop_var` (default `item`; may be templated).
    pub loop_var: String,
    /// The rest of `loop_control`.
    pub loop_control: LoopControl,
    /// `register`.
    pub register: Option<String>,
    /// `changed_when`.
    pub changed_when: Option<Vec<String>>,
    /// `failed_when`.
    pub failed_when: Option<Vec<String>>,
    /// `ignore_errors`.
    pub ignore_errors: Option<Json>,
    /// `notify`.
    pub notify: Vec<String>,
    /// `listen` (handlers).
    pub listen: Vec<String>,
    /// `vars`.
    pub vars: Vars,
    /// `environment`.
    pub environment: Option<Json>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `become`.
    pub become_: Option<Json>,
    /// `become_user`.
    pub become_user: Option<String>,
    /// `remote_user` (the user commands run as when not becoming another).
    pub remote_user: Option<String>,
    /// `delegate_to`.
    pub delegate_to: Option<String>,
    /// `delegate_facts`.
    pub delegate_facts: bool,
    /// `check_mode` override.
    pub check_mode: Option<bool>,
    /// `diff`: the result holds the changes made to files.
    pub diff: bool,
    /// An `import_tasks`/`import_role` (static: its `when` applies to each
    /// task it brings).
    pub imported: bool,
    /// `file:line` where it is written.
    pub location: String,
}

impl Task {
    /// A task at `location` with no keyword set yet.
    fn at(location: String) -> Task {
        Task {
            name: None,
            action: Action::IncludeTasks {
                file: String::new(),
            },
            when: vec![],
            looping: None,
            loop_var: "item".into(),
            loop_control: LoopControl::default(),
            register: None,
            changed_when: None,
            failed_when: None,
            ignore_errors: None,
            notify: vec![],
            listen: vec![],
            vars: Vars::new(),
            environment: None,
            tags: vec![],
            become_: None,
            become_user: None,
            remote_user: None,
            delegate_to: None,
            delegate_facts: false,
            check_mode: None,
            diff: false,
            imported: false,
            location,
        }
    }

    /// A name for messages.
    pub fn label(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        match &self.action {
            Action::Module { name, .. } => name.clone(),
            Action::Block { .. } => "block".into(),
            Action::IncludeTasks { file } => format!("include_tasks {file}"),
            Action::IncludeRole { name, .. } => format!("include_role {name}"),
        }
    }
}

/// Modules hive runs natively (the names of the one module table, in
/// its order; anything else goes to `ansible-playbook`).
pub static NATIVE_MODULES: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| {
        crate::modules::registry::MODULES
            .iter()
            .map(|m| m.name)
            .collect()
    });

const KEYWORDS: &[&str] = &[
    "name",
    "when",
    "loop",
    "with_items",
    "with_list",
    "with_dict",
    "loop_control",
    "register",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "notify",
    "listen",
    "vars",
    "args",
    "environment",
    "tags",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "delegate_to",
    "delegate_facts",
    "check_mode",
    "diff",
    "no_log",
    "run_once",
    "retries",
    "until",
    "delay",
    "any_errors_fatal",
    "ignore_unreachable",
    "throttle",
    "timeout",
    "debugger",
    "collections",
    "module_defaults",
    "connection",
    "async",
    "poll",
    "block",
    "rescue",
    "always",
    "local_action",
    "action",
];

const PREFIXES: &[&str] = &[
    "ansible.builtin.",
    "ansible.legacy.",
    "ansible.posix.",
    "community.general.",
];

/// The module name without a known collection prefix.
pub fn short_module(name: &str) -> &str {
    for p in PREFIXES {
        if let Some(rest) = name.strip_prefix(p) {
            return rest;
        }
    }
    name
}

fn is_free_form(module: &str) -> bool {
    matches!(
        module,
        "include_tasks" | "import_tasks" | "include_role" | "import_role"
    ) || crate::modules::registry::find(module).is_some_and(|m| m.free_form)
}

/// Parses a role file as Ansible does: YAML 1.1 scalars (`yes`/`no`/`on`/
/// `off` are booleans, `0644` is octal, `!!null` and `!unsafe` accepted).
pub fn parse_yaml(file: &str, text: &str) -> Result<serde_yaml::Value> {
    hive_inventory::yaml::parse(Path::new(file), text)
        .map(|n| n.to_value())
        .map_err(|e| Error::Role {
            file: e
                .location()
                .map(|l| format!("{}:{}", file, l.line))
                .unwrap_or_else(|| file.to_string()),
            message: format!("invalid YAML: {e}"),
        })
}

use hive_inventory::yaml_to_json;

fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::Array(a) => a.iter().map(json_text).collect(),
        Json::Null => vec![],
        other => vec![json_text(other)],
    }
}

/// A JSON value as text (strings without quotes).
pub fn json_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// Parses a tasks file's text.
pub struct TaskParser<'a> {
    file: String,
    lines: Vec<&'a str>,
    cursor: usize,
}

impl<'a> TaskParser<'a> {
    /// A parser for `text`, reported as `file`.
    pub fn new(file: impl Into<String>, text: &'a str) -> Self {
        TaskParser {
            file: file.into(),
            lines: text.lines().collect(),
            cursor: 0,
        }
    }

    fn err(&self, line: usize, message: impl Into<String>) -> Error {
        Error::Role {
            file: format!("{}:{}", self.file, line),
            message: message.into(),
        }
    }

    fn find_line(&mut self, key: &str) -> usize {
        let pat = format!("{key}:");
        for (i, l) in self.lines.iter().enumerate().skip(self.cursor) {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            if t.starts_with(&pat) {
                self.cursor = i + 1;
                return i + 1;
            }
        }
        self.cursor.max(1)
    }

    /// Parses the whole document (a list of tasks, or empty).
    pub fn parse(mut self, text: &str) -> Result<Vec<Task>> {
        let doc = parse_yaml(&self.file, text)?;
        match doc {
            serde_yaml::Value::Null => Ok(vec![]),
            serde_yaml::Value::Sequence(items) => self.tasks(&items),
            _ => Err(self.err(1, "a tasks file must be a list of tasks")),
        }
    }

    fn tasks(&mut self, items: &[serde_yaml::Value]) -> Result<Vec<Task>> {
        items.iter().map(|i| self.task(i)).collect()
    }

    fn task(&mut self, item: &serde_yaml::Value) -> Result<Task> {
        let serde_yaml::Value::Mapping(m) = item else {
            let line = self.cursor + 1;
            return Err(self.err(line, "a task must be a mapping"));
        };
        let first_key = m.keys().next().and_then(|k| k.as_str()).unwrap_or("");
        let line = self.find_line(first_key);
        let mut t = Task::at(format!("{}:{}", self.file, line));
        let mut parts = TaskParts::default();
        for (k, v) in m {
            let Some(key) = k.as_str() else {
                return Err(self.err(line, "task keys must be strings"));
            };
            self.task_key(&mut t, &mut parts, key, v, first_key, line)?;
        }
        if let Some(block) = parts.block {
            t.action = Action::Block {
                block,
                rescue: parts.rescue,
                always: parts.always,
            };
            return Ok(t);
        }
        let Some((full, raw_args, mline)) = parts.module else {
            return Err(self.err(line, "task has no module or block"));
        };
        let name = short_module(&full).to_string();
        t.imported = matches!(name.as_str(), "import_tasks" | "import_role");
        t.location = format!("{}:{}", self.file, mline);
        let args = module_args(&name, &raw_args, parts.args_kw);
        t.action = task_action(name, args, item);
        Ok(t)
    }

    /// Takes one key of a task at `line`: a keyword sets a field of `t`;
    /// `args`, the blocks and the module statement go to `parts`.
    fn task_key(
        &mut self,
        t: &mut Task,
        parts: &mut TaskParts,
        key: &str,
        v: &serde_yaml::Value,
        first_key: &str,
        line: usize,
    ) -> Result<()> {
        match key {
            "args" => parts.args_kw = Some(yaml_to_json(v)),
            "block" | "rescue" | "always" => {
                let serde_yaml::Value::Sequence(s) = v else {
                    return Err(self.err(line, format!("{key} must be a list of tasks")));
                };
                let parsed = self.tasks(s)?;
                match key {
                    "block" => parts.block = Some(parsed),
                    "rescue" => parts.rescue = parsed,
                    _ => parts.always = parsed,
                }
            }
            "local_action" | "action" => {
                let Some((name, args)) = action_statement(v) else {
                    return Err(self.err(line, format!("{key} must be a string or mapping")));
                };
                if key == "local_action" {
                    t.delegate_to = Some("localhost".into());
                }
                parts.module = Some((name, args, line));
            }
            _ if set_keyword(t, key, v) => {}
            k if KEYWORDS.contains(&k) => {}
            other => {
                if let Some((prev, _, _)) = &parts.module {
                    return Err(self.err(
                        line,
                        format!("conflicting action statements: {prev}, {other} (a task has one module; other keys must be task keywords)"),
                    ));
                }
                let ml = if other == first_key {
                    line
                } else {
                    self.find_line(other)
                };
                parts.module = Some((other.to_string(), v.clone(), ml));
            }
        }
        Ok(())
    }
}

/// What a task's keys give besides its keywords: the module statement
/// (name, arguments, line), `args`, and the blocks.
#[derive(Default)]
struct TaskParts {
    module: Option<(String, serde_yaml::Value, usize)>,
    args_kw: Option<Json>,
    block: Option<Vec<Task>>,
    rescue: Vec<Task>,
    always: Vec<Task>,
}

/// Sets the task keyword `key` on `t`; false when `key` is none of the
/// keywords a field holds.
fn set_keyword(t: &mut Task, key: &str, v: &serde_yaml::Value) -> bool {
    let j = yaml_to_json(v);
    match key {
        "name" => t.name = Some(json_text(&j)),
        "when" => t.when = strings(&j),
        "loop" => t.looping = Some((j, LoopKind::Loop)),
        k if k.starts_with("with_") && k.len() > 5 => {
            t.looping = Some((j, LoopKind::With(k[5..].to_string())))
        }
        "loop_control" => set_loop_control(t, &j),
        "register" => t.register = Some(json_text(&j)),
        "changed_when" => t.changed_when = Some(strings(&j)),
        "failed_when" => t.failed_when = Some(strings(&j)),
        "ignore_errors" => t.ignore_errors = Some(j),
        "notify" => t.notify = strings(&j),
        "listen" => t.listen = strings(&j),
        "vars" => {
            if let Json::Object(o) = j {
                t.vars = o.into_iter().collect();
            }
        }
        "environment" => t.environment = Some(j),
        "tags" => t.tags = strings(&j),
        "become" => t.become_ = Some(j),
        "become_user" => t.become_user = Some(json_text(&j)),
        "remote_user" => t.remote_user = Some(json_text(&j)),
        "delegate_to" => t.delegate_to = Some(json_text(&j)),
        "delegate_facts" => t.delegate_facts = j.as_bool().unwrap_or(false),
        "check_mode" => t.check_mode = j.as_bool(),
        "diff" => t.diff = j.as_bool().unwrap_or(false),
        _ => return false,
    }
    true
}

/// Sets `loop_control`'s `loop_var` and the rest of it on `t`.
fn set_loop_control(t: &mut Task, j: &Json) {
    if let Some(lv) = j.get("loop_var").and_then(|x| x.as_str()) {
        t.loop_var = lv.to_string();
    }
    let flag = |k: &str| {
        j.get(k).map(|x| match x {
            Json::Bool(b) => *b,
            Json::String(s) => {
                matches!(s.to_ascii_lowercase().as_str(), "yes" | "true" | "on" | "1")
            }
            _ => false,
        })
    };
    t.loop_control = LoopControl {
        index_var: j.get("index_var").map(json_text),
        extended: flag("extended")
            .filter(|e| *e)
            .map(|_| flag("extended_allitems").unwrap_or(true)),
        pause: j
            .get("pause")
            .and_then(|p| p.as_f64().or_else(|| json_text(p).parse().ok()))
            .unwrap_or(0.0),
        label: j.get("label").map(json_text),
    };
}

/// The module and arguments of an `action`/`local_action` value: `module
/// args…` text, or a mapping with a `module` key; None for other values.
fn action_statement(v: &serde_yaml::Value) -> Option<(String, serde_yaml::Value)> {
    match v {
        serde_yaml::Value::String(s) => {
            let (m, rest) = s.split_once(' ').unwrap_or((s.as_str(), ""));
            Some((m.to_string(), serde_yaml::Value::String(rest.to_string())))
        }
        serde_yaml::Value::Mapping(mm) => {
            let name = mm
                .get("module")
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string();
            let mut rest = mm.clone();
            rest.remove("module");
            Some((name, serde_yaml::Value::Mapping(rest)))
        }
        _ => None,
    }
}

/// The arguments of module `name` (short name) as an object: free-form
/// text and `key=value` words split as Ansible does, `args` merged over.
fn module_args(name: &str, raw_args: &serde_yaml::Value, args_kw: Option<Json>) -> Json {
    let mut args = match yaml_to_json(raw_args) {
        Json::String(s) if is_free_form(name) || !s.contains('=') => free_form_args(name, s),
        Json::String(s) if name == "set_fact" => {
            // every `key=value` word sets a variable; keys may be templates
            let o: serde_json::Map<String, Json> = shell_words(&s)
                .into_iter()
                .filter_map(|w| {
                    w.split_once('=')
                        .map(|(k, v)| (k.to_string(), Json::String(decode_escapes(v))))
                })
                .collect();
            Json::Object(o)
        }
        Json::String(s) => {
            let (pairs, rest) = split_kv(&s);
            let mut o: serde_json::Map<String, Json> = pairs
                .into_iter()
                .map(|(k, v)| (k, Json::String(decode_escapes(&v))))
                .collect();
            if !rest.is_empty() {
                o.insert("_raw_params".into(), Json::String(rest));
            }
            Json::Object(o)
        }
        Json::Null => Json::Object(Default::default()),
        other => other,
    };
    if let (Some(Json::Object(extra)), Json::Object(o)) = (args_kw, &mut args) {
        for (k, v) in extra {
            o.insert(k, v);
        }
    }
    args
}

/// The free-form text `s` of module `name` as `_raw_params`; for
/// `command`, `shell` and `script` the special `key=value` words (`creates`,
/// `chdir`…) are taken out as arguments of their own.
fn free_form_args(name: &str, s: String) -> Json {
    let mut o = serde_json::Map::new();
    if matches!(name, "command" | "shell" | "script") {
        // a backslash ending a line joins it to the next, as
        // Ansible's argument splitter does
        let s = s.replace("\\\n", "");
        let (pairs, _) = split_kv(&s);
        let special = ["creates", "removes", "chdir", "executable", "stdin", "warn"];
        if pairs.iter().all(|(k, _)| special.contains(&k.as_str())) {
            // The command keeps its own text (quotes, newlines):
            // only the special `key=value` words are taken out.
            o.insert(
                "_raw_params".into(),
                Json::String(strip_special_words(&s, &pairs)),
            );
            for (k, v) in pairs {
                o.insert(k, Json::String(v));
            }
        } else {
            o.insert("_raw_params".into(), Json::String(s));
        }
    } else {
        o.insert("_raw_params".into(), Json::String(s.trim().to_string()));
    }
    Json::Object(o)
}

/// What a task of module `name` with `args` does: include tasks or a role,
/// or run the module (`item` is the task as written).
fn task_action(name: String, args: Json, item: &serde_yaml::Value) -> Action {
    let text_arg = |a: &Json, key: &str| -> Option<String> {
        a.get(key).or_else(|| a.get("_raw_params")).map(json_text)
    };
    match name.as_str() {
        "include_tasks" | "import_tasks" => Action::IncludeTasks {
            // `include_tasks: file=x.yml` names the file as a word too
            file: text_arg(&args, "file")
                .map(|f| f.strip_prefix("file=").map(str::to_string).unwrap_or(f))
                .unwrap_or_default(),
        },
        "include_role" | "import_role" => Action::IncludeRole {
            name: text_arg(&args, "name").unwrap_or_default(),
            tasks_from: args.get("tasks_from").map(json_text),
        },
        _ => Action::Module {
            name,
            args,
            raw: item.clone(),
        },
    }
}

/// Finds roles by name: the project's `roles/` directories first, then
/// hive's built-in roles.
#[derive(Debug, Clone, Default)]
pub struct RoleLoader {
    search: Vec<PathBuf>,
}

impl RoleLoader {
    /// A loader searching `dirs` (typically `<project>/roles`).
    pub fn new(dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        RoleLoader {
            search: dirs.into_iter().collect(),
        }
    }

    /// Finds the files of role `name`.
    pub fn locate(&self, name: &str) -> Result<RoleDir> {
        for d in &self.search {
            let p = d.join(name);
            if p.is_dir() {
                return Ok(RoleDir::Dir(p));
            }
        }
        if let Some(files) = crate::builtin::role(name) {
            return Ok(RoleDir::Builtin(files));
        }
        Err(Error::RoleNotFound {
            name: name.to_string(),
            searched: self
                .search
                .iter()
                .map(|p| p.display().to_string())
                .chain(std::iter::once("built-in roles".to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Loads role `name` with `tasks_from` (default `main`).
    pub fn load(&self, name: &str, tasks_from: Option<&str>) -> Result<Role> {
        let dir = self.locate(name)?;
        let tasks = load_tasks(
            &dir,
            &format!("tasks/{}", yml_name(tasks_from.unwrap_or("main"))),
        )?
        .unwrap_or_default();
        let handlers = load_tasks(&dir, "handlers/main.yml")?.unwrap_or_default();
        let defaults = load_vars(&dir, "defaults/main.yml")?;
        let vars = load_vars(&dir, "vars/main.yml")?;
        let mut dependencies = vec![];
        if let Some(meta) = dir.read("meta/main.yml")? {
            let text = String::from_utf8_lossy(&meta);
            let v = parse_yaml(&dir.display("meta/main.yml"), &text)?;
            if let Some(serde_yaml::Value::Sequence(deps)) = v.get("dependencies") {
                for d in deps {
                    match yaml_to_json(d) {
                        Json::String(s) => dependencies.push((s, Vars::new())),
                        Json::Object(mut o) => {
                            let n = o
                                .remove("role")
                                .or_else(|| o.remove("name"))
                                .map(|x| json_text(&x))
                                .unwrap_or_default();
                            let mut vars: Vars = o
                                .remove("vars")
                                .and_then(|v| match v {
                                    Json::Object(m) => Some(m.into_iter().collect()),
                                    _ => None,
                                })
                                .unwrap_or_default();
                            vars.extend(o);
                            dependencies.push((n, vars));
                        }
                        _ => {
                            return Err(Error::Role {
                                file: dir.display("meta/main.yml"),
                                message: "a dependency is a role name or a mapping with role:"
                                    .into(),
                            });
                        }
                    }
                }
            }
        }
        Ok(Role {
            name: name.to_string(),
            dir,
            tasks,
            handlers,
            defaults,
            vars,
            dependencies,
        })
    }
}

/// `x` → `x.yml` unless it has an extension.
pub fn yml_name(n: &str) -> String {
    if n.ends_with(".yml") || n.ends_with(".yaml") {
        n.to_string()
    } else {
        format!("{n}.yml")
    }
}

/// `e` with a line when the YAML parser gave none (serde_yaml has no
/// position for some errors): where hive-inventory's parser stops, else 1.
fn with_line(e: Error, text: &str) -> Error {
    match e {
        Error::Role { file, message } if file.ends_with(":0") => {
            let line = yaml_line(text);
            Error::Role {
                file: format!("{}:{line}", &file[..file.len() - 2]),
                message,
            }
        }
        e => e,
    }
}

fn yaml_line(text: &str) -> usize {
    hive_inventory::yaml::parse(Path::new(""), text)
        .err()
        .and_then(|e| e.location().map(|l| l.line))
        .filter(|&l| l > 0)
        .unwrap_or(1)
}

/// Loads the tasks file an `include_tasks`/`import_tasks` task `t` names,
/// looked up as Ansible does: next to the file holding the task, then in
/// the role's `tasks/`, then from the role's directory. `Ok(None)` when
/// none exists; the error names the paths tried.
pub fn load_included(dir: &RoleDir, t: &Task, file: &str) -> Result<Vec<Task>> {
    let name = yml_name(file);
    let mut tried: Vec<String> = vec![];
    let including = t.location.rsplit_once(':').map_or("", |(f, _)| f);
    let base = dir.display("");
    if let Some(rel) = including.strip_prefix(base.trim_end_matches('/'))
        && let Some((sub, _)) = rel.trim_start_matches('/').rsplit_once('/')
    {
        tried.push(format!("{sub}/{name}"));
    }
    tried.push(format!("tasks/{name}"));
    tried.push(name);
    tried.dedup();
    for rel in &tried {
        if let Some(tasks) = load_tasks(dir, rel)? {
            return Ok(tasks);
        }
    }
    Err(Error::Role {
        file: t.location.clone(),
        message: format!(
            "tasks file {file} not found (looked for {})",
            tried
                .iter()
                .map(|r| dir.display(r))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// Loads a tasks file of a role; `None` when absent.
pub fn load_tasks(dir: &RoleDir, rel: &str) -> Result<Option<Vec<Task>>> {
    let Some(b) = dir.read(rel)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&b).into_owned();
    TaskParser::new(dir.display(rel), &text)
        .parse(&text)
        .map(Some)
        .map_err(|e| with_line(e, &text))
}

fn load_vars(dir: &RoleDir, rel: &str) -> Result<Vars> {
    let Some(b) = dir.read(rel)? else {
        return Ok(Vars::new());
    };
    let v = parse_yaml(&dir.display(rel), &String::from_utf8_lossy(&b))?;
    match yaml_to_json(&v) {
        Json::Object(o) => Ok(o.into_iter().collect()),
        Json::Null => Ok(Vars::new()),
        _ => Err(Error::Role {
            file: dir.display(rel),
            message: "variables file must be a mapping".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keywords_forms_and_lines() {
        let text = "- name: a\n  copy: src=x dest=/y mode=0644\n- shell: echo hi creates=/z\n  register: r\n- block:\n    - debug: msg=x\n  rescue:\n    - ansible.builtin.command: true\n- name: two\n  shell: a\n  command: b\n";
        let r = TaskParser::new("t.yml", text).parse(text);
        let Err(Error::Role { file, message }) = r else {
            panic!("{r:?}")
        };
        assert_eq!(file, "t.yml:9");
        assert!(message.contains("conflicting"), "{message}");
        let ok = &text[..text.find("- name: two").unwrap()];
        let tasks = TaskParser::new("t.yml", ok).parse(ok).unwrap();
        assert_eq!(tasks.len(), 3);
        let Action::Module { name, args, .. } = &tasks[0].action else {
            panic!()
        };
        assert_eq!(name, "copy");
        assert_eq!(args["dest"], "/y");
        assert_eq!(tasks[0].location, "t.yml:2");
        let Action::Module { args, .. } = &tasks[1].action else {
            panic!()
        };
        assert_eq!(args["creates"], "/z");
        assert_eq!(args["_raw_params"], "echo hi");
        let kept = strip_special_words(
            "echo 'a  b'\necho two chdir=/tmp",
            &[("chdir".to_string(), "/tmp".to_string())],
        );
        assert_eq!(kept, "echo 'a  b'\necho two");
        let block = strip_special_words(
            "executable=/bin/bash\ncreates={{ d }}/x\necho \"test\"\n",
            &[
                ("executable".to_string(), "/bin/bash".to_string()),
                ("creates".to_string(), "{{ d }}/x".to_string()),
            ],
        );
        assert_eq!(block, "echo \"test\"\n");
        assert_eq!(decode_escapes(r"\\b(.+)\b \1 \x41"), "\\b(.+)\u{8} \\1 A");
        let Action::Block { block, rescue, .. } = &tasks[2].action else {
            panic!()
        };
        assert_eq!(block.len(), 1);
        assert_eq!(rescue[0].location, "t.yml:8");
    }
}
