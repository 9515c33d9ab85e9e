//! The steps, as tags for `-T`, and what each manages on a server.

use std::fmt;
use std::str::FromStr;

use super::error::SetupHostsError;
use super::item::{Item, sha256_hex};
use super::net::InternalNetworks;
use super::os::OsFamily;
use super::params::{Server, ServerRole, SetupHostsParams};
use super::pki::CertPair;
use hive_model::shell_quote;

/// A step of the phase; its name is the tag `-T` selects it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StepTag {
    /// Packages, host name, time zone, locale, sshd, `/etc/hosts`, NTP,
    /// users and groups.
    Base,
    /// The site PKI and every server's certificate installed.
    Pki,
    /// The Docker engine with its TLS API, address pools and registry trust.
    Docker,
    /// The swarm: init, joins, node labels, internal networks.
    Swarm,
    /// The registry on the repository server; every server logged in.
    Registry,
    /// iptables: high ports and cluster ports reachable from the stage only.
    Firewall,
    /// DRBD on the hives (hive-drbd's host preparation), when the stage
    /// has DRBD volumes or `-T drbd` selects it.
    Drbd,
    /// rsyslog on the repository server collecting the services' logs.
    Logs,
    /// The backup command and its daily run at 01:00 on the repository
    /// server (the original's `backup-tools`).
    Backup,
    /// The project's `roles/addon`, run by the role runner.
    Addon,
}

impl StepTag {
    /// Every step, in the order they run.
    pub const ALL: [StepTag; 10] = [
        StepTag::Base,
        StepTag::Pki,
        StepTag::Docker,
        StepTag::Swarm,
        StepTag::Registry,
        StepTag::Firewall,
        StepTag::Drbd,
        StepTag::Logs,
        StepTag::Backup,
        StepTag::Addon,
    ];

    /// The tag.
    pub fn name(self) -> &'static str {
        match self {
            StepTag::Base => "base",
            StepTag::Pki => "pki",
            StepTag::Docker => "docker",
            StepTag::Swarm => "swarm",
            StepTag::Registry => "registry",
            StepTag::Firewall => "firewall",
            StepTag::Drbd => "drbd",
            StepTag::Logs => "logs",
            StepTag::Backup => "backup",
            StepTag::Addon => "addon",
        }
    }
}

impl fmt::Display for StepTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StepTag {
    type Err = SetupHostsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepTag::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| SetupHostsError::UnknownStep {
                name: s.to_string(),
            })
    }
}

/// Where the server's TLS files live on it.
pub(crate) const TLS_DIR: &str = "/etc/hive/tls";
pub(crate) const REGISTRY_DIR: &str = "/etc/hive/registry";

pub(crate) fn tls_paths() -> (String, String, String) {
    (
        format!("{TLS_DIR}/ca.pem"),
        format!("{TLS_DIR}/server_cert.pem"),
        format!("{TLS_DIR}/server_key.pem"),
    )
}

/// What the item builders need besides the parameters.
pub(crate) struct Inputs<'a> {
    pub ca_pem: &'a str,
    pub server_cert: Option<&'a CertPair>,
    pub registry_password: Option<&'a str>,
    pub htpasswd: Option<&'a str>,
    pub registry_archive: Option<&'a [u8]>,
}

/// The names a server's certificate is valid for.
pub(crate) fn cert_names(server: &Server) -> Vec<String> {
    let mut v = vec![server.name.clone()];
    if server.hostname() != server.name {
        v.push(server.hostname().to_string());
    }
    v.push(server.private_ip.to_string());
    v.push("localhost".into());
    v.push("127.0.0.1".into());
    v
}

