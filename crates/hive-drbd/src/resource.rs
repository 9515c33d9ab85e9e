//! DRBD resource files (`/etc/drbd.d/<volume>.res`).

use std::fmt::Write as _;

use crate::{DrbdError, DrbdVolume, Stage};

/// Renders the resource file of `volume` for every hive of `stage`.
///
/// The resource has quorum `majority` and turns I/O into errors when quorum
/// is lost, uses the disk and network tuning that hive-builder sites run
/// with, one `on` section per hive (sorted by name, node id = index,
/// address = private IP and port `7000 + device_id`, backing disk
/// `/dev/<vg>/<volume>` or `none` where the volume is diskless), device
/// minor = device id, internal metadata, and a connection mesh of all hives.
///
/// ```
/// use hive_drbd::{render_resource, DrbdVolume, FsType, Stage, StageHive};
/// let stage = Stage::new(vec![StageHive::new("hive0", "10.0.0.1".parse().unwrap())]).unwrap();
/// let text = render_resource(&stage, &DrbdVolume::new("data", 3, "1G", FsType::Ext4)).unwrap();
/// assert!(text.contains("address   10.0.0.1:7003;"));
/// ```
pub fn render_resource(stage: &Stage, volume: &DrbdVolume) -> Result<String, DrbdError> {
    volume.validate(stage)?;
    let mut out = String::new();
    // Writing into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(
        out,
        "# Written by hive for volume {}; changes here are overwritten.",
        volume.name
    );
    let _ = writeln!(out, "resource {} {{", volume.name);
    out.push_str(concat!(
        "  options {\n",
        "    # a partition without majority refuses I/O instead of diverging\n",
        "    quorum majority;\n",
        "    on-no-quorum io-error;\n",
        "  }\n",
        "  disk {\n",
        "    disk-flushes;\n",
        "    md-flushes;\n",
        "    # resync controller: fast, with a high ceiling (c-max-rate 0 is refused by some modules)\n",
        "    c-plan-ahead 1;\n",
        "    c-max-rate 1024000;\n",
        "    c-delay-target 1;\n",
        "    c-fill-target 1M;\n",
        "    rs-discard-granularity 1048576;\n",
        "  }\n",
    ));
    for (node_id, hive) in stage.hives().iter().enumerate() {
        let disk = if volume.has_disk_on(hive) {
            volume.backing_path()
        } else {
            "none".to_string()
        };
        let address = match hive.private_ip {
            std::net::IpAddr::V4(ip) => format!("{ip}:{}", volume.port()),
            std::net::IpAddr::V6(ip) => format!("ipv6 [{ip}]:{}", volume.port()),
        };
        let _ = writeln!(out, "  on {} {{", hive.name);
        let _ = writeln!(out, "    node-id   {node_id};");
        let _ = writeln!(out, "    address   {address};");
        let _ = writeln!(out, "    disk      {disk};");
        let _ = writeln!(out, "    device    minor {};", volume.device_id);
        out.push_str("    meta-disk internal;\n  }\n");
    }
    let names: Vec<&str> = stage.hives().iter().map(|h| h.name.as_str()).collect();
    out.push_str("  connection-mesh {\n");
    let _ = writeln!(out, "    hosts {};", names.join(" "));
    out.push_str(concat!(
        "    net {\n",
        "      max-buffers 16000;\n",
        "      max-epoch-size 16000;\n",
        "      sndbuf-size 1048576;\n",
        "    }\n",
        "  }\n",
        "}\n",
    ));
    Ok(out)
}

/// Text of `/etc/drbd.d/global_common.conf` written by host preparation:
/// no usage reporting to the DRBD project, defaults everywhere else.
pub fn render_global_common() -> &'static str {
    concat!(
        "# Written by hive; changes here are overwritten.\n",
        "global {\n",
        "  usage-count no;\n",
        "}\n",
        "common {\n",
        "}\n",
    )
}
