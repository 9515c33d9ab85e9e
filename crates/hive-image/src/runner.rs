//! The role runner: applies roles' tasks to a target.
//!
//! Variables are templated when they are read, as in Ansible, except
//! unsafe values, which are never templated again: registered results,
//! the facts modules set, the items of `with_<lookup>` loops (and of a
//! `loop:` whose template read an unsafe value) and what `set_fact` sets
//! from a template that read an unsafe value (Ansible's issue 64169).
//! A value read through `hostvars[host]` is templated with that host's
//! variables only (its host variables and the facts the run set), an
//! undefined one left as written. `loop_control.label` is rendered after
//! each item, with the item's result under the `register` name (an item
//! whose label does not render fails, as Ansible's issue 83619 pins).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Value as Json, json};

use crate::error::{Error, Result};
use crate::modules::{self, Ctx, Outcome};
use crate::render::{Renderer, Vars};
use crate::role::{
    Action, NATIVE_MODULES, Role, RoleLoader, Task, json_text, load_included, yml_name,
};
use crate::target::{LocalTarget, Target};

mod fallback;
mod include;
mod loops;
mod task;

/// How deep includes (of tasks files and roles) may nest.
const MAX_INCLUDE_DEPTH: usize = 40;

/// How a task execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Nothing to change.
    Ok,
    /// The target was (or, in check mode, would be) changed.
    Changed,
    /// `when` was false (or the module cannot run in check mode).
    Skipped,
    /// The task failed.
    Failed,
    /// The task failed and `ignore_errors` let the run go on.
    Ignored,
}

/// One task execution (one per loop item), as reported to the progress
/// callback and kept in the [`RunReport`].
#[derive(Debug, Clone)]
pub struct TaskEvent {
    /// The role the task belongs to.
    pub role: String,
    /// The task's name (or module).
    pub task: String,
    /// The loop item, when looping.
    pub item: Option<Json>,
    /// The outcome.
    pub status: TaskStatus,
    /// A message (debug output, failure reason).
    pub msg: Option<String>,
    /// Whether the task went through `ansible-playbook`.
    pub via_ansible: bool,
    /// The module, for module tasks (`None` for includes).
    pub module: Option<String>,
}

/// Everything a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Task executions in order.
    pub events: Vec<TaskEvent>,
}

impl RunReport {
    /// Number of executions with this status.
    pub fn count(&self, status: TaskStatus) -> usize {
        self.events.iter().filter(|e| e.status == status).count()
    }
    /// Executions that changed something.
    pub fn changed(&self) -> Vec<&TaskEvent> {
        self.events
            .iter()
            .filter(|e| e.status == TaskStatus::Changed)
            .collect()
    }
}

/// Receives each task execution as it ends.
pub type Progress = Arc<dyn Fn(&TaskEvent) + Send + Sync>;

/// Applies roles to targets (consuming builder).
///
/// ```no_run
/// # async fn f(target: &dyn hive_image::Target) -> Result<(), hive_image::Error> {
/// use hive_image::{RoleLoader, Runner};
/// let runner = Runner::new(RoleLoader::new(["project/roles".into()])).check_mode(false);
/// let report = runner.apply(target, &["web".to_string()]).await?;
/// println!("{} changed", report.changed().len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Runner {
    loader: RoleLoader,
    check: bool,
    tags: Vec<String>,
    skip_tags: Vec<String>,
    vars: Vars,
    extra_vars: Vars,
    delegates: HashMap<String, Arc<dyn Target>>,
    mother_names: Vec<String>,
    ansible_playbook: Option<PathBuf>,
    library: Vec<PathBuf>,
    progress: Option<Progress>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("loader", &self.loader)
            .field("check", &self.check)
            .finish()
    }
}

/// Finds `ansible-playbook` on `PATH`.
pub fn find_ansible_playbook() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ansible-playbook"))
        .find(|p| p.is_file())
}

#[derive(Default, Clone)]
struct Inherited {
    when: Vec<String>,
    vars: Vars,
    tags: Vec<String>,
    environment: Option<Json>,
    become_user: Option<String>,
    delegate_to: Option<String>,
    ignore_errors: Option<Json>,
    /// How many includes lead here.
    depth: usize,
}

struct Scope {
    role: Arc<Role>,
    vars: Vars,
    renderer: Renderer,
}

struct State<'t> {
    target: &'t dyn Target,
    facts: Vars,
    notified: Vec<String>,
    handlers: Vec<(Task, Arc<Scope>)>,
    report: RunReport,
    /// The last task that failed: its name and result (for `rescue`).
    failed: Option<(String, Json)>,
    /// `meta: clear_host_errors` ran.
    cleared: bool,
}

