//! Load, validate and derive a hive site from a hive-builder compatible project.
//!
//! This crate reads the `inventory/` directory of a hive project (the
//! `hive_inventory` and `hive_services` plugin files, `group_vars/` and
//! `host_vars/`) and the `.hive/` state directory.

pub mod template;
