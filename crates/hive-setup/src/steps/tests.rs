//! The steps' items, checked without a server.

use super::*;
use crate::item::sha256_hex;
use crate::params::{HiveUser, ServerRole, UserGroup};

fn params() -> SetupHostsParams {
    let mut p = SetupHostsParams::new(
        "private",
        "pdns",
        "/tmp/ctx",
        vec![
            Server {
                name: "p-hive0.pdns".into(),
                role: ServerRole::Hive,
                private_ip: "10.0.0.10".parse().unwrap(),
                groups: vec!["hives".into(), "first_hive".into()],
            },
            Server {
                name: "p-repository.pdns".into(),
                role: ServerRole::Repository,
                private_ip: "10.0.0.20".parse().unwrap(),
                groups: vec!["repository".into()],
            },
        ],
    );
    p.internal_cidr = Some("172.20.0.0/16".parse().unwrap());
    p
}

#[test]
fn tags_parse_and_reject_unknown() {
    for t in StepTag::ALL {
        assert_eq!(t.name().parse::<StepTag>().unwrap(), t);
    }
    let e = "dockr".parse::<StepTag>().unwrap_err().to_string();
    assert!(e.contains("dockr") && e.contains("docker"), "{e}");
}

#[test]
fn daemon_json_has_tls_api_and_pools() {
    let v: serde_json::Value = serde_json::from_str(&daemon_json(&params())).unwrap();
    assert_eq!(v["hosts"][1], "tcp://0.0.0.0:2376");
    assert_eq!(v["tlsverify"], true);
    assert_eq!(v["tlscert"], "/etc/hive/tls/server_cert.pem");
    assert_eq!(v["bip"], "172.20.160.1/19");
    assert_eq!(v["default-address-pools"][0]["base"], "172.20.192.0/19");
    assert_eq!(v["default-address-pools"][0]["size"], 21);
    let mut p = params();
    p.internal_cidr = None;
    let v: serde_json::Value = serde_json::from_str(&daemon_json(&p)).unwrap();
    assert!(v.get("bip").is_none());
}

#[test]
fn docker_override_per_family() {
    assert!(
        docker_override(OsFamily::Debian)
            .contains("ExecStart=\nExecStart=/usr/sbin/dockerd --containerd")
    );
    assert!(docker_override(OsFamily::RedHat { dnf: true }).contains("ExecStart=/usr/bin/dockerd"));
}

#[test]
fn sshd_is_hardened() {
    let mut p = params();
    p.sshd_port = 2222;
    let c = sshd_config(&p);
    for line in [
        "Port 2222",
        "PasswordAuthentication no",
        "ChallengeResponseAuthentication no",
        "KbdInteractiveAuthentication no",
        "UseDNS no",
        "PermitRootLogin no",
    ] {
        assert!(c.lines().any(|l| l == line), "{line} in {c}");
    }
}

#[test]
fn hosts_lists_every_server() {
    assert_eq!(
        hosts_block(&params()),
        "10.0.0.10 p-hive0.pdns p-hive0\n10.0.0.20 p-repository.pdns p-repository\n"
    );
}

#[test]
fn chrony_default_sources_are_commented_out() {
    fn check(os: OsFamily, before: &str, after: &str) {
        let (_, re) = chrony_default_sources(os);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("chrony.conf");
        std::fs::write(&f, before).unwrap();
        let f = f.to_str().unwrap();
        let sh = |script: String| {
            std::process::Command::new("sh")
                .args(["-c", &script])
                .status()
                .unwrap()
                .success()
        };
        let check = format!("[ -f {f} ] && ! grep -qE {} {f}", shell_quote(re));
        assert_eq!(sh(check.clone()), before == after, "{before}");
        assert!(sh(format!(
            "sed -i -E {} {f}",
            shell_quote(&format!("s/{re}/# &/"))
        )));
        assert_eq!(std::fs::read_to_string(f).unwrap(), after);
        assert!(sh(check), "{after}");
    }
    check(
        OsFamily::Debian,
        "# Use Debian vendor zone.\npool 2.debian.pool.ntp.org iburst\nsourcedir /run/chrony-dhcp\nconfdir /etc/chrony/conf.d\n",
        "# Use Debian vendor zone.\n# pool 2.debian.pool.ntp.org iburst\nsourcedir /run/chrony-dhcp\nconfdir /etc/chrony/conf.d\n",
    );
    check(
        OsFamily::RedHat { dnf: true },
        "# BEGIN ntp servers\nserver 192.0.2.1 iburst\n# END ntp servers\npool 2.rocky.pool.ntp.org iburst\nserver 0.centos.pool.ntp.org iburst\ndriftfile /var/lib/chrony/drift\n",
        "# BEGIN ntp servers\nserver 192.0.2.1 iburst\n# END ntp servers\n# pool 2.rocky.pool.ntp.org iburst\n# server 0.centos.pool.ntp.org iburst\ndriftfile /var/lib/chrony/drift\n",
    );
    check(
        OsFamily::Debian,
        "# pool 2.debian.pool.ntp.org iburst\n",
        "# pool 2.debian.pool.ntp.org iburst\n",
    );
}

