//! Reading the inventory files: dispatch on `plugin:`, validation and
//! derivation of the site, the way the original plugins do it.

mod alloc;
mod common;
mod derive;
mod networks;
mod params;
mod ports;
mod services;
mod stages;
mod vars;
mod volumes;

pub(crate) use alloc::{Allocations, Allocator};
pub(crate) use common::{Ctx, Loaded};
pub use params::{IMAGE_PARAMS, ParamType, SERVICE_PARAMETERS, ServiceParam, service_param};
pub(crate) use services::hive_services;
pub(crate) use stages::{hive_inventory, is_provider_setting};
pub(crate) use vars::{read_vars, vars_files};
