//! `hive status` and `hive logs`.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use hive_phases::site::StageSite;
use hive_phases::status::{SiteStatus, service_log, service_log_path, site_status};

use super::{Globals, Output};

/// Options of `hive status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// How many of the journal's last runs to show.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub runs: usize,
}

/// Options of `hive logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The service whose log to show.
    pub service: String,
    /// Keep following the log (Ctrl-C stops).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// How many lines (the last ones).
    #[arg(short = 'n', long, default_value_t = 100, value_name = "N")]
    pub lines: usize,
    /// Only lines written in this last while: `30s`, `10m`, `2h`, `1d`.
    #[arg(long, value_name = "DURATION", value_parser = parse_since, conflicts_with = "follow")]
    pub since: Option<std::time::Duration>,
}

fn parse_since(s: &str) -> Result<std::time::Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 10m, 2h or 1d"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

fn print_status(s: &SiteStatus) -> Result<()> {
    outln!(
        "site {}, stage {}: {}",
        s.site,
        s.stage,
        if s.healthy { "healthy" } else { "UNHEALTHY" }
    );
    outln!("servers");
    for v in &s.servers {
        let mut parts = vec![v.address.clone()];
        if !v.reachable {
            parts.push(format!(
                "NOT REACHABLE: {}",
                v.error.as_deref().unwrap_or_default()
            ));
        } else {
            parts.push(match &v.docker {
                Some(d) => format!("docker {d}"),
                None => "docker NOT ANSWERING".into(),
            });
        }
        if let Some(n) = &v.swarm {
            let role = if n.manager.is_empty() {
                "worker".to_string()
            } else {
                format!("manager ({})", n.manager)
            };
            parts.push(format!("{role}, {}/{}", n.status, n.availability));
        }
        if let (Some(p), Some(free)) = (v.disk_used_percent, v.disk_free_bytes) {
            parts.push(format!("disk {p}% used, {} free", human(free)));
        }
        outln!("  {}  {}", v.name, parts.join(", "));
    }
    outln!("services");
    for v in &s.services {
        let mut line = format!("  {}  {}/{} running", v.name, v.running, v.desired);
        if !v.on.is_empty() {
            line.push_str(&format!(" on {}", v.on.join(", ")));
        }
        if let Some(i) = &v.image {
            line.push_str(&format!(", image {i}"));
        }
        outln!("{line}");
        for e in &v.endpoints {
            outln!("    {e}");
        }
        if let Some(e) = &v.last_error {
            outln!("    last task error: {e}");
        }
    }
    if !s.volumes.is_empty() {
        outln!("volumes");
        for v in &s.volumes {
            outln!(
                "  {}  {}, {}{}",
                v.name,
                v.kind,
                v.detail,
                if v.healthy { "" } else { " (NOT HEALTHY)" }
            );
        }
    }
    if let Some(r) = &s.registry {
        outln!(
            "registry\n  {}  {} repositor{} ({}), {}",
            r.address,
            r.repositories.len(),
            if r.repositories.len() == 1 {
                "y"
            } else {
                "ies"
            },
            r.repositories.join(", "),
            human(r.size_bytes)
        );
    }
    if !s.runs.is_empty() {
        outln!("last runs");
        for e in &s.runs {
            outln!(
                "  {}  {:<20} {:?}{}",
                e.start,
                e.phase.name(),
                e.result,
                if e.check_mode { " (check mode)" } else { "" }
            );
        }
    }
    if !s.healthy {
        outln!("problems");
        for p in &s.problems {
            outln!("  {p}");
        }
    }
    Ok(())
}

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// `hive status`: the site as it is; exit status 1 when something is
/// unhealthy.
pub fn status(globals: &Globals, args: &StatusArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let site = StageSite::new(&project)?;
    let status = super::runtime()?.block_on(site_status(&site, args.runs))?;
    if globals.output == Output::Json {
        outln!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_status(&status)?;
    }
    Ok(if status.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `hive logs SERVICE`: the service's log collected on the repository
/// server.
pub fn logs(globals: &Globals, args: &LogsArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let site = StageSite::new(&project)?;
    if args.follow {
        if !project.services().iter().any(|s| s.name == args.service) {
            bail!("no service {} in the inventory", args.service);
        }
        let mut argv = hive_provider::ssh_command(project.context_dir(), &Default::default())?;
        argv.push(format!(
            "sudo tail -F -n {} {}",
            args.lines,
            service_log_path(&args.service)
        ));
        let status = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .with_context(|| format!("cannot run {}", argv[0]))?;
        return Ok(ExitCode::from(
            u8::try_from(status.code().unwrap_or(0)).unwrap_or(1),
        ));
    }
    let since = args.since.map(|d| time::OffsetDateTime::now_utc() - d);
    let lines = super::runtime()?.block_on(service_log(&site, &args.service, args.lines, since))?;
    if globals.output == Output::Json {
        outln!("{}", serde_json::to_string_pretty(&lines)?);
    } else {
        for l in lines {
            outln!("{l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
