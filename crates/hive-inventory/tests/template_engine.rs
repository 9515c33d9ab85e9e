//! Behaviour of the template engine beyond the Ansible conformance cases:
//! lazy resolution, cycles, error contents, final values, omit, conditions,
//! lookups writing files, and the project-level helpers.

use std::path::Path;
use std::sync::Arc;

use hive_inventory::template::{Site, Templar, TemplateError, Vars};
use indexmap::IndexMap;
use serde_yaml::Value as Yaml;

fn y(s: &str) -> Yaml {
    serde_yaml::from_str(s).unwrap()
}

fn vars(pairs: &[(&str, &str)]) -> Vars {
    let mut v = Vars::new();
    for (k, val) in pairs {
        v.insert(*k, y(val));
    }
    v
}

fn check(vars: &Vars, template: &str, expected: &str) {
    let templar = Templar::new(Path::new("."));
    let got = templar
        .render_str(template, vars)
        .unwrap_or_else(|e| panic!("{template}: {e}"));
    assert_eq!(got, y(expected), "{template}");
}

#[test]
fn filters_and_typing() {
    let v = vars(&[
        ("n", "4096"),
        ("names", "[b, a, b, c]"),
        ("d", "{x: 1, y: {z: 2}}"),
        ("cidr", "10.1.0.0/16"),
        ("s", "'[1, 2]'"),
        ("yes_str", "'yes'"),
    ]);
    for (template, expected) in [
        ("{{ n }}", "4096"),
        ("{{ n + 1 }}", "'4097'"),
        ("{{ s }}", "[1, 2]"),
        ("{{ names | unique | list }}", "[b, a, c]"),
        ("{{ names | union(['d']) | length }}", "'4'"),
        ("{{ names | difference(['b']) | sort }}", "[a, c]"),
        (
            "{{ d | combine({'y': {'w': 3}}, recursive=True) }}",
            "{x: 1, y: {z: 2, w: 3}}",
        ),
        (
            "{{ d | dict2items | map(attribute='key') | list }}",
            "[x, y]",
        ),
        ("{{ d | to_json }}", "'{\"x\": 1, \"y\": {\"z\": 2}}'"),
        ("{{ '{\"a\": [1]}' | from_json }}", "{a: [1]}"),
        ("{{ 'a: [1, 2]' | from_yaml }}", "{a: [1, 2]}"),
        ("{{ d | to_yaml }}", "\"x: 1\\ny: {z: 2}\\n\""),
        (
            "{{ 'abc' | b64encode }}|{{ 'YWJj' | b64decode }}",
            "'YWJj|abc'",
        ),
        (
            "{{ '/a/b/c.txt' | basename }} {{ '/a/b/c.txt' | dirname }}",
            "'c.txt /a/b'",
        ),
        ("{{ \"it's\" | quote }}", "'''it''\"''\"''s'''"),
        (
            "{{ cidr | ipaddr('netmask') }} {{ cidr | ipaddr('broadcast') }}",
            "'255.255.0.0 10.1.255.255'",
        ),
        ("{{ cidr | ipaddr(1) | ipaddr('address') }}", "'10.1.0.1'"),
        ("{{ 'x' | ipaddr }}", "false"),
        ("{{ yes_str | bool }}", "true"),
        ("{{ ' 12 ' | int + 1 }}", "'13'"),
        ("{{ [1, [2, [3]]] | flatten(levels=1) }}", "[1, 2, [3]]"),
        ("{{ 'a-b-c' | regex_replace('-(.)', '_\\1') }}", "'a_b_c'"),
        (
            "{{ 'v1.22' | regex_search('v(\\d+)\\.(\\d+)', '\\2') }}",
            "['22']",
        ),
        (
            "{{ 'abc' is match('ab') }} {{ 'abc' is match('bc') }} {{ 'abc' is search('bc') }}",
            "'True False True'",
        ),
        ("{{ true | ternary('a', 'b') }}", "'a'"),
        ("{{ [1, 2] | zip(['a', 'b']) | list }}", "[[1, a], [2, b]]"),
        ("{{ 'a,b' .split(',') | last }}", "'b'"),
        ("{{ none | default('x', true) }}", "'x'"),
        ("{{ '' | default('x') }}", "''"),
        ("{{ undefined_thing | default(omit) is string }}", "true"),
    ] {
        check(&v, template, expected);
    }
}

