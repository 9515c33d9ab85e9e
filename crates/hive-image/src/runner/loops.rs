//! The loop forms computed by the runner itself: `with_together` and
//! `with_sequence` (the others are plain lists).

use serde_json::Value as Json;

/// `with_together`: the lists zipped, the shorter ones padded with null.
pub(super) fn together(lists: Vec<Json>) -> Vec<Json> {
    let lists: Vec<Vec<Json>> = lists
        .into_iter()
        .map(|l| match l {
            Json::Array(a) => a,
            other => vec![other],
        })
        .collect();
    let n = lists.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|i| {
            Json::Array(
                lists
                    .iter()
                    .map(|l| l.get(i).cloned().unwrap_or(Json::Null))
                    .collect(),
            )
        })
        .collect()
}

/// `with_sequence`: `start=1 end=5 stride=1 format=%d`, `count=5`, or the
/// shortcut `[start-]end[/stride][:format]`; items are strings.
pub(super) fn sequence(spec: &str) -> std::result::Result<Vec<Json>, String> {
    let (pairs, rest) = crate::role::split_kv(spec);
    let (mut start, mut end, mut stride, mut count, mut format) =
        (1i64, None::<i64>, 1i64, None::<i64>, "%d".to_string());
    let num = |k: &str, v: &str| -> std::result::Result<i64, String> {
        let v = v.trim();
        let parsed = if let Some(h) = v.strip_prefix("0x") {
            i64::from_str_radix(h, 16)
        } else if let Some(o) = v
            .strip_prefix("0o")
            .or_else(|| v.strip_prefix('0').filter(|o| !o.is_empty()))
        {
            i64::from_str_radix(o, 8)
        } else {
            v.parse()
        };
        parsed.map_err(|_| format!("with_sequence: {k}={v} is not an integer"))
    };
    let mut rest = rest.trim().to_string();
    if !rest.is_empty() {
        if let Some((r, f)) = rest.clone().split_once(':') {
            format = f.to_string();
            rest = r.to_string();
        }
        if let Some((r, s)) = rest.clone().split_once('/') {
            stride = num("stride", s)?;
            rest = r.to_string();
        }
        match rest.split_once('-') {
            Some((a, b)) => {
                start = num("start", a)?;
                end = Some(num("end", b)?);
            }
            None => end = Some(num("end", &rest)?),
        }
    }
    for (k, v) in &pairs {
        match k.as_str() {
            "start" => start = num(k, v)?,
            "end" => end = Some(num(k, v)?),
            "stride" => stride = num(k, v)?,
            "count" => count = Some(num(k, v)?),
            "format" => format = v.clone(),
            other => {
                return Err(format!(
                    "with_sequence: unknown argument {other} (valid: start, end, count, stride, format)"
                ));
            }
        }
    }
    let end = match (end, count) {
        (Some(_), Some(_)) => return Err("with_sequence: end and count are exclusive".into()),
        (Some(e), None) => e,
        (None, Some(0)) => return Ok(vec![]),
        (None, Some(c)) => start + (c - 1) * stride,
        (None, None) => return Err("with_sequence: end or count is required".into()),
    };
    if stride == 0 {
        return Ok(vec![]);
    }
    if (stride > 0 && end < start) || (stride < 0 && end > start) {
        return Err("with_sequence: to count backwards make stride negative".into());
    }
    let mut out = vec![];
    let mut i = start;
    while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
        out.push(Json::String(printf_int(&format, i)));
        i += stride;
    }
    Ok(out)
}

/// Python's `format % i` for one integer conversion (`%d`, `%02d`, `%x`,
/// `%o`, `%s`).
fn printf_int(format: &str, i: i64) -> String {
    let Some(pos) = format.find('%') else {
        return format.to_string();
    };
    let tail = &format[pos + 1..];
    let spec_end = tail
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(tail.len());
    let (flags, conv) = (&tail[..spec_end], tail[spec_end..].chars().next());
    let width: usize = flags.trim_start_matches(['0', '-']).parse().unwrap_or(0);
    let body = match conv {
        Some('x') => format!("{i:x}"),
        Some('X') => format!("{i:X}"),
        Some('o') => format!("{i:o}"),
        _ => i.to_string(),
    };
    let padded = if flags.starts_with('0') {
        format!("{body:0>width$}")
    } else if flags.starts_with('-') {
        format!("{body:<width$}")
    } else {
        format!("{body:>width$}")
    };
    let after = conv.map(|c| &tail[spec_end + c.len_utf8()..]).unwrap_or("");
    format!("{}{padded}{after}", &format[..pos])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sequences_and_zips() {
        assert_eq!(
            sequence("start=1 end=3 format=host%02d").unwrap(),
            vec![json!("host01"), json!("host02"), json!("host03")]
        );
        assert_eq!(
            sequence("count=2 stride=2 start=0").unwrap(),
            vec![json!("0"), json!("2")]
        );
        assert_eq!(sequence("4-6/2").unwrap(), vec![json!("4"), json!("6")]);
        assert!(sequence("start=5 end=1").is_err());
        assert_eq!(
            together(vec![json!([1, 2]), json!(["a"])]),
            vec![json!([1, "a"]), json!([2, null])]
        );
    }
}
