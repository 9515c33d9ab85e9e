//! Translation of a rendered [`ServiceDefinition`] into a swarm service spec.

use std::collections::HashMap;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Limit, Mount, MountTypeEnum,
    NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecDnsConfig, TaskSpecLogDriver, TaskSpecPlacement,
    TaskSpecPlacementPreferences, TaskSpecPlacementSpread, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use indexmap::IndexMap;

use crate::Error;
use crate::definition::{
    CommandLine, CommandLineOrShell, DurationValue, ImageSource, LogDestination, MemoryValue,
    MountType, NetworkAttachment, PortDefinition, PortMode, Protocol, Scalar, ServiceDefinition,
    ServiceMode, StageContext, VolumeMount,
};

/// The label telling whether a service is standalone (`True` / `False`).
pub const STANDALONE_LABEL: &str = "HIVE_STANDALONE";

/// The label recording the health check a service was deployed with.
///
/// The engine returns a service's health check under `Healthcheck`, which
/// bollard 0.18 does not read (it expects `HealthCheck`), so hive-swarm
/// compares this label instead of the field.
pub const HEALTHCHECK_LABEL: &str = "hive-swarm.healthcheck";

/// The image reference a service runs, before digest pinning: the `image`
/// reference, the built image `<registry>/image_<service>:latest`, or
/// `pull_from` on a `pull_on` stage; then the stage's tag mapping.
///
/// ```
/// use hive_swarm::{ServiceDefinition, StageContext, image_reference};
/// let stage = StageContext::new("private", "hive0.pdns:5000", "hive0.pdns");
/// let def: ServiceDefinition = serde_json::from_str(
///     r#"{"image": {"from": "debian:12", "roles": ["app"]}}"#).unwrap();
/// assert_eq!(image_reference("web", &def, &stage).unwrap(),
///            "hive0.pdns:5000/image_web:latest");
/// ```
pub fn image_reference(
    service: &str,
    definition: &ServiceDefinition,
    stage: &StageContext,
) -> Result<String, Error> {
    let reference = match &definition.image {
        None => {
            return Err(invalid(
                service,
                "image",
                "an image is required (a reference or a build description)",
            ));
        }
        Some(ImageSource::Reference(r)) => r.clone(),
        Some(ImageSource::Build(build)) => {
            if build.pull_on.iter().any(|s| s == &stage.stage) {
                build.pull_from.clone().ok_or_else(|| {
                    invalid(
                        service,
                        "image.pull_from",
                        &format!(
                            "stage {} is in pull_on, so pull_from must name the image to pull",
                            stage.stage
                        ),
                    )
                })?
            } else if stage.registry.is_empty() {
                return Err(invalid(
                    service,
                    "image",
                    "a built image needs the site's registry, and this stage has none; give an image reference instead",
                ));
            } else {
                format!("{}/image_{}:latest", stage.registry, service)
            }
        }
    };
    Ok(stage.tag_mapping.map(&reference).to_string())
}

