//! Applies one role to a running container with hive's runner and counts
//! its `assert` executions, for scripts/ansible-conformance.sh.
//!
//! `conformance CONTAINER ROLES_DIR ROLE [VARS.json [EXTRA.json]]`: the
//! files hold host variables (the facts the targets read, given to both
//! sides) and extra variables (`-e`).
//! Prints one `failed-assert LOCATION: MESSAGE` line per failed assert,
//! `end: MESSAGE` when the run ended on an error, then
//! `asserts passed=<n> failed=<n> tasks=<n> seconds=<s>`, where `tasks`
//! counts module tasks run (a looped task once, `meta` not counted), as
//! Ansible's callback does.
//! `DOCKER_SOCK` names the engine socket (default `/var/run/docker.sock`);
//! with `CONFORMANCE_TASKS` set, every task execution is listed too.

use std::sync::{Arc, Mutex};

use hive_image::{ContainerTarget, RoleLoader, Runner, TaskEvent, TaskStatus, Vars};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [container, dir, role, rest @ ..] = args.as_slice() else {
        return Err("usage: conformance CONTAINER ROLES_DIR ROLE [VARS.json]".into());
    };
    let read = |f: Option<&String>| -> Result<Vars, Box<dyn std::error::Error>> {
        Ok(match f {
            Some(f) => serde_json::from_slice(&std::fs::read(f)?)?,
            None => Vars::new(),
        })
    };
    let mut vars = read(rest.first())?;
    // what hive's callers give every run: the host's name and hostvars
    vars.insert("inventory_hostname".into(), serde_json::json!("testhost"));
    vars.insert("hostvars".into(), serde_json::json!({"testhost": {}}));
    let extra = read(rest.get(1))?;
    let start = std::time::Instant::now();
    let docker = hive_image::connect(
        &std::env::var("DOCKER_SOCK").unwrap_or_else(|_| "/var/run/docker.sock".into()),
    )
    .await?;
    let target = ContainerTarget::new(docker, container.clone());
    let events: Arc<Mutex<Vec<TaskEvent>>> = Arc::default();
    let sink = events.clone();
    let runner = Runner::new(RoleLoader::new([dir.into()]))
        .ansible_playbook(None)
        .vars(vars)
        .extra_vars(extra)
        .on_event(Arc::new(move |e: &TaskEvent| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.clone());
            }
        }));
    let result = runner.apply(&target, std::slice::from_ref(role)).await;
    target.close().await;
    let events = events.lock().map(|v| v.clone()).unwrap_or_default();
    if std::env::var_os("CONFORMANCE_TASKS").is_some() {
        for e in &events {
            println!("task {:?}: {} ({:?})", e.status, e.task, e.module);
        }
    }
    // one count per assert task, as Ansible's callback sees it: the items
    // of a looped assert pass together
    let mut asserts: Vec<(String, TaskStatus, Option<String>)> = vec![];
    let mut prev_item = false;
    for e in events
        .iter()
        .filter(|e| e.module.as_deref() == Some("assert"))
    {
        let failed = matches!(e.status, TaskStatus::Failed | TaskStatus::Ignored);
        match asserts.last_mut() {
            Some(last) if prev_item && e.item.is_some() && last.0 == e.task => {
                if failed {
                    last.1 = e.status;
                    last.2 = e.msg.clone();
                } else if last.1 == TaskStatus::Skipped {
                    last.1 = e.status;
                }
            }
            _ => asserts.push((e.task.clone(), e.status, e.msg.clone())),
        }
        prev_item = e.item.is_some();
    }
    let mut tasks = 0;
    let mut prev: Option<&TaskEvent> = None;
    for e in events.iter().filter(|e| {
        e.module
            .as_deref()
            .is_some_and(|m| m != "meta" && !m.ends_with("_tasks") && !m.ends_with("_role"))
    }) {
        let same_loop =
            prev.is_some_and(|p| p.item.is_some() && e.item.is_some() && p.task == e.task);
        if !same_loop {
            tasks += 1;
        }
        prev = Some(e);
    }
    let (mut passed, mut failed) = (0, 0);
    for (task, status, msg) in &asserts {
        match status {
            TaskStatus::Ok | TaskStatus::Changed => passed += 1,
            TaskStatus::Failed | TaskStatus::Ignored => {
                failed += 1;
                println!(
                    "failed-assert {task}: {}",
                    msg.as_deref().unwrap_or("").replace('\n', " ")
                );
            }
            TaskStatus::Skipped => {}
        }
    }
    if let Err(e) = result {
        println!("end: {}", e.to_string().replace('\n', " "));
    }
    println!(
        "asserts passed={passed} failed={failed} tasks={tasks} seconds={:.3}",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
