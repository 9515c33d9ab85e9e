//! Ansible's path and hash filters (`expanduser`, `realpath`, `hash`,
//! `checksum`, `sha1`) and the result tests spelled as Ansible's aliases
//! (`successful`, `failure`, `change`, `skip`, `finished`).

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};
use sha1::Digest;

use super::filters::support::text;

fn hash_of(data: &[u8], algorithm: &str) -> Result<String, Error> {
    Ok(match algorithm {
        "sha1" => hex::encode(sha1::Sha1::digest(data)),
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "hash: unsupported algorithm {other} (supported: sha1, sha224, sha256, sha384, sha512)"
                ),
            ));
        }
    })
}

/// `~` and `~/x` as Python's `os.path.expanduser` on the controller.
fn expanduser(path: &str) -> String {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    if path == "~" {
        home
    } else if let Some(rest) = path.strip_prefix("~/") {
        format!("{}/{rest}", home.trim_end_matches('/'))
    } else {
        path.to_string()
    }
}

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("expanduser", |v: Value| -> Result<String, Error> {
        Ok(expanduser(&text(&v)?))
    });
    env.add_filter("hash", |v: Value, algorithm: Option<String>| {
        hash_of(text(&v)?.as_bytes(), algorithm.as_deref().unwrap_or("sha1"))
    });
    for name in ["checksum", "sha1"] {
        env.add_filter(name, |v: Value| hash_of(text(&v)?.as_bytes(), "sha1"));
    }
    let failed = |v: &Value| v.get_attr("failed").map(|x| x.is_true()).unwrap_or(false);
    env.add_test("successful", move |v: Value| !failed(&v));
    env.add_test("failure", move |v: Value| failed(&v));
    env.add_test("change", |v: Value| {
        v.get_attr("changed").map(|x| x.is_true()).unwrap_or(false)
    });
    env.add_test("skip", |v: Value| {
        v.get_attr("skipped").map(|x| x.is_true()).unwrap_or(false)
    });
    env.add_test("finished", |v: Value| {
        v.get_attr("finished")
            .map(|x| x.is_undefined() || x.is_true())
            .unwrap_or(true)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_home() {
        assert_eq!(
            hash_of(b"test", "sha1").unwrap(),
            "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
        );
        assert!(hash_of(b"x", "md4").is_err());
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        assert_eq!(
            expanduser("~/a"),
            format!("{}/a", home.trim_end_matches('/'))
        );
        assert_eq!(expanduser("/a/~"), "/a/~");
    }
}