/// Translate a rendered service definition into the service spec deployed
/// on the swarm.
///
/// `current_replicas` is the replica count of the deployed service, if it
/// exists: a definition with `replicas` absent, `1` or `-1` keeps it (a new
/// service gets 1), as hive-builder documents.
///
/// The image is [`image_reference`]; deploy-services pins it to the
/// registry's digest afterwards.
pub fn service_spec(
    service: &str,
    definition: &ServiceDefinition,
    stage: &StageContext,
    current_replicas: Option<u64>,
) -> Result<ServiceSpec, Error> {
    let d = definition;
    let image = image_reference(service, d, stage)?;
    let env = environment(d, stage);
    let hosts = hosts(d, stage);
    let mut labels = labels(d);
    let (volumes, cap_add, command) = standalone_defaults(d);
    let mounts: Vec<Mount> = volumes.iter().map(mount).collect();
    let log_driver = match &d.logging {
        Some(l) => Some(TaskSpecLogDriver {
            name: Some(l.driver.clone()),
            options: Some(docker_strings(&l.options)),
        }),
        None => stage.logging.as_ref().map(|l| default_logging(service, l)),
    };
    let health_check = health_check(service, d)?;
    if let Some(h) = &health_check {
        labels.insert(
            HEALTHCHECK_LABEL.to_string(),
            serde_json::to_string(h).unwrap_or_default(),
        );
    }
    let restart_policy = restart_policy(service, d)?;
    let placement = placement(d);
    let resources = resources(service, d)?;
    let networks = networks(d, stage);
    let mut ports = Vec::new();
    for p in &d.ports {
        ports.push(port(service, p)?);
    }
    let endpoint_mode = endpoint_mode(service, d)?;
    let mode = mode(service, d, current_replicas)?;

    let container_spec = TaskSpecContainerSpec {
        image: Some(image),
        hostname: Some(service.to_string()),
        args: command
            .as_ref()
            .map(words)
            .transpose()
            .map_err(|e| invalid(service, "command", &e))?,
        command: d
            .entrypoint
            .as_ref()
            .map(words)
            .transpose()
            .map_err(|e| invalid(service, "entrypoint", &e))?,
        env: non_empty(env),
        hosts: non_empty(hosts),
        dns_config: d.dns.as_ref().map(|dns| TaskSpecContainerSpecDnsConfig {
            nameservers: Some(dns.to_vec()),
            search: None,
            options: None,
        }),
        user: d.user.clone(),
        read_only: d.read_only.then_some(true),
        dir: d.working_dir.clone(),
        mounts: non_empty(mounts),
        capability_add: non_empty(cap_add),
        capability_drop: non_empty(d.cap_drop.clone()),
        sysctls: (!d.sysctls.is_empty()).then(|| docker_strings(&d.sysctls)),
        stop_signal: d.stop_signal.as_ref().map(Scalar::to_docker_string),
        stop_grace_period: opt_duration(service, "stop_grace_period", &d.stop_grace_period)?,
        health_check,
        ..Default::default()
    };

    Ok(ServiceSpec {
        name: Some(service.to_string()),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container_spec),
            resources,
            restart_policy,
            placement,
            networks: non_empty(networks),
            log_driver,
            ..Default::default()
        }),
        mode: Some(mode),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(endpoint_mode),
            ports: non_empty(ports),
        }),
        ..Default::default()
    })
}

/// Environment: the hives' proxy variables, then the service's own.
fn environment(d: &ServiceDefinition, stage: &StageContext) -> Vec<String> {
    let mut env: IndexMap<String, String> = stage.proxy_environment.clone();
    for (k, v) in &d.environment {
        env.insert(k.clone(), v.to_docker_string());
    }
    env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Hosts: every server of the stage, then the service's own.
fn hosts(d: &ServiceDefinition, stage: &StageContext) -> Vec<String> {
    let mut hosts: IndexMap<String, String> = stage
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.private_ip.to_string()))
        .collect();
    for (k, v) in &d.hosts {
        hosts.insert(k.clone(), v.clone());
    }
    hosts.iter().map(|(h, ip)| format!("{ip} {h}")).collect()
}

/// Labels: HIVE_STANDALONE, then the service's labels (non-strings as JSON).
fn labels(d: &ServiceDefinition) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    labels.insert(
        STANDALONE_LABEL.to_string(),
        if d.standalone { "True" } else { "False" }.to_string(),
    );
    for (k, v) in &d.labels {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            other => python_json(other),
        };
        labels.insert(k.clone(), text);
    }
    labels
}

