//! Applies roles to a running container with hive's runner and prints one
//! line: `changed=<n> failed=<n> tasks=<n> seconds=<s>`.
//!
//! `apply_role CONTAINER ROLES_DIR ROLE...` (used by scripts/bench/apply-role.sh);
//! `DOCKER_SOCK` names the engine socket (default `/var/run/docker.sock`).

use hive_image::{ContainerTarget, RoleLoader, Runner, TaskStatus};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [container, dir, roles @ ..] = args.as_slice() else {
        return Err("usage: apply_role CONTAINER ROLES_DIR ROLE...".into());
    };
    let start = std::time::Instant::now();
    let docker = hive_image::connect(
        &std::env::var("DOCKER_SOCK").unwrap_or_else(|_| "/var/run/docker.sock".into()),
    )
    .await?;
    let target = ContainerTarget::new(docker, container.clone());
    let runner = Runner::new(RoleLoader::new([dir.into()])).ansible_playbook(None);
    let report = runner.apply(&target, roles).await?;
    target.close().await;
    println!(
        "changed={} failed={} tasks={} seconds={:.3}",
        report.changed().len(),
        report.count(TaskStatus::Failed),
        report.events.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
