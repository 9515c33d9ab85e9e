//! Apply Ansible-style roles and build the images of a hive site.
//!
//! Not implemented yet: this crate only states its purpose (the role runner,
//! build-images and pushing to the site registry).