impl State<'_> {
    /// Stores a registered result: never templated again when read (as
    /// Ansible marks results unsafe), unlike what `set_fact` sets.
    fn register(&mut self, name: &str, value: Json) {
        self.facts.insert(name.to_string(), value);
        crate::render::mark_final(&mut self.facts, name);
    }

    /// Sets a fact (templated when read, as Ansible's facts are).
    fn set_fact(&mut self, name: String, value: Json) {
        if let Some(Json::Array(a)) = self.facts.get_mut(crate::render::FINAL_VARS) {
            a.retain(|n| n != name.as_str());
        }
        self.facts.insert(name, value);
    }
}

const MOTHER: &[&str] = &["localhost", "127.0.0.1", "mother"];

impl Runner {
    /// A runner finding roles with `loader`; `ansible-playbook` is looked
    /// up on `PATH` for modules hive does not implement.
    pub fn new(loader: RoleLoader) -> Self {
        Runner {
            loader,
            check: false,
            tags: vec![],
            skip_tags: vec![],
            vars: Vars::new(),
            extra_vars: Vars::new(),
            delegates: HashMap::new(),
            mother_names: MOTHER.iter().map(|s| s.to_string()).collect(),
            ansible_playbook: find_ansible_playbook(),
            library: vec![],
            progress: None,
        }
    }
    /// Only reports what would change.
    pub fn check_mode(mut self, check: bool) -> Self {
        self.check = check;
        self
    }
    /// Whether the runner is in check mode.
    pub fn is_check_mode(&self) -> bool {
        self.check
    }
    /// Runs only tasks with one of these tags (and `always`).
    pub fn tags(mut self, tags: Vec<String>) -> Self {
        self.tags = tags;
        self
    }
    /// Skips tasks with one of these tags.
    pub fn skip_tags(mut self, tags: Vec<String>) -> Self {
        self.skip_tags = tags;
        self
    }
    /// Host variables (inventory level: above role defaults, below role vars).
    pub fn vars(mut self, vars: Vars) -> Self {
        self.vars = vars;
        self
    }
    /// Extra variables (highest precedence).
    pub fn extra_vars(mut self, vars: Vars) -> Self {
        self.extra_vars = vars;
        self
    }
    /// A target for `delegate_to: <host>`.
    pub fn delegate(mut self, host: impl Into<String>, target: Arc<dyn Target>) -> Self {
        self.delegates.insert(host.into(), target);
        self
    }
    /// Another name of the mother machine (besides localhost).
    pub fn mother_name(mut self, name: impl Into<String>) -> Self {
        self.mother_names.push(name.into());
        self
    }
    /// `ansible-playbook` for unsupported modules (`None`: no fallback).
    pub fn ansible_playbook(mut self, path: Option<PathBuf>) -> Self {
        self.ansible_playbook = path;
        self
    }
    /// A project `lib/` directory of custom modules (for the fallback); its
    /// `module_utils/` holds what they share.
    pub fn library(mut self, dir: PathBuf) -> Self {
        // ansible-playbook runs in the role's directory
        self.library.push(std::path::absolute(&dir).unwrap_or(dir));
        self
    }
    /// Reports each task execution.
    pub fn on_event(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Lists the uses of modules hive does not implement in `roles` (and
    /// what they include or depend on), as `file:line: module`.
    pub fn unsupported(&self, roles: &[String]) -> Result<Vec<String>> {
        let mut out = vec![];
        let mut seen = vec![];
        for r in roles {
            self.scan_role(r, None, &mut out, &mut seen)?;
        }
        Ok(out)
    }

    fn scan_role(
        &self,
        name: &str,
        from: Option<&str>,
        out: &mut Vec<String>,
        seen: &mut Vec<String>,
    ) -> Result<()> {
        let key = format!("{name}/{}", from.unwrap_or("main"));
        if seen.contains(&key) || name.contains("{{") {
            return Ok(());
        }
        seen.push(key);
        let role = self.loader.load(name, from)?;
        for (d, _) in &role.dependencies {
            self.scan_role(d, None, out, seen)?;
        }
        let mut todo: Vec<Task> = role.tasks.clone();
        todo.extend(role.handlers.clone());
        while let Some(t) = todo.pop() {
            match &t.action {
                Action::Module { name: m, .. } => {
                    if !NATIVE_MODULES.contains(&m.as_str()) {
                        out.push(format!("{}: {m}", t.location));
                    }
                }
                Action::Block {
                    block,
                    rescue,
                    always,
                } => {
                    todo.extend(block.iter().chain(rescue).chain(always).cloned());
                }
                Action::IncludeTasks { file } => {
                    if !file.contains("{{") {
                        let key = format!("{name}:{}", yml_name(file));
                        if !seen.contains(&key) {
                            seen.push(key);
                            if let Ok(ts) = load_included(&role.dir, &t, file) {
                                todo.extend(ts);
                            }
                        }
                    }
                }
                Action::IncludeRole {
                    name: r,
                    tasks_from,
                } => {
                    self.scan_role(r, tasks_from.as_deref(), out, seen)?;
                }
            }
        }
        out.sort();
        Ok(())
    }

    /// Applies `roles` in order to `target`, then runs notified handlers.
    ///
    /// Before anything runs, every module is checked: modules hive does not
    /// implement run through `ansible-playbook` when it is available,
    /// otherwise the run stops with [`Error::Unsupported`].
    pub async fn apply(&self, target: &dyn Target, roles: &[String]) -> Result<RunReport> {
        let unsupported = self.unsupported(roles)?;
        if !unsupported.is_empty() && self.ansible_playbook.is_none() {
            return Err(Error::Unsupported { list: unsupported });
        }
        let mut st = State {
            target,
            facts: Vars::new(),
            notified: vec![],
            handlers: vec![],
            report: RunReport::default(),
            failed: None,
            cleared: false,
        };
        for r in roles {
            self.run_role(&mut st, r, None, Vars::new(), &Inherited::default())
                .await?;
        }
        self.flush_handlers(&mut st).await?;
        Ok(st.report)
    }

    fn run_role<'a>(
        &'a self,
        st: &'a mut State<'_>,
        name: &'a str,
        tasks_from: Option<&'a str>,
        params: Vars,
        inh: &'a Inherited,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let role = Arc::new(self.loader.load(name, tasks_from)?);
            for (dep, dvars) in &role.dependencies {
                self.run_role(st, dep, None, dvars.clone(), inh).await?;
            }
            let mut vars = role.defaults.clone();
            vars.extend(self.vars.clone());
            vars.extend(role.vars.clone());
            vars.extend(params);
            vars.insert("role_name".into(), json!(role.name));
            if let Some(p) = role.dir.path() {
                vars.insert("role_path".into(), json!(p.display().to_string()));
                vars.insert(
                    "ansible_search_path".into(),
                    json!([p.display().to_string()]),
                );
            }
            let root = role.dir.path().map(|p| p.join("files")).unwrap_or_default();
            let scope = Arc::new(Scope {
                renderer: match role.dir.path() {
                    Some(p) => Renderer::with_template_dirs(
                        &root,
                        vec![p.join("templates"), p.to_path_buf()],
                    ),
                    None => Renderer::new(&root),
                },
                role: role.clone(),
                vars,
            });
            for h in &role.handlers {
                st.handlers.push((h.clone(), scope.clone()));
            }
            self.run_tasks(st, &scope, &role.tasks, inh).await
        })
    }

    fn task_vars(&self, st: &State<'_>, scope: &Scope, inh: &Inherited, task: &Task) -> Vars {
        let mut v = scope.vars.clone();
        v.extend(inh.vars.clone());
        v.extend(task.vars.clone());
        v.extend(st.facts.clone());
        v.extend(self.extra_vars.clone());
        // hostvars of the host itself show its host variables and what the
        // run set so far (the templating of a value read there sees these only)
        if let Some(Json::String(host)) = v.get("inventory_hostname").cloned()
            && let Some(Json::Object(hv)) = v.get_mut("hostvars")
            && let Json::Object(e) = hv.entry(host).or_insert_with(|| json!({}))
        {
            let skip = |k: &str| matches!(k, "hostvars" | "groups" | crate::render::FINAL_VARS);
            for (k, val) in &self.vars {
                if !skip(k) && !e.contains_key(k) {
                    e.insert(k.clone(), val.clone());
                }
            }
            for (k, val) in &st.facts {
                if !skip(k) {
                    e.insert(k.clone(), val.clone());
                }
            }
        }
        v.entry("ansible_check_mode".to_string())
            .or_insert(json!(self.check));
        v
    }

    fn selected(&self, task: &Task, inh: &Inherited) -> bool {
        let tags: Vec<&String> = task.tags.iter().chain(&inh.tags).collect();
        if tags.iter().any(|t| self.skip_tags.contains(t)) {
            return false;
        }
        self.tags.is_empty() || tags.iter().any(|t| *t == "always" || self.tags.contains(t))
    }

    fn emit(&self, st: &mut State<'_>, ev: TaskEvent) {
        if let Some(p) = &self.progress {
            p(&ev);
        }
        st.report.events.push(ev);
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_module(
        &self,
        st: &mut State<'_>,
        scope: &Scope,
        t: &Task,
        inh: &Inherited,
        name: &str,
        args: &Json,
        raw: &serde_yaml::Value,
        vars: &Vars,
    ) -> Result<(Outcome, bool)> {
        let tmpl = |m: String| Error::Template {
            context: t.location.clone(),
            message: m,
        };
        let delegate = match t.delegate_to.as_ref().or(inh.delegate_to.as_ref()) {
            Some(d) => Some(json_text(
                &scope.renderer.render_str(d, vars).map_err(tmpl)?,
            )),
            None => None,
        };
        let local = Arc::new(LocalTarget);
        let target: Arc<dyn Target>;
        let target_ref: &dyn Target = match &delegate {
            None => st.target,
            Some(d) if self.mother_names.contains(d) => {
                target = local;
                target.as_ref()
            }
            Some(d) => match self.delegates.get(d) {
                Some(x) => {
                    target = x.clone();
                    target.as_ref()
                }
                None if t.delegate_facts || name == "set_fact" => st.target,
                None => {
                    return Ok((
                        Outcome::failed(format!(
                            "delegate_to: no target known for host {d} (known: the mother machine{})",
                            self.delegates
                                .keys()
                                .map(|k| format!(", {k}"))
                                .collect::<String>()
                        )),
                        false,
                    ));
                }
            },
        };
        let check = t.check_mode.unwrap_or(self.check);
        if !NATIVE_MODULES.contains(&name) {
            return self
                .run_fallback(
                    target_ref,
                    scope,
                    raw,
                    (
                        name,
                        &scope.renderer.render_value(args, vars).map_err(tmpl)?,
                    ),
                    vars,
                    check,
                )
                .await
                .map(|o| (o, true));
        }
        // set_fact renders its values itself: each may be unsafe
        let args = if name == "set_fact" {
            args.clone()
        } else {
            scope.renderer.render_value(args, vars).map_err(tmpl)?
        };
        let env = match t.environment.as_ref().or(inh.environment.as_ref()) {
            Some(e) => match scope.renderer.render_value(e, vars).map_err(tmpl)? {
                Json::Object(m) => m.into_iter().map(|(k, v)| (k, json_text(&v))).collect(),
                _ => vec![],
            },
            None => vec![],
        };
        let become_on = keyword_bool(t.become_.as_ref(), &scope.renderer, vars, true);
        let become_user = t.become_user.as_ref().or(inh.become_user.as_ref());
        let user = match become_user {
            Some(u) if become_on => Some(u),
            _ => t.remote_user.as_ref(),
        }
        .map(|u| {
            scope
                .renderer
                .render_str(u, vars)
                .map(|j| json_text(&j))
                .unwrap_or_else(|_| u.clone())
        });
        let ctx = Ctx {
            target: target_ref,
            check,
            diff: t.diff,
            role: &scope.role.dir,
            renderer: &scope.renderer,
            vars,
            user,
            env,
            task: t.location.clone(),
        };
        Ok((modules::run(name, args, &ctx).await?, false))
    }

    fn flush_handlers<'a>(&'a self, st: &'a mut State<'_>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            // handlers notified by handlers run in the next round
            let mut rounds = 0;
            while !st.notified.is_empty() && rounds < 100 {
                rounds += 1;
                let notified = std::mem::take(&mut st.notified);
                let handlers = st.handlers.clone();
                let mut ran: Vec<String> = vec![];
                for (h, scope) in handlers {
                    let hname = h.name.clone().unwrap_or_default();
                    let hit = notified
                        .iter()
                        .any(|n| (!hname.is_empty() && *n == hname) || h.listen.contains(n));
                    // a role applied twice has its handlers listed twice:
                    // each runs once (unnamed ones told apart by place)
                    let key = if hname.is_empty() {
                        h.location.clone()
                    } else {
                        hname
                    };
                    if hit && !ran.contains(&key) {
                        ran.push(key);
                        self.run_task(st, &scope, &h, &Inherited::default()).await?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// Whether fact `name` set by `module` is unsafe, stored final (never
/// templated again when read), as in Ansible: every fact of a module but
/// `set_fact` and `include_vars`, whose facts are their arguments as
/// rendered, unsafe when `set_fact` says so (`unsafe_facts`).
fn unsafe_fact(module: &str, unsafe_facts: &[String], name: &str) -> bool {
    !matches!(module, "set_fact" | "include_vars") || unsafe_facts.iter().any(|n| n == name)
}

/// A boolean task keyword: a YAML boolean, a YAML 1.1 spelling written as a
/// string (`"yes"`, `"off"`), or a condition rendered with the task's
/// variables; `default` when absent.
fn keyword_bool(v: Option<&Json>, renderer: &Renderer, vars: &Vars, default: bool) -> bool {
    match v {
        Some(Json::Bool(b)) => *b,
        Some(Json::Number(n)) => n.as_f64() != Some(0.0),
        Some(Json::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "y" | "1" => true,
            "no" | "false" | "off" | "n" | "0" | "" => false,
            _ => renderer.is_true(s, vars).unwrap_or(false),
        },
        Some(_) => true,
        None => default,
    }
}
