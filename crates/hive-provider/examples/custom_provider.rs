//! Writing your own provider in another crate: servers that an existing
//! script of yours creates (`<script> up NAME IP`), stops (`halt`) and
//! removes (`destroy`). hive then waits for SSH, pins host keys, writes
//! ssh_config and runs every later phase on them as on any other server.
//!
//! Run: `cargo run -p hive-provider --example custom_provider`

use async_trait::async_trait;
use hive_provider::{
    Endpoint, Provider, ProviderError, ProviderRegistry, ProviderReport, Result, ServerChange,
    ServerRole, ServerSpec, StageSpec,
};
use serde::Deserialize;

/// The stage attributes this provider reads; anything else is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptAttributes {
    /// The script that manages the servers.
    script: String,
    /// The user it creates with the stage's key (default: the admin).
    #[serde(default)]
    login: Option<String>,
}

struct ScriptProvider;

impl ScriptProvider {
    fn attributes(stage: &StageSpec) -> Result<ScriptAttributes> {
        stage.provider_attributes(&["script", "login"])
    }

    async fn run(&self, stage: &StageSpec, action: &str, server: &ServerSpec) -> Result<()> {
        let a = Self::attributes(stage)?;
        let ip = server.private_ip.to_string();
        let status = tokio::process::Command::new(&a.script)
            .args([action, server.name.as_str(), ip.as_str()])
            .status()
            .await
            .map_err(|e| ProviderError::Program {
                program: a.script.clone(),
                args: action.into(),
                message: e.to_string(),
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(ProviderError::Program {
                program: a.script,
                args: format!("{action} {}", server.name),
                message: status.to_string(),
            })
        }
    }

    async fn each(
        &self,
        stage: &StageSpec,
        action: &str,
        change: ServerChange,
    ) -> Result<ProviderReport> {
        let mut report = ProviderReport::default();
        for s in &stage.servers {
            self.run(stage, action, s).await?;
            report.servers.push((s.name.clone(), change));
        }
        Ok(report)
    }
}

#[async_trait]
impl Provider for ScriptProvider {
    fn name(&self) -> &str {
        "script"
    }

    fn validate(&self, stage: &StageSpec) -> Result<Vec<String>> {
        Self::attributes(stage)?;
        stage.check_common()?;
        Ok(Vec::new())
    }

    async fn build(&self, stage: &StageSpec) -> Result<ProviderReport> {
        // A real provider reports Unchanged for servers that already run.
        self.each(stage, "up", ServerChange::Started).await
    }

    async fn halt(&self, stage: &StageSpec) -> Result<ProviderReport> {
        self.each(stage, "halt", ServerChange::Stopped).await
    }

    async fn destroy(&self, stage: &StageSpec) -> Result<ProviderReport> {
        self.each(stage, "destroy", ServerChange::Destroyed).await
    }

    async fn endpoints(&self, stage: &StageSpec) -> Result<Vec<Endpoint>> {
        let login = Self::attributes(stage)?
            .login
            .unwrap_or_else(|| stage.admin.user.clone());
        Ok(stage
            .servers
            .iter()
            .map(|s| Endpoint {
                name: s.name.clone(),
                role: s.role,
                address: s.private_ip.to_string(),
                port: 22,
                user: login.clone(),
                key: stage.private_key_path(),
            })
            .collect())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut stage = StageSpec::new(
        "pdns",
        "staging",
        "script",
        "10.20.0.0/24".parse().expect("cidr"),
        ".hive/staging",
    );
    stage.servers.push(ServerSpec::new(
        "s-hive0.pdns",
        ServerRole::Hive,
        "10.20.0.10".parse().expect("ip"),
    ));
    stage.servers.push(ServerSpec::new(
        "s-hive1.pdns",
        ServerRole::Repository,
        "10.20.0.11".parse().expect("ip"),
    ));

    // A program that offers the provider joins it to the registry; the
    // registry's names are what the inventory loader accepts.
    let mut registry = ProviderRegistry::builtin();
    registry.register("script", || Box::new(ScriptProvider));
    assert!(registry.names().contains(&"script"));
    let provider = registry.provider_for(&stage)?;

    // The provider checks its own attributes, naming the key and what is accepted.
    match provider.validate(&stage) {
        Err(e) => println!("without `script`: {e}"),
        Ok(_) => unreachable!("`script` is required"),
    }
    stage
        .attributes
        .insert("script".into(), "/usr/local/bin/my-cloud".into());
    provider.validate(&stage)?;
    for e in provider.endpoints(&stage).await? {
        println!(
            "{} -> {}@{}:{} key {}",
            e.name,
            e.user,
            e.address,
            e.port,
            e.key.display()
        );
    }
    // With the servers really there, the whole phase is:
    //   hive_provider::build_infra(provider.as_ref(), &stage, &Default::default()).await?;
    Ok(())
}
