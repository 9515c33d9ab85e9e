//! A role using every keyword and module, built into an image with
//! build_image (real engine, real registry), then checked from a container
//! of the pushed image; a second build changes nothing.
mod common;

use std::process::Command;

use hive_image::{
    BuildOptions, ContainerTarget, Credentials, ExecRequest, ImageDefinition, Registry, RoleLoader,
    Runner, Target, TaskStatus, Vars, build_image,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves "payload" on every request.
async fn http_server() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\npayload\n",
                )
                .await;
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_role_builds_pushes_and_is_idempotent() {
    let d = common::docker().await;
    let tmp = tempfile::tempdir().unwrap();
    let (_reg, port) = common::registry(tmp.path(), true);
    let http = http_server().await;
    let service = format!("himage-test-full-{}", std::process::id());
    let def = ImageDefinition {
        service: service.clone(),
        from: common::DEBIAN.into(),
        roles: vec!["full_role".into()],
        env: vec![("APP_ENV".into(), "test".into())],
        working_dir: Some("/opt/demo".into()),
        expose: vec!["8080".into()],
        stop_signal: Some("SIGINT".into()),
        ..Default::default()
    };
    let reg = Registry {
        address: format!("127.0.0.1:{port}"),
        credentials: Some(Credentials {
            username: "hive".into(),
            password: "s3cret".into(),
        }),
    };
    let mut vars = Vars::new();
    vars.insert(
        "http_base".into(),
        json!(format!("http://127.0.0.1:{http}")),
    );
    let opts = BuildOptions {
        stage: "private".into(),
        rebuild: true,
        tag_mapping: Default::default(),
        proxy_env: vec![],
        runner: Runner::new(RoleLoader::new([common::roles_dir()]))
            .vars(vars)
            .ansible_playbook(None),
    };
    let events = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
    let sink = events.clone();
    let progress = std::sync::Arc::new(move |e: hive_image::BuildEvent| {
        sink.lock().unwrap().push(format!("{e:?}"))
    });
    let built = build_image(&d, &def, &reg, &opts, progress)
        .await
        .unwrap()
        .unwrap();
    let report = &built.report;
    let failed: Vec<_> = report
        .events
        .iter()
        .filter(|e| e.status == TaskStatus::Failed)
        .collect();
    // only the failure the block rescues
    assert_eq!(
        failed.iter().map(|e| e.task.as_str()).collect::<Vec<_>>(),
        ["fails"],
        "{failed:#?}"
    );
    assert!(report.changed().len() > 20, "{:#?}", report.events);
    assert_eq!(report.count(TaskStatus::Ignored), 1);
    assert!(
        report
            .events
            .iter()
            .any(|e| e.task == "debug" && e.msg.as_deref() == Some("version 1.0"))
    );
    assert!(
        report.events.iter().any(|e| e.task == "restart demo"),
        "handler ran"
    );
    let ev = events.lock().unwrap().join("\n");
    assert!(ev.contains("Pushed") && ev.contains(":latest"), "{ev}");
    assert!(
        ev.contains("Task(TaskEvent { role: \"full_role\", task: \"group\""),
        "{ev}"
    );

    // the registry has both tags
    let tags = Command::new("curl")
        .args([
            "-s",
            "-u",
            "hive:s3cret",
            &format!("http://127.0.0.1:{port}/v2/image_{service}/tags/list"),
        ])
        .output()
        .unwrap();
    let tags = String::from_utf8_lossy(&tags.stdout).to_string();
    let stamp = built.timestamped.rsplit(':').next().unwrap();
    assert!(tags.contains("latest") && tags.contains(stamp), "{tags}");

    // image settings
    let cfg = d
        .inspect_image(&built.latest)
        .await
        .unwrap()
        .config
        .unwrap();
    assert_eq!(cfg.working_dir.as_deref(), Some("/opt/demo"));
    assert_eq!(cfg.stop_signal.as_deref(), Some("SIGINT"));
    assert!(cfg.env.unwrap().contains(&"APP_ENV=test".to_string()));
    assert!(cfg.exposed_ports.unwrap().contains_key("8080/tcp"));
    assert_eq!(cfg.entrypoint.unwrap()[0], "/bin/sh");

    // a container of the pushed image shows the role's work
    let c = common::container(&d, "full-run", &built.latest).await;
    let t = ContainerTarget::new(d.clone(), c.clone());
    let out = t
        .exec(&ExecRequest::shell(
            "cd /opt/demo && cat VERSION conf/app.ini conf/limits conf/extra.ini conf/listen.conf greeting setup-done rescued facts included flushed payload.txt /etc/himage-dep /etc/himage-included /etc/sysctl.d/99-himage.conf data/hostname >/dev/null && \
             cat VERSION conf/app.ini conf/limits conf/extra.ini conf/listen.conf greeting setup-done rescued facts included flushed payload.txt /etc/himage-dep /etc/himage-included /etc/sysctl.d/99-himage.conf; \
             id alice; id bob; stat -c '%U %G %a' /opt/demo conf/demo.conf; readlink /etc/demo.ini; dpkg-query -W -f='${Status}\\n' less; ls restarted",
        ))
        .await
        .unwrap();
    let text = out.stdout_text();
    for want in [
        "1.0\n[demo]\nport = 8080\nuser = alice\nuser = bob\n",
        "# BEGIN ANSIBLE MANAGED BLOCK\n[extra]\ndebug = false\n# END ANSIBLE MANAGED BLOCK\n",
        "nofile=1024\nnproc=64\n",
        "listen = 127.0.0.1",
        "hello from env\n",
        "setup one\n",
        "planned failure\n",
        "who=alice mother=mother falsy=1\n",
        "included 1\nincluded 2\n",
        "payload\n",
        "from meta\n",
        "included\n",
        "vm.swappiness=10\n",
        "(demogrp)",
        "alice demogrp 755\nroot root 640\n",
        "/opt/demo/conf/app.ini\n",
        "install ok installed\n",
        "restarted\n",
    ] {
        assert!(
            text.contains(want),
            "missing {want:?} in:\n{text}\n{}",
            out.stderr_text()
        );
    }
    t.close().await;
    common::remove(&d, &c).await;

    // a second build on the same build container changes nothing
    let opts2 = BuildOptions {
        rebuild: false,
        ..opts.clone()
    };
    let again = build_image(&d, &def, &reg, &opts2, std::sync::Arc::new(|_| {}))
        .await
        .unwrap()
        .unwrap();
    assert!(
        again.report.changed().is_empty(),
        "{:#?}",
        again.report.changed()
    );

    common::remove(&d, &format!("build_image_{service}")).await;
    for img in [&built.latest, &built.timestamped, &again.timestamped] {
        let _ = d.remove_image(img, None, None).await;
    }
}
