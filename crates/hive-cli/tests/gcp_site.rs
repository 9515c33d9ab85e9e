//! The gcp provider through the `hive` binary, against a local server that
//! answers as the Compute Engine REST API does (`fake_gce`): the
//! production stage of the pdns example on gcp (three subnetworks, servers
//! in three zones, a separate repository server, mirrored disks) is
//! planned, built, read back from the server's state and compared with
//! what hive-builder's `gcp` role creates, built again (no change), halted
//! and destroyed. hive signs its calls with a service account key made
//! for the test; neither the key nor a token it signs is ever printed.
//!
//! The fake's instances cannot be reached over SSH, so build-infra runs
//! with `--skip-ssh-wait`.

mod common;
mod fake_gce;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine;
use common::{project_copy, text};
use fake_gce::FakeGce;
use serde_json::{Value, json};

const PROJECT: &str = "hive-test-project";
const EMAIL: &str = "hive-builder@hive-test-project.iam.gserviceaccount.com";

/// A service account key made for the test (RSA, PKCS#8), as the
/// console downloads it: the key file and the lines of its private key.
fn service_account_key(root: &Path, fake: &FakeGce) -> Vec<String> {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("run openssl (scripts/setup-machine.sh installs it)");
    assert!(out.status.success(), "{}", text(&out));
    let pem = String::from_utf8(out.stdout).unwrap();
    let key = json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": format!("{}/o/oauth2/auth", fake.url),
        "token_uri": format!("{}/token", fake.url),
        "universe_domain": "googleapis.com",
    });
    std::fs::write(
        root.join("gcp_credential.json"),
        serde_json::to_string_pretty(&key).unwrap(),
    )
    .unwrap();
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_string)
        .collect()
}

/// `hive -r ROOT ARGS` sent to the fake; nothing secret in its output.
fn hive(fake: &FakeGce, root: &Path, secrets: &[String], args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_hive"))
        .arg("-r")
        .arg(root)
        .args(args)
        .env("HIVE_GCP_ENDPOINT", &fake.url)
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .stdin(Stdio::null())
        .output()
        .expect("run hive");
    let all = text(&out);
    for secret in secrets.iter().chain(fake.state().tokens.iter()) {
        assert!(
            !all.contains(secret.as_str()),
            "a secret was printed:\n{all}"
        );
    }
    assert!(!all.contains("PRIVATE KEY"), "{all}");
    out
}

/// `hive` with `args` succeeds and says each of `lines`.
fn hive_ok(
    fake: &FakeGce,
    root: &Path,
    secrets: &[String],
    args: &[&str],
    lines: &[&str],
) -> String {
    let out = hive(fake, root, secrets, args);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    for line in lines {
        assert!(all.contains(line), "no {line:?} in:\n{all}");
    }
    all
}

/// The pdns example with its production stage on gcp, as the original's
/// examples declare one, in three zones.
fn gcp_project(zones: [&str; 3]) -> (tempfile::TempDir, PathBuf) {
    let stage = format!(
        "  production:
    provider: gcp
    separate_repository: true
    number_of_hosts: 4
    cidr: 192.168.0.0/24
    region: asia-northeast2
    instance_type: n1-standard-2
    repository_instance_type: n1-standard-4
    disk_size: 30
    repository_disk_size: 150
    mirrored_disk_size: 20
    subnets:
    - cidr: 192.168.0.0/26
      name: subnet-a
      available_zone: {}
    - cidr: 192.168.0.64/26
      name: subnet-b
      available_zone: {}
    - cidr: 192.168.0.128/26
      name: subnet-c
      available_zone: {}
",
        zones[0], zones[1], zones[2]
    );
    project_copy(
        "examples/pdns",
        &[(
            "  production:
    provider: prepared
    separate_repository: true
    number_of_hosts: 4
    cidr: 192.168.0.0/24
    ip_address_list:
      - 192.168.0.10
      - 192.168.0.11
      - 192.168.0.12
      - 192.168.0.13
    mirrored_disk_size: 20
",
            &stage,
        )],
    )
}

const ZONES: [&str; 3] = [
    "asia-northeast2-a",
    "asia-northeast2-b",
    "asia-northeast2-c",
];