/// The service's volumes, added capabilities and command; a standalone
/// service gets the mounts and capabilities an init system needs.
fn standalone_defaults(
    d: &ServiceDefinition,
) -> (Vec<VolumeMount>, Vec<String>, Option<CommandLine>) {
    let mut volumes = d.volumes.clone();
    let mut cap_add = d.cap_add.clone();
    let mut command = d.command.clone();
    if d.standalone {
        for target in ["/run", "/tmp", "/sys/fs/cgroup"] {
            if !volumes.iter().any(|v| v.target == target) {
                volumes.push(VolumeMount {
                    source: String::new(),
                    target: target.to_string(),
                    kind: Some(MountType::Tmpfs),
                    readonly: false,
                    driver: None,
                    driver_opts: IndexMap::new(),
                    drbd: None,
                    nfs: None,
                });
            }
        }
        for cap in [
            "NET_ADMIN",
            "SYS_ADMIN",
            "SYSLOG",
            "SYS_PTRACE",
            "AUDIT_CONTROL",
        ] {
            if !cap_add.iter().any(|c| c == cap) {
                cap_add.push(cap.to_string());
            }
        }
        if command.is_none() {
            command = Some(CommandLine::Words(vec![
                "sh".into(),
                "-c".into(),
                "mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec /sbin/init".into(),
            ]));
        }
    }
    (volumes, cap_add, command)
}

/// The `healthcheck` as the engine takes it.
fn health_check(service: &str, d: &ServiceDefinition) -> Result<Option<HealthConfig>, Error> {
    let Some(h) = &d.healthcheck else {
        return Ok(None);
    };
    Ok(Some(HealthConfig {
        test: h.test.as_ref().map(|t| match t {
            CommandLineOrShell::Words(w) => w.clone(),
            CommandLineOrShell::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
        }),
        interval: opt_duration(service, "healthcheck.interval", &h.interval)?,
        timeout: opt_duration(service, "healthcheck.timeout", &h.timeout)?,
        retries: h.retries,
        start_period: opt_duration(service, "healthcheck.start_period", &h.start_period)?,
        start_interval: None,
    }))
}

/// The `restart_config` as the engine's restart policy.
fn restart_policy(
    service: &str,
    d: &ServiceDefinition,
) -> Result<Option<TaskSpecRestartPolicy>, Error> {
    let Some(r) = &d.restart_config else {
        return Ok(None);
    };
    Ok(Some(TaskSpecRestartPolicy {
        condition: match r.condition.as_deref() {
            None => None,
            Some("none") => Some(TaskSpecRestartPolicyConditionEnum::NONE),
            Some("on-failure") => Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE),
            Some("any") => Some(TaskSpecRestartPolicyConditionEnum::ANY),
            Some(other) => {
                return Err(invalid(
                    service,
                    "restart_config.condition",
                    &format!("{other:?} is not one of none, on-failure, any"),
                ));
            }
        },
        delay: opt_duration(service, "restart_config.delay", &r.delay)?,
        max_attempts: r.max_attempts,
        window: opt_duration(service, "restart_config.window", &r.window)?,
    }))
}

/// The `placement`: constraints, spread preferences, replicas per node.
fn placement(d: &ServiceDefinition) -> Option<TaskSpecPlacement> {
    d.placement.as_ref().map(|p| TaskSpecPlacement {
        constraints: p.constraints.as_ref().map(|c| c.to_vec()),
        preferences: if p.preferences.is_empty() {
            None
        } else {
            Some(
                p.preferences
                    .iter()
                    .map(|pref| TaskSpecPlacementPreferences {
                        spread: Some(TaskSpecPlacementSpread {
                            spread_descriptor: Some(pref.spread.clone()),
                        }),
                    })
                    .collect(),
            )
        },
        max_replicas: p.replicas_max_per_node,
        platforms: None,
    })
}

/// The `cpu_limit` and `mem_limit` as resource limits.
fn resources(service: &str, d: &ServiceDefinition) -> Result<Option<TaskSpecResources>, Error> {
    if d.cpu_limit.is_none() && d.mem_limit.is_none() {
        return Ok(None);
    }
    Ok(Some(TaskSpecResources {
        limits: Some(Limit {
            nano_cpus: d.cpu_limit.map(|c| (c * 1e9).round() as i64),
            memory_bytes: match &d.mem_limit {
                None => None,
                Some(m) => Some(parse_memory(m).map_err(|e| invalid(service, "mem_limit", &e))?),
            },
            pids: None,
        }),
        reservations: None,
    }))
}

