//! What `hive` prints, as users see it: `-q`, `-vv` and `RUST_LOG` on the
//! libraries' events, and the live display in a 60-column terminal (a
//! pseudo-terminal read through a terminal emulator) without corrupted
//! rows.

mod common;

use common::{hive, scratch_project, text};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The quickstart as a prepared stage whose one server does not answer
/// (nothing listens on 127.0.0.3:22): build-infra waits for it.
fn unreachable_stage(name: &str) -> (tempfile::TempDir, PathBuf) {
    let (dir, root) = scratch_project("examples/quickstart");
    std::fs::write(
        root.join("inventory/hive.yml"),
        format!(
            "plugin: hive_inventory\nname: {name}\nstages:\n  private:\n    provider: prepared\n    separate_repository: false\n    number_of_hosts: 1\n    cidr: 127.0.0.0/24\n    ip_address_list: [127.0.0.3]\n"
        ),
    )
    .unwrap();
    (dir, root)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn verbosity_and_rust_log_reach_the_library_events() {
    let (_d, root) = unreachable_stage("quickstart.example");
    let wait = ["build-infra", "--ssh-wait", "2"];
    let run = |pre: &[&str], env: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hive"));
        c.arg("-r").arg(&root).args(pre).args(wait);
        c.env_remove("RUST_LOG");
        if let Some(v) = env {
            c.env("RUST_LOG", v);
        }
        c.output().unwrap()
    };
    let event = "waiting for ssh host=p-hive0.quickstart.example port=22";

    let plain = run(&[], None);
    assert_eq!(plain.status.code(), Some(1), "{}", text(&plain));
    assert!(!stderr(&plain).contains(event), "{}", text(&plain));
    // One error names the server that did not answer and why.
    for part in [
        "error: build-infra: p-hive0.quickstart.example did not answer on SSH within 2s",
        "ssh p-hive0.quickstart.example (127.0.0.3:22): cannot connect",
    ] {
        assert!(stderr(&plain).contains(part), "{part}: {}", text(&plain));
    }

    let debug = run(&["-vv"], None);
    let err = stderr(&debug);
    let line = err
        .lines()
        .find(|l| l.contains(event))
        .unwrap_or_else(|| panic!("no debug event: {}", text(&debug)));
    // A time, the level, the fields (the host among them).
    let time = &line[..8];
    assert!(
        time.chars().filter(|c| *c == ':').count() == 2
            && time.chars().all(|c| c.is_ascii_digit() || c == ':'),
        "{line}"
    );
    assert!(line.contains(" DEBUG "), "{line}");

    let logged = run(&[], Some("hive_provider=debug"));
    assert!(stderr(&logged).contains(event), "{}", text(&logged));

    let quiet = run(&["-q"], None);
    assert_eq!(quiet.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&quiet.stdout),
        "",
        "{}",
        text(&quiet)
    );
    assert_eq!(
        stderr(&quiet).trim(),
        format!(
            "error: build-infra: p-hive0.quickstart.example did not answer on SSH within 2s; \
the provider's resources are built and {}/.hive/private/ssh_config lists the servers; \
run build-infra again once they answer (or with --skip-ssh-wait to only build the resources): \
ssh p-hive0.quickstart.example (127.0.0.3:22): cannot connect: Connection refused (os error 111)",
            root.display()
        )
    );
}

#[test]
fn quiet_prints_only_the_result() {
    let (_d, root) = scratch_project("examples/quickstart");
    let o = hive(&root, &["-q", "all", "-C"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 1, "{}", text(&o));
    assert!(
        out.starts_with("all: check mode, 38 change(s) would be made"),
        "{out}"
    );
    assert_eq!(stderr(&o), "");
}

/// Runs `hive ARGS` on a pseudo-terminal of `cols` columns; interrupts it
/// after `after`; returns everything it wrote.
fn on_terminal(root: &Path, args: &[&str], cols: u16, after: Duration) -> Vec<u8> {
    let size = nix::pty::Winsize {
        ws_row: 30,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = Command::new(env!("CARGO_BIN_EXE_hive"))
        .arg("-r")
        .arg(root)
        .args(args)
        .env("TERM", "xterm")
        .env_remove("RUST_LOG")
        .env_remove("COLUMNS")
        .stdin(Stdio::null())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the child's side is closed.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    std::thread::sleep(after);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    let status = child.wait().unwrap();
    assert!(!status.success());
    reader.join().unwrap()
}

#[test]
fn the_live_display_fits_a_narrow_terminal() {
    let name = "a-project-with-a-rather-long-name.example";
    let (_d, root) = unreachable_stage(name);
    let bytes = on_terminal(&root, &["all"], 60, Duration::from_millis(3500));
    let mut screen = vt100::Parser::new(30, 60, 500);
    screen.process(&bytes);
    // The screen's physical rows, as the terminal shows them.
    let shown = screen.screen().rows(0, 60).collect::<Vec<_>>().join("\n");
    // The row was drawn (with its elapsed time) and redrawn in place: it
    // shows once at most, never as a pile of wrapped copies.
    let raw = String::from_utf8_lossy(&bytes);
    assert!(
        raw.contains("build-infra: running on stage private of"),
        "{raw}"
    );
    let rows = shown
        .lines()
        .filter(|l| l.contains("build-infra: running"))
        .count();
    assert!(
        rows <= 1,
        "the live row was left behind {rows} times:\n{shown}"
    );
    assert!(
        shown.contains("interrupted: stopping"),
        "the interruption is shown:\n{shown}"
    );
    for l in shown.lines() {
        assert!(l.chars().count() <= 60, "{l}");
    }
    // Nothing but the permanent lines stays: the first line of the run,
    // the interruption and the error.
    assert!(
        shown.contains("=== all: stage private of a-project"),
        "{shown}"
    );
    assert!(shown.contains("error: "), "{shown}");
}