/// Server, instance, zone, subnetwork, private address, machine type,
/// boot disk size, mirrored disk size: what the original's inventory and
/// role give each.
type ServerRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);
const SERVERS: &[ServerRow] = &[
    (
        "hive0.pdns",
        "hive0-pdns",
        ZONES[0],
        "subnet-a",
        "192.168.0.5",
        "n1-standard-2",
        "30",
        Some("20"),
    ),
    (
        "hive1.pdns",
        "hive1-pdns",
        ZONES[1],
        "subnet-b",
        "192.168.0.69",
        "n1-standard-2",
        "30",
        Some("20"),
    ),
    (
        "hive2.pdns",
        "hive2-pdns",
        ZONES[2],
        "subnet-c",
        "192.168.0.133",
        "n1-standard-2",
        "30",
        Some("20"),
    ),
    (
        "hive3.pdns",
        "hive3-pdns",
        ZONES[0],
        "subnet-a",
        "192.168.0.6",
        "n1-standard-4",
        "150",
        None,
    ),
];

fn link(rel: &str) -> String {
    format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/{rel}")
}

/// Everything hive-builder's role creates, read back from the fake.
fn assert_site_as_the_original(fake: &FakeGce, public_key: &str) {
    let st = fake.state();
    let network = st
        .resources
        .get("global/networks/vpc-pdns")
        .expect("network vpc-pdns");
    assert_eq!(network["autoCreateSubnetworks"], json!(false));
    assert_eq!(network["mtu"], json!(1500));

    let firewalls = st.collection("global/firewalls");
    let summary: Vec<(String, Value, Value, Value)> = firewalls
        .iter()
        .map(|(n, f)| {
            (
                n.clone(),
                f["sourceRanges"].clone(),
                f["allowed"].clone(),
                f["network"].clone(),
            )
        })
        .collect();
    let net = json!(link("global/networks/vpc-pdns"));
    assert_eq!(
        summary,
        vec![
            (
                "inbound-pdns".to_string(),
                json!(["0.0.0.0/0"]),
                json!([{"IPProtocol": "tcp", "ports": ["53", "80"]}, {"IPProtocol": "icmp"}, {"IPProtocol": "udp", "ports": ["53"]}]),
                net.clone()
            ),
            (
                "internal-pdns".to_string(),
                json!(["192.168.0.0/24"]),
                json!([{"IPProtocol": "tcp", "ports": ["0-65535"]}, {"IPProtocol": "udp", "ports": ["0-65535"]}, {"IPProtocol": "icmp"}]),
                net.clone()
            ),
            (
                "ssh-pdns".to_string(),
                json!(["0.0.0.0/0"]),
                json!([{"IPProtocol": "tcp", "ports": ["22"]}]),
                net.clone()
            ),
        ]
    );
    assert_eq!(
        firewalls["internal-pdns"]["description"],
        json!("Allow internal traffic on the vpc-pdns network")
    );

    let subnets: Vec<(String, Value, Value)> = st
        .collection("regions/asia-northeast2/subnetworks")
        .iter()
        .map(|(n, s)| (n.clone(), s["ipCidrRange"].clone(), s["network"].clone()))
        .collect();
    assert_eq!(
        subnets,
        vec![
            ("subnet-a".to_string(), json!("192.168.0.0/26"), net.clone()),
            (
                "subnet-b".to_string(),
                json!("192.168.0.64/26"),
                net.clone()
            ),
            (
                "subnet-c".to_string(),
                json!("192.168.0.128/26"),
                net.clone()
            ),
        ]
    );

    let addresses = st.collection("regions/asia-northeast2/addresses");
    assert_eq!(addresses.len(), SERVERS.len(), "{addresses:?}");
    let mut instances = 0;
    for (server, name, zone, subnet, ip, machine, boot, mirrored) in SERVERS {
        let i = st
            .resources
            .get(&format!("zones/{zone}/instances/{name}"))
            .unwrap_or_else(|| panic!("no instance {name} in {zone}"));
        instances += 1;
        assert_eq!(i["hostname"], json!(server));
        assert_eq!(
            i["machineType"],
            json!(link(&format!("zones/{zone}/machineTypes/{machine}")))
        );
        assert_eq!(i["status"], json!("RUNNING"), "{name}");
        assert_eq!(
            i["metadata"]["items"],
            json!([{"key": "hostname", "value": server}, {"key": "ssh-keys", "value": format!("admin:{}", public_key.trim())}])
        );
        let nic = &i["networkInterfaces"][0];
        assert_eq!(
            nic["subnetwork"],
            json!(link(&format!(
                "regions/asia-northeast2/subnetworks/{subnet}"
            )))
        );
        assert_eq!(nic["networkIP"], json!(ip), "{name}");
        let address = &addresses[&format!("gip-{name}")];
        assert_eq!(address["status"], json!("IN_USE"));
        assert_eq!(
            nic["accessConfigs"],
            json!([{"name": format!("ac_gip_{name}"), "natIP": address["address"], "type": "ONE_TO_ONE_NAT"}])
        );
        let disks: Vec<(Value, Value, Value, Value, Value)> = i["disks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["initializeParams"]["diskName"].clone(),
                    d["initializeParams"]["diskSizeGb"].clone(),
                    d["boot"].clone(),
                    d["autoDelete"].clone(),
                    d["initializeParams"]["sourceImage"].clone(),
                )
            })
            .collect();
        let mut want = vec![(
            json!(format!("boot-{name}")),
            json!(boot),
            json!(true),
            json!(true),
            json!("projects/almalinux-cloud/global/images/family/almalinux-9"),
        )];
        if let Some(m) = mirrored {
            want.push((
                json!(format!("drbd-{name}")),
                json!(m),
                json!(false),
                json!(true),
                Value::Null,
            ));
        }
        assert_eq!(disks, want, "disks of {name}");
    }
    // Nothing else: network, 3 rules, 3 subnetworks, 4 addresses, 4 instances.
    assert_eq!(
        st.resources.len(),
        1 + 3 + 3 + SERVERS.len() + instances,
        "{:#?}",
        st.paths()
    );
}