fn reload_sshd(os: OsFamily, p: &SetupHostsParams) -> String {
    let s = os.sshd_service();
    let mut script = format!(
        "sshd -t && {{ systemctl reload {s} 2>/dev/null || systemctl restart {s} 2>/dev/null || kill -HUP \"$(cat /run/sshd.pid)\"; }}"
    );
    // A firewall from an earlier run closes ports of 10000 and above to the
    // mother machine until the firewall step rewrites it: open the new sshd
    // port first, or hive would lock itself out.
    if p.sshd_port >= 10000 {
        let sources: Vec<Option<&str>> = if p.ssh_source_ips.is_empty() {
            vec![None]
        } else {
            p.ssh_source_ips
                .iter()
                .map(|ip| Some(ip.as_str()))
                .collect()
        };
        let mut open = String::from("if iptables -w -n -L HIVE-FIREWALL >/dev/null 2>&1; then");
        for src in sources {
            let rule = match src {
                Some(ip) => format!("-p tcp -s {ip} --dport {} -j RETURN", p.sshd_port),
                None => format!("-p tcp --dport {} -j RETURN", p.sshd_port),
            };
            open.push_str(&format!(
                " iptables -w -C HIVE-FIREWALL {rule} 2>/dev/null || iptables -w -I HIVE-FIREWALL 1 {rule};"
            ));
        }
        open.push_str(" fi; ");
        script = open + &script;
    }
    script
}

/// The sshd settings hive enforces.
pub(crate) fn sshd_config(p: &SetupHostsParams) -> String {
    let mut s = String::from("# Managed by hive setup-hosts (base step).\n");
    s.push_str(&format!("Port {}\n", p.sshd_port));
    s.push_str("PasswordAuthentication no\n");
    s.push_str("KbdInteractiveAuthentication no\n");
    s.push_str("ChallengeResponseAuthentication no\n");
    s.push_str("UseDNS no\n");
    if p.refuse_root_login {
        s.push_str("PermitRootLogin no\n");
    }
    s
}

/// `/etc/hosts` lines for every server of the stage.
pub(crate) fn hosts_block(p: &SetupHostsParams) -> String {
    let mut s = String::new();
    for srv in &p.servers {
        if srv.hostname() != srv.name {
            s.push_str(&format!(
                "{} {} {}\n",
                srv.private_ip,
                srv.name,
                srv.hostname()
            ));
        } else {
            s.push_str(&format!("{} {}\n", srv.private_ip, srv.name));
        }
    }
    s
}

/// chrony's main configuration file and an extended regular expression for
/// the distribution's default NTP sources in it (Debian's `pool` lines,
/// the `*.pool.ntp.org` servers and pools of the Red Hat family; hive's own
/// `server` lines on Red Hat are left alone).
pub(crate) fn chrony_default_sources(os: OsFamily) -> (&'static str, &'static str) {
    match os {
        OsFamily::Debian => ("/etc/chrony/chrony.conf", "^(pool|server|peer) .*"),
        OsFamily::RedHat { .. } => (
            "/etc/chrony.conf",
            "^(pool .*|server [0-9]+\\.[a-z0-9.-]*pool\\.ntp\\.org.*)",
        ),
    }
}