#[test]
fn base_items_for_redhat_use_rpm_tools() {
    let mut p = params();
    p.ntp_servers = vec!["ntp.nict.jp".into()];
    p.timezone = Some("Asia/Tokyo".into());
    p.user_groups.insert("ops".into(), UserGroup { gid: 1500 });
    p.users.insert(
        "alice".into(),
        HiveUser {
            uid: 1501,
            group: "ops".into(),
            id_rsa_pub: "ssh-ed25519 AAAA alice".into(),
        },
    );
    let items = base_items(&p, &p.servers[0], OsFamily::RedHat { dnf: true });
    let names: Vec<String> = items.iter().map(|i| i.describe()).collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("packages") && n.contains("chrony")),
        "{names:?}"
    );
    assert!(
        names.contains(&"block ntp servers in /etc/chrony.conf".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"default NTP sources off in /etc/chrony.conf".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"chronyd running".to_string()), "{names:?}");
    assert!(
        names.contains(&"time zone Asia/Tokyo".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"group ops (1500)".to_string()), "{names:?}");
    assert!(
        names.contains(&"user alice (1501)".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"file /etc/sudoers.d/ops".to_string()),
        "{names:?}"
    );
    let script = super::super::item::check_script(&items);
    assert!(script.contains("rpm -q"), "{script}");
    assert!(!script.contains("dpkg-query"), "{script}");
}

#[test]
fn firewall_closes_high_and_cluster_ports_to_outsiders() {
    let mut p = params();
    p.ssh_source_ips = vec!["192.0.2.0/24".into()];
    let s = firewall_script(&p);
    let rules: Vec<&str> = s
        .split("cat <<'EOF'\n")
        .nth(1)
        .unwrap()
        .split("\nEOF")
        .next()
        .unwrap()
        .lines()
        .collect();
    let pos = |r: &str| {
        rules
            .iter()
            .position(|x| *x == r)
            .unwrap_or_else(|| panic!("{r} in {rules:?}"))
    };
    let server = pos("-s 10.0.0.10/32 -j RETURN");
    let high = pos("-p tcp -m conntrack --ctstate NEW --ctorigdstport 10000:65535 -j DROP");
    let api = pos("-p tcp -m conntrack --ctstate NEW --ctorigdstport 2376 -j DROP");
    let ssh_ok = pos("-p tcp -s 192.0.2.0/24 -m conntrack --ctorigdstport 22 -j RETURN");
    let ssh_drop = pos("-p tcp -m conntrack --ctstate NEW --ctorigdstport 22 -j DROP");
    assert!(server < high && server < api && ssh_ok < ssh_drop);
    pos("-p udp -m conntrack --ctstate NEW --ctorigdstport 4789 -j DROP");
    pos("-p tcp -m conntrack --ctstate NEW --ctorigdstport 5000 -j DROP");
    pos("-p udp -m conntrack --ctstate NEW --ctorigdstport 10514 -j DROP");
    assert!(s.contains(&format!("N={}\n", rules.len())));
    // Nothing below 10000 but the cluster ports and sshd is closed.
    assert!(!rules.iter().any(|r| r.contains("--ctorigdstport 80 ")));

    // sshd on a high port without source restriction stays reachable.
    p.ssh_source_ips.clear();
    p.sshd_port = 10022;
    let s = firewall_script(&p);
    let ssh = s
        .find("-p tcp -m conntrack --ctorigdstport 10022 -j RETURN")
        .expect("sshd rule");
    let high = s.find("--ctorigdstport 10000:65535 -j DROP").unwrap();
    assert!(ssh < high, "{s}");
    // On the usual port no extra rule is needed.
    p.sshd_port = 22;
    assert!(!firewall_script(&p).contains("--ctorigdstport 22 -j RETURN"));
}

