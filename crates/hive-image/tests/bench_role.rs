//! The benchmark's role (22 task executions) applied to a Debian container.
mod common;

use hive_image::{ContainerTarget, ExecRequest, RoleLoader, Runner, Target, TaskStatus};

#[tokio::test]
async fn bench_role_applies_then_changes_nothing() {
    let d = common::docker().await;
    let name = common::container(&d, "bench", common::DEBIAN).await;
    let target = ContainerTarget::new(d.clone(), name.clone());
    let runner = Runner::new(RoleLoader::new([common::roles_dir()])).ansible_playbook(None);
    let roles = vec!["bench_role".to_string()];
    let first = runner.apply(&target, &roles).await.unwrap();
    assert_eq!(first.events.len(), 23, "{:#?}", first.events); // 22 + the handler
    assert_eq!(first.count(TaskStatus::Failed), 0);
    assert!(first.changed().len() >= 16, "{:#?}", first.changed());
    let second = runner.apply(&target, &roles).await.unwrap();
    assert!(second.changed().is_empty(), "{:#?}", second.changed());
    let out = target
        .exec(&ExecRequest::shell(
            "cat /opt/benchapp/conf/app.ini /opt/benchapp/conf/settings; stat -c %a /var/log/benchapp; id appuser; cat /opt/benchapp/reloaded >/dev/null && echo reloaded",
        ))
        .await
        .unwrap();
    let text = out.stdout_text();
    assert!(
        text.contains("[benchapp]\nport = 8080\nworkers = 4\nuser = appuser\n"),
        "{text}"
    );
    assert!(
        text.contains("LOG_LEVEL=info\nCACHE_SIZE=256\nTIMEOUT=30\n"),
        "{text}"
    );
    assert!(text.contains("750\n"), "{text}");
    assert!(text.contains("uid=1000(appuser)"), "{text}");
    assert!(text.contains("reloaded"), "{text}");
    target.close().await;
    common::remove(&d, &name).await;
}
