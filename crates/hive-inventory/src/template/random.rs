//! Ansible's `random` and `shuffle` filters: `100 | random` is a number in
//! `[0, 100)` (`start`, `step` as Python's `randrange`), `list | random` one
//! item; with `seed` the choice is the same on every run.

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Error, ErrorKind};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};

fn rng(seed: Option<Value>) -> StdRng {
    match seed {
        Some(s) => {
            let text = s.to_string();
            let digest = <sha1::Sha1 as sha1::Digest>::digest(text.as_bytes());
            let mut bytes = [0u8; 32];
            bytes[..20].copy_from_slice(&digest);
            StdRng::from_seed(bytes)
        }
        None => StdRng::from_entropy(),
    }
}

pub(crate) fn random(v: Value, kw: Kwargs) -> Result<Value, Error> {
    let start: Option<i64> = kw.get("start")?;
    let step: Option<i64> = kw.get("step")?;
    let seed: Option<Value> = kw.get("seed")?;
    kw.assert_all_used()?;
    let mut r = rng(seed);
    if let Some(end) = v.as_i64() {
        let (start, step) = (start.unwrap_or(0), step.unwrap_or(1).max(1));
        if end <= start {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("random: empty range for randrange({start}, {end}, {step})"),
            ));
        }
        let n = (end - start + step - 1) / step;
        return Ok(Value::from(start + r.gen_range(0..n) * step));
    }
    if matches!(
        v.kind(),
        ValueKind::Seq | ValueKind::Map | ValueKind::String
    ) {
        let items: Vec<Value> = v.try_iter()?.collect();
        return Ok(items.choose(&mut r).cloned().unwrap_or_default());
    }
    Err(Error::new(
        ErrorKind::InvalidOperation,
        "random: needs a number or a list",
    ))
}

pub(crate) fn shuffle(v: Value, kw: Kwargs) -> Result<Value, Error> {
    let seed: Option<Value> = kw.get("seed")?;
    kw.assert_all_used()?;
    let mut items: Vec<Value> = v.try_iter()?.collect();
    items.shuffle(&mut rng(seed));
    Ok(Value::from(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_lists_and_seeds() {
        for _ in 0..50 {
            let n = random(
                Value::from(10),
                Kwargs::from_iter([("start", Value::from(4))]),
            )
            .unwrap()
            .as_i64()
            .unwrap();
            assert!((4..10).contains(&n), "{n}");
        }
        let seeded = |s: &str| {
            random(
                Value::from(1_000_000),
                Kwargs::from_iter([("seed", Value::from(s))]),
            )
            .unwrap()
        };
        assert_eq!(seeded("host1"), seeded("host1"));
        let one = random(
            Value::from(vec!["a"]),
            Kwargs::from_iter(Vec::<(&str, Value)>::new()),
        )
        .unwrap();
        assert_eq!(one.as_str(), Some("a"));
        assert!(
            random(
                Value::from(0),
                Kwargs::from_iter(Vec::<(&str, Value)>::new())
            )
            .is_err()
        );
    }
}