#[test]
fn moving_sshd_to_a_high_port_opens_it_before_the_reload() {
    let mut p = params();
    assert!(!reload_sshd(OsFamily::Debian, &p).contains("iptables"));
    p.sshd_port = 10022;
    let r = reload_sshd(OsFamily::Debian, &p);
    let open = r
        .find("iptables -w -I HIVE-FIREWALL 1 -p tcp --dport 10022 -j RETURN")
        .expect("rule");
    assert!(open < r.find("systemctl reload").unwrap(), "{r}");
    p.ssh_source_ips = vec!["192.0.2.0/24".into()];
    let r = reload_sshd(OsFamily::Debian, &p);
    assert!(
        r.contains("-p tcp -s 192.0.2.0/24 --dport 10022 -j RETURN"),
        "{r}"
    );
}

#[test]
fn registry_container_and_logins() {
    let p = params();
    let inp = Inputs {
        ca_pem: "CA",
        server_cert: None,
        registry_password: Some("s3cret"),
        htpasswd: Some("hive:$2b$..."),
        registry_archive: None,
    };
    let items = registry_server_items(&p, &inp);
    let names: Vec<String> = items.iter().map(|i| i.describe()).collect();
    assert_eq!(
        names,
        [
            "file /etc/hive/registry/htpasswd",
            "image hive/registry:2",
            "container registry"
        ]
    );
    let args = registry_run_args(&p, "abc");
    assert!(args.starts_with("--name registry --restart always"));
    assert!(args.contains("-p 5000:5000"));
    assert!(args.contains("REGISTRY_HTTP_TLS_CERTIFICATE=/certs/server_cert.pem"));
    let logins = registry_login_items(&p, &inp);
    assert_eq!(
        logins[0].describe(),
        "docker login p-repository.pdns:5000 as hive"
    );
    // The password appears in no script, not even as the base64 login
    // docker stores (the check compares its digest): only on the
    // login's standard input.
    let all = super::super::item::check_script(&logins);
    assert!(!all.contains("s3cret"));
    use base64::Engine as _;
    let stored = base64::engine::general_purpose::STANDARD.encode("hive:s3cret");
    assert!(!all.contains(&stored), "{all}");
    assert!(all.contains(&sha256_hex(stored.as_bytes())), "{all}");
    let applies = super::super::item::apply_scripts(&logins, &[true]);
    assert!(!applies[0].0.contains("s3cret"));
    assert_eq!(applies[0].1, Some(&b"s3cret"[..]));
}

#[test]
fn rsyslog_writes_per_tag_files() {
    let mut p = params();
    let c = rsyslog_server_conf(&p);
    assert!(c.contains("/var/log/services/%APP-NAME%.log"));
    assert!(c.contains("$syslogfacility-text == 'local0'"));
    assert!(c.contains("/var/log/service-other-facility.log"));
    assert!(c.contains("input(type=\"imudp\" port=\"10514\""));
    p.tls_logging = true;
    let c = rsyslog_server_conf(&p);
    assert!(c.contains("input(type=\"imtcp\" port=\"10514\""));
    assert!(c.contains("StreamDriver.Name=\"gtls\""));
    assert!(c.contains("PermittedPeer=[\"p-hive0.pdns\",\"p-repository.pdns\"]"));
    let hive_items = logs_items(&p, &p.servers[0], OsFamily::Debian);
    assert!(
        hive_items
            .iter()
            .any(|i| i.describe() == "file /etc/rsyslog.d/90-hive-forward.conf")
    );
    let fwd = rsyslog_forward_conf(&p, "p-repository.pdns");
    for part in [
        "target=\"p-repository.pdns\" port=\"10514\" protocol=\"tcp\"",
        "StreamDriverPermittedPeers=\"p-repository.pdns\"",
        "queue.type=\"LinkedList\"",
        "action.resumeRetryCount=\"-1\"",
    ] {
        assert!(fwd.contains(part), "{part} in {fwd}");
    }
}