#[test]
fn lazy_resolution_uses_the_latest_value() {
    let mut v = vars(&[("a", "'{{ b }}-x'"), ("b", "'1'")]);
    check(&v, "{{ a }}", "'1-x'");
    v.insert("b", y("'2'"));
    check(&v, "{{ a }}", "'2-x'");
}

#[test]
fn cycles_are_errors_naming_the_chain() {
    let v = vars(&[("a", "'{{ b }}'"), ("b", "'{{ c }}'"), ("c", "'{{ a }}'")]);
    let err = Templar::new(Path::new("."))
        .render_str("{{ a }}", &v)
        .unwrap_err();
    assert!(matches!(err, TemplateError::Recursion { .. }), "{err:?}");
    assert!(err.to_string().contains("a -> b -> c -> a"), "{err}");
}

#[test]
fn undefined_errors_name_variable_host_and_file() {
    let mut groups = IndexMap::new();
    groups.insert("all".to_string(), vec!["h1".to_string()]);
    let mut site = Site::new(groups);
    let mut hv = Vars::new();
    hv.insert_with_origin(
        "uses_missing",
        y("'{{ missing_one }}'"),
        "inventory/group_vars/all.yml:3",
    );
    site.add_host("h1", hv, vec!["all".to_string()]);
    let site = Arc::new(site);
    let v = site.vars_for("h1").unwrap();
    let templar = Templar::new(Path::new("."));
    let err = templar.render_str("{{ nothing_here }}", &v).unwrap_err();
    let msg = err.full_message();
    assert!(
        msg.contains("'nothing_here' is undefined") && msg.contains("h1"),
        "{msg}"
    );
    let err = templar.render_str("x{{ uses_missing }}", &v).unwrap_err();
    let msg = err.full_message();
    assert!(err.is_undefined(), "{msg}");
    for part in [
        "'missing_one' is undefined",
        "uses_missing",
        "inventory/group_vars/all.yml:3",
        "h1",
    ] {
        assert!(msg.contains(part), "{part} not in {msg}");
    }
    // a variable whose template hits an undefined value is itself undefined
    assert_eq!(
        templar
            .render_str("{{ uses_missing | default('dflt') }}", &v)
            .unwrap(),
        y("dflt")
    );
}

#[test]
fn final_values_are_not_rendered_again() {
    let mut v = Vars::new();
    v.insert_final("result", y("{stdout: '{{ not_a_template_here }}'}"));
    check(&v, "{{ result.stdout }}", "'{{ not_a_template_here }}'");
}

#[test]
fn render_value_drops_omitted_keys_only() {
    let v = vars(&[("p", "vagrant")]);
    let templar = Templar::new(Path::new("."));
    let args = y(
        "{a: '{{ omit }}', b: ['{{ omit }}', 1], c: {d: \"{{ 'x' if p == 'aws' else omit }}\"}, e: 'pre-{{ omit }}'}",
    );
    let got = templar.render_value(&args, &v).unwrap();
    let omit = templar.omit_token();
    let expected = y(&format!("{{b: ['{omit}', 1], c: {{}}, e: 'pre-{omit}'}}"));
    assert_eq!(got, expected);
}

#[test]
fn conditions_as_when() {
    let v = vars(&[("n", "3"), ("s", "'abc'"), ("l", "[1, 2]")]);
    let templar = Templar::new(Path::new("."));
    for (cond, expected) in [
        ("n > 2", true),
        ("s is match('b')", false),
        ("2 in l and s", true),
        ("undefined_x is defined", false),
    ] {
        assert_eq!(templar.is_true(cond, &v).unwrap(), expected, "{cond}");
    }
    assert!(
        templar
            .is_true("undefined_x", &v)
            .unwrap_err()
            .is_undefined()
    );
}

