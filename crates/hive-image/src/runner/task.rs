//! One task as the runner runs it: a block (with `rescue` and `always`),
//! an include, or a module task with its loop, conditions, `changed_when`,
//! `failed_when`, facts, `register`, `notify` and `meta`.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value as Json, json};

use super::{
    Inherited, MAX_INCLUDE_DEPTH, Runner, Scope, State, TaskEvent, TaskStatus, keyword_bool, loops,
    unsafe_fact,
};
use crate::error::{Error, Result};
use crate::modules::Outcome;
use crate::render::Vars;
use crate::role::{Action, Task, json_text};

/// What the items of a module task left so far, for its loop's result.
struct LoopResults {
    /// Each item's result, in order.
    results: Vec<Json>,
    any_changed: bool,
    any_failed: bool,
    all_skipped: bool,
    /// Why the task failed (a failed item that `ignore_errors` does not
    /// cover).
    failure: Option<String>,
}

/// One item of a module task (the only one when it does not loop).
struct Item {
    /// The variables the item sees.
    vars: Vars,
    /// What the loop sets (the loop variable, `ansible_loop`, ...).
    loop_vars: Vars,
    /// The item, in events (`None` when the task does not loop).
    label: Option<Json>,
    /// Whether the task loops (its `register` then holds `results`).
    looped: bool,
}

/// A module task's name and arguments as written.
struct ModuleCall<'a> {
    name: &'a str,
    args: &'a Json,
    raw: &'a serde_yaml::Value,
}