/// The networks the service joins: its own `networks`, or the stage's.
fn networks(d: &ServiceDefinition, stage: &StageContext) -> Vec<NetworkAttachmentConfig> {
    let network_names: Vec<NetworkAttachment> = match &d.networks {
        Some(n) => n.clone(),
        None => stage
            .network_names()
            .into_iter()
            .map(NetworkAttachment::Name)
            .collect(),
    };
    network_names
        .iter()
        .map(|n| match n {
            NetworkAttachment::Name(name) => NetworkAttachmentConfig {
                target: Some(name.clone()),
                aliases: None,
                driver_opts: None,
            },
            NetworkAttachment::Detailed(det) => NetworkAttachmentConfig {
                target: Some(det.name.clone()),
                aliases: if det.aliases.is_empty() {
                    None
                } else {
                    Some(det.aliases.clone())
                },
                driver_opts: (!det.options.is_empty()).then(|| docker_strings(&det.options)),
            },
        })
        .collect()
}

/// The `endpoint_mode`, `vip` by default.
fn endpoint_mode(service: &str, d: &ServiceDefinition) -> Result<EndpointSpecModeEnum, Error> {
    match d
        .endpoint_mode
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("vip") => Ok(EndpointSpecModeEnum::VIP),
        Some("dnsrr") => Ok(EndpointSpecModeEnum::DNSRR),
        Some(other) => Err(invalid(
            service,
            "endpoint_mode",
            &format!("{other:?} is not one of vip, dnsrr"),
        )),
    }
}

/// The service mode: global, or replicated with `replicas` (absent, 1 or
/// -1 keep the current count, 1 for a new service).
fn mode(
    service: &str,
    d: &ServiceDefinition,
    current_replicas: Option<u64>,
) -> Result<ServiceSpecMode, Error> {
    Ok(match d.mode.unwrap_or(ServiceMode::Replicated) {
        ServiceMode::Global => ServiceSpecMode {
            global: Some(HashMap::new()),
            ..Default::default()
        },
        ServiceMode::Replicated => {
            let replicas = match d.replicas {
                None | Some(1) | Some(-1) => current_replicas.unwrap_or(1),
                Some(n) if n >= 0 => n as u64,
                Some(n) => {
                    return Err(invalid(
                        service,
                        "replicas",
                        &format!(
                            "{n} is not a number of replicas (0 or more, or -1 to keep the current count)"
                        ),
                    ));
                }
            };
            ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(replicas as i64),
                }),
                ..Default::default()
            }
        }
    })
}

/// The default log driver: syslog to the repository server, tagged with the
/// service name; TCP with TLS when the stage logs over TLS, else UDP.
fn default_logging(service: &str, l: &LogDestination) -> TaskSpecLogDriver {
    let scheme = if l.tls_logging { "tcp+tls" } else { "udp" };
    let mut options = HashMap::new();
    options.insert(
        "syslog-address".to_string(),
        format!("{scheme}://{}:{}", l.repository_server, l.syslog_port),
    );
    options.insert("syslog-facility".to_string(), "local0".to_string());
    options.insert("tag".to_string(), service.to_string());
    if l.tls_logging {
        let dir = l.tls_cert_dir.trim_end_matches('/');
        options.insert("syslog-tls-ca-cert".to_string(), format!("{dir}/ca.pem"));
        options.insert("syslog-tls-cert".to_string(), format!("{dir}/cert.pem"));
        options.insert("syslog-tls-key".to_string(), format!("{dir}/key.pem"));
    }
    TaskSpecLogDriver {
        name: Some("syslog".to_string()),
        options: Some(options),
    }
}

fn mount(v: &VolumeMount) -> Mount {
    let kind = v.kind.unwrap_or(MountType::Bind);
    Mount {
        target: Some(v.target.clone()),
        source: if v.source.is_empty() {
            None
        } else {
            Some(v.source.clone())
        },
        typ: Some(match kind {
            MountType::Bind => MountTypeEnum::BIND,
            MountType::Volume => MountTypeEnum::VOLUME,
            MountType::Tmpfs => MountTypeEnum::TMPFS,
        }),
        read_only: if v.readonly { Some(true) } else { None },
        ..Default::default()
    }
}

