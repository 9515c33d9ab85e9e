//! `.hive/persistents.yml`: values kept between runs, per scope.
//!
//! The file maps a variable name to a mapping from scope (`global` or a stage
//! name) to the value, e.g. `drbd_device_map: {private: {pdnsdb_data: 1}}`.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::error::{Error, Location};
use crate::yaml;

/// The persistent values of a project (`.hive/persistents.yml`).
///
/// ```
/// use hive_inventory::Persistents;
/// let dir = tempfile::tempdir().unwrap();
/// let mut p = Persistents::load(dir.path()).unwrap();
/// p.set("stage", "global", "staging".into());
/// assert!(p.save().unwrap());
/// assert!(!p.save().unwrap(), "a second save changes nothing");
/// let p = Persistents::load(dir.path()).unwrap();
/// assert_eq!(p.get("stage", "global").and_then(|v| v.as_str()), Some("staging"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Persistents {
    path: PathBuf,
    values: Mapping,
    on_disk: Option<Mapping>,
}

impl Persistents {
    /// Reads `<root>/.hive/persistents.yml` (empty when missing).
    pub fn load(root: &Path) -> Result<Persistents, Error> {
        let path = root.join(".hive").join("persistents.yml");
        let on_disk = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let node = yaml::parse(&path, &text)?;
                match node.to_value() {
                    Value::Mapping(m) => Some(m),
                    Value::Null => Some(Mapping::new()),
                    _ => {
                        return Err(Error::Invalid {
                            location: Location::new(&path, node.mark.line, node.mark.column),
                            key_path: "(top level)".into(),
                            message: format!("must be a mapping, not a {}", node.type_name()),
                            expected: Some("variable: {scope: value}".into()),
                            suggestion: None,
                        });
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(Error::Read { path, source }),
        };
        Ok(Persistents {
            path,
            values: on_disk.clone().unwrap_or_default(),
            on_disk,
        })
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of `name` in `scope` (`global` or a stage name).
    pub fn get(&self, name: &str, scope: &str) -> Option<&Value> {
        self.values.get(name)?.as_mapping()?.get(scope)
    }

    /// Sets the value of `name` in `scope`.
    pub fn set(&mut self, name: &str, scope: &str, value: Value) {
        let entry = self
            .values
            .entry(Value::String(name.to_string()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if !entry.is_mapping() {
            *entry = Value::Mapping(Mapping::new());
        }
        if let Value::Mapping(m) = entry {
            m.insert(Value::String(scope.to_string()), value);
        }
    }

    /// Whether the values differ from the file.
    pub fn is_dirty(&self) -> bool {
        self.on_disk.as_ref() != Some(&self.values)
    }

    /// Writes the file atomically (temporary file and rename) if anything
    /// changed; returns whether it wrote.
    pub fn save(&mut self) -> Result<bool, Error> {
        if !self.is_dirty() {
            return Ok(false);
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let werr = |source| Error::Write {
            path: self.path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(werr)?;
        let text = serde_yaml::to_string(&sorted(Value::Mapping(self.values.clone())))
            .map_err(|e| werr(std::io::Error::other(e)))?;
        // 0600: the file may hold cloud credentials (`hive set aws_secret_access_key`).
        hive_model::fs::write_atomic(&self.path, text.as_bytes(), 0o600).map_err(werr)?;
        self.on_disk = Some(self.values.clone());
        Ok(true)
    }
}

/// Sorts mapping keys recursively, as PyYAML's dump does.
pub(crate) fn sorted(v: Value) -> Value {
    match v {
        Value::Mapping(m) => {
            let mut entries: Vec<(Value, Value)> = m.into_iter().collect();
            entries.sort_by_key(|a| key_text(&a.0));
            Value::Mapping(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap_or_default(),
    }
}