#[test]
fn production_stage_on_gcp_is_built_as_the_original_halted_and_destroyed() {
    let fake = FakeGce::start(PROJECT);
    let (_dir, root) = gcp_project(ZONES);
    let secrets = service_account_key(&root, &fake);
    let stage = ["-s", "production"];

    // The plan: every resource the run creates, nothing created.
    let plan = hive_ok(
        &fake,
        &root,
        &secrets,
        &[&stage[..], &["all", "-C"]].concat(),
        &[
            "network vpc-pdns: would be created",
            "firewall internal-pdns (tcp 0-65535; udp 0-65535; icmp from 192.168.0.0/24): would be created",
            "firewall ssh-pdns (tcp 22 from 0.0.0.0/0): would be created",
            "firewall inbound-pdns (tcp 53,80; icmp; udp 53 from 0.0.0.0/0): would be created",
            "subnetwork subnet-b (192.168.0.64/26, asia-northeast2): would be created",
            "address gip-hive3-pdns (asia-northeast2): would be created",
            "hive3.pdns: would be created",
        ],
    );
    assert!(fake.state().resources.is_empty(), "{plan}");
    assert!(
        fake.state().requests.iter().all(|r| r.starts_with("GET ")),
        "{:?}",
        fake.state().requests
    );

    // The run: every resource, recorded in ssh_config.
    let build = [&stage[..], &["build-infra", "--skip-ssh-wait"]].concat();
    let check = [&stage[..], &["build-infra", "-C"]].concat();
    hive_ok(
        &fake,
        &root,
        &secrets,
        &build,
        &["network vpc-pdns: created", "hive0.pdns: created"],
    );
    let public_key = std::fs::read_to_string(root.join(".hive/production/id_ed25519.pub")).unwrap();
    assert_site_as_the_original(&fake, &public_key);
    assert!(
        fake.state().tokens.iter().all(|t| {
            let claims = t.split('.').nth(1).unwrap();
            let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .unwrap();
            let claims: Value = serde_json::from_slice(&claims).unwrap();
            claims["iss"] == EMAIL
        }),
        "every call signed with the service account key"
    );
    let ssh_config = std::fs::read_to_string(root.join(".hive/production/ssh_config")).unwrap();
    for (server, ..) in SERVERS {
        assert!(
            ssh_config.contains(&format!("Host {server}")),
            "{ssh_config}"
        );
    }
    assert!(ssh_config.contains("HostName 203.0.113."), "{ssh_config}");
    assert!(ssh_config.contains("User admin"), "{ssh_config}");

    // Again: nothing created, and it says so.
    let writes = |fake: &FakeGce| {
        fake.state()
            .requests
            .iter()
            .filter(|r| !r.starts_with("GET "))
            .count()
    };
    let before = writes(&fake);
    hive_ok(&fake, &root, &secrets, &build, &["build-infra: no change"]);
    hive_ok(&fake, &root, &secrets, &check, &["build-infra: no change"]);
    assert_eq!(writes(&fake), before, "a second run changes nothing");
    assert_site_as_the_original(&fake, &public_key);

    // -H: every instance stopped; build-infra starts them again.
    hive_ok(
        &fake,
        &root,
        &secrets,
        &[&stage[..], &["build-infra", "-H"]].concat(),
        &["hive2.pdns: stopped"],
    );
    let statuses: Vec<Value> = fake
        .state()
        .resources
        .values()
        .filter(|r| r["kind"] == "compute#instance")
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!("TERMINATED"); 4]);
    hive_ok(
        &fake,
        &root,
        &secrets,
        &check,
        &["hive1.pdns: would be started"],
    );
    hive_ok(&fake, &root, &secrets, &build, &["hive1.pdns: started"]);
    assert_site_as_the_original(&fake, &public_key);

    // A rule changed by hand is put back.
    fake.state()
        .resources
        .get_mut("global/firewalls/ssh-pdns")
        .unwrap()["sourceRanges"] = json!(["10.0.0.0/8"]);
    hive_ok(
        &fake,
        &root,
        &secrets,
        &build,
        &["firewall ssh-pdns (tcp 22 from 0.0.0.0/0): updated"],
    );
    assert_site_as_the_original(&fake, &public_key);

    // -D: nothing of the stage left (the fake refuses a resource still in
    // use, so the order is checked too); a second -D changes nothing.
    let destroy = [&stage[..], &["build-infra", "-D", "--yes"]].concat();
    hive_ok(
        &fake,
        &root,
        &secrets,
        &destroy,
        &["network vpc-pdns: destroyed", "hive0.pdns: destroyed"],
    );
    assert!(
        fake.state().resources.is_empty(),
        "{:#?}",
        fake.state().paths()
    );
    hive_ok(
        &fake,
        &root,
        &secrets,
        &destroy,
        &["build-infra -D: no change"],
    );
}

