//! Bad input, fuzzed: the readers of `drbdsetup events2` and `drbdadm
//! status` output never panic nor hang, and every error names a line of the
//! text. `scripts/fuzz.sh` runs the same targets for a given time.

#[path = "../../../tests/fuzz/support.rs"]
mod support;

use hive_drbd::{DrbdError, parse_drbdadm_status, parse_events2, volume_status};
use proptest::prelude::*;
use support::{Check, apply_text_edits, fuzz, text_edit};

const FIXTURES: [&str; 6] = [
    include_str!("fixtures/status/events2-create-change.txt"),
    include_str!("fixtures/status/events2-create-destroy.txt"),
    include_str!("fixtures/status/events2-resource-exists.txt"),
    include_str!("fixtures/status/events2-sync-statistics.txt"),
    include_str!("fixtures/status/status-all-outdated.txt"),
    include_str!("fixtures/status/status-half-connected.txt"),
];

const VERBS: &[&str] = &[
    "exists", "create", "change", "destroy", "call", "response", "-", "",
];
const OBJECTS: &[&str] = &[
    "resource",
    "connection",
    "device",
    "peer-device",
    "path",
    "helper",
    "-",
    "",
];
const KEYS: &[&str] = &[
    "name",
    "role",
    "volume",
    "minor",
    "disk",
    "conn-name",
    "peer-node-id",
    "node-id",
    "connection",
    "replication",
    "peer-disk",
    "done",
    "out-of-sync",
    "eta",
    "quorum",
    "suspended",
    "client",
    "local",
];
const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999999",
    "37.50",
    "NaN",
    "inf",
    "-inf",
    "1e309",
    "",
    "yes",
    "no",
    "UpToDate",
    "Diskless",
    "Primary",
    "Secondary",
    "SyncSource",
    "Established",
    "Connected",
    "r0",
    "hive0.pdns",
    "ipv4:1.2.3.4:7789",
    "ü",
    "名前",
];

/// One word: mostly from the vocabulary of the tools, sometimes anything.
fn word(vocabulary: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        4 => proptest::sample::select(vocabulary).prop_map(str::to_string),
        1 => "\\PC{0,12}",
    ]
    .boxed()
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (word(KEYS), word(VALUES)).prop_map(|(k, v)| format!("{k}:{v}")),
        1 => word(VALUES),
        1 => (word(KEYS), word(VALUES), word(VALUES)).prop_map(|(k, a, b)| format!("{k}:{a}:{b}")),
    ]
}

/// A line of `drbdsetup events2` output, well or badly formed.
fn events2_line() -> impl Strategy<Value = String> {
    (
        proptest::option::of("20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,15}\\+00:00"),
        word(VERBS),
        word(OBJECTS),
        proptest::collection::vec(field(), 0..8),
        "[ \t]{1,3}",
    )
        .prop_map(|(stamp, verb, object, fields, sep)| {
            let mut parts: Vec<String> = stamp.into_iter().collect();
            parts.push(verb);
            parts.push(object);
            parts.extend(fields);
            parts.join(&sep)
        })
}

/// A line of `drbdadm status` output: an indent, maybe a name, fields.
fn status_line() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(&["", " ", "  ", "    ", "\t", "      "][..]),
        proptest::option::of(word(VALUES)),
        proptest::collection::vec(field(), 0..5),
    )
        .prop_map(|(indent, head, fields)| {
            let mut parts: Vec<String> = head.into_iter().collect();
            parts.extend(fields);
            format!("{indent}{}", parts.join(" "))
        })
}

/// The tool output lines of a fixture (its `#` header left out).
fn output_of(fixture: &str) -> String {
    let lines: Vec<&str> = fixture.lines().filter(|l| !l.starts_with('#')).collect();
    lines.join("\n")
}

fn any_line() -> impl Strategy<Value = String> {
    prop_oneof![events2_line(), status_line(), "\\PC{0,40}"]
}

/// A text for both readers: fixture mutations, generated lines or bytes.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0..FIXTURES.len(), proptest::collection::vec(text_edit(any_line()), 1..6))
            .prop_map(|(f, edits)| apply_text_edits(&output_of(FIXTURES[f]), &edits)),
        2 => proptest::collection::vec(events2_line(), 0..12).prop_map(|l| l.join("\n")),
        2 => proptest::collection::vec(status_line(), 0..12).prop_map(|l| l.join("\n")),
        1 => "\\PC{0,200}",
        1 => "[ \t\r\n:a-z0-9\u{85}\u{a0}\u{2028}]{0,80}",
    ]
}

/// An error of a reader must be a parse error naming a line of `text`.
fn names_a_line(
    text: &str,
    what: &str,
    r: Result<Vec<hive_drbd::ResourceStatus>, DrbdError>,
) -> Check {
    let resources = match r {
        Ok(resources) => resources,
        Err(DrbdError::Parse { line, .. }) if (1..=text.lines().count()).contains(&line) => {
            return Ok(());
        }
        Err(e) => return Err(format!("{what}: error without a line of the text: {e}")),
    };
    for r in &resources {
        for expect_disk in [true, false] {
            let s = volume_status("hive0", &r.name, expect_disk, &resources);
            if s.volume != r.name {
                return Err(format!("{what}: status of {} names {}", r.name, s.volume));
            }
        }
    }
    Ok(())
}

fn check(text: String) -> Check {
    names_a_line(&text, "events2", parse_events2(&text))?;
    names_a_line(&text, "drbdadm status", parse_drbdadm_status(&text))
}

#[test]
fn fuzz_drbd_status_readers() {
    fuzz("drbd status readers", 256, text(), check);
}

#[test]
fn fixtures_parse_as_they_are() {
    for f in FIXTURES {
        let text = output_of(f);
        assert!(
            parse_events2(&text).is_ok() || parse_drbdadm_status(&text).is_ok(),
            "{text}"
        );
    }
}
