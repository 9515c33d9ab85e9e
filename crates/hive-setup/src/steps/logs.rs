//! The logs step: rsyslog on the repository server collecting the
//! services' logs, and every server forwarding to it.

use super::tls_paths;
use crate::item::Item;
use crate::os::OsFamily;
use crate::params::{Server, ServerRole, SetupHostsParams};

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
