//! The template-side objects of Python values: undefined values that
//! remember why, dicts and lists that templates can change, and tuples.

use std::fmt;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

/// Locks `m`, going on with the data of a thread that panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fails on an undefined value (minijinja's or [`Missing`]) with its message.
pub(crate) fn check_defined(v: &Value) -> Result<(), Error> {
    if let Some(m) = missing_message(v) {
        return Err(undefined_error(m));
    }
    if v.is_undefined() {
        return Err(undefined_error("undefined value"));
    }
    Ok(())
}

/// An undefined value that remembers why it is undefined. Attribute access
/// on it stays undefined; printing, iterating or calling it is an error.
#[derive(Debug)]
pub(crate) struct Missing {
    pub(crate) message: String,
}

impl Missing {
    pub(crate) fn value(message: String) -> Value {
        Value::from_object(Missing { message })
    }
}

/// The message of an undefined value (minijinja's or ours).
pub(crate) fn missing_message(v: &Value) -> Option<String> {
    v.downcast_object_ref::<Missing>()
        .map(|m| m.message.clone())
}

/// Whether a value is undefined (minijinja's undefined or [`Missing`]).
pub(crate) fn is_undefined(v: &Value) -> bool {
    v.is_undefined() || v.downcast_object_ref::<Missing>().is_some()
}

pub(crate) fn undefined_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::UndefinedError, message.into())
}

impl Object for Missing {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
        Some(Value::from_dyn_object(Arc::clone(self)))
    }

    fn is_true(self: &Arc<Self>) -> bool {
        false
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, _args: &[Value]) -> Result<Value, Error> {
        Err(undefined_error(self.message.clone()))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        _method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        Err(undefined_error(self.message.clone()))
    }

    fn render(self: &Arc<Self>, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

/// A dict that `update()` can change (Python dict semantics in templates).
#[derive(Debug)]
pub(crate) struct MutableMap {
    map: Mutex<IndexMap<Value, Value>>,
}

impl MutableMap {
    pub(crate) fn new(map: IndexMap<Value, Value>) -> MutableMap {
        MutableMap {
            map: Mutex::new(map),
        }
    }
}

fn pairs_of(v: &Value) -> Result<Vec<(Value, Value)>, Error> {
    if v.kind() != ValueKind::Map {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "update() needs a dict",
        ));
    }
    let mut out = Vec::new();
    for k in v.try_iter()? {
        let item = v.get_item(&k)?;
        out.push((k, item));
    }
    Ok(out)
}

impl Object for MutableMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        lock(&self.map).get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(lock(&self.map).keys().cloned().collect())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "update" => {
                let mut new = Vec::new();
                for a in args {
                    if a.is_kwargs() || a.kind() == ValueKind::Map {
                        new.extend(pairs_of(a)?);
                    }
                }
                let mut map = lock(&self.map);
                for (k, v) in new {
                    map.insert(k, v);
                }
                Ok(Value::from(()))
            }
            "keys" => Ok(Value::from(
                lock(&self.map).keys().cloned().collect::<Vec<_>>(),
            )),
            "values" => Ok(Value::from(
                lock(&self.map).values().cloned().collect::<Vec<_>>(),
            )),
            "items" => Ok(Value::from(
                lock(&self.map)
                    .iter()
                    .map(|(k, v)| Value::from(vec![k.clone(), v.clone()]))
                    .collect::<Vec<_>>(),
            )),
            "get" => {
                let key = args.first().cloned().unwrap_or_default();
                Ok(lock(&self.map)
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::from(()))))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A list that `append()`/`extend()` can change.
#[derive(Debug)]
pub(crate) struct MutableList {
    items: Mutex<Vec<Value>>,
}

impl MutableList {
    pub(crate) fn new(items: Vec<Value>) -> MutableList {
        MutableList {
            items: Mutex::new(items),
        }
    }
}

impl Object for MutableList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = lock(&self.items);
        let idx = key.as_i64()?;
        let idx = if idx < 0 {
            items.len() as i64 + idx
        } else {
            idx
        };
        items.get(usize::try_from(idx).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(lock(&self.items).clone())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "append" => {
                lock(&self.items).push(args.first().cloned().unwrap_or_default());
                Ok(Value::from(()))
            }
            "extend" => {
                let new: Vec<Value> = match args.first() {
                    Some(a) => a.try_iter()?.collect(),
                    None => Vec::new(),
                };
                lock(&self.items).extend(new);
                Ok(Value::from(()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A Python tuple: a sequence that prints as `(a, b)`.
#[derive(Debug)]
pub(crate) struct Tuple(pub(crate) Vec<Value>);

impl Object for Tuple {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let idx = key.as_i64()?;
        let idx = if idx < 0 {
            self.0.len() as i64 + idx
        } else {
            idx
        };
        self.0.get(usize::try_from(idx).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.clone())
    }
}
