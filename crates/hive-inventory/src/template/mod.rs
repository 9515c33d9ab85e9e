//! Ansible-compatible Jinja2 rendering of a hive project's values.
