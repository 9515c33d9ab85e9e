//! The setup-hosts phase: configure every server of a stage over SSH.