/// The base step's items.
pub(crate) fn base_items(p: &SetupHostsParams, server: &Server, os: OsFamily) -> Vec<Item> {
    let mut items = Vec::new();
    let mut pkgs: Vec<&str> = os.base_packages().to_vec();
    if !p.ntp_servers.is_empty() {
        pkgs.push("chrony");
    }
    items.push(Item::state(
        format!("packages {}", pkgs.join(" ")),
        os.packages_installed(&pkgs),
        os.install_packages(&pkgs),
    ));
    let h = shell_quote(server.hostname());
    items.push(Item::state(
        format!("host name {}", server.hostname()),
        format!("[ \"$(hostname)\" = {h} ] && [ \"$(cat /etc/hostname)\" = {h} ]"),
        format!(
            "echo {h} >/etc/hostname; hostname {h} 2>/dev/null || hostnamectl set-hostname {h}"
        ),
    ));
    if let Some(tz) = &p.timezone {
        let zone = format!("/usr/share/zoneinfo/{tz}");
        let z = shell_quote(&zone);
        items.push(Item::state(
            format!("time zone {tz}"),
            format!("case \"$(readlink /etc/localtime)\" in {z}|..{z}) true;; *) false;; esac"),
            format!(
                "[ -f {z} ] || {{ echo \"unknown time zone {}\" >&2; exit 1; }}; ln -sf {z} /etc/localtime; echo {} >/etc/timezone",
                shell_quote(tz),
                shell_quote(tz)
            ),
        ));
    }
    if let Some(locale) = p.locale_name() {
        items.push(Item::state(
            format!("locale {locale}"),
            os.locale_is(locale),
            os.set_locale(locale),
        ));
    }
    items.push(Item::state(
        "sshd includes sshd_config.d",
        "grep -qiE '^Include /etc/ssh/sshd_config.d/\\*.conf' /etc/ssh/sshd_config",
        "sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config",
    ));
    items.push(
        Item::file("/etc/ssh/sshd_config.d/00-hive.conf", sshd_config(p), 0o644)
            .notify(reload_sshd(os, p)),
    );
    items.push(Item::block("/etc/hosts", "servers", hosts_block(p)));
    if !p.ntp_servers.is_empty() {
        let conf: String = p
            .ntp_servers
            .iter()
            .map(|s| format!("server {s} iburst\n"))
            .collect();
        let restart = format!("systemctl restart {}", os.chrony_service());
        let item = match os {
            OsFamily::Debian => Item::file(os.chrony_config(), conf, 0o644),
            OsFamily::RedHat { .. } => Item::block(os.chrony_config(), "ntp servers", conf),
        };
        items.push(item.notify(restart.clone()));
        // Only the servers asked for: the distribution's default sources
        // are commented out, as the original does.
        let (main, default_sources) = chrony_default_sources(os);
        items.push(
            Item::state(
                format!("default NTP sources off in {main}"),
                // Fails while chrony is not installed, so that a first run
                // (which installs it in this step) applies it.
                format!(
                    "[ -f {main} ] && ! grep -qE {} {main}",
                    shell_quote(default_sources)
                ),
                format!(
                    "sed -i -E {} {main}",
                    shell_quote(&format!("s/{default_sources}/# &/"))
                ),
            )
            .notify(restart),
        );
        let svc = os.chrony_service();
        items.push(Item::state(
            format!("{svc} running"),
            format!("systemctl is-enabled -q {svc} && systemctl is-active -q {svc}"),
            format!("systemctl enable -q {svc}; systemctl start {svc}"),
        ));
    }
    for (name, g) in &p.user_groups {
        let n = shell_quote(name);
        items.push(Item::state(
            format!("group {name} ({})", g.gid),
            format!("[ \"$(getent group {n} | cut -d: -f3)\" = {} ]", g.gid),
            format!(
                "if getent group {n} >/dev/null; then groupmod -g {gid} {n}; else groupadd -g {gid} {n}; fi",
                gid = g.gid
            ),
        ));
        items.push(Item::file(
            &format!("/etc/sudoers.d/{name}"),
            format!("%{name} ALL=(ALL) NOPASSWD: ALL\n"),
            0o440,
        ));
    }
    for (name, u) in &p.users {
        let n = shell_quote(name);
        let g = shell_quote(&u.group);
        items.push(Item::state(
            format!("user {name} ({})", u.uid),
            format!("[ \"$(id -u {n} 2>/dev/null)\" = {} ] && [ \"$(id -gn {n})\" = {g} ] && [ -d /home/{name}/.ssh ]", u.uid),
            format!(
                "if id -u {n} >/dev/null 2>&1; then usermod -u {uid} -g {g} {n}; else useradd -m -s /bin/bash -u {uid} -g {g} {n}; fi; install -d -m 700 -o {n} -g {g} /home/{name}/.ssh",
                uid = u.uid
            ),
        ));
        items.push(Item::block(
            &format!("/home/{name}/.ssh/authorized_keys"),
            "hive_users",
            u.id_rsa_pub.trim().to_string(),
        ));
    }
    let _ = server;
    items
}

