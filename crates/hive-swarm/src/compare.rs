//! Comparison of a desired service spec with the deployed one.
//!
//! Both sides are turned into JSON and normalised: values Docker omits
//! (`null`, `false`, `0`, empty strings, lists and maps) are dropped, network
//! IDs become names, and engine-managed fields (`ForceUpdate`, the default
//! runtime and isolation) are ignored; the health check is compared through its
//! label. What remains must be equal.

use std::collections::HashMap;

use bollard::models::ServiceSpec;
use serde_json::Value;

/// The JSON paths at which the desired spec differs from the deployed one
/// (empty when they are equivalent).
pub fn spec_differences(
    desired: &ServiceSpec,
    deployed: &ServiceSpec,
    network_names: &HashMap<String, String>,
) -> Vec<String> {
    let a = normalise(desired, network_names);
    let b = normalise(deployed, network_names);
    let mut paths = Vec::new();
    diff("", &a, &b, &mut paths);
    paths
}

fn normalise(spec: &ServiceSpec, network_names: &HashMap<String, String>) -> Value {
    let mut spec = spec.clone();
    if let Some(t) = spec.task_template.as_mut() {
        t.force_update = None;
        if t.runtime.as_deref() == Some("container") {
            t.runtime = None;
        }
        if let Some(networks) = t.networks.as_mut() {
            for n in networks.iter_mut() {
                if let Some(target) = n.target.as_mut() {
                    if let Some(name) = network_names.get(target.as_str()) {
                        *target = name.clone();
                    }
                }
            }
        }
        if let Some(c) = t.container_spec.as_mut() {
            // Compared through its label (bollard cannot read it back).
            c.health_check = None;
            if c.isolation.as_ref().map(|i| i.to_string()) == Some("default".to_string()) {
                c.isolation = None;
            }
        }
    }
    let mut value = serde_json::to_value(&spec).unwrap_or(Value::Null);
    prune(&mut value);
    value
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn prune(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (_, child) in map.iter_mut() {
                prune(child);
            }
            map.retain(|_, child| !is_empty(child));
        }
        Value::Array(items) => {
            for child in items.iter_mut() {
                prune(child);
            }
        }
        _ => {}
    }
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(xa), Some(yb)) => diff(&p, xa, yb, out),
                    _ => out.push(p),
                }
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{NetworkAttachmentConfig, TaskSpec, TaskSpecContainerSpec};

    fn spec(env: &[&str], network: &str, force: i64) -> ServiceSpec {
        ServiceSpec {
            name: Some("s".into()),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    env: Some(env.iter().map(|e| e.to_string()).collect()),
                    read_only: Some(false),
                    ..Default::default()
                }),
                networks: Some(vec![NetworkAttachmentConfig {
                    target: Some(network.into()),
                    ..Default::default()
                }]),
                force_update: Some(force),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn equivalent_specs_have_no_difference() {
        let names: HashMap<String, String> = [("id1".to_string(), "net".to_string())].into();
        let desired = spec(&["A=1"], "net", 0);
        let deployed = spec(&["A=1"], "id1", 3);
        assert!(spec_differences(&desired, &deployed, &names).is_empty());
    }

    #[test]
    fn a_changed_value_is_named() {
        let names = HashMap::new();
        let d = spec_differences(&spec(&["A=2"], "n", 0), &spec(&["A=1"], "n", 0), &names);
        assert_eq!(d, vec!["TaskTemplate.ContainerSpec.Env".to_string()]);
        let d = spec_differences(&spec(&[], "n", 0), &spec(&["A=1"], "n", 0), &names);
        assert_eq!(d.len(), 1);
        assert!(d[0].starts_with("TaskTemplate.ContainerSpec"), "{d:?}");
    }
}
