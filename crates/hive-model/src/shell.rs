//! Quoting for the POSIX shell scripts hive runs on servers.

/// Quote `s` as one word for a POSIX shell, as Python's `shlex.quote` (and
/// so Ansible's `quote` filter) does: unchanged when it is made of safe
/// characters only, else in single quotes, each `'` written `'"'"'`.
///
/// ```
/// use hive_model::shell_quote;
/// assert_eq!(shell_quote("/etc/hosts"), "/etc/hosts");
/// assert_eq!(shell_quote(""), "''");
/// assert_eq!(shell_quote("a b"), "'a b'");
/// assert_eq!(shell_quote("it's"), r#"'it'"'"'s'"#);
/// ```
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r#"'"'"'"#))
}

/// The words of `words`, each quoted with [`shell_quote`], separated by
/// spaces (as Python's `shlex.join`): a list of arguments for a script.
///
/// ```
/// use hive_model::shell_join;
/// assert_eq!(shell_join(["drbd-utils", "thin provisioning"]), "drbd-utils 'thin provisioning'");
/// assert_eq!(shell_join(Vec::<String>::new()), "");
/// ```
pub fn shell_join<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> String {
    words
        .into_iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::shell_quote;
    use std::process::Command;

    #[test]
    fn quoted_words_come_back_unchanged_from_sh() {
        for word in [
            "",
            "plain",
            "a b",
            "it's",
            "'",
            "$HOME `x` \"q\"",
            "a\nb",
            "*",
            "-n",
        ] {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(word)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), word, "{word:?}");
        }
    }
}