/// The pki step's items: the CA trusted system-wide and the server's
/// certificate and key.
pub(crate) fn pki_items(inp: &Inputs<'_>, os: OsFamily) -> Vec<Item> {
    let (ca, cert, key) = tls_paths();
    let mut items = vec![Item::file(&ca, inp.ca_pem, 0o644)];
    if let Some(pair) = inp.server_cert {
        items.push(Item::file(&cert, pair.cert_pem.as_bytes(), 0o644));
        items.push(Item::file(&key, pair.key_pem.as_bytes(), 0o600));
    }
    let (trust, refresh) = os.ca_trust();
    items.push(Item::file(trust, inp.ca_pem, 0o644).notify(refresh));
    items
}

const DOCKER_RESTART: &str = "systemctl daemon-reload; systemctl restart docker; i=0; until docker info >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 120 ] || { echo 'docker did not come back' >&2; exit 1; }; sleep 0.5; done";

/// `daemon.json`: the TLS API on 2376 with client certificates required,
/// and the bridges' addresses from `internal_cidr`.
pub(crate) fn daemon_json(p: &SetupHostsParams) -> String {
    let (ca, cert, key) = tls_paths();
    let mut v = serde_json::json!({
        "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"],
        "tls": true,
        "tlsverify": true,
        "tlscacert": ca,
        "tlscert": cert,
        "tlskey": key,
        "iptables": true,
    });
    if let (Some(cidr), Some(obj)) = (p.internal_cidr, v.as_object_mut()) {
        let n = InternalNetworks::split(cidr);
        obj.insert("bip".into(), n.bip.clone().into());
        let size = (n.registry.prefix_len() + 2).min(29);
        obj.insert(
            "default-address-pools".into(),
            serde_json::json!([{"base": n.registry.to_string(), "size": size}]),
        );
    }
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// The systemd drop-in for docker: no `-H` on the command line (the hosts
/// are in `daemon.json`), restart policy as the original.
pub(crate) fn docker_override(os: OsFamily) -> String {
    format!(
        "# Managed by hive setup-hosts (docker step).\n[Service]\nRestart=always\nRestartSec=15s\nEnvironmentFile=-/etc/environment\nExecStart=\nExecStart={} --containerd=/run/containerd/containerd.sock\n",
        os.dockerd_path()
    )
}

