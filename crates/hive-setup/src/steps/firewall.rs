//! The firewall step: iptables rules that keep the cluster's ports to the
//! stage.

use crate::item::Item;
use crate::params::SetupHostsParams;

/// The firewall script installed on every server.
pub(crate) fn firewall_script(p: &SetupHostsParams) -> String {
    let mut rules: Vec<String> = vec![
        "-i lo -j RETURN".into(),
        "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN".into(),
        "-i docker0 -j RETURN".into(),
        "-i docker_gwbridge -j RETURN".into(),
        "-i br-+ -j RETURN".into(),
    ];
    for s in &p.servers {
        rules.push(format!("-s {}/32 -j RETURN", s.private_ip));
    }
    if let Some(c) = p.internal_cidr {
        rules.push(format!("-s {} -j RETURN", c.trunc()));
    }
    if !p.ssh_source_ips.is_empty() {
        for ip in &p.ssh_source_ips {
            rules.push(format!(
                "-p tcp -s {ip} -m conntrack --ctorigdstport {} -j RETURN",
                p.sshd_port
            ));
        }
        rules.push(format!(
            "-p tcp -m conntrack --ctstate NEW --ctorigdstport {} -j DROP",
            p.sshd_port
        ));
    } else if p.sshd_port >= 10000 {
        // sshd open to all on a port the high-port rule below would close.
        rules.push(format!(
            "-p tcp -m conntrack --ctorigdstport {} -j RETURN",
            p.sshd_port
        ));
    }
    let mut tcp = vec![2376u16, 2377, 7946, p.registry_port, p.syslog_port];
    tcp.dedup();
    for port in tcp {
        rules.push(format!(
            "-p tcp -m conntrack --ctstate NEW --ctorigdstport {port} -j DROP"
        ));
    }
    for port in [7946u16, 4789, p.syslog_port] {
        rules.push(format!(
            "-p udp -m conntrack --ctstate NEW --ctorigdstport {port} -j DROP"
        ));
    }
    rules.push("-p tcp -m conntrack --ctstate NEW --ctorigdstport 10000:65535 -j DROP".into());
    rules.push("-p udp -m conntrack --ctstate NEW --ctorigdstport 10000:65535 -j DROP".into());
    let mut s = String::from(
        "#!/bin/sh\n# Managed by hive setup-hosts (firewall step).\n# Ports below 10000 are open to all; 10000 and above, and the cluster\n# ports, only to the stage's servers and local containers.\nset -e\nrules() {\ncat <<'EOF'\n",
    );
    for r in &rules {
        s.push_str(r);
        s.push('\n');
    }
    s.push_str(&format!(
        "EOF\n}}\nN={}\nDNAT='-m conntrack --ctstate DNAT -j HIVE-FIREWALL'\n",
        rules.len()
    ));
    s.push_str(
        r#"case "$1" in
check)
  [ "$(iptables -w -S HIVE-FIREWALL 2>/dev/null | grep -c '^-A')" = "$N" ] &&
  iptables -w -C INPUT -j HIVE-FIREWALL 2>/dev/null &&
  iptables -w -C DOCKER-USER $DNAT 2>/dev/null ;;
apply)
  iptables -w -N HIVE-FIREWALL 2>/dev/null || true
  iptables -w -F HIVE-FIREWALL
  rules | while read -r rule; do iptables -w -A HIVE-FIREWALL $rule; done
  iptables -w -C INPUT -j HIVE-FIREWALL 2>/dev/null || iptables -w -I INPUT 1 -j HIVE-FIREWALL
  iptables -w -N DOCKER-USER 2>/dev/null || true
  iptables -w -C DOCKER-USER $DNAT 2>/dev/null || iptables -w -I DOCKER-USER 1 $DNAT ;;
*) echo "usage: $0 check|apply" >&2; exit 2 ;;
esac
"#,
    );
    s
}

const FIREWALL_UNIT: &str = "# Managed by hive setup-hosts (firewall step).\n[Unit]\nDescription=hive firewall rules\nAfter=network-online.target docker.service\nWants=network-online.target\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/local/sbin/hive-firewall apply\n\n[Install]\nWantedBy=multi-user.target\n";

/// The firewall step's items.
pub(crate) fn firewall_items(p: &SetupHostsParams) -> Vec<Item> {
    vec![
        Item::file("/usr/local/sbin/hive-firewall", firewall_script(p), 0o755)
            .notify("/usr/local/sbin/hive-firewall apply"),
        Item::file(
            "/etc/systemd/system/hive-firewall.service",
            FIREWALL_UNIT,
            0o644,
        )
        .notify("systemctl daemon-reload"),
        Item::state(
            "hive-firewall enabled",
            "systemctl is-enabled -q hive-firewall",
            "systemctl daemon-reload; systemctl enable -q hive-firewall",
        ),
        Item::state(
            "firewall rules loaded",
            "/usr/local/sbin/hive-firewall check",
            "/usr/local/sbin/hive-firewall apply",
        ),
    ]
}
