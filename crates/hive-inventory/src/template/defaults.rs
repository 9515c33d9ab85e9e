//! The derived variables every server and mother host gets, as the
//! original's `playbooks/group_vars/hosts.yml` and `mother.yml` define them,
//! re-expressed for hive and rendered by the same engine.

use super::Vars;

/// The origin named in errors for these variables.
pub const DEFAULTS_ORIGIN: &str = "hive built-in defaults (template/defaults.yml)";

const HOSTS: &str = include_str!("defaults.yml");
const MOTHER: &str = include_str!("defaults-mother.yml");

fn load(text: &str, vars: &mut Vars) {
    if let Ok(serde_yaml::Value::Mapping(m)) = serde_yaml::from_str::<serde_yaml::Value>(text) {
        for (k, v) in m {
            if let Some(k) = k.as_str() {
                vars.insert_with_origin(k, v, DEFAULTS_ORIGIN);
            }
        }
    }
}

/// The derived variables of a host of group `hosts` (servers and mothers);
/// `mother` adds the overrides of the mother host. Insert them below the
/// inventory's variables.
pub fn host_defaults(mother: bool) -> Vars {
    let mut vars = Vars::new();
    load(HOSTS, &mut vars);
    if mother {
        load(MOTHER, &mut vars);
    }
    vars
}

#[cfg(test)]
mod tests {
    #[test]
    fn defaults_parse() {
        assert!(super::host_defaults(false).len() > 15);
        assert!(
            super::host_defaults(true)
                .get("hive_home_dir")
                .is_some_and(|v| v.as_str() == Some("{{ hive_context_dir }}"))
        );
    }
}