/// The docker step's items.
pub(crate) fn docker_items(p: &SetupHostsParams, inp: &Inputs<'_>, os: OsFamily) -> Vec<Item> {
    let mut items = Vec::new();
    if let Some(setup) = os.docker_repository_setup() {
        items.push(Item::state(
            "Docker CE repository",
            "[ -f /etc/yum.repos.d/docker-ce.repo ]",
            setup,
        ));
    }
    items.push(Item::file("/etc/docker/daemon.json", daemon_json(p), 0o644).notify(DOCKER_RESTART));
    items.push(
        Item::file(
            "/etc/systemd/system/docker.service.d/hive.conf",
            docker_override(os),
            0o644,
        )
        .notify(DOCKER_RESTART),
    );
    if let Some(reg) = p.registry_address() {
        items.push(Item::file(
            &format!("/etc/docker/certs.d/{reg}/ca.crt"),
            inp.ca_pem,
            0o644,
        ));
    }
    let pkgs = os.docker_packages();
    items.push(Item::state(
        format!("packages {}", pkgs.join(" ")),
        os.packages_installed(pkgs),
        os.install_packages(pkgs),
    ));
    let a = shell_quote(&p.admin);
    items.push(Item::state(
        format!("{} in group docker", p.admin),
        format!("id -nG {a} | tr ' ' '\\n' | grep -qx docker"),
        format!(
            "getent group docker >/dev/null || groupadd docker; id -u {a} >/dev/null 2>&1 || useradd -m -s /bin/bash {a}; usermod -aG docker {a}"
        ),
    ));
    // The admin's Docker client speaks TLS to every hive with the server's
    // certificate, as the original's docker-client role sets up.
    let home = format!("/home/{}", p.admin);
    items.push(Item::state(
        format!("directory {home}/.docker"),
        format!(
            "[ \"$(stat -c %U:%a {}/.docker 2>/dev/null)\" = {}:700 ]",
            shell_quote(&home),
            shell_quote(&p.admin)
        ),
        format!(
            "install -d -m 700 -o {a} -g \"$(id -gn {a})\" {}/.docker",
            shell_quote(&home)
        ),
    ));
    if let Some(pair) = inp.server_cert {
        for (f, data) in [
            ("ca.pem", inp.ca_pem),
            ("cert.pem", pair.cert_pem.as_str()),
            ("key.pem", pair.key_pem.as_str()),
        ] {
            items.push(
                Item::file(&format!("{home}/.docker/{f}"), data, 0o600).owned(&p.admin, "docker"),
            );
        }
    }
    items.push(Item::state(
        "docker running",
        "systemctl is-enabled -q docker && systemctl is-active -q docker && docker info >/dev/null",
        format!("systemctl enable -q docker; {DOCKER_RESTART}"),
    ));
    items
}

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

/// The registry container's `docker run` arguments (after `docker run -d`).
pub(crate) fn registry_run_args(p: &SetupHostsParams, spec: &str) -> String {
    let (_, cert, key) = tls_paths();
    let cert = cert.replace(TLS_DIR, "/certs");
    let key = key.replace(TLS_DIR, "/certs");
    format!(
        "--name registry --restart always --label io.hive.spec={spec} -p {port}:5000 \
-v hive-registry-data:/var/lib/registry -v {REGISTRY_DIR}:/auth:ro -v {TLS_DIR}:/certs:ro \
-e REGISTRY_STORAGE_DELETE_ENABLED=true -e REGISTRY_AUTH=htpasswd \
-e 'REGISTRY_AUTH_HTPASSWD_REALM=Registry Realm' -e REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd \
-e REGISTRY_HTTP_TLS_CERTIFICATE={cert} -e REGISTRY_HTTP_TLS_KEY={key} {image}",
        port = p.registry_port,
        image = shell_quote(&p.registry_image),
    )
}

/// The registry step's items on the repository server.
pub(crate) fn registry_server_items(p: &SetupHostsParams, inp: &Inputs<'_>) -> Vec<Item> {
    let mut items = Vec::new();
    let Some(htpasswd) = inp.htpasswd else {
        return items;
    };
    items.push(Item::file(
        &format!("{REGISTRY_DIR}/htpasswd"),
        htpasswd,
        0o600,
    ));
    let image = shell_quote(&p.registry_image);
    let load = Item::state(
        format!("image {}", p.registry_image),
        format!("docker image inspect {image} >/dev/null"),
        match inp.registry_archive {
            Some(_) => "docker load >/dev/null".to_string(),
            None => format!("docker pull -q {image} >/dev/null"),
        },
    );
    items.push(match inp.registry_archive {
        Some(a) => load.with_stdin(a.to_vec()),
        None => load,
    });
    // The container is recreated when its arguments, the password file or
    // the certificate change.
    let cert = inp.server_cert.map(|c| c.cert_pem.as_str()).unwrap_or("");
    let spec = sha256_hex(format!("{}\n{htpasswd}\n{cert}", registry_run_args(p, "")).as_bytes())
        [..16]
        .to_string();
    let reg = p.registry_address().unwrap_or_default();
    items.push(Item::state(
        "container registry",
        format!(
            "[ \"$(docker inspect -f '{{{{index .Config.Labels \"io.hive.spec\"}}}} {{{{.State.Running}}}}' registry 2>/dev/null)\" = '{spec} true' ]"
        ),
        format!(
            "docker rm -f registry >/dev/null 2>&1 || true; docker run -d {} >/dev/null; \
i=0; until curl -s -o /dev/null --cacert {TLS_DIR}/ca.pem https://{reg}/v2/; do i=$((i+1)); [ $i -lt 60 ] || {{ echo 'registry does not answer' >&2; docker logs --tail 20 registry >&2; exit 1; }}; sleep 0.5; done",
            registry_run_args(p, &spec)
        ),
    ));
    items
}

