//! `include_tasks`, `import_tasks`, `include_role` and `import_role`:
//! looped, conditional, with their variables rendered when they run.

use futures::future::BoxFuture;
use serde_json::Value as Json;

use super::{Inherited, Runner, Scope, State, TaskEvent, TaskStatus, loops};
use crate::error::{Error, Result};
use crate::render::Vars;
use crate::role::{Action, Task, json_text, load_included};

impl Runner {
    /// Runs an include task (every item of its loop).
    pub(super) fn run_include<'a>(
        &'a self,
        st: &'a mut State<'_>,
        scope: &'a std::sync::Arc<Scope>,
        t: &'a Task,
        inh: &'a Inherited,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let vars = self.task_vars(st, scope, inh, t);
            let items = self.items(scope, t, &vars)?;
            let list = items.clone().unwrap_or_else(|| vec![Json::Null]);
            let loop_var = self.loop_var(scope, t, &vars);
            for (index, item) in list.iter().cloned().enumerate() {
                let mut v = vars.clone();
                let mut c = self.child_inherited(inh, t);
                if items.is_some() {
                    let iv = loops::item_vars(t, &loop_var, &list, index);
                    v.extend(iv.clone());
                    c.vars.extend(iv);
                }
                let conds: Vec<String> = inh.when.iter().chain(&t.when).cloned().collect();
                // an import is static: its conditions go to each of its
                // tasks, evaluated (and skipped) one by one
                let imported = t.imported && items.is_none();
                if !imported && !self.conditions_hold(scope, &conds, &v, t)? {
                    self.emit(
                        st,
                        TaskEvent {
                            role: scope.role.name.clone(),
                            task: t.label(),
                            item: items.as_ref().map(|_| item.clone()),
                            status: TaskStatus::Skipped,
                            msg: None,
                            via_ansible: false,
                            module: None,
                        },
                    );
                    continue;
                }
                // values are rendered now, as an include's arguments are
                c.vars = match scope
                    .renderer
                    .render_value(&Json::Object(c.vars.clone().into_iter().collect()), &v)
                {
                    Ok(Json::Object(m)) => m.into_iter().collect(),
                    _ => c.vars,
                };
                c.when = if imported { conds } else { inh.when.clone() };
                let render = |s: &str| -> Result<String> {
                    scope
                        .renderer
                        .render_str(s, &v)
                        .map(|j| json_text(&j))
                        .map_err(|m| Error::Template {
                            context: t.location.clone(),
                            message: m,
                        })
                };
                match &t.action {
                    Action::IncludeTasks { file } => {
                        let file = render(file)?;
                        let tasks = load_included(&scope.role.dir, t, &file)?;
                        self.run_tasks(st, scope, &tasks, &c).await?;
                    }
                    Action::IncludeRole { name, tasks_from } => {
                        let name = render(name)?;
                        let tasks_from = tasks_from.as_deref().map(render).transpose()?;
                        let params = c.vars.clone();
                        let mut ci = c.clone();
                        ci.vars = Vars::new();
                        self.run_role(st, &name, tasks_from.as_deref(), params, &ci)
                            .await?;
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }
}
