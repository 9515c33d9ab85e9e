//! Modules that work on the run's variables only: `ping` and
//! `include_vars`.

use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::{Ctx, Outcome, S, params};
use crate::error::Result;
use crate::role::parse_yaml;
use hive_inventory::yaml_to_json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PingP {
    data: Option<Json>,
}

/// `ping`: answers `pong` (or `data`); `data: crash` fails, as Ansible's.
pub(crate) fn ping(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: PingP = params("ping", args, ctx)?;
    let data = p.data.unwrap_or_else(|| json!("pong"));
    if data == "crash" {
        return Ok(Outcome::failed("boom".into()));
    }
    Ok(Outcome::ok(false).with("ping", data))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncludeVarsP {
    #[serde(alias = "_raw_params")]
    file: Option<S>,
    dir: Option<S>,
    name: Option<S>,
    depth: Option<Json>,
    files_matching: Option<S>,
    ignore_files: Option<Json>,
    extensions: Option<Json>,
    ignore_unknown_extensions: Option<Json>,
    hash_behaviour: Option<S>,
}

/// `include_vars`: a YAML (or JSON) file of variables, looked up as
/// Ansible does in the role's `vars/` directory, then the role's own
/// directory (or an absolute path); the variables become facts of the
/// run (under `name` when given). `dir` reads every `.yml`, `.yaml` and
/// `.json` file of a role directory in name order.
pub(crate) fn include_vars(args: Json, ctx: &Ctx<'_>) -> Result<Outcome> {
    let p: IncludeVarsP = params("include_vars", args, ctx)?;
    let _ = (
        p.depth,
        p.files_matching,
        p.ignore_files,
        p.extensions,
        p.ignore_unknown_extensions,
        p.hash_behaviour,
    );
    let mut files: Vec<(String, String)> = vec![];
    if let Some(f) = p.file.filter(|f| !f.0.is_empty()) {
        match read_vars_file(ctx, &f.0)? {
            Some(x) => files.push(x),
            None => {
                return Ok(Outcome::failed(format!(
                    "Could not find or access '{}' (searched {}, {} and {})",
                    f.0,
                    ctx.role.display(&format!("vars/{}", f.0)),
                    ctx.role.display(&f.0),
                    "the path as given"
                )));
            }
        }
    } else if let Some(d) = p.dir {
        let dir = ctx
            .role
            .path()
            .map(|r| r.join(&d.0))
            .unwrap_or_else(|| d.0.clone().into());
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml") || n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        for n in names {
            let path = dir.join(&n);
            let text = std::fs::read_to_string(&path).map_err(crate::error::Error::io(&path))?;
            files.push((path.display().to_string(), text));
        }
    } else {
        return Ok(Outcome::failed(
            "include_vars needs a file (free-form or file:) or dir:".into(),
        ));
    }
    let mut vars = Map::new();
    let mut included = vec![];
    for (path, text) in files {
        match yaml_to_json(&parse_yaml(&path, &text)?) {
            Json::Object(m) => vars.extend(m),
            Json::Null => {}
            _ => {
                return Ok(Outcome::failed(format!(
                    "{path} must be stored as a dictionary/hash"
                )));
            }
        }
        included.push(json!(path));
    }
    let facts = match p.name {
        Some(n) => Map::from_iter([(n.0, Json::Object(vars))]),
        None => vars,
    };
    let mut o = Outcome::ok(false)
        .with("ansible_facts", Json::Object(facts.clone()))
        .with("ansible_included_var_files", Json::Array(included));
    o.facts = Some(facts);
    Ok(o)
}

/// The path and text of a variables file named by a task.
fn read_vars_file(ctx: &Ctx<'_>, file: &str) -> Result<Option<(String, String)>> {
    if std::path::Path::new(file).is_absolute() {
        return Ok(std::fs::read_to_string(file)
            .ok()
            .map(|t| (file.to_string(), t)));
    }
    for rel in [format!("vars/{file}"), file.to_string()] {
        if let Some(b) = ctx.role.read(&rel)? {
            return Ok(Some((
                ctx.role.display(&rel),
                String::from_utf8_lossy(&b).into_owned(),
            )));
        }
    }
    Ok(None)
}
