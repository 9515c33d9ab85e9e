//! The one table of the modules hive runs natively: name, whether it takes
//! free-form text, and the function that runs it. The runner's list of
//! native modules ([`crate::NATIVE_MODULES`]), the task parser's free-form
//! rule and the dispatch all read this table, so they cannot disagree.

use futures::future::BoxFuture;
use serde_json::Value as Json;

use super::{
    Ctx, Outcome, blockinfile, command, file, files, lineinfile, packages, stat, system, vars,
};
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
    module!("file", |_n, a, c| file::file(a, c).await),
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
    module!("mount", |_n, a, c| system::mount(a, c).await),
    module!("wait_for", |_n, a, c| system::wait_for(a, c).await),
    module!("uri", |_n, a, c| system::uri(a, c).await),
    module!("ipify_facts", |_n, a, c| system::ipify_facts(a, c).await),
    module!("pause", |_n, a, c| system::pause(a, c).await),
    module!("set_fact", |_n, a, c| super::set_fact(a, c)),
    module!("debug", |_n, a, c| super::debug(a, c)),
    module!("fail", |_n, a, c| super::fail(a, c)),
    module!("assert", |_n, a, c| super::assert(a, c)),
    module!("meta", free_form, |_n, _a, _c| Ok(Outcome::default())),
    module!("ping", |_n, a, c| vars::ping(a, c)),
    module!("include_vars", free_form, |_n, a, c| vars::include_vars(
        a, c
    )),
];

/// Checks a module's arguments against its parameter type.
type ParamsFn = fn(Json) -> std::result::Result<(), String>;

fn params_of<P: serde::de::DeserializeOwned>(args: Json) -> std::result::Result<(), String> {
    serde_json::from_value::<P>(args)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The parameter type of each native module that takes `key: value`
/// arguments (the free-form ones and `set_fact` take anything).
static PARAMS: &[(&str, ParamsFn)] = &[
    ("copy", params_of::<files::CopyP>),
    ("template", params_of::<files::TemplateP>),
    ("file", params_of::<file::FileP>),
    ("lineinfile", params_of::<lineinfile::LineinfileP>),
    ("blockinfile", params_of::<blockinfile::BlockinfileP>),
    ("replace", params_of::<files::ReplaceP>),
    ("stat", params_of::<stat::StatP>),
    ("tempfile", params_of::<stat::TempfileP>),
    ("get_url", params_of::<files::GetUrlP>),
    ("unarchive", params_of::<files::UnarchiveP>),
    ("apt", params_of::<packages::AptP>),
    ("apk", params_of::<packages::ApkP>),
    ("yum", params_of::<packages::YumP>),
    ("dnf", params_of::<packages::YumP>),
    ("package", params_of::<packages::PackageP>),
    ("pip", params_of::<packages::PipP>),
    ("user", params_of::<system::UserP>),
    ("group", params_of::<system::GroupP>),
    ("service", params_of::<system::ServiceP>),
    ("systemd", params_of::<system::ServiceP>),
    ("systemd_service", params_of::<system::ServiceP>),
    ("sysctl", params_of::<system::SysctlP>),
    ("mount", params_of::<system::MountP>),
    ("wait_for", params_of::<system::WaitForP>),
    ("uri", params_of::<system::UriP>),
    ("ipify_facts", params_of::<system::IpifyP>),
    ("pause", params_of::<system::PauseP>),
    ("debug", params_of::<super::DebugP>),
    ("fail", params_of::<super::FailP>),
    ("assert", params_of::<super::AssertP>),
    ("ping", params_of::<vars::PingP>),
];

/// What is wrong with the arguments of a task of native module `name`, as
/// written (before rendering): an argument the module does not have, or
/// one it needs that is missing. Values are not judged (a template may
/// stand for any of them); `None` when nothing can be said.
pub fn check_args(name: &str, args: &Json) -> Option<String> {
    let (_, check) = PARAMS.iter().find(|(n, _)| *n == name)?;
    if !args.is_object() {
        return None;
    }
    let message = check(args.clone()).err()?;
    (message.starts_with("unknown field") || message.starts_with("missing field"))
        .then_some(message)
}

/// The native module called `name`.
pub(crate) fn find(name: &str) -> Option<&'static Module> {
    MODULES.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_with_key_value_arguments_has_its_parameter_type() {
        for m in MODULES {
            let typed = PARAMS.iter().any(|(n, _)| *n == m.name);
            let untyped = m.free_form || m.name == "set_fact";
            assert!(
                typed != untyped,
                "{}: parameter type listed {typed}",
                m.name
            );
        }
        for (n, _) in PARAMS {
            assert!(find(n).is_some(), "{n} is not a native module");
        }
        let args = |j: &str| serde_json::from_str::<Json>(j).unwrap();
        assert_eq!(
            check_args("copy", &args(r#"{"src": "a", "dest": "/b"}"#)),
            None
        );
        assert_eq!(
            check_args(
                "copy",
                &args(r#"{"src": "a", "dest": "{{ d }}", "mode": "{{ m }}"}"#)
            ),
            None
        );
        let e = check_args("copy", &args(r#"{"src": "a", "dets": "/b"}"#)).unwrap();
        assert!(e.starts_with("unknown field `dets`"), "{e}");
        let e = check_args("lineinfile", &args(r#"{"line": "x"}"#)).unwrap();
        assert!(e.contains("missing field") || e.contains("path"), "{e}");
        assert_eq!(check_args("shell", &args(r#"{"_raw_params": "ls"}"#)), None);
    }

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