fn port(service: &str, p: &PortDefinition) -> Result<EndpointPortConfig, Error> {
    let (published, target, protocol, mode) = match p {
        PortDefinition::Long(l) => (l.published_port, l.target_port, l.protocol, l.mode),
        PortDefinition::Short(s) => {
            let (ports, protocol) = match s.split_once('/') {
                None => (s.as_str(), Protocol::Tcp),
                Some((ports, "tcp")) => (ports, Protocol::Tcp),
                Some((ports, "udp")) => (ports, Protocol::Udp),
                Some((ports, "sctp")) => (ports, Protocol::Sctp),
                Some((_, other)) => {
                    return Err(invalid(
                        service,
                        "ports",
                        &format!("protocol {other:?} in {s:?} is not one of tcp, udp, sctp"),
                    ));
                }
            };
            let number = |t: &str| {
                t.trim().parse::<u16>().map_err(|_| {
                    invalid(
                        service,
                        "ports",
                        &format!("{s:?} is not PUBLISHED:TARGET[/PROTOCOL] or TARGET[/PROTOCOL] with port numbers"),
                    )
                })
            };
            match ports.split_once(':') {
                Some((published, target)) => (
                    Some(number(published)?),
                    number(target)?,
                    Some(protocol),
                    None,
                ),
                None => (None, number(ports)?, Some(protocol), None),
            }
        }
    };
    Ok(EndpointPortConfig {
        name: None,
        protocol: Some(match protocol.unwrap_or(Protocol::Tcp) {
            Protocol::Tcp => EndpointPortConfigProtocolEnum::TCP,
            Protocol::Udp => EndpointPortConfigProtocolEnum::UDP,
            Protocol::Sctp => EndpointPortConfigProtocolEnum::SCTP,
        }),
        target_port: Some(i64::from(target)),
        published_port: published.map(i64::from),
        publish_mode: Some(match mode.unwrap_or(PortMode::Ingress) {
            PortMode::Ingress => EndpointPortConfigPublishModeEnum::INGRESS,
            PortMode::Host => EndpointPortConfigPublishModeEnum::HOST,
        }),
    })
}

/// Scalars as the engine's strings.
fn docker_strings(m: &IndexMap<String, Scalar>) -> HashMap<String, String> {
    m.iter()
        .map(|(k, v)| (k.clone(), v.to_docker_string()))
        .collect()
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    if v.is_empty() { None } else { Some(v) }
}

fn invalid(service: &str, key: &str, message: &str) -> Error {
    Error::InvalidDefinition {
        service: service.to_string(),
        key: key.to_string(),
        message: message.to_string(),
    }
}

fn opt_duration(service: &str, key: &str, d: &Option<DurationValue>) -> Result<Option<i64>, Error> {
    match d {
        None => Ok(None),
        Some(d) => parse_duration(d)
            .map(Some)
            .map_err(|e| invalid(service, key, &e)),
    }
}

fn words(c: &CommandLine) -> Result<Vec<String>, String> {
    match c {
        CommandLine::Words(w) => Ok(w.clone()),
        CommandLine::Line(l) => shell_split(l),
    }
}

/// A duration in nanoseconds: seconds as a number, or Go-style text such
/// as `1h2m3.5s`, `500ms`, `10us`.
pub fn parse_duration(d: &DurationValue) -> Result<i64, String> {
    let text = match d {
        DurationValue::Seconds(s) => return Ok((*s as i64).saturating_mul(1_000_000_000)),
        DurationValue::Text(t) => t.trim(),
    };
    let bad = || format!("{text:?} is not a duration like 30s, 1m30s, 500ms or 2h");
    if text.is_empty() {
        return Err(bad());
    }
    if text == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    Ok(total.round() as i64)
}

