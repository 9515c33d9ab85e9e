//! build-infra when servers do not answer on SSH (a cloud's instances
//! before their network is up): the stage's ssh_config still lists every
//! server, the error names the unreachable ones, and `wait_for_ssh: false`
//! records them without connecting.

use std::net::TcpListener;
use std::time::Duration;

use async_trait::async_trait;
use hive_provider::{
    BuildInfraOptions, Endpoint, Provider, ProviderError, ProviderReport, Result, ServerChange,
    ServerRole, ServerSpec, SshConfig, StageSpec, build_infra,
};

/// Servers that "exist" on ports of 127.0.0.1 where nothing listens.
struct Silent {
    port: u16,
}

#[async_trait]
impl Provider for Silent {
    fn name(&self) -> &str {
        "silent"
    }

    fn validate(&self, stage: &StageSpec) -> Result<Vec<String>> {
        stage.check_common()?;
        Ok(Vec::new())
    }

    async fn build(&self, stage: &StageSpec) -> Result<ProviderReport> {
        Ok(ProviderReport {
            servers: stage
                .servers
                .iter()
                .map(|s| (s.name.clone(), ServerChange::Created))
                .collect(),
            ..Default::default()
        })
    }

    async fn halt(&self, _stage: &StageSpec) -> Result<ProviderReport> {
        Ok(ProviderReport::default())
    }

    async fn destroy(&self, _stage: &StageSpec) -> Result<ProviderReport> {
        Ok(ProviderReport::default())
    }

    async fn endpoints(&self, stage: &StageSpec) -> Result<Vec<Endpoint>> {
        Ok(stage
            .servers
            .iter()
            .map(|s| Endpoint {
                name: s.name.clone(),
                role: s.role,
                address: "127.0.0.1".into(),
                port: self.port,
                user: "admin".into(),
                key: stage.private_key_path(),
            })
            .collect())
    }
}

fn stage(ctx: &std::path::Path) -> StageSpec {
    let mut stage = StageSpec::new(
        "pdns",
        "staging",
        "silent",
        "10.20.0.0/24".parse().unwrap(),
        ctx,
    );
    stage.servers.push(ServerSpec::new(
        "s-hive0.pdns",
        ServerRole::Hive,
        "10.20.0.10".parse().unwrap(),
    ));
    stage.servers.push(ServerSpec::new(
        "s-hive1.pdns",
        ServerRole::Repository,
        "10.20.0.11".parse().unwrap(),
    ));
    stage
}

/// A port of 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn unreachable_servers_are_named_and_still_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let stage = stage(dir.path());
    let provider = Silent {
        port: closed_port(),
    };
    let options = BuildInfraOptions {
        ssh_wait: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let err = build_infra(&provider, &stage, &options).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unreachable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("s-hive0.pdns, s-hive1.pdns did not answer on SSH within 1s"),
        "{msg}"
    );
    assert!(msg.contains("--skip-ssh-wait"), "{msg}");
    let config = SshConfig::load(&stage.ssh_config_path()).unwrap();
    let names: Vec<&str> = config.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["s-hive0.pdns", "s-hive1.pdns"]);

    let skip = BuildInfraOptions {
        wait_for_ssh: false,
        ..options
    };
    let report = build_infra(&provider, &stage, &skip).await.unwrap();
    assert!(report.servers.iter().all(|s| !s.host_key_pinned));
    assert_eq!(report.servers.len(), 2);
    let known = std::fs::read_to_string(stage.known_hosts_path()).unwrap();
    assert!(known.is_empty(), "no key pinned: {known}");
}
