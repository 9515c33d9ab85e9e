//! Loops: the items of `loop:` and `with_<lookup>:`, and the variables
//! each item sets (`item` or `loop_var`, `index_var`, `ansible_loop`).

use serde_json::{Value as Json, json};

use super::{Inherited, Runner, Scope, State};
use crate::error::{Error, Result};
use crate::render::Vars;
use crate::role::{LoopKind, Task, json_text};

impl Runner {
    /// The items of a looping task (`None` when it does not loop).
    pub(super) fn items(&self, scope: &Scope, t: &Task, vars: &Vars) -> Result<Option<Vec<Json>>> {
        Ok(self.items_marked(scope, t, vars)?.map(|(items, _)| items))
    }

    /// [`Runner::items`], with whether the items are unsafe (never
    /// templated again when read), as Ansible's: those of a lookup
    /// (`with_<lookup>`) and those of a `loop:` whose template read an
    /// unsafe value.
    pub(super) fn items_marked(
        &self,
        scope: &Scope,
        t: &Task,
        vars: &Vars,
    ) -> Result<Option<(Vec<Json>, bool)>> {
        let Some((l, kind)) = &t.looping else {
            return Ok(None);
        };
        let err = |message: String| Error::Template {
            context: format!("{} loop", t.location),
            message,
        };
        let (v, tainted) = scope.renderer.render_value_marked(l, vars).map_err(err)?;
        let unsafe_items = tainted || matches!(kind, LoopKind::With(_));
        let items = match kind {
            LoopKind::Loop => match v {
                Json::Array(a) => a,
                other => {
                    return Err(err(format!(
                        "Invalid data passed to 'loop', it requires a list, got this instead: {}. Hint: If you passed a list/dict of just one element, try adding wantlist=True to your lookup invocation or use q/query instead of lookup.",
                        json_text(&other)
                    )));
                }
            },
            LoopKind::With(name) => {
                // a string is one term, as Ansible's listify makes it
                let terms = match v {
                    Json::String(s) => json!([s]),
                    Json::Null => json!([]),
                    other => other,
                };
                match hive_inventory::template::list_lookup(name, &terms) {
                    Some(items) => items.map_err(err)?,
                    None => {
                        let mut qv = vars.clone();
                        qv.insert("__hive_loop_terms".into(), terms);
                        let expr = format!("{{{{ query('{name}', __hive_loop_terms) }}}}");
                        match scope.renderer.render_str(&expr, &qv).map_err(err)? {
                            Json::Array(a) => a,
                            other => vec![other],
                        }
                    }
                }
            }
        };
        Ok(Some((items, unsafe_items)))
    }

    /// Renders `loop_control.label` for each item that ran, as Ansible
    /// does after the item, with its result under the `register` name: an
    /// item whose label does not render fails, its result saying why
    /// (Ansible's issue 83619). Returns the first such message.
    pub(super) fn label_failures(
        &self,
        st: &State<'_>,
        scope: &Scope,
        (t, inh): (&Task, &Inherited),
        loop_var: &str,
        items: &[Json],
        results: &mut [Json],
    ) -> Option<String> {
        let label = t.loop_control.label.as_ref()?;
        let mut first = None;
        for (index, result) in results.iter_mut().enumerate().take(items.len()) {
            let mut v = self.task_vars(st, scope, inh, t);
            v.extend(item_vars(t, loop_var, items, index));
            if let Some(reg) = &t.register {
                v.insert(reg.clone(), result.clone());
            }
            if let (Err(e), Json::Object(r)) = (scope.renderer.render_str(label, &v), result) {
                let msg = format!("Failed to template loop_control.label: {e}");
                r.insert("failed".into(), json!(true));
                r.insert("msg".into(), json!(msg));
                first.get_or_insert(msg);
            }
        }
        first
    }

    /// The name of the loop variable (`loop_control.loop_var` may be
    /// templated).
    pub(super) fn loop_var(&self, scope: &Scope, t: &Task, vars: &Vars) -> String {
        if !t.loop_var.contains("{{") {
            return t.loop_var.clone();
        }
        scope
            .renderer
            .render_str(&t.loop_var, vars)
            .map(|j| json_text(&j))
            .unwrap_or_else(|_| t.loop_var.clone())
    }
}

/// The variables item `index` of `items` sets: the loop variable,
/// `ansible_loop_var`, `index_var` (and `ansible_index_var`) and, with
/// `extended`, `ansible_loop`. The same keys go into the item's result.
pub(super) fn item_vars(t: &Task, loop_var: &str, items: &[Json], index: usize) -> Vars {
    let mut v = Vars::new();
    v.insert(loop_var.to_string(), items[index].clone());
    v.insert("ansible_loop_var".into(), json!(loop_var));
    if let Some(iv) = &t.loop_control.index_var {
        v.insert(iv.clone(), json!(index));
        v.insert("ansible_index_var".into(), json!(iv));
    }
    if let Some(allitems) = t.loop_control.extended {
        let n = items.len();
        let mut l = serde_json::Map::new();
        if allitems {
            l.insert("allitems".into(), json!(items));
        }
        l.insert("index".into(), json!(index + 1));
        l.insert("index0".into(), json!(index));
        l.insert("first".into(), json!(index == 0));
        l.insert("last".into(), json!(index + 1 == n));
        l.insert("length".into(), json!(n));
        l.insert("revindex".into(), json!(n - index));
        l.insert("revindex0".into(), json!(n - index - 1));
        if index > 0 {
            l.insert("previtem".into(), items[index - 1].clone());
        }
        if index + 1 < n {
            l.insert("nextitem".into(), items[index + 1].clone());
        }
        v.insert("ansible_loop".into(), Json::Object(l));
    }
    v
}
