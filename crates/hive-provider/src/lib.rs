//! Providers create, halt and destroy the servers of a hive stage.
//!
//! Not implemented yet: this crate only states its purpose. See the project
//! issues for the provider trait, the SSH transport and the `docker` provider.
