//! Bad input is reported with file, line and what is valid; images of the
//! mother machine's engine seed the site registry.
mod common;

use hive_image::{Error, LocalTarget, Registry, RoleLoader, Runner, push_local_image};

#[tokio::test]
async fn unknown_module_argument_names_task_and_argument() {
    let runner = Runner::new(RoleLoader::new([common::roles_dir()]))
        .check_mode(true)
        .ansible_playbook(None);
    let err = runner
        .apply(&LocalTarget, &["bad_role".to_string()])
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::TaskFailed { .. }), "{text}");
    assert!(text.contains("bad_role/tasks/main.yml:2"), "{text}");
    assert!(text.contains("unknown field `mdoe`"), "{text}");
    assert!(text.contains("expected one of"), "{text}");
}

#[tokio::test]
async fn missing_role_lists_where_it_was_looked_for() {
    let runner = Runner::new(RoleLoader::new([common::roles_dir()])).ansible_playbook(None);
    let err = runner
        .apply(&LocalTarget, &["no_such_role".to_string()])
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("role no_such_role not found") && text.contains("built-in roles"),
        "{text}"
    );
}

#[tokio::test]
async fn push_local_image_seeds_the_registry() {
    let d = common::docker().await;
    let tmp = tempfile::tempdir().unwrap();
    let (_reg, port) = common::registry(tmp.path(), false);
    let registry = Registry {
        address: format!("127.0.0.1:{port}"),
        credentials: None,
    };
    let name = format!("himage-test-seed-{}:1", std::process::id());
    let pushed = push_local_image(&d, "hive-test/busybox:1", Some(&name), &registry)
        .await
        .unwrap();
    assert_eq!(pushed, format!("127.0.0.1:{port}/{name}"));
    let repo = name.split(':').next().unwrap();
    let tags = std::process::Command::new("curl")
        .args([
            "-s",
            &format!("http://127.0.0.1:{port}/v2/{repo}/tags/list"),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&tags.stdout).contains("\"1\""),
        "{:?}",
        tags
    );
    // default name: the local reference without its registry
    let pushed = push_local_image(&d, "hive-test/busybox:1", None, &registry)
        .await
        .unwrap();
    assert_eq!(pushed, format!("127.0.0.1:{port}/hive-test/busybox:1"));
    let err = push_local_image(&d, "himage-test-absent:1", None, &registry)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("himage-test-absent:1"), "{err}");
    for img in [
        format!("127.0.0.1:{port}/{name}"),
        format!("127.0.0.1:{port}/hive-test/busybox:1"),
    ] {
        let _ = d.remove_image(&img, None, None).await;
    }
}
