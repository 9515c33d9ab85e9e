//! Templating of values as Ansible does it, through the runner: what is
//! read through `hostvars` renders with the host's own variables, and
//! unsafe values (registered results, `with_<lookup>` items, what a
//! template reading them gives to `set_fact`) are never templated again.
//! Each case is a role whose asserts must all pass.

use hive_image::{LocalTarget, RoleLoader, Runner, TaskStatus, Vars};
use serde_json::json;

/// Role variables every case sees (`vars/main.yml`), and a vars file the
/// cases include: a template whose variable only the role has.
const ROLE_VARS: &str = "version: '1.0'\n";
const INCLUDED_VARS: &str = "__foo: [\"foo{{ version }}\"]\n";

/// (case, tasks): each case's asserts must pass.
const CASES: &[(&str, &str)] = &[
    (
        "hostvars_leave_an_undefined_as_written",
        r#"
- include_vars: foo.yml
- assert:
    that:
      - hostvars[inventory_hostname]['__foo'][0] == raw
      - __foo[0] == 'foo1.0'
      # a host variable: templated with the host's variables there
      - hostvars[inventory_hostname].site == raw_site
      - hostvars[inventory_hostname].where == 'in h'
      - site == 's-1.0'
  vars:
    raw: !unsafe 'foo{{ version }}'
    raw_site: !unsafe 's-{{ version }}'
"#,
    ),
    (
        "with_lookup_item_through_set_fact_stays_unsafe",
        r#"
- include_vars: foo.yml
- set_fact: "{{ item.key }}={{ hostvars[inventory_hostname][item.value] }}"
  with_dict:
    foo: __foo
- assert:
    that:
      - foo[0] != 'foo1.0'
      - foo[0] == raw
  vars:
    raw: !unsafe 'foo{{ version }}'
"#,
    ),
    (
        "loop_item_through_set_fact_is_templated_again",
        r#"
- include_vars: foo.yml
- set_fact: "{{ item.key }}={{ hostvars[inventory_hostname][item.value] }}"
  loop: "{{ {'foo': '__foo'} | dict2items }}"
- assert:
    that:
      - foo[0] == 'foo1.0'
"#,
    ),
    (
        "registered_result_through_set_fact_stays_unsafe",
        r#"
- debug:
    msg: "{{ raw }}"
  register: said
  vars:
    raw: !unsafe 'v{{ version }}'
- set_fact:
    copied: "{{ said.msg }}"
    plain: "{{ raw_template }}"
  vars:
    raw_template: "v{{ '{{' }} version }}"
- assert:
    that:
      - copied == raw
      - plain == 'v1.0'
  vars:
    raw: !unsafe 'v{{ version }}'
"#,
    ),
    (
        "loop_label_renders_with_the_items_result",
        r#"
- debug:
    msg: "said {{ item }}"
  register: r
  loop: [a, b]
  loop_control:
    label: "{{ r.msg }}"
  when: item == 'a'
  ignore_errors: true
- assert:
    that:
      - r.results[0] is not failed
      - r.results[1] is failed
      - r.results[1].msg is contains("no attribute 'msg'")
      - r is failed
"#,
    ),
];

#[tokio::test]
async fn values_are_templated_as_ansible_does() {
    let dir = tempfile::tempdir().unwrap();
    for (case, tasks) in CASES {
        let role = dir.path().join(case);
        for sub in ["tasks", "vars"] {
            std::fs::create_dir_all(role.join(sub)).unwrap();
        }
        std::fs::write(role.join("tasks/main.yml"), tasks).unwrap();
        std::fs::write(role.join("vars/main.yml"), ROLE_VARS).unwrap();
        std::fs::write(role.join("vars/foo.yml"), INCLUDED_VARS).unwrap();
    }
    let host_vars: Vars = json!({
        "inventory_hostname": "h",
        "hostvars": {"h": {}},
        "site": "s-{{ version }}",
        "where": "in {{ inventory_hostname }}",
    })
    .as_object()
    .unwrap()
    .clone()
    .into_iter()
    .collect();
    for (case, _) in CASES {
        let runner = Runner::new(RoleLoader::new([dir.path().to_path_buf()]))
            .ansible_playbook(None)
            .check_mode(true)
            .vars(host_vars.clone());
        let report = runner
            .apply(&LocalTarget, &[case.to_string()])
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let asserts: Vec<_> = report
            .events
            .iter()
            .filter(|e| e.module.as_deref() == Some("assert"))
            .collect();
        assert!(!asserts.is_empty(), "{case}: no assert ran");
        for e in asserts {
            assert_eq!(e.status, TaskStatus::Ok, "{case}: {:?}", e.msg);
        }
    }
}