/// `docker login` as root to `registry`, unless the stored credentials
/// already match. The password goes through standard input only; the check
/// compares a digest of the stored login, so that no form of the password
/// shows in the server's process list.
pub(crate) fn login_item(registry: &str, user: &str, password: &str) -> Item {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let digest = sha256_hex(auth.as_bytes());
    let r = shell_quote(registry);
    Item::state(
        format!("docker login {registry} as {user}"),
        format!(
            "grep -qF {r} /root/.docker/config.json && \
sed -n 's/.*\"auth\": *\"\\([^\"]*\\)\".*/\\1/p' /root/.docker/config.json \
| while read -r a; do printf '%s' \"$a\" | sha256sum; done | grep -qF {digest}"
        ),
        format!(
            "docker login -u {} --password-stdin {r} >/dev/null",
            shell_quote(user)
        ),
    )
    .with_stdin(password.as_bytes().to_vec())
}

/// The registry step's items on every server: logins.
pub(crate) fn registry_login_items(p: &SetupHostsParams, inp: &Inputs<'_>) -> Vec<Item> {
    let mut items = Vec::new();
    if let (Some(reg), Some(pw)) = (p.registry_address(), inp.registry_password) {
        items.push(login_item(&reg, &p.registry_user, pw));
    }
    for ext in &p.ext_repositories {
        items.push(login_item(&ext.repository, &ext.login_user, &ext.password));
    }
    items
}

/// rsyslog's configuration on the repository server: one file per service
/// tag under `/var/log/services/`.
pub(crate) fn rsyslog_server_conf(p: &SetupHostsParams) -> String {
    let (ca, cert, key) = tls_paths();
    let mut s = String::from("# Managed by hive setup-hosts (logs step).\n");
    if p.tls_logging {
        let peers: Vec<String> = p
            .servers
            .iter()
            .map(|s| format!("\"{}\"", s.name))
            .collect();
        s.push_str(&format!(
            "global(DefaultNetstreamDriverCAFile=\"{ca}\" DefaultNetstreamDriverCertFile=\"{cert}\" DefaultNetstreamDriverKeyFile=\"{key}\")\n\
module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"x509/name\" PermittedPeer=[{}])\n",
            peers.join(",")
        ));
    } else {
        s.push_str("module(load=\"imudp\")\n");
    }
    s.push_str(
        "template(name=\"hiveServiceFile\" type=\"string\" string=\"/var/log/services/%APP-NAME%.log\")\n\
template(name=\"hiveServiceLine\" type=\"string\" string=\"%timegenerated:::date-rfc3339% %HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\\n\")\n\
template(name=\"hiveInnerFile\" type=\"string\" string=\"/var/log/services/%HOSTNAME%.%APP-NAME%.log\")\n\
template(name=\"hiveOtherLine\" type=\"string\" string=\"%timegenerated:::date-rfc3339% %HOSTNAME% %syslogfacility-text%.%syslogseverity-text%: %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\\n\")\n\
ruleset(name=\"hive-services\") {\n\
  if $syslogfacility-text == 'local0' and re_match($app-name, '^[A-Za-z0-9_][A-Za-z0-9_.-]*$') then {\n\
    action(type=\"omfile\" dynaFile=\"hiveServiceFile\" template=\"hiveServiceLine\" fileCreateMode=\"0640\" dirCreateMode=\"0755\")\n\
  } else if $syslogfacility-text == 'local1' and re_match($app-name, '^[A-Za-z0-9_][A-Za-z0-9_.-]*$') then {\n\
    action(type=\"omfile\" dynaFile=\"hiveInnerFile\" template=\"hiveServiceLine\" fileCreateMode=\"0640\" dirCreateMode=\"0755\")\n\
  } else {\n\
    action(type=\"omfile\" file=\"/var/log/service-other-facility.log\" template=\"hiveOtherLine\" fileCreateMode=\"0640\")\n\
  }\n\
  stop\n\
}\n",
    );
    s.push_str(&format!(
        "input(type=\"{}\" port=\"{}\" ruleset=\"hive-services\")\n",
        if p.tls_logging { "imtcp" } else { "imudp" },
        p.syslog_port
    ));
    s
}