/// A memory size in bytes: a number, or a number with a unit
/// (`b`, `k`, `m`, `g`, `t`, optionally followed by `b`; powers of 1024).
pub fn parse_memory(m: &MemoryValue) -> Result<i64, String> {
    let text = match m {
        MemoryValue::Bytes(b) => return Ok(*b as i64),
        MemoryValue::Text(t) => t.trim(),
    };
    let bad = || format!("{text:?} is not a memory size like 512M, 1G or 1048576");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let value: f64 = text[..split].parse().map_err(|_| bad())?;
    let unit = text[split..].trim().to_ascii_lowercase();
    let factor: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1024.0f64.powi(4),
        _ => return Err(bad()),
    };
    Ok((value * factor).round() as i64)
}

/// Split a command line into words like a POSIX shell: whitespace separates
/// words, single quotes keep text literally, double quotes allow `\"` and
/// `\\`, a backslash outside quotes escapes the next character.
pub fn shell_split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed single quote in {line:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unclosed double quote in {line:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed double quote in {line:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err(format!("trailing backslash in {line:?}")),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// JSON text as Python's `json.dumps` writes it (`", "` and `": "`
/// separators), which is how hive-builder stores non-string label values.
pub fn python_json(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(python_json).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_json(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let check = |input: &str, expected: Option<i64>| {
            assert_eq!(
                parse_duration(&DurationValue::Text(input.into())).ok(),
                expected,
                "{input}"
            );
        };
        check("30s", Some(30_000_000_000));
        check("1m30s", Some(90_000_000_000));
        check("1h2m3s", Some(3_723_000_000_000));
        check("500ms", Some(500_000_000));
        check("1.5s", Some(1_500_000_000));
        check("10us", Some(10_000));
        check("0", Some(0));
        check("30", None);
        check("s", None);
        check("10x", None);
        check("", None);
        assert_eq!(
            parse_duration(&DurationValue::Seconds(7)),
            Ok(7_000_000_000)
        );
    }

    #[test]
    fn memory() {
        let check = |input: &str, expected: Option<i64>| {
            assert_eq!(
                parse_memory(&MemoryValue::Text(input.into())).ok(),
                expected,
                "{input}"
            );
        };
        check("512M", Some(512 * 1024 * 1024));
        check("1g", Some(1024 * 1024 * 1024));
        check("100kb", Some(102_400));
        check("1.5G", Some(1_610_612_736));
        check("42", Some(42));
        check("12Q", None);
        check("M", None);
    }

    #[test]
    fn shell_words() {
        let check = |input: &str, expected: &[&str]| {
            assert_eq!(shell_split(input).unwrap(), expected, "{input}");
        };
        check("sleep 3600", &["sleep", "3600"]);
        check("sh -c 'echo a  b'", &["sh", "-c", "echo a  b"]);
        check(r#"echo "a \"q\" b" c\ d"#, &["echo", "a \"q\" b", "c d"]);
        check("  ", &[]);
        check("''", &[""]);
        assert!(shell_split("echo 'oops").is_err());
    }

    #[test]
    fn python_style_json() {
        let check = |input: serde_json::Value, expected: &str| {
            assert_eq!(python_json(&input), expected);
        };
        check(serde_json::json!(true), "true");
        check(serde_json::json!(3), "3");
        check(serde_json::json!([1, "a"]), "[1, \"a\"]");
        check(
            serde_json::json!({"a": 1, "b": [true, null]}),
            "{\"a\": 1, \"b\": [true, null]}",
        );
    }

    #[test]
    fn short_ports() {
        let p = |s: &str| port("svc", &PortDefinition::Short(s.into()));
        let c = p("8080:80/udp").unwrap();
        assert_eq!(
            (c.published_port, c.target_port, c.protocol),
            (
                Some(8080),
                Some(80),
                Some(EndpointPortConfigProtocolEnum::UDP)
            )
        );
        let c = p("80").unwrap();
        assert_eq!((c.published_port, c.target_port), (None, Some(80)));
        assert_eq!(
            c.publish_mode,
            Some(EndpointPortConfigPublishModeEnum::INGRESS)
        );
        let err = p("80/icmp").unwrap_err().to_string();
        assert!(
            err.contains("svc") && err.contains("ports") && err.contains("icmp"),
            "{err}"
        );
        assert!(p("a:b").is_err());
    }
}