#[test]
fn template_files_keep_backslashes_and_text() {
    let v = vars(&[("name", "'x'")]);
    let templar = Templar::new(Path::new("."));
    let text = templar
        .render_text("a\\1 {{ 'b\\\\c' }} [{{ name }}]\n", &v)
        .unwrap();
    assert_eq!(text, "a\\1 b\\c [x]\n");
    // a template file never becomes a list
    assert_eq!(templar.render_text("[1, 2]{{ '' }}", &v).unwrap(), "[1, 2]");
}

#[test]
fn password_lookup_writes_a_private_file_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let templar = Templar::new(dir.path());
    let v = Vars::new();
    let first = templar
        .render_str(
            "{{ lookup('password', 'secrets/db length=12 chars=digits') }}",
            &v,
        )
        .unwrap();
    let first = first
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| first.as_u64().unwrap().to_string());
    assert_eq!(first.len(), 12);
    assert!(first.chars().all(|c| c.is_ascii_digit()));
    let file = dir.path().join("secrets/db");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{first}\n")
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("secrets"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let again = templar
        .render_text("{{ lookup('password', 'secrets/db length=4') }}", &v)
        .unwrap();
    assert_eq!(again, first);
}

#[test]
fn mutable_containers_in_one_template() {
    let v = Vars::new();
    check(
        &v,
        "{% set o = {'a': 1} %}{% set l = [] %}{% for i in [1, 2] %}{% set _ = o.update({'b': i}) %}{% set _ = l.append(i) %}{% endfor %}{{ [o, l] }}",
        "[{a: 1, b: 2}, [1, 2]]",
    );
}

#[test]
fn cycles_are_reported_on_every_render_of_a_site() {
    let mut site = Site::new(IndexMap::new());
    site.add_host("h", vars(&[("a", "'{{ b }}'"), ("b", "'{{ a }}'")]), vec![]);
    let site = Arc::new(site);
    let templar = Templar::new(Path::new("."));
    for template in ["{{ a }}", "{{ b }}", "{{ a }}"] {
        let err = templar
            .render_str(template, &site.vars_for("h").unwrap())
            .unwrap_err();
        assert!(
            matches!(err, TemplateError::Recursion { .. }),
            "{template}: {err:?}"
        );
    }
}

#[test]
fn template_lookup_renders_with_the_current_scope() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(
        dir.path().join("templates/hello.j2"),
        "Hi {{ name }}{% if loud %}!{% endif %}\n",
    )
    .unwrap();
    let templar = Templar::new(dir.path());
    let v = vars(&[
        ("name", "'{{ first }}'"),
        ("first", "Ann"),
        ("loud", "true"),
    ]);
    assert_eq!(
        templar
            .render_text("{{ lookup('template', 'hello.j2') }}", &v)
            .unwrap(),
        "Hi Ann!\n"
    );
    let err = templar
        .render_str("{{ lookup('template', 'nope.j2') }}", &v)
        .unwrap_err();
    assert!(err.to_string().contains("nope.j2"), "{err}");
    let root = dir.path().display();
    check(
        &v,
        &format!("{{{{ '{root}' is directory }}}} {{{{ '{root}/templates/hello.j2' is file }}}}"),
        "'True True'",
    );
}

#[test]
fn templar_and_scopes_are_shareable_across_threads() {
    fn shareable<T: Send + Sync>(_: &T) {}
    let templar = Templar::new(Path::new("."));
    let v = vars(&[("a", "'{{ 40 + 2 }}'")]);
    shareable(&templar);
    shareable(&v);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (t, v) = (templar.clone(), v.clone());
            std::thread::spawn(move || t.render_str("{{ a }}", &v).unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), y("'42'"));
    }
}