/// rsyslog's forwarding of a hive's own logs to the repository server over
/// TCP+TLS. Lines are queued in memory and retried without end while the
/// collector is unreachable (e.g. restarting in the same run), instead of
/// being dropped while the action is suspended.
pub(crate) fn rsyslog_forward_conf(p: &SetupHostsParams, repository: &str) -> String {
    let (ca, cert, key) = tls_paths();
    format!(
        "# Managed by hive setup-hosts (logs step).\n\
global(DefaultNetstreamDriverCAFile=\"{ca}\" DefaultNetstreamDriverCertFile=\"{cert}\" DefaultNetstreamDriverKeyFile=\"{key}\")\n\
*.* action(type=\"omfwd\" target=\"{r}\" port=\"{port}\" protocol=\"tcp\" StreamDriver=\"gtls\" StreamDriverMode=\"1\" StreamDriverAuthMode=\"x509/name\" StreamDriverPermittedPeers=\"{r}\" \
queue.type=\"LinkedList\" queue.size=\"10000\" action.resumeRetryCount=\"-1\" action.resumeInterval=\"5\")\n",
        r = repository,
        port = p.syslog_port
    )
}

/// The logs step's items on a server.
pub(crate) fn logs_items(p: &SetupHostsParams, server: &Server, os: OsFamily) -> Vec<Item> {
    let mut items = Vec::new();
    let restart = "systemctl restart rsyslog";
    let mut pkgs = vec!["rsyslog"];
    if p.tls_logging {
        pkgs.push("rsyslog-gnutls");
    }
    items.push(Item::state(
        format!("packages {}", pkgs.join(" ")),
        os.packages_installed(&pkgs),
        os.install_packages(&pkgs),
    ));
    if server.role == ServerRole::Repository {
        items.push(Item::state(
            "directory /var/log/services",
            "[ -d /var/log/services ]",
            "install -d -m 755 /var/log/services",
        ));
        items.push(
            Item::file(
                "/etc/rsyslog.d/10-hive-services.conf",
                rsyslog_server_conf(p),
                0o644,
            )
            .notify(restart),
        );
        items.push(Item::block(
            "/etc/logrotate.d/rsyslog",
            "services",
            "/var/log/services/*.log",
        ));
    } else if p.tls_logging {
        if let Some(repo) = p.repository() {
            items.push(
                Item::file(
                    "/etc/rsyslog.d/90-hive-forward.conf",
                    rsyslog_forward_conf(p, &repo.name),
                    0o644,
                )
                .notify(restart),
            );
        }
    }
    items.push(Item::state(
        "rsyslog running",
        "systemctl is-active -q rsyslog",
        "systemctl enable -q rsyslog; systemctl start rsyslog",
    ));
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{HiveUser, UserGroup};

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
        assert!(
            docker_override(OsFamily::RedHat { dnf: true }).contains("ExecStart=/usr/bin/dockerd")
        );
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
}
