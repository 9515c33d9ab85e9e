//! `yaml_to_json`, the one conversion of YAML 1.1 values to JSON that the
//! inventory, the bridge to hive-swarm and the role runner share: each case
//! is YAML as PyYAML reads it and the JSON that Python's `json` module
//! writes for the value Ansible holds (`json.dumps(yaml.safe_load(text))`).

use std::path::Path;

/// (YAML text, expected JSON text).
const CASES: &[(&str, &str)] = &[
    // values: YAML 1.1 scalars
    ("a: yes", r#"{"a": true}"#),
    ("a: off", r#"{"a": false}"#),
    ("a: ~", r#"{"a": null}"#),
    ("a: 0o17", r#"{"a": "0o17"}"#),
    ("a: 017", r#"{"a": 15}"#),
    ("a: 1.5", r#"{"a": 1.5}"#),
    ("a: .inf", r#"{"a": null}"#),
    ("a: '1'", r#"{"a": "1"}"#),
    ("a: [1, two, null]", r#"{"a": [1, "two", null]}"#),
    ("a: !!str 5", r#"{"a": "5"}"#),
    // keys that are not strings: written as Python's json module does
    ("true: 1", r#"{"true": 1}"#),
    ("False: 1", r#"{"false": 1}"#),
    ("on: 1", r#"{"true": 1}"#),
    ("no: 1", r#"{"false": 1}"#),
    ("~: 1", r#"{"null": 1}"#),
    ("null: 1", r#"{"null": 1}"#),
    ("3: 1", r#"{"3": 1}"#),
    ("0x10: 1", r#"{"16": 1}"#),
    ("1.5: 1", r#"{"1.5": 1}"#),
    ("2.0: 1", r#"{"2.0": 1}"#),
    (".inf: 1", r#"{"Infinity": 1}"#),
    ("-.inf: 1", r#"{"-Infinity": 1}"#),
    ("1.0e+20: 1", r#"{"1e+20": 1}"#),
    // nested mappings convert their keys too
    ("a: {yes: {~: x}}", r#"{"a": {"true": {"null": "x"}}}"#),
];

#[test]
fn yaml_1_1_converts_to_json_as_python_writes_it() {
    let mut failures = Vec::new();
    for (yaml, expected) in CASES {
        let value = hive_inventory::yaml::parse(Path::new("case.yml"), yaml)
            .unwrap_or_else(|e| panic!("{yaml}: {e}"))
            .to_value();
        let got = hive_inventory::yaml_to_json(&value);
        let expected: serde_json::Value = serde_json::from_str(expected).unwrap();
        if got != expected {
            failures.push(format!("{yaml}: got {got}, expected {expected}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