#[test]
fn stage_settings_and_cloud_errors_name_what_is_wrong() {
    // A zone outside the region: hive check refuses it without a call.
    let (_dir, root) = gcp_project([ZONES[0], "us-central1-b", ZONES[2]]);
    let out = common::hive(&root, &["-s", "production", "check"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out)
            .contains("hive1.pdns: zone us-central1-b is not a zone of region asia-northeast2"),
        "{}",
        text(&out)
    );

    // No service account key: the plan says where to put it.
    let fake = FakeGce::start(PROJECT);
    let (_dir, root) = gcp_project(ZONES);
    let out = hive(
        &fake,
        &root,
        &[],
        &["-s", "production", "build-infra", "-C"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("needs a service account key: save it as gcp_credential.json"),
        "{}",
        text(&out)
    );

    // A zone the project does not have: the plan fails as the run would,
    // before anything is created.
    let (_dir, root) = gcp_project([ZONES[0], "asia-northeast2-z", ZONES[2]]);
    let secrets = service_account_key(&root, &fake);
    for args in [
        &["-s", "production", "build-infra", "-C"][..],
        &["-s", "production", "build-infra", "--skip-ssh-wait"],
    ] {
        let out = hive(&fake, &root, &secrets, args);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains(
                "server hive1.pdns: project hive-test-project has no zone asia-northeast2-z"
            ),
            "{}",
            text(&out)
        );
    }
    assert!(fake.state().resources.is_empty());

    // An operation that fails: the error names the server and carries the
    // API's own message.
    let (_dir, root) = gcp_project(ZONES);
    let secrets = service_account_key(&root, &fake);
    fake.state().quota_exceeded_in = Some(ZONES[1].to_string());
    let out = hive(
        &fake,
        &root,
        &secrets,
        &["-s", "production", "build-infra", "--skip-ssh-wait"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("server hive1.pdns: create instance hive1-pdns: Quota 'CPUS' exceeded.  Limit: 8.0 in region asia-northeast2."),
        "{}",
        text(&out)
    );
    fake.state().quota_exceeded_in = None;
    hive_ok(
        &fake,
        &root,
        &secrets,
        &["-s", "production", "build-infra", "-D", "--yes"],
        &["network vpc-pdns: destroyed"],
    );
    assert!(
        fake.state().resources.is_empty(),
        "{:#?}",
        fake.state().paths()
    );
}
