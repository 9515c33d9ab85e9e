//! DRBD-replicated volumes for a hive site.
//!
//! Not implemented yet: this crate only states its purpose (resource files,
//! host preparation and volume plans, status parsing).