/// As Ansible's `HostVarsVars`: a value read through `hostvars[host]`
/// renders with that host's own variables only, and a string whose
/// template uses a variable the host does not have is left as written.
#[test]
fn hostvars_render_with_the_hosts_own_variables() {
    let mut site = Site::new(IndexMap::new());
    site.add_host(
        "h1",
        vars(&[
            ("name", "h1"),
            ("fqdn", "'{{ name }}.example'"),
            ("pkgs", "['foo{{ version }}', '{{ name }}-x']"),
            ("chained", "'{{ pkgs }}'"),
            ("mixed", "'{{ name }} {{ version }}'"),
            ("defaulted", "\"{{ version | default('none') }}\""),
        ]),
        vec![],
    );
    let site = Arc::new(site);
    let mut v = site.vars_for("h1").unwrap();
    // a role or play variable: not one of the host's
    v.insert("version", y("'1.0'"));
    for (template, expected) in [
        ("{{ hostvars['h1'].fqdn }}", "h1.example"),
        ("{{ hostvars['h1'].pkgs }}", "['foo{{ version }}', 'h1-x']"),
        (
            "{{ hostvars[inventory_hostname]['mixed'] }}",
            "'{{ name }} {{ version }}'",
        ),
        ("{{ hostvars['h1'].chained }}", "'{{ pkgs }}'"),
        ("{{ hostvars['h1'].defaulted }}", "none"),
        ("{{ hostvars['h1'].nothing | default('d') }}", "d"),
        // read directly, the same variables see the play's
        ("{{ pkgs }}", "['foo1.0', 'h1-x']"),
        ("{{ mixed }}", "'h1 1.0'"),
        ("{{ chained }}", "['foo1.0', 'h1-x']"),
    ] {
        check(&v, template, expected);
    }
    let templar = Templar::new(Path::new("."));
    let err = templar
        .render_str("{{ hostvars['h1'].nothing }}", &v)
        .unwrap_err();
    assert!(err.is_undefined(), "{err}");
}

/// As Ansible's `AnsibleContext`: a render that reads an unsafe value (a
/// final variable, a lookup's result), directly or through the template
/// of a variable it reads, is unsafe.
#[test]
fn reading_an_unsafe_value_makes_the_result_unsafe() {
    let mut site = Site::new(IndexMap::new());
    let mut hv = vars(&[
        ("plain", "x"),
        ("templated", "'{{ plain }}-y'"),
        ("via_result", "'{{ result.stdout }}'"),
        ("via_lookup", "\"{{ lookup('items', ['a']) }}\""),
        ("empty_lookup", "\"{{ query('items', []) }}\""),
    ]);
    hv.insert_final("result", y("{stdout: '{{ not_a_template }}'}"));
    site.add_host("h", hv, vec![]);
    let site = Arc::new(site);
    let templar = Templar::new(Path::new("."));
    for (template, expected, is_unsafe) in [
        ("{{ plain }}", "x", false),
        ("{{ templated }}", "x-y", false),
        ("{{ empty_lookup }}", "[]", false),
        ("{{ result.stdout }}", "'{{ not_a_template }}'", true),
        ("{{ via_result }}", "'{{ not_a_template }}'", true),
        ("{{ via_lookup }}", "a", true),
        ("{{ lookup('items', ['b']) }}", "b", true),
        (
            "{{ plain }} {{ hostvars['h'].via_result }}",
            "'x {{ not_a_template }}'",
            true,
        ),
    ] {
        // twice: the second render reads the site's cached values
        for _ in 0..2 {
            let (got, tainted) = templar
                .render_value_marked(&Yaml::from(template), &site.vars_for("h").unwrap())
                .unwrap();
            assert_eq!((got, tainted), (y(expected), is_unsafe), "{template}");
        }
    }
}

/// Undefined values are named as Ansible names them.
#[test]
fn undefined_errors_name_the_missing_attribute() {
    let v = vars(&[
        ("r", "{changed: false, results: [{skipped: true}]}"),
        ("s", "text"),
    ]);
    let templar = Templar::new(Path::new("."));
    for (template, expected) in [
        ("{{ r.stdout }}", "'dict object' has no attribute 'stdout'"),
        (
            "x {{ r.results[0]['msg'] }}",
            "'dict object' has no attribute 'msg'",
        ),
        (
            "{{ s.nothing | upper }}",
            "'str object' has no attribute 'nothing'",
        ),
        ("{{ nope.x }}", "'nope' is undefined"),
    ] {
        let err = templar.render_str(template, &v).unwrap_err();
        assert!(err.is_undefined(), "{template}: {err}");
        assert!(err.to_string().contains(expected), "{template}: {err}");
    }
    let err = templar.is_true("r.results[0].msg == 'x'", &v).unwrap_err();
    assert!(
        err.to_string()
            .contains("'dict object' has no attribute 'msg'"),
        "{err}"
    );
}
