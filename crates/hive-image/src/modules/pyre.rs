//! Regular expressions as Python's `re` reads them (backreferences and
//! look-around included, through a backtracking engine), with Python's
//! `\1` / `\g<name>` replacement templates.

/// A compiled Python-style pattern.
pub(crate) struct PyRegex(fancy_regex::Regex);

impl PyRegex {
    /// Compiles `pattern`; the error names `what` (e.g. `regexp`).
    pub(crate) fn new(what: &str, pattern: &str) -> Result<PyRegex, String> {
        fancy_regex::Regex::new(pattern)
            .map(PyRegex)
            .map_err(|e| format!("invalid {what} {pattern:?}: {e}"))
    }

    /// Whether the pattern matches somewhere in `text` (`re.search`).
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text).unwrap_or(false)
    }

    /// `match.expand(template)` for the first match in `text`.
    pub(crate) fn expand(&self, text: &str, template: &str) -> Option<String> {
        let caps = self.0.captures(text).ok()??;
        Some(fancy_regex::Expander::python().expansion(template, &caps))
    }

    /// The byte range of the first match in `text`.
    pub(crate) fn find_range(&self, text: &str) -> Option<(usize, usize)> {
        let m = self.0.find(text).ok()??;
        Some((m.start(), m.end()))
    }

    /// The byte range of group `name` in the first match in `text`.
    pub(crate) fn group_range(&self, text: &str, name: &str) -> Option<(usize, usize)> {
        let caps = self.0.captures(text).ok()??;
        caps.name(name).map(|m| (m.start(), m.end()))
    }

    /// Python's refusal of a replacement template with an unknown escape
    /// (`\\D`: "bad escape").
    pub(crate) fn check_template(template: &str) -> Result<(), String> {
        let mut chars = template.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                continue;
            }
            match chars.next() {
                Some(e) if e.is_ascii_alphabetic() && !"abfnrtvg".contains(e) => {
                    return Err(format!("bad escape \\{e}"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `re.subn(pattern, template, text)`: the text with every match
    /// replaced, and the number of replacements.
    pub(crate) fn replace_all(&self, text: &str, template: &str) -> (String, usize) {
        let expander = fancy_regex::Expander::python();
        let mut out = String::new();
        let mut last = 0;
        let mut n = 0;
        for caps in self.0.captures_iter(text) {
            let Ok(caps) = caps else { break };
            let Some(m) = caps.get(0) else { continue };
            out.push_str(&text[last..m.start()]);
            expander.append_expansion(&mut out, template, &caps);
            last = m.end();
            n += 1;
        }
        out.push_str(&text[last..]);
        (out, n)
    }
}

#[cfg(test)]
mod tests {
    use super::PyRegex;

    #[test]
    fn python_syntax() {
        let r = PyRegex::new("regexp", r"^(REF) .* \1$").unwrap();
        assert!(r.is_match("REF this is a line REF"));
        assert!(!r.is_match("REF this is a line FER"));
        let r = PyRegex::new("regexp", r"^(?P<k>\w+)=(.*)$").unwrap();
        assert_eq!(r.expand("a=1", r"\g<k>:\2").as_deref(), Some("a:1"));
        let r = PyRegex::new("regexp", r"(\d)").unwrap();
        assert_eq!(r.replace_all("a1b2", r"<\1>"), ("a<1>b<2>".into(), 2));
        assert!(PyRegex::new("regexp", "(").is_err());
    }
}
