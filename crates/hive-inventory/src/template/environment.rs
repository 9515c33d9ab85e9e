//! The template environment: minijinja set up as Ansible renders (strict
//! undefined values, `trim_blocks`, Python's printing of values), with the
//! Ansible filters, tests, lookups and functions registered.

use std::path::PathBuf;
use std::sync::Arc;

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};

use super::engine::{Inner, MAX_FUEL};
use super::objects::{missing_message, undefined_error};
use super::pyvalue::py_text;

fn format_value(
    out: &mut minijinja::Output<'_>,
    _state: &State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    if let Some(msg) = missing_message(value) {
        return Err(undefined_error(msg));
    }
    if value.is_undefined() || value.is_none() {
        return Ok(());
    }
    let mut s = String::new();
    py_text(value, true, &mut s).map_err(undefined_error)?;
    out.write_str(&s)
        .map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write output"))
}

/// The environment and settings of a `Templar`: lookups read files
/// relative to `root`, `{% include %}` finds templates in `template_dirs`.
pub(crate) fn inner(root: PathBuf, omit: String, template_dirs: Vec<PathBuf>) -> Inner {
    let mut env = Environment::new();
    if !template_dirs.is_empty() {
        env.set_loader(move |name: &str| {
            for d in &template_dirs {
                match std::fs::read_to_string(d.join(name)) {
                    Ok(text) => return Ok(Some(text)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::new(
                            ErrorKind::InvalidOperation,
                            format!("cannot read template {name} in {}: {e}", d.display()),
                        ));
                    }
                }
            }
            Ok(None)
        });
    }
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(false);
    env.set_keep_trailing_newline(false);
    env.set_recursion_limit(400);
    // bounds loops (`range(100000)` in `range(100000)`) to seconds
    env.set_fuel(Some(MAX_FUEL));
    env.set_formatter(format_value);
    env.set_unknown_method_callback(super::filters::call_method);
    super::filters::register(&mut env);
    super::serialize::register_serialization(&mut env);
    super::files::register(&mut env);
    super::lookups::register(&mut env, Arc::new(root.clone()));
    env.add_function("_hive_tuple", |items: minijinja::value::Rest<Value>| {
        Value::from_object(super::objects::Tuple(items.0))
    });
    env.add_function("_hive_mutable", |v: Value| super::pyvalue::make_mutable(v));
    env.add_function("now", super::clock::now);
    env.add_filter("random", super::random::random);
    env.add_filter("shuffle", super::random::shuffle);
    Inner { env, root, omit }
}