impl Runner {
    pub(super) fn run_tasks<'a>(
        &'a self,
        st: &'a mut State<'_>,
        scope: &'a Arc<Scope>,
        tasks: &'a [Task],
        inh: &'a Inherited,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for t in tasks {
                self.run_task(st, scope, t, inh).await?;
            }
            Ok(())
        })
    }

    pub(super) fn child_inherited(&self, inh: &Inherited, t: &Task) -> Inherited {
        let mut c = inh.clone();
        if !matches!(t.action, Action::Block { .. }) {
            c.depth += 1;
        }
        c.when.extend(t.when.iter().cloned());
        c.vars.extend(t.vars.clone());
        c.tags.extend(t.tags.iter().cloned());
        if t.environment.is_some() {
            c.environment = t.environment.clone();
        }
        if t.become_user.is_some() {
            c.become_user = t.become_user.clone();
        }
        if t.delegate_to.is_some() {
            c.delegate_to = t.delegate_to.clone();
        }
        if t.ignore_errors.is_some() {
            c.ignore_errors = t.ignore_errors.clone();
        }
        c
    }

    pub(super) fn conditions_hold(
        &self,
        scope: &Scope,
        conds: &[String],
        vars: &Vars,
        t: &Task,
    ) -> Result<bool> {
        for c in conds {
            let ok = scope
                .renderer
                .is_true(c, vars)
                .map_err(|m| Error::Template {
                    context: format!("{} when", t.location),
                    message: m,
                })?;
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Runs one task of any kind.
    pub(super) fn run_task<'a>(
        &'a self,
        st: &'a mut State<'_>,
        scope: &'a Arc<Scope>,
        t: &'a Task,
        inh: &'a Inherited,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match &t.action {
                Action::Block {
                    block,
                    rescue,
                    always,
                } => {
                    self.run_block(st, scope, (t, inh), [block, rescue, always])
                        .await
                }
                Action::IncludeTasks { .. } | Action::IncludeRole { .. } => {
                    self.run_include_task(st, scope, t, inh).await
                }
                Action::Module { name, args, raw } => {
                    let call = ModuleCall { name, args, raw };
                    self.run_module_task(st, scope, (t, inh), call).await
                }
            }
        })
    }

    /// A block: its tasks, then `rescue` when one failed, then `always`.
    async fn run_block(
        &self,
        st: &mut State<'_>,
        scope: &Arc<Scope>,
        (t, inh): (&Task, &Inherited),
        [block, rescue, always]: [&Vec<Task>; 3],
    ) -> Result<()> {
        // the block's conditions are its tasks' (each is evaluated, and
        // skipped, on its own), as in Ansible
        let mut c = self.child_inherited(inh, t);
        c.when = inh.when.iter().chain(&t.when).cloned().collect();
        let r = self.run_tasks(st, scope, block, &c).await;
        let r = match r {
            Err(Error::TaskFailed { task, message }) if !rescue.is_empty() => {
                let (name, result) = st
                    .failed
                    .take()
                    .unwrap_or((task, json!({"failed": true, "msg": message})));
                st.set_fact("ansible_failed_task".into(), json!({"name": name}));
                st.register("ansible_failed_result", result);
                self.run_tasks(st, scope, rescue, &c).await
            }
            other => other,
        };
        // `meta: clear_host_errors` in `always` (or `rescue`) forgets the
        // failure, as Ansible's does
        st.cleared = false;
        let a = self.run_tasks(st, scope, always, &c).await;
        if std::mem::take(&mut st.cleared) && a.is_ok() {
            return Ok(());
        }
        r.and(a)
    }

    /// An include: what cannot be included fails the include task (and
    /// goes to `rescue`), as in Ansible.
    async fn run_include_task(
        &self,
        st: &mut State<'_>,
        scope: &Arc<Scope>,
        t: &Task,
        inh: &Inherited,
    ) -> Result<()> {
        let r = if inh.depth >= MAX_INCLUDE_DEPTH {
            Err(Error::Role {
                file: t.location.clone(),
                message: format!(
                    "includes nested more than {MAX_INCLUDE_DEPTH} levels deep (an include of itself?)"
                ),
            })
        } else {
            self.run_include(st, scope, t, inh).await
        };
        match r {
            Err(e @ (Error::Role { .. } | Error::RoleNotFound { .. } | Error::Template { .. })) => {
                let message = e.to_string();
                st.failed = Some((t.label(), json!({"failed": true, "msg": message})));
                Err(Error::TaskFailed {
                    task: format!("{} ({}, {})", t.label(), scope.role.name, t.location),
                    message,
                })
            }
            other => other,
        }
    }

    /// A module task: each item of its loop (one when it does not loop),
    /// then the loop's result.
    async fn run_module_task(
        &self,
        st: &mut State<'_>,
        scope: &Arc<Scope>,
        (t, inh): (&Task, &Inherited),
        call: ModuleCall<'_>,
    ) -> Result<()> {
        if !self.selected(t, inh) {
            return Ok(());
        }
        let vars = self.task_vars(st, scope, inh, t);
        // a loop that cannot be rendered fails the task, not the run
        let (items, unsafe_items, loop_error) = match self.items_marked(scope, t, &vars) {
            Ok(i) => {
                let unsafe_items = i.as_ref().is_some_and(|(_, u)| *u);
                (i.map(|(i, _)| i), unsafe_items, None)
            }
            Err(Error::Template { message, .. }) => (None, false, Some(message)),
            Err(e) => (None, false, Some(e.to_string())),
        };
        let list = items.clone().unwrap_or_else(|| vec![Json::Null]);
        let loop_var = self.loop_var(scope, t, &vars);
        let conds: Vec<String> = inh.when.iter().chain(&t.when).cloned().collect();
        // a loop that cannot be rendered does not matter when the task is
        // skipped anyway (Ansible checks `when` first)
        let loop_error = loop_error.filter(|_| {
            self.conditions_hold(scope, &conds, &vars, t)
                .unwrap_or(true)
        });
        let mut acc = LoopResults {
            results: vec![],
            any_changed: false,
            any_failed: false,
            all_skipped: true,
            failure: None,
        };
        for (index, item) in list.iter().cloned().enumerate() {
            if index > 0 && t.loop_control.pause > 0.0 {
                tokio::time::sleep(std::time::Duration::from_secs_f64(t.loop_control.pause)).await;
            }
            let mut v = self.task_vars(st, scope, inh, t);
            let loop_vars = match items {
                Some(_) => loops::item_vars(t, &loop_var, &list, index),
                None => Vars::new(),
            };
            v.extend(loop_vars.clone());
            if unsafe_items {
                crate::render::mark_final(&mut v, &loop_var);
            }
            let it = Item {
                vars: v,
                loop_vars,
                label: items.as_ref().map(|_| item.clone()),
                looped: items.is_some(),
            };
            let holds = match &loop_error {
                Some(m) => Err(m.clone()),
                None if items.is_none() && t.looping.is_some() => Ok(false),
                None => self
                    .conditions_hold(scope, &conds, &it.vars, t)
                    .map_err(|e| e.to_string()),
            };
            if holds == Ok(false) {
                self.skip_item(st, scope, t, call.name, &conds, it, &mut acc);
                continue;
            }
            let ran = match holds {
                Err(m) => Ok((Outcome::failed(m), false)),
                Ok(_) => {
                    self.run_module(st, scope, t, inh, call.name, call.args, call.raw, &it.vars)
                        .await
                }
            };
            let ran = match ran {
                Ok(x) => x,
                Err(e @ (Error::Template { .. } | Error::Args { .. } | Error::Io { .. })) => {
                    (Outcome::failed(e.to_string()), false)
                }
                Err(e) => return Err(e),
            };
            self.finish_item(st, scope, (t, inh), &call, it, ran, &mut acc)
                .await?;
            if acc.failure.is_some() && items.is_none() {
                break;
            }
        }
        self.finish_loop(st, scope, (t, inh), call.name, &vars, &loop_var, items, acc)
    }

    /// An item whose conditions are false: skipped, as Ansible reports it.
    #[allow(clippy::too_many_arguments)]
    fn skip_item(
        &self,
        st: &mut State<'_>,
        scope: &Scope,
        t: &Task,
        module: &str,
        conds: &[String],
        it: Item,
        acc: &mut LoopResults,
    ) {
        let mut r = Map::new();
        r.insert("skipped".into(), json!(true));
        r.insert("changed".into(), json!(false));
        r.insert("false_condition".into(), json!(conds.last()));
        r.extend(it.loop_vars);
        if let (Some(reg), false) = (&t.register, it.looped) {
            st.register(reg, Json::Object(r.clone()));
        }
        acc.results.push(Json::Object(r));
        self.emit(
            st,
            module_event(scope, t, it.label, module, TaskStatus::Skipped),
        );
    }

    /// What an item's module returned, judged (`changed_when`,
    /// `failed_when`, `ignore_errors`), stored (facts, `register`),
    /// reported and acted on (`notify`, `meta`).
    #[allow(clippy::too_many_arguments)]
    async fn finish_item(
        &self,
        st: &mut State<'_>,
        scope: &Scope,
        (t, inh): (&Task, &Inherited),
        call: &ModuleCall<'_>,
        it: Item,
        (outcome, via_ansible): (Outcome, bool),
        acc: &mut LoopResults,
    ) -> Result<()> {
        let v = &it.vars;
        let (mut data, outcome, changed, failed) = self.judge(scope, t, v, outcome);
        if let Some(facts) = outcome.facts.clone() {
            self.store_facts(st, scope, t, v, call.name, facts, &outcome.unsafe_facts);
        }
        let ignore = keyword_bool(
            t.ignore_errors.as_ref().or(inh.ignore_errors.as_ref()),
            &scope.renderer,
            v,
            false,
        );
        let status = match (failed, ignore) {
            (true, true) => TaskStatus::Ignored,
            (true, false) => TaskStatus::Failed,
            _ if outcome.skipped => TaskStatus::Skipped,
            _ if changed => TaskStatus::Changed,
            _ => TaskStatus::Ok,
        };
        acc.any_changed |= changed;
        if failed {
            acc.any_failed = true;
            if !ignore {
                let mut m = outcome.msg.clone().unwrap_or_else(|| "failed".into());
                // what a command said on its way out, for the report
                if let Some(err) = data
                    .get("stderr")
                    .and_then(|e| e.as_str())
                    .filter(|e| !e.trim().is_empty())
                {
                    m = format!("{m}: {}", err.trim());
                }
                acc.failure = Some(m);
                st.failed = Some((t.label(), Json::Object(data.clone())));
            }
        }
        acc.all_skipped &= outcome.skipped;
        data.extend(it.loop_vars);
        acc.results.push(Json::Object(data.clone()));
        let msg = if call.name == "debug" || failed {
            outcome.msg.clone()
        } else {
            None
        };
        self.emit(
            st,
            TaskEvent {
                msg,
                via_ansible,
                ..module_event(scope, t, it.label, call.name, status)
            },
        );
        if changed {
            for n in &t.notify {
                let n = scope
                    .renderer
                    .render_str(n, v)
                    .map(|j| json_text(&j))
                    .unwrap_or_else(|_| n.clone());
                if !st.notified.contains(&n) {
                    st.notified.push(n);
                }
            }
        }
        if call.name == "meta" {
            let what = call
                .args
                .get("_raw_params")
                .map(json_text)
                .unwrap_or_default();
            match what.as_str() {
                "flush_handlers" => self.flush_handlers(st).await?,
                "clear_host_errors" => st.cleared = true,
                _ => {}
            }
        }
        if let (Some(reg), false) = (&t.register, it.looped) {
            st.register(reg, Json::Object(data));
        }
        Ok(())
    }

    /// A module's outcome under the task's `changed_when` and
    /// `failed_when` (which see the result under its `register` name): the
    /// result as registered, the outcome, whether it changed and failed.
    fn judge(
        &self,
        scope: &Scope,
        t: &Task,
        v: &Vars,
        mut outcome: Outcome,
    ) -> (Map<String, Json>, Outcome, bool, bool) {
        let mut data = outcome.data.clone();
        data.insert("changed".into(), json!(outcome.changed));
        data.insert("failed".into(), json!(outcome.failed));
        if let Some(m) = &outcome.msg {
            data.insert("msg".into(), json!(m));
        }
        if outcome.skipped {
            data.insert("skipped".into(), json!(true));
        }
        let mut rv = v.clone();
        if let Some(reg) = &t.register {
            rv.insert(reg.clone(), Json::Object(data.clone()));
        }
        let mut changed = outcome.changed;
        let mut failed = outcome.failed;
        if let Some(cw) = &t.changed_when {
            match self.conditions_hold(scope, cw, &rv, t) {
                Ok(c) => changed = c,
                Err(e) => {
                    failed = true;
                    outcome.msg = Some(e.to_string());
                }
            }
        }
        if let Some(fw) = t.failed_when.as_ref().filter(|_| !failed || outcome.failed) {
            match self.conditions_hold(scope, fw, &rv, t) {
                Ok(f) => failed = f,
                Err(e) => {
                    failed = true;
                    outcome.msg = Some(e.to_string());
                }
            }
        }
        if let Some(m) = &outcome.msg {
            data.insert("msg".into(), json!(m));
        }
        data.insert("changed".into(), json!(changed));
        data.insert("failed".into(), json!(failed));
        (data, outcome, changed, failed)
    }

    /// The facts a module set: on the host, or on the delegated host's
    /// `hostvars` with `delegate_facts`; unsafe ones stored final.
    #[allow(clippy::too_many_arguments)]
    fn store_facts(
        &self,
        st: &mut State<'_>,
        scope: &Scope,
        t: &Task,
        v: &Vars,
        module: &str,
        facts: Map<String, Json>,
        unsafe_facts: &[String],
    ) {
        let host = t
            .delegate_to
            .as_ref()
            .filter(|_| t.delegate_facts)
            .map(|d| {
                scope
                    .renderer
                    .render_str(d, v)
                    .map(|j| json_text(&j))
                    .unwrap_or_default()
            });
        for (k, val) in facts {
            match &host {
                Some(h) => {
                    let hv = st
                        .facts
                        .entry("hostvars".to_string())
                        .or_insert_with(|| v.get("hostvars").cloned().unwrap_or(json!({})));
                    if let Json::Object(m) = hv
                        && let Json::Object(hm) = m.entry(h.clone()).or_insert(json!({}))
                    {
                        hm.insert(k, val);
                    }
                }
                None if unsafe_fact(module, unsafe_facts, &k) => st.register(&k, val),
                None => st.set_fact(k, val),
            }
        }
    }

    /// After the last item: the labels' failures, the skipped empty loop,
    /// the loop's registered result, and the task's failure.
    #[allow(clippy::too_many_arguments)]
    fn finish_loop(
        &self,
        st: &mut State<'_>,
        scope: &Scope,
        (t, inh): (&Task, &Inherited),
        module: &str,
        vars: &Vars,
        loop_var: &str,
        items: Option<Vec<Json>>,
        mut acc: LoopResults,
    ) -> Result<()> {
        if let Some(m) = items.as_ref().and_then(|list| {
            self.label_failures(st, scope, (t, inh), loop_var, list, &mut acc.results)
        }) {
            (acc.any_failed, acc.all_skipped) = (true, false);
            let ignore = t.ignore_errors.as_ref().or(inh.ignore_errors.as_ref());
            if acc.failure.is_none() && !keyword_bool(ignore, &scope.renderer, vars, false) {
                acc.failure = Some(m);
            }
        }
        if items.as_ref().is_some_and(Vec::is_empty) {
            // a loop over nothing: the task is skipped, as Ansible reports it
            self.emit(
                st,
                module_event(scope, t, None, module, TaskStatus::Skipped),
            );
        }
        if items.is_some() {
            let mut r = json!({
                "results": acc.results,
                "changed": acc.any_changed,
                "failed": acc.any_failed,
                "msg": if acc.any_failed {"one or more items failed"} else {"all items completed"},
            });
            if acc.all_skipped {
                r["skipped"] = json!(true);
                if r["results"].as_array().is_some_and(Vec::is_empty) {
                    r["msg"] = json!("No items in the list");
                }
            }
            if acc.failure.is_some() {
                st.failed = Some((t.label(), r.clone()));
            }
            if let Some(reg) = &t.register {
                st.register(reg, r);
            }
        }
        match acc.failure {
            Some(message) => Err(Error::TaskFailed {
                task: format!("{} ({}, {})", t.label(), scope.role.name, t.location),
                message,
            }),
            None => Ok(()),
        }
    }
}

/// The event of module task `t` (of `scope`'s role) for `item`, without a
/// message, run natively.
fn module_event(
    scope: &Scope,
    t: &Task,
    item: Option<Json>,
    module: &str,
    status: TaskStatus,
) -> TaskEvent {
    TaskEvent {
        role: scope.role.name.clone(),
        task: t.label(),
        item,
        status,
        msg: None,
        via_ansible: false,
        module: Some(module.to_string()),
    }
}
