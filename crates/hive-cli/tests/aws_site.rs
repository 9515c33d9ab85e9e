//! The aws provider through the `hive` binary, against moto's EC2 API in
//! server mode on 127.0.0.1 (installed by scripts/setup-machine.sh): the
//! production stage of the pdns example on aws (three subnets in three
//! zones, a separate repository server, mirrored disks) is planned, built,
//! read back from the API and compared with what hive-builder's `aws` role
//! creates, built again (no change), halted and destroyed.
//!
//! moto's instances cannot be reached over SSH (their elastic IPs are not
//! on this machine), so build-infra runs with `--skip-ssh-wait`.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Instance, Tag};
use common::{project_copy, text};

/// A secret that must never appear in hive's output.
const SECRET: &str = "moto-secret-key-never-printed";
const REGION: &str = "ap-northeast-1";

/// moto_server on a free port of 127.0.0.1, stopped when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    fn program() -> PathBuf {
        if let Some(p) = std::env::var_os("HIVE_MOTO_SERVER") {
            return PathBuf::from(p);
        }
        let venv = Path::new("/opt/hive-moto/bin/moto_server");
        if venv.exists() {
            return venv.to_path_buf();
        }
        PathBuf::from("moto_server")
    }

    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(Self::program())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); run scripts/setup-machine.sh, which installs moto[server]",
                    Self::program().display()
                )
            });
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        moto
    }

    /// `hive -r ROOT ARGS` pointed at this moto, with dummy credentials.
    fn hive(&self, root: &Path, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_hive"))
            .arg("-r")
            .arg(root)
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_ACCESS_KEY_ID", "moto-access-key")
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .output()
            .expect("run hive");
        assert!(
            !text(&out).contains(SECRET),
            "the secret key was printed:\n{}",
            text(&out)
        );
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

    fn client(&self, rt: &tokio::runtime::Runtime) -> Client {
        // SAFETY-free: the test's own process points its client at moto.
        let config = rt.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(REGION))
                .endpoint_url(&self.url)
                .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                    "moto-access-key",
                    SECRET,
                    None,
                    None,
                    "test",
                ))
                .http_client(plain_http())
                .load(),
        );
        Client::new(&config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client for the test's own reads (moto is plain HTTP).
fn plain_http() -> aws_sdk_ec2::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The pdns example with its production stage on aws, as the original's
/// examples declare one.
fn aws_project(image: &str, zones: [&str; 3]) -> (tempfile::TempDir, PathBuf) {
    let stage = format!(
        "  production:
    provider: aws
    separate_repository: true
    number_of_hosts: 4
    cidr: 192.168.0.0/24
    region: {REGION}
    instance_type: t3.medium
    repository_instance_type: t3.large
    image_name: {image}
    disk_size: 20
    repository_disk_size: 40
    mirrored_disk_size: 30
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

const ZONES: [&str; 3] = ["ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"];

/// Server, subnet, zone, private address, instance type, boot disk size,
/// mirrored disk size: what the original's inventory and role give each.
type ServerRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i32,
    Option<i32>,
);
const SERVERS: &[ServerRow] = &[
    (
        "hive0.pdns",
        "subnet-a",
        ZONES[0],
        "192.168.0.5",
        "t3.medium",
        20,
        Some(30),
    ),
    (
        "hive1.pdns",
        "subnet-b",
        ZONES[1],
        "192.168.0.69",
        "t3.medium",
        20,
        Some(30),
    ),
    (
        "hive2.pdns",
        "subnet-c",
        ZONES[2],
        "192.168.0.133",
        "t3.medium",
        20,
        Some(30),
    ),
    (
        "hive3.pdns",
        "subnet-a",
        ZONES[0],
        "192.168.0.6",
        "t3.large",
        40,
        None,
    ),
];

async fn live_instances(ec2: &Client) -> Vec<Instance> {
    let out = ec2
        .describe_instances()
        .filters(filter("tag:Project", "pdns"))
        .send()
        .await
        .unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated"))
        .cloned()
        .collect()
}

/// Everything hive-builder's role creates, read back from the API.
async fn assert_site_as_the_original(ec2: &Client, image: &str) {
    let vpcs = ec2
        .describe_vpcs()
        .filters(filter("tag:Project", "pdns"))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1, "one VPC: {vpcs:?}");
    let vpc = &vpcs.vpcs()[0];
    let vpc_id = vpc.vpc_id().unwrap();
    assert_eq!(vpc.cidr_block(), Some("192.168.0.0/24"));
    assert_eq!(tag(vpc.tags(), "Name"), Some("vpc-pdns"));
    let dns = ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap();
    assert_eq!(
        dns.enable_dns_hostnames().and_then(|v| v.value()),
        Some(true)
    );

    let igws = ec2
        .describe_internet_gateways()
        .filters(filter("attachment.vpc-id", vpc_id))
        .send()
        .await
        .unwrap();
    assert_eq!(igws.internet_gateways().len(), 1);
    let igw = &igws.internet_gateways()[0];
    assert_eq!(tag(igw.tags(), "Name"), Some("gateway for vpc-pdns"));
    assert_eq!(tag(igw.tags(), "Project"), Some("pdns"));
    let igw_id = igw.internet_gateway_id().unwrap();

    let subnets = ec2
        .describe_subnets()
        .filters(filter("vpc-id", vpc_id))
        .send()
        .await
        .unwrap();
    let mut got: Vec<(String, String, String, String)> = subnets
        .subnets()
        .iter()
        .map(|s| {
            (
                tag(s.tags(), "Name").unwrap_or_default().to_string(),
                s.cidr_block().unwrap_or_default().to_string(),
                s.availability_zone().unwrap_or_default().to_string(),
                tag(s.tags(), "Project").unwrap_or_default().to_string(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String, String, String)> = [
        ("subnet-a", "192.168.0.0/26", ZONES[0]),
        ("subnet-b", "192.168.0.64/26", ZONES[1]),
        ("subnet-c", "192.168.0.128/26", ZONES[2]),
    ]
    .iter()
    .map(|(n, c, z)| {
        (
            n.to_string(),
            c.to_string(),
            z.to_string(),
            "pdns".to_string(),
        )
    })
    .collect();
    assert_eq!(got, want);

    let tables = ec2
        .describe_route_tables()
        .filters(filter("vpc-id", vpc_id))
        .filters(filter("association.main", "true"))
        .send()
        .await
        .unwrap();
    let main = &tables.route_tables()[0];
    assert_eq!(tag(main.tags(), "Name"), Some("Public for subnet"));
    assert!(
        main.routes()
            .iter()
            .any(|r| r.destination_cidr_block() == Some("0.0.0.0/0")
                && r.gateway_id() == Some(igw_id)),
        "default route through the gateway: {:?}",
        main.routes()
    );

    let groups = ec2
        .describe_security_groups()
        .filters(filter("vpc-id", vpc_id))
        .filters(filter("group-name", "default"))
        .send()
        .await
        .unwrap();
    let group = &groups.security_groups()[0];
    let group_id = group.group_id().unwrap();
    assert_eq!(tag(group.tags(), "Name"), Some("group-vpc-pdns"));
    let mut rules = BTreeSet::new();
    for p in group.ip_permissions() {
        let proto = p.ip_protocol().unwrap_or_default().to_string();
        let ports = (p.from_port(), p.to_port());
        for g in p.user_id_group_pairs() {
            assert_eq!(g.group_id(), Some(group_id));
            rules.insert((proto.clone(), None, "self".to_string()));
        }
        for r in p.ip_ranges() {
            assert_eq!(ports.0, ports.1);
            rules.insert((
                proto.clone(),
                ports.0,
                r.cidr_ip().unwrap_or_default().to_string(),
            ));
        }
    }
    // The original: everything from the group, sshd and the TCP ports
    // published below 10000 (53, 80; not 61081), UDP 53, from anywhere.
    let any = || "0.0.0.0/0".to_string();
    let want: BTreeSet<_> = [
        ("-1".to_string(), None, "self".to_string()),
        ("tcp".into(), Some(22), any()),
        ("tcp".into(), Some(53), any()),
        ("tcp".into(), Some(80), any()),
        ("udp".into(), Some(53), any()),
    ]
    .into_iter()
    .collect();
    assert_eq!(rules, want);

    let keys = ec2
        .describe_key_pairs()
        .key_names("hive-bulder-pdns")
        .send()
        .await
        .unwrap();
    assert_eq!(keys.key_pairs().len(), 1);

    let instances = live_instances(ec2).await;
    assert_eq!(instances.len(), SERVERS.len(), "{instances:?}");
    for (name, subnet, zone, ip, kind, boot, mirrored) in SERVERS {
        let i = instances
            .iter()
            .find(|i| tag(i.tags(), "Name") == Some(name))
            .unwrap_or_else(|| panic!("no instance {name}"));
        assert_eq!(tag(i.tags(), "Project"), Some("pdns"));
        assert_eq!(i.instance_type().map(|t| t.as_str()), Some(*kind), "{name}");
        assert_eq!(i.image_id(), Some(image));
        assert_eq!(i.key_name(), Some("hive-bulder-pdns"));
        assert_eq!(i.private_ip_address(), Some(*ip), "{name}");
        assert_eq!(
            i.placement().and_then(|p| p.availability_zone()),
            Some(*zone)
        );
        let sub = subnets
            .subnets()
            .iter()
            .find(|s| s.subnet_id() == i.subnet_id())
            .unwrap();
        assert_eq!(tag(sub.tags(), "Name"), Some(*subnet), "{name}");
        let nic = &i.network_interfaces()[0];
        assert!(
            nic.groups().iter().any(|g| g.group_id() == Some(group_id)),
            "{name} in the default group: {nic:?}"
        );
        assert!(nic.association().is_some(), "{name} has a public address");
        assert_eq!(
            i.state().and_then(|s| s.name()).map(|n| n.as_str()),
            Some("running")
        );
        let id = i.instance_id().unwrap();
        let volumes = ec2
            .describe_volumes()
            .filters(filter("attachment.instance-id", id))
            .send()
            .await
            .unwrap();
        let mut disks: Vec<(String, i32)> = volumes
            .volumes()
            .iter()
            .map(|v| {
                (
                    v.attachments()[0].device().unwrap_or_default().to_string(),
                    v.size().unwrap_or_default(),
                )
            })
            .collect();
        disks.sort();
        let mut want = vec![("/dev/sda1".to_string(), *boot)];
        if let Some(m) = mirrored {
            want.push(("/dev/sdb".to_string(), *m));
        }
        assert_eq!(disks, want, "disks of {name}");
        let eips = ec2
            .describe_addresses()
            .filters(filter("instance-id", id))
            .send()
            .await
            .unwrap();
        assert_eq!(eips.addresses().len(), 1, "one elastic ip for {name}");
        let eip = &eips.addresses()[0];
        assert_eq!(
            tag(eip.tags(), "Name"),
            Some(format!("for {name}").as_str())
        );
        assert_eq!(tag(eip.tags(), "Project"), Some("pdns"));
    }
}

/// Nothing of the stage is left in the API.
async fn assert_nothing_left(ec2: &Client) {
    let vpcs = ec2
        .describe_vpcs()
        .filters(filter("tag:Project", "pdns"))
        .send()
        .await
        .unwrap();
    assert!(vpcs.vpcs().is_empty(), "{vpcs:?}");
    assert!(live_instances(ec2).await.is_empty());
    let eips = ec2.describe_addresses().send().await.unwrap();
    assert!(eips.addresses().is_empty(), "{eips:?}");
    let keys = ec2.describe_key_pairs().send().await.unwrap();
    assert!(
        keys.key_pairs()
            .iter()
            .all(|k| k.key_name() != Some("hive-bulder-pdns")),
        "{keys:?}"
    );
    let subnets = ec2
        .describe_subnets()
        .filters(filter("tag:Project", "pdns"))
        .send()
        .await
        .unwrap();
    assert!(subnets.subnets().is_empty());
    let igws = ec2
        .describe_internet_gateways()
        .filters(filter("tag:Project", "pdns"))
        .send()
        .await
        .unwrap();
    assert!(igws.internet_gateways().is_empty());
}

/// An AMI moto knows in the region.
async fn moto_image(ec2: &Client) -> String {
    let images = ec2.describe_images().owners("amazon").send().await.unwrap();
    images
        .images()
        .iter()
        .filter_map(|i| i.image_id())
        .next()
        .expect("moto has images")
        .to_string()
}

#[test]
fn production_stage_on_aws_is_built_as_the_original_halted_and_destroyed() {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ec2 = moto.client(&rt);
    let image = rt.block_on(moto_image(&ec2));
    let (_dir, root) = aws_project(&image, ZONES);

    // The plan: every resource the run creates, nothing created.
    let stage = ["-s", "production"];
    let plan = moto.hive_ok(
        &root,
        &[&stage[..], &["all", "-C"]].concat(),
        &[
            "vpc vpc-pdns (192.168.0.0/24): would be created",
            "internet gateway gateway for vpc-pdns: would be created",
            "subnet subnet-b (192.168.0.64/26, ap-northeast-1c): would be created",
            "route 0.0.0.0/0 through the internet gateway: would be created",
            "security group rule udp 53 from 0.0.0.0/0: would be created",
            "key pair hive-bulder-pdns: would be created",
            "hive3.pdns: would be created",
            "elastic ip for hive0.pdns: would be created",
        ],
    );
    assert!(
        !plan.contains("security group rule all from the group"),
        "{plan}"
    );
    rt.block_on(assert_nothing_left(&ec2));

    // The run: every resource, recorded in ssh_config.
    let build = [&stage[..], &["build-infra", "--skip-ssh-wait"]].concat();
    let check = [&stage[..], &["build-infra", "-C"]].concat();
    moto.hive_ok(
        &root,
        &build,
        &[
            "vpc vpc-pdns (192.168.0.0/24): created",
            "hive0.pdns: created",
        ],
    );
    rt.block_on(assert_site_as_the_original(&ec2, &image));
    let ssh_config = std::fs::read_to_string(root.join(".hive/production/ssh_config")).unwrap();
    for (name, ..) in SERVERS {
        assert!(ssh_config.contains(&format!("Host {name}")), "{ssh_config}");
    }
    assert!(ssh_config.contains("User ec2-user"), "{ssh_config}");

    // Again: nothing created, and it says so.
    moto.hive_ok(&root, &build, &["build-infra: no change"]);
    rt.block_on(assert_site_as_the_original(&ec2, &image));
    moto.hive_ok(&root, &check, &["build-infra: no change"]);

    // -H: every instance stopped; build-infra starts them again.
    moto.hive_ok(
        &root,
        &[&stage[..], &["build-infra", "-H"]].concat(),
        &["hive2.pdns: stopped"],
    );
    let states: Vec<String> = rt
        .block_on(live_instances(&ec2))
        .iter()
        .filter_map(|i| i.state().and_then(|s| s.name()))
        .map(|n| n.as_str().to_string())
        .collect();
    assert_eq!(states, vec!["stopped"; 4]);
    moto.hive_ok(&root, &check, &["hive1.pdns: would be started"]);
    moto.hive_ok(&root, &build, &["hive1.pdns: started"]);
    rt.block_on(assert_site_as_the_original(&ec2, &image));

    // -D: nothing of the stage left; a second -D changes nothing.
    let destroy = [&stage[..], &["build-infra", "-D", "--yes"]].concat();
    moto.hive_ok(
        &root,
        &destroy,
        &["vpc vpc-pdns (192.168.0.0/24): destroyed"],
    );
    rt.block_on(assert_nothing_left(&ec2));
    moto.hive_ok(&root, &destroy, &["build-infra -D: no change"]);
}

#[test]
fn stage_settings_and_cloud_errors_name_what_is_wrong() {
    // A zone outside the region: hive check refuses it without a call.
    let (_dir, root) = aws_project(
        "ami-12345678",
        ["ap-northeast-1a", "us-east-1c", "ap-northeast-1d"],
    );
    let check = common::hive(&root, &["-s", "production", "check"]);
    assert!(!check.status.success(), "{}", text(&check));
    assert!(
        text(&check).contains(
            "subnet subnet-b: availability zone us-east-1c is not a zone of region ap-northeast-1"
        ),
        "{}",
        text(&check)
    );

    // A zone the region does not have, an image that does not exist: the
    // plan fails as the run would, before anything is created, with the
    // cloud's own message.
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ec2 = moto.client(&rt);
    let image = rt.block_on(moto_image(&ec2));
    let (_dir, root) = aws_project(
        &image,
        ["ap-northeast-1a", "ap-northeast-1z", "ap-northeast-1d"],
    );
    for args in [
        &["-s", "production", "build-infra", "-C"][..],
        &["-s", "production", "build-infra", "--skip-ssh-wait"],
    ] {
        let out = moto.hive(&root, args);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains(
                "subnet subnet-b: region ap-northeast-1 has no availability zone ap-northeast-1z"
            ),
            "{}",
            text(&out)
        );
    }
    let (_dir, root) = aws_project("ami-00000000deadbeef", ZONES);
    let out = moto.hive(
        &root,
        &["-s", "production", "build-infra", "--skip-ssh-wait"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("look up image ami-00000000deadbeef (image_name): InvalidAMIID"),
        "{}",
        text(&out)
    );
    rt.block_on(assert_nothing_left(&ec2));
}
