//! Ansible's `key=value` argument text: splitting it into words (quotes
//! and `{{ }}` kept together), decoding its escapes, and taking the
//! special words out of a command's free-form text.

/// `s` without the words `key=value` of `pairs` (as `split_kv` found
/// them), everything else kept as written (as Ansible does, a final newline
/// of a `|` block stays).
pub(crate) fn strip_special_words(s: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return s.to_string();
    }
    let mut out = s.to_string();
    for (k, _) in pairs {
        let pattern = format!(
            r#"(^|\s){}=("[^"]*"|'[^']*'|(?:\{{\{{.*?\}}\}}|\S)+)"#,
            regex::escape(k)
        );
        if let Ok(re) = regex::Regex::new(&pattern) {
            out = re.replace_all(&out, "$1").into_owned();
        }
    }
    out.trim_start().trim_end_matches([' ', '\t']).to_string()
}

/// The escapes Ansible decodes in `key=value` arguments (`\\`, `\'`,
/// `\"`, `\a\b\f\n\r\t\v`, `\xHH`, `\uHHHH`, `\UHHHHHHHH`); others
/// (`\1`, `\d`) are kept as written.
pub fn decode_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let mut chars = after.chars();
        let simple = match chars.next() {
            Some(c @ ('\\' | '\'' | '"')) => Some(c),
            Some('a') => Some('\u{7}'),
            Some('b') => Some('\u{8}'),
            Some('f') => Some('\u{c}'),
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('t') => Some('\t'),
            Some('v') => Some('\u{b}'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            rest = &after[1..];
            continue;
        }
        let hex = match after.chars().next() {
            Some('x') => 2,
            Some('u') => 4,
            Some('U') => 8,
            _ => 0,
        };
        let decoded = (hex > 0)
            .then(|| after.get(1..=hex))
            .flatten()
            .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[1 + hex..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits `a=1 b="x y" free text` into key=value pairs and the rest.
pub fn split_kv(s: &str) -> (Vec<(String, String)>, String) {
    let mut pairs = Vec::new();
    let mut rest = Vec::new();
    for word in shell_words(s) {
        match word.split_once('=') {
            Some((k, v))
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                pairs.push((k.to_string(), v.to_string()))
            }
            _ => rest.push(word),
        }
    }
    (pairs, rest.join(" "))
}

pub(crate) fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut depth = 0usize;
    let mut prev = '\0';
    for c in s.chars() {
        if quote.is_none() {
            if prev == '{' && (c == '{' || c == '%') {
                depth += 1;
            } else if (prev == '}' || prev == '%') && c == '}' {
                depth = depth.saturating_sub(1);
            }
        }
        prev = c;
        if depth > 0 {
            cur.push(c);
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                any = true
            }
            None if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            None => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}
