//! The azure provider through the `hive` binary, against a Resource
//! Manager of the test's own (`azure_site/fake_arm.rs`, shaped after the
//! public REST reference): the production stage of the pdns example on
//! azure (three subnets in three zones, a separate repository server,
//! mirrored disks) is planned, built, read back and compared with what
//! hive-builder's `azure` role creates, built again (no change), halted
//! and destroyed.
//!
//! The fake's addresses cannot be reached over SSH, so build-infra runs
//! with `--skip-ssh-wait`.

mod common;
#[path = "azure_site/fake_arm.rs"]
mod fake_arm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{project_copy, text};
use fake_arm::{CLIENT_ID, FakeArm, SUBSCRIPTION, TENANT};
use serde_json::{Value, json};

/// The client secret: it must never appear in hive's output.
const SECRET: &str = "azure-client-secret-never-printed";

impl FakeArm {
    /// `hive -r ROOT ARGS` pointed at this fake with the service
    /// principal's credentials.
    fn hive(&self, root: &Path, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_hive"))
            .arg("-r")
            .arg(root)
            .args(args)
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", SECRET)
            .env("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
            .env("AZURE_AUTHORITY_HOST", &self.url)
            .env("AZURE_RESOURCE_MANAGER_ENDPOINT", &self.url)
            .stdin(Stdio::null())
            .output()
            .expect("run hive");
        for secret in [SECRET, "fake-arm-token"] {
            assert!(
                !text(&out).contains(secret),
                "a secret was printed:\n{}",
                text(&out)
            );
        }
        out
    }

    /// `hive` with `args` succeeds and says each of `lines`.
    fn hive_ok(&self, root: &Path, args: &[&str], lines: &[&str]) -> String {
        let out = self.hive(root, args);
        let all = text(&out);
        assert!(out.status.success(), "{all}");
        for line in lines {
            assert!(all.contains(line), "no {line:?} in:\n{all}");
        }
        all
    }
}

/// The pdns example with its production stage on azure.
fn azure_project(instance_type: &str) -> (tempfile::TempDir, PathBuf) {
    let stage = format!(
        "  production:
    provider: azure
    separate_repository: true
    number_of_hosts: 4
    cidr: 192.168.0.0/24
    region: japaneast
    instance_type: {instance_type}
    repository_instance_type: Standard_D4s_v3
    disk_size: 30
    repository_disk_size: 40
    mirrored_disk_size: 20
    subnets:
    - cidr: 192.168.0.0/26
      name: subnet-a
      available_zone: 1
    - cidr: 192.168.0.64/26
      name: subnet-b
      available_zone: 2
    - cidr: 192.168.0.128/26
      name: subnet-c
      available_zone: 3
"
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

/// VM, zone, subnet, private address, size, OS disk, mirrored disk: what
/// the original's inventory and role give each server.
type Vm = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u64,
    Option<u64>,
);
const VMS: &[Vm] = &[
    (
        "hive0",
        "1",
        "subnet-a",
        "192.168.0.5",
        "Standard_D2s_v3",
        30,
        Some(20),
    ),
    (
        "hive1",
        "2",
        "subnet-b",
        "192.168.0.69",
        "Standard_D2s_v3",
        30,
        Some(20),
    ),
    (
        "hive2",
        "3",
        "subnet-c",
        "192.168.0.133",
        "Standard_D2s_v3",
        30,
        Some(20),
    ),
    (
        "hive3",
        "1",
        "subnet-a",
        "192.168.0.6",
        "Standard_D4s_v3",
        40,
        None,
    ),
];

fn group(rest: &str) -> String {
    format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/pdns{rest}")
}

fn network(rest: &str) -> String {
    group(&format!("/providers/Microsoft.Network/{rest}"))
}

fn compute(rest: &str) -> String {
    group(&format!("/providers/Microsoft.Compute/{rest}"))
}

/// Every resource hive-builder's role creates, and nothing else.
fn expected_ids() -> Vec<String> {
    let mut ids = vec![
        group(""),
        network("virtualNetworks/vpc-pdns"),
        network("virtualNetworks/vpc-pdns/subnets/subnet-a"),
        network("virtualNetworks/vpc-pdns/subnets/subnet-b"),
        network("virtualNetworks/vpc-pdns/subnets/subnet-c"),
        network("networkSecurityGroups/sg_pdns"),
    ];
    for (vm, _, _, _, _, _, mirrored) in VMS {
        ids.push(network(&format!("publicIPAddresses/gip-{vm}")));
        ids.push(network(&format!("networkInterfaces/{vm}-primary")));
        ids.push(compute(&format!("virtualMachines/{vm}")));
        ids.push(compute(&format!("disks/osdisk-{vm}")));
        if mirrored.is_some() {
            ids.push(compute(&format!("disks/mirrored_{vm}")));
        }
    }
    ids.sort();
    ids
}

/// The rules of the original's two `azure_rm_securitygroup` tasks, with
/// the pdns example's published ports (TCP 53 and 80, UDP 53).
fn expected_rules() -> Vec<Value> {
    let rule =
        |name: &str, priority: u32, protocol: &str, source: &str, ports: Value, access: &str| {
            let mut p = json!({
                "priority": priority, "protocol": protocol, "access": access,
                "direction": "Inbound", "sourceAddressPrefix": source,
                "sourcePortRange": "*", "destinationAddressPrefix": "*",
            });
            match ports {
                Value::String(_) => p["destinationPortRange"] = ports,
                _ => p["destinationPortRanges"] = ports,
            }
            json!({"name": name, "properties": p})
        };
    vec![
        rule("internal", 100, "*", "VirtualNetwork", json!("*"), "Allow"),
        rule(
            "published_ports_tcp",
            200,
            "Tcp",
            "*",
            json!(["22", "53", "80"]),
            "Allow",
        ),
        rule("published_ports_udp", 201, "Udp", "*", json!("53"), "Allow"),
        rule("deny_tcp", 400, "Tcp", "*", json!("*"), "Deny"),
        rule("deny_udp", 401, "Udp", "*", json!("*"), "Deny"),
        rule("allow_icmp", 402, "*", "*", json!("*"), "Allow"),
    ]
}

/// What the fake holds is the original's site, item by item.
fn assert_site_as_the_original(arm: &FakeArm, public_key: &str) {
    assert_eq!(arm.ids(), expected_ids());
    let get = |id: &str| arm.resource(id).unwrap_or_else(|| panic!("no {id}"));
    assert_eq!(get(&group(""))["location"], "japaneast");
    let vnet = get(&network("virtualNetworks/vpc-pdns"));
    assert_eq!(
        vnet["properties"]["addressSpace"]["addressPrefixes"],
        json!(["192.168.0.0/24"])
    );
    for (name, cidr) in [
        ("subnet-a", "192.168.0.0/26"),
        ("subnet-b", "192.168.0.64/26"),
        ("subnet-c", "192.168.0.128/26"),
    ] {
        let subnet = get(&network(&format!(
            "virtualNetworks/vpc-pdns/subnets/{name}"
        )));
        assert_eq!(subnet["properties"]["addressPrefix"], cidr);
        assert_eq!(
            subnet["properties"]["serviceEndpoints"],
            json!([{"service": "Microsoft.Storage", "locations": ["japaneast"]}])
        );
    }
    let nsg = get(&network("networkSecurityGroups/sg_pdns"));
    let rules: Vec<Value> = nsg["properties"]["securityRules"]
        .as_array()
        .unwrap()
        .to_vec();
    assert_eq!(rules, expected_rules());

    for (vm, zone, subnet, ip, size, os_disk, mirrored) in VMS {
        let gip = get(&network(&format!("publicIPAddresses/gip-{vm}")));
        assert_eq!(gip["sku"]["name"], "Standard", "{vm}");
        assert_eq!(gip["properties"]["publicIPAllocationMethod"], "Static");
        let nic = get(&network(&format!("networkInterfaces/{vm}-primary")));
        assert_eq!(
            nic["properties"]["networkSecurityGroup"]["id"],
            network("networkSecurityGroups/sg_pdns")
        );
        let config = &nic["properties"]["ipConfigurations"][0];
        assert_eq!(config["name"], "eth0");
        let p = &config["properties"];
        assert_eq!(p["privateIPAddress"], *ip, "{vm}");
        assert_eq!(p["privateIPAllocationMethod"], "Static");
        assert_eq!(p["primary"], true);
        assert_eq!(
            p["subnet"]["id"],
            network(&format!("virtualNetworks/vpc-pdns/subnets/{subnet}"))
        );
        assert_eq!(
            p["publicIPAddress"]["id"],
            network(&format!("publicIPAddresses/gip-{vm}"))
        );

        let machine = get(&compute(&format!("virtualMachines/{vm}")));
        assert_eq!(machine["zones"], json!([zone]), "{vm}");
        assert_eq!(machine["location"], "japaneast");
        let p = &machine["properties"];
        assert_eq!(p["hardwareProfile"]["vmSize"], *size, "{vm}");
        assert_eq!(
            p["storageProfile"]["imageReference"],
            json!({"publisher": "almalinux", "offer": "almalinux-x86_64", "sku": "10-gen2", "version": "latest"})
        );
        let os = &p["storageProfile"]["osDisk"];
        assert_eq!(os["diskSizeGB"], *os_disk, "{vm}");
        assert_eq!(os["managedDisk"]["storageAccountType"], "Premium_LRS");
        let data = p["storageProfile"]["dataDisks"].as_array().unwrap();
        match mirrored {
            Some(size) => {
                assert_eq!(data.len(), 1, "{vm}");
                assert_eq!(data[0]["name"], format!("mirrored_{vm}"));
                assert_eq!(data[0]["lun"], 0);
                assert_eq!(data[0]["diskSizeGB"], *size);
                assert_eq!(data[0]["managedDisk"]["storageAccountType"], "Premium_LRS");
            }
            None => assert!(data.is_empty(), "{vm} has no mirrored disk"),
        }
        let os_profile = &p["osProfile"];
        assert_eq!(os_profile["computerName"], *vm);
        assert_eq!(os_profile["adminUsername"], "hiveadmin");
        let linux = &os_profile["linuxConfiguration"];
        assert_eq!(linux["disablePasswordAuthentication"], true);
        assert_eq!(
            linux["ssh"]["publicKeys"],
            json!([{"path": "/home/hiveadmin/.ssh/authorized_keys", "keyData": public_key.trim()}])
        );
        assert_eq!(
            p["networkProfile"]["networkInterfaces"][0]["id"],
            network(&format!("networkInterfaces/{vm}-primary"))
        );
        assert_eq!(arm.power(vm).as_deref(), Some("running"), "{vm}");
    }
}

#[test]
fn production_stage_on_azure_is_built_as_the_original_halted_and_destroyed() {
    let arm = FakeArm::start(SECRET);
    let (_dir, root) = azure_project("Standard_D2s_v3");
    let stage = ["-s", "production"];

    // The plan: every resource the run creates, nothing created.
    arm.hive_ok(
        &root,
        &[&stage[..], &["all", "-C"]].concat(),
        &[
            "resource group pdns (japaneast): would be created",
            "virtual network vpc-pdns (192.168.0.0/24): would be created",
            "subnet subnet-b (192.168.0.64/26): would be created",
            "network security group sg_pdns: would be created",
            "security rule published_ports_udp (allow udp 53 from *, priority 201): would be created",
            "public ip gip-hive3 (hive3.pdns): would be created",
            "network interface hive0-primary (192.168.0.5): would be created",
            "hive3.pdns: would be created",
            "VM hive1 (Standard_D2s_v3, zone 2, image almalinux:almalinux-x86_64:10-gen2:latest, os disk osdisk-hive1 30 GiB, mirrored disk mirrored_hive1 20 GiB): would be created",
            "VM hive3 (Standard_D4s_v3, zone 1, image almalinux:almalinux-x86_64:10-gen2:latest, os disk osdisk-hive3 40 GiB): would be created",
        ],
    );
    assert!(arm.ids().is_empty(), "the plan created {:?}", arm.ids());
    assert_eq!(arm.writes_since(0), Vec::<String>::new());

    // The run: every resource, recorded in ssh_config.
    let build = [&stage[..], &["build-infra", "--skip-ssh-wait"]].concat();
    let check = [&stage[..], &["build-infra", "-C"]].concat();
    arm.hive_ok(
        &root,
        &build,
        &[
            "virtual network vpc-pdns (192.168.0.0/24): created",
            "hive0.pdns: created",
        ],
    );
    let public_key = std::fs::read_to_string(root.join(".hive/production/id_ed25519.pub")).unwrap();
    assert_site_as_the_original(&arm, &public_key);
    let ssh_config = std::fs::read_to_string(root.join(".hive/production/ssh_config")).unwrap();
    for (vm, ..) in VMS {
        assert!(
            ssh_config.contains(&format!("Host {vm}.pdns")),
            "{ssh_config}"
        );
    }
    assert!(ssh_config.contains("User hiveadmin"), "{ssh_config}");
    assert!(ssh_config.contains("HostName 20.48.0."), "{ssh_config}");

    // Again: nothing created, and it says so.
    let before = arm.call_count();
    arm.hive_ok(&root, &build, &["build-infra: no change"]);
    arm.hive_ok(&root, &check, &["build-infra: no change"]);
    assert_eq!(arm.writes_since(before), Vec::<String>::new());
    assert_site_as_the_original(&arm, &public_key);

    // A rule removed by hand is put back; nothing else changes.
    let nsg = network("networkSecurityGroups/sg_pdns");
    arm.edit(&nsg, |g| {
        g["properties"]["securityRules"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["name"] != "deny_udp")
    });
    let rule = "security rule deny_udp (deny udp * from *, priority 401)";
    arm.hive_ok(&root, &check, &[&format!("{rule}: would be updated")]);
    let before = arm.call_count();
    arm.hive_ok(&root, &build, &[&format!("{rule}: updated")]);
    assert_eq!(
        arm.writes_since(before),
        [format!("PUT {nsg}")],
        "only the security group is written"
    );
    assert_site_as_the_original(&arm, &public_key);

    // -H: every VM deallocated; build-infra starts them again.
    arm.hive_ok(
        &root,
        &[&stage[..], &["build-infra", "-H"]].concat(),
        &["hive2.pdns: stopped"],
    );
    for (vm, ..) in VMS {
        assert_eq!(arm.power(vm).as_deref(), Some("deallocated"), "{vm}");
    }
    arm.hive_ok(&root, &check, &["hive1.pdns: would be started"]);
    arm.hive_ok(&root, &build, &["hive1.pdns: started"]);
    assert_site_as_the_original(&arm, &public_key);

    // -D: nothing left, removed in dependency order (the fake refuses to
    // delete what another resource uses); a second -D changes nothing.
    let destroy = [&stage[..], &["build-infra", "-D", "--yes"]].concat();
    arm.hive_ok(
        &root,
        &destroy,
        &[
            "hive0.pdns: destroyed",
            "disk mirrored_hive0 (hive0.pdns): destroyed",
            "virtual network vpc-pdns (192.168.0.0/24): destroyed",
            "resource group pdns (japaneast): destroyed",
        ],
    );
    assert_eq!(arm.ids(), Vec::<String>::new());
    arm.hive_ok(&root, &destroy, &["build-infra -D: no change"]);
}

#[test]
fn bad_settings_and_azure_errors_name_what_is_wrong() {
    // An AWS instance type: hive check refuses it without a call.
    let (_dir, root) = azure_project("t3.medium");
    let check = common::hive(&root, &["-s", "production", "check"]);
    assert!(!check.status.success(), "{}", text(&check));
    assert!(
        text(&check).contains("server hive0.pdns: t3.medium is not an Azure VM size"),
        "{}",
        text(&check)
    );

    // A size the location does not offer: Azure's own code and message,
    // naming the server.
    let arm = FakeArm::start(SECRET);
    let (_dir, root) = azure_project("Standard_Bogus_v9");
    let out = arm.hive(
        &root,
        &["-s", "production", "build-infra", "--skip-ssh-wait"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    // The hives are created concurrently: any of them may be the one named.
    let refused = (0..3).any(|i| {
        text(&out).contains(&format!(
            "server hive{i}.pdns: VM hive{i}: create: InvalidParameter: The value Standard_Bogus_v9 provided for the VM size is not valid"
        ))
    });
    assert!(refused, "{}", text(&out));

    // A prepared resource group that does not exist.
    let (_dir, root) = project_copy(
        "examples/pdns",
        &[(
            "    provider: prepared\n    separate_repository: true\n    number_of_hosts: 4\n    cidr: 192.168.0.0/24\n    ip_address_list:\n      - 192.168.0.10\n      - 192.168.0.11\n      - 192.168.0.12\n      - 192.168.0.13\n",
            "    provider: azure\n    prepared_resource_group: true\n    separate_repository: true\n    number_of_hosts: 4\n    cidr: 192.168.0.0/24\n    region: japaneast\n    instance_type: Standard_D2s_v3\n",
        )],
    );
    let fresh = FakeArm::start(SECRET);
    let out = fresh.hive(&root, &["-s", "production", "build-infra", "-C"]);
    assert!(
        !out.status.success()
            && text(&out).contains("resource group pdns (japaneast) does not exist, and prepared_resource_group says it is prepared"),
        "{}",
        text(&out)
    );
    assert_eq!(fresh.ids(), Vec::<String>::new());

    // A wrong secret: the identity platform's code, and no secret shown.
    let wrong = FakeArm::start("another-secret-than-hive-is-given");
    let out = wrong.hive(&root, &["-s", "production", "build-infra", "-C"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "get a token for client {CLIENT_ID} in tenant {TENANT}"
        )) && text(&out).contains("invalid_client: AADSTS7000215"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(SECRET), "{}", text(&out));
}
