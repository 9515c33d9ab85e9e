//! The status parsers on real output samples (see each fixture's header
//! for where it was recorded from).

mod common;

use hive_drbd::{DiskState, ResourceStatus, parse_drbdadm_status, parse_events2, volume_status};

fn sample(name: &str) -> String {
    let text = std::fs::read_to_string(common::fixtures().join("status").join(name)).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Parses a sample and compares the result with `<sample>.expected.json`.
fn check(
    name: &str,
    parse: fn(&str) -> Result<Vec<ResourceStatus>, hive_drbd::DrbdError>,
) -> Vec<ResourceStatus> {
    let parsed = parse(&sample(name)).unwrap();
    let json = serde_json::to_string_pretty(&parsed).unwrap() + "\n";
    let expected = common::fixtures()
        .join("status")
        .join(name.replace(".txt", ".expected.json"));
    common::check_snapshot(&json, &expected);
    parsed
}

#[test]
fn events2_sync_with_statistics() {
    let r = check("events2-sync-statistics.txt", parse_events2);
    assert_eq!(r.len(), 1);
    let res = &r[0];
    assert_eq!(res.name, "some-resource");
    assert_eq!(res.devices[0].disk, DiskState::UpToDate);
    assert_eq!(res.devices[0].minor, Some(1000));
    let c = &res.connections[0];
    assert_eq!(
        (c.peer.as_str(), c.peer_node_id, c.connection.as_str()),
        ("some-peer", Some(1), "Connected")
    );
    let pd = &c.peer_devices[0];
    assert_eq!(pd.replication, "SyncSource");
    assert_eq!(pd.peer_disk, DiskState::Inconsistent);
    assert_eq!(pd.done, Some(37.5));
    assert_eq!(pd.out_of_sync_kib, Some(2500));
    assert_eq!(pd.eta_secs, Some(10));

    let s = volume_status("hive0", "some-resource", true, &r);
    assert!(!s.healthy());
    assert_eq!(
        s.problems,
        vec!["some-peer: peer disk Inconsistent (SyncSource), 37.5% synced"]
    );
    assert_eq!(s.peers[0].sync_done, Some(37.5));
}

#[test]
fn events2_with_timestamps_create_and_change() {
    let r = check("events2-create-change.txt", parse_events2);
    let res = &r[0];
    assert_eq!(res.role, "Primary");
    assert_eq!(res.connections[0].peer_role, "Unknown");
    let pd = &res.connections[0].peer_devices[0];
    assert_eq!(
        (pd.replication.as_str(), &pd.peer_disk),
        ("Established", &DiskState::UpToDate)
    );
    let s = volume_status("hive0", "some-resource", true, &r);
    assert!(s.healthy(), "{s}");
    assert_eq!(
        s.to_string(),
        "some-resource on hive0: Primary disk:UpToDate\n  some-peer Connected role:Unknown peer-disk:UpToDate replication:Established\n"
    );
}

#[test]
fn events2_destroy_removes_everything() {
    let r = check("events2-create-destroy.txt", parse_events2);
    assert!(r.is_empty());
    let s = volume_status("hive0", "some-resource", true, &r);
    assert!(!s.up);
    assert_eq!(s.problems, vec!["resource is not up"]);
}

#[test]
fn events2_resource_only() {
    let r = check("events2-resource-exists.txt", parse_events2);
    assert_eq!(r[0].role, "Secondary");
    assert!(r[0].devices.is_empty() && r[0].connections.is_empty());
}

#[test]
fn drbdadm_status_all_outdated() {
    let r = check("status-all-outdated.txt", parse_drbdadm_status);
    let s = volume_status("hive0.pdns", "ldap_data", true, &r);
    assert_eq!(s.disk, DiskState::Outdated);
    assert_eq!(
        s.problems,
        vec![
            "local disk Outdated, want UpToDate",
            "hive1.pdns: peer disk Outdated (Established)",
            "hive2.pdns: peer disk Outdated (Established)",
        ]
    );
}

#[test]
fn drbdadm_status_half_connected() {
    let r = check("status-half-connected.txt", parse_drbdadm_status);
    let s = volume_status("hive1.pdns", "ldap_data", true, &r);
    assert_eq!(s.role, "Primary");
    assert_eq!(
        s.problems,
        vec!["hive0.pdns: peer disk Consistent (WFBitMapS)"]
    );
    assert_eq!(s.peers[1].disk, DiskState::UpToDate);
}

#[test]
fn malformed_lines_name_the_line() {
    let err = parse_events2("exists -\nexists resource name:r0 role:Primary\nchange device oops\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot parse drbdsetup events2 at line 3: 'oops' is not key:value"
    );
    let err = parse_events2("hello world\n").unwrap_err();
    assert!(
        err.to_string().contains("line 1: 'hello' is not an event"),
        "{err}"
    );
    let err = parse_drbdadm_status("  disk:UpToDate\n").unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
}
