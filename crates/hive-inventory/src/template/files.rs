//! Ansible's path and hash filters (`expanduser`, `realpath`, `hash`,
//! `checksum`, `sha1`, `md5`) and the result tests spelled as Ansible's aliases
//! (`successful`, `failure`, `change`, `skip`, `finished`).

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};
use sha1::Digest;

use super::pyvalue::text;

fn hash_of(data: &[u8], algorithm: &str) -> Result<String, Error> {
    Ok(match algorithm {
        "md5" => hex::encode(md5(data)),
        "sha1" => hex::encode(sha1::Sha1::digest(data)),
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "hash: unsupported algorithm {other} (supported: md5, sha1, sha224, sha256, sha384, sha512)"
                ),
            ));
        }
    })
}

/// MD5 (RFC 1321), for `hash('md5')` and `md5`: checksums that roles
/// compare with what `copy`, `stat` and `md5sum` report.
fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_le_bytes());
    let mut h: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        h = [
            h[0].wrapping_add(a),
            h[1].wrapping_add(b),
            h[2].wrapping_add(c),
            h[3].wrapping_add(d),
        ];
    }
    let mut out = [0u8; 16];
    for (i, w) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
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
    env.add_filter("md5", |v: Value| hash_of(text(&v)?.as_bytes(), "md5"));
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
        assert_eq!(
            hash_of(b"", "md5").unwrap(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            hash_of(b"The quick brown fox jumps over the lazy dog", "md5").unwrap(),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        assert_eq!(
            hash_of(&[b'a'; 100], "md5").unwrap(),
            "36a92cc94a9e0fa21f625f8bfb007adf"
        );
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        assert_eq!(
            expanduser("~/a"),
            format!("{}/a", home.trim_end_matches('/'))
        );
        assert_eq!(expanduser("/a/~"), "/a/~");
    }
}
