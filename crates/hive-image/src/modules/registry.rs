//! The one table of the modules hive runs natively: name, whether it takes
//! free-form text, and the function that runs it. The runner's list of
//! native modules ([`crate::NATIVE_MODULES`]), the task parser's free-form
//! rule and the dispatch all read this table, so they cannot disagree.

use futures::future::BoxFuture;
use serde_json::Value as Json;

use super::{Ctx, Outcome, blockinfile, command, files, lineinfile, packages, stat, system};
use crate::error::Result;

/// Runs a module: (module name as called, rendered arguments, context).
pub(crate) type RunFn =
    for<'a, 'b> fn(&'a str, Json, &'a Ctx<'b>) -> BoxFuture<'a, Result<Outcome>>;

/// One native module.
pub(crate) struct Module {
    /// The name tasks call it by (without collection prefix).
    pub name: &'static str,
    /// Whether a text argument is the module's free-form parameter
    /// (`command: ls -l`) rather than `key=value` pairs.
    pub free_form: bool,
    /// Runs it.
    pub run: RunFn,
}

macro_rules! module {
    ($name:literal, free_form, |$n:ident, $a:ident, $c:ident| $body:expr) => {
        Module {
            name: $name,
            free_form: true,
            run: |$n, $a, $c| Box::pin(async move { $body }),
        }
    };
    ($name:literal, |$n:ident, $a:ident, $c:ident| $body:expr) => {
        Module {
            name: $name,
            free_form: false,
            run: |$n, $a, $c| Box::pin(async move { $body }),
        }
    };
}

/// Every module hive runs natively.
pub(crate) static MODULES: &[Module] = &[
    module!("command", free_form, |n, a, c| command::command(n, a, c)
        .await),
    module!("shell", free_form, |n, a, c| command::command(n, a, c)
        .await),
    module!("raw", free_form, |n, a, c| command::command(n, a, c).await),
    module!("script", free_form, |_n, a, c| system::script(a, c).await),
    module!("copy", |_n, a, c| files::copy(a, c).await),
    module!("template", |_n, a, c| files::template(a, c).await),
    module!("file", |_n, a, c| files::file(a, c).await),
    module!("lineinfile", |_n, a, c| lineinfile::lineinfile(a, c).await),
    module!("blockinfile", |_n, a, c| blockinfile::blockinfile(a, c)
        .await),
    module!("replace", |_n, a, c| files::replace(a, c).await),
    module!("stat", |_n, a, c| stat::stat(a, c).await),
    module!("tempfile", |_n, a, c| stat::tempfile(a, c).await),
    module!("get_url", |_n, a, c| files::get_url(a, c).await),
    module!("unarchive", |_n, a, c| files::unarchive(a, c).await),
    module!("apt", |_n, a, c| packages::apt(a, c).await),
    module!("apk", |_n, a, c| packages::apk(a, c).await),
    module!("yum", |n, a, c| packages::yum(n, a, c).await),
    module!("dnf", |n, a, c| packages::yum(n, a, c).await),
    module!("package", |_n, a, c| packages::package(a, c).await),
    module!("pip", |_n, a, c| packages::pip(a, c).await),
    module!("user", |_n, a, c| system::user(a, c).await),
    module!("group", |_n, a, c| system::group(a, c).await),
    module!("service", |n, a, c| system::service(n, a, c).await),
    module!("systemd", |n, a, c| system::service(n, a, c).await),
    module!("systemd_service", |n, a, c| system::service(n, a, c).await),
    module!("sysctl", |_n, a, c| system::sysctl(a, c).await),
    module!("wait_for", |_n, a, c| system::wait_for(a, c).await),
    module!("uri", |_n, a, c| system::uri(a, c).await),
    module!("ipify_facts", |_n, a, c| system::ipify_facts(a, c).await),
    module!("pause", |_n, a, c| system::pause(a, c).await),
    module!("set_fact", |_n, a, c| super::set_fact(a, c)),
    module!("debug", |_n, a, c| super::debug(a, c)),
    module!("fail", |_n, a, c| super::fail(a, c)),
    module!("assert", |_n, a, c| super::assert(a, c)),
    module!("meta", free_form, |_n, _a, _c| Ok(Outcome::default())),
];

/// The native module called `name`.
pub(crate) fn find(name: &str) -> Option<&'static Module> {
    MODULES.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_the_public_list_is_the_table() {
        for (i, m) in MODULES.iter().enumerate() {
            assert!(
                MODULES[..i].iter().all(|o| o.name != m.name),
                "{} twice",
                m.name
            );
            assert!(std::ptr::eq(find(m.name).unwrap(), m));
        }
        let listed: Vec<&str> = crate::NATIVE_MODULES.to_vec();
        let table: Vec<&str> = MODULES.iter().map(|m| m.name).collect();
        assert_eq!(listed, table);
        assert!(find("docker_container").is_none());
    }
}
