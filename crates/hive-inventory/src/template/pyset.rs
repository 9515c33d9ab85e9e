//! CPython's `set` as Ansible's set filters (`intersect`, `union`,
//! `difference`, `symmetric_difference`) use it, with hash randomization off
//! (`PYTHONHASHSEED=0`): the same elements come out in the same order as
//! Ansible gives with that seed (siphash13 string hashing, open addressing
//! with linear probes and perturbation, CPython 3.11).

use minijinja::value::{Value, ValueKind};

const MIN_SIZE: usize = 8;
const LINEAR_PROBES: usize = 9;
const PERTURB_SHIFT: u32 = 5;

/// How many slots after `i` are probed linearly before the next jump
/// (none near the end of the table), as CPython's `setobject.c`.
fn linear_probes(i: usize, mask: usize) -> usize {
    if i + LINEAR_PROBES <= mask {
        LINEAR_PROBES
    } else {
        0
    }
}

/// The next slot of a probe sequence after `i`, as CPython's
/// `setobject.c`: `perturb` takes in the hash's higher bits step by step.
fn next_probe(i: usize, perturb: &mut u64, mask: usize) -> usize {
    *perturb >>= PERTURB_SHIFT;
    (i.wrapping_mul(5)
        .wrapping_add(1)
        .wrapping_add(*perturb as usize))
        & mask
}

#[derive(Clone)]
enum Slot {
    Empty,
    Dummy,
    Active(i64, Value),
}

/// A CPython set of hashable template values.
#[derive(Clone)]
pub(crate) struct PySet {
    table: Vec<Slot>,
    fill: usize,
    used: usize,
}

fn rotl(x: u64, b: u32) -> u64 {
    x.rotate_left(b)
}

fn single_round(v: &mut [u64; 4]) {
    // HALF_ROUND(v0,v1,v2,v3,13,16)
    v[0] = v[0].wrapping_add(v[1]);
    v[2] = v[2].wrapping_add(v[3]);
    v[1] = rotl(v[1], 13) ^ v[0];
    v[3] = rotl(v[3], 16) ^ v[2];
    v[0] = rotl(v[0], 32);
    // HALF_ROUND(v2,v1,v0,v3,17,21)
    v[2] = v[2].wrapping_add(v[1]);
    v[0] = v[0].wrapping_add(v[3]);
    v[1] = rotl(v[1], 17) ^ v[2];
    v[3] = rotl(v[3], 21) ^ v[0];
    v[2] = rotl(v[2], 32);
}

/// CPython's siphash13 with a zero key.
fn siphash13(data: &[u8]) -> u64 {
    let (k0, k1) = (0u64, 0u64);
    let mut b: u64 = (data.len() as u64) << 56;
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(c);
        let mi = u64::from_le_bytes(buf);
        v[3] ^= mi;
        single_round(&mut v);
        v[0] ^= mi;
    }
    let mut t = [0u8; 8];
    let rest = chunks.remainder();
    t[..rest.len()].copy_from_slice(rest);
    b |= u64::from_le_bytes(t);
    v[3] ^= b;
    single_round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    single_round(&mut v);
    single_round(&mut v);
    single_round(&mut v);
    (v[0] ^ v[1]) ^ (v[2] ^ v[3])
}

fn fix(h: i64) -> i64 {
    if h == -1 { -2 } else { h }
}

/// Python's `hash()` of a string (PEP 393 storage: 1, 2 or 4 bytes a char).
fn str_hash(s: &str) -> i64 {
    if s.is_empty() {
        return 0;
    }
    let max = s.chars().map(u32::from).max().unwrap_or(0);
    let bytes: Vec<u8> = if max < 0x100 {
        s.chars().map(|c| u32::from(c) as u8).collect()
    } else if max < 0x10000 {
        s.chars()
            .flat_map(|c| (u32::from(c) as u16).to_le_bytes())
            .collect()
    } else {
        s.chars().flat_map(|c| u32::from(c).to_le_bytes()).collect()
    };
    fix(siphash13(&bytes) as i64)
}

/// Python's `hash()` of an int.
fn int_hash(i: i128) -> i64 {
    const P: i128 = (1 << 61) - 1;
    let h = (i.abs() % P) as i64;
    fix(if i < 0 { -h } else { h })
}

/// Python's hash of a value, or `None` when hive cannot reproduce it
/// (unhashable or identity-hashed values).
pub(crate) fn py_hash(v: &Value) -> Option<i64> {
    match v.kind() {
        ValueKind::String => Some(str_hash(v.as_str()?)),
        ValueKind::Bool => Some(i64::from(v.is_true())),
        ValueKind::Number if v.is_integer() => Some(int_hash(i128::try_from(v.clone()).ok()?)),
        ValueKind::Number => {
            let f = f64::try_from(v.clone()).ok()?;
            (f.fract() == 0.0 && f.abs() < 1e18).then(|| int_hash(f as i128))
        }
        _ => None,
    }
}

impl PySet {
    pub(crate) fn new() -> PySet {
        PySet {
            table: vec![Slot::Empty; MIN_SIZE],
            fill: 0,
            used: 0,
        }
    }

    /// `set(items)`; `None` when an item is not hashable here.
    pub(crate) fn from_items(items: &[Value]) -> Option<PySet> {
        let mut s = PySet::new();
        for item in items {
            s.add(item.clone(), py_hash(item)?);
        }
        Some(s)
    }

    fn mask(&self) -> usize {
        self.table.len() - 1
    }

    pub(crate) fn len(&self) -> usize {
        self.used
    }

    /// The elements in iteration order.
    pub(crate) fn items(&self) -> Vec<Value> {
        self.entries().into_iter().map(|(_, v)| v).collect()
    }

    fn entries(&self) -> Vec<(i64, Value)> {
        self.table
            .iter()
            .filter_map(|s| match s {
                Slot::Active(h, v) => Some((*h, v.clone())),
                _ => None,
            })
            .collect()
    }

    /// The slot holding `key`, or the first empty slot of its probe sequence.
    fn lookup(&self, key: &Value, hash: i64) -> Result<usize, usize> {
        let mask = self.mask();
        let mut perturb = hash as u64;
        let mut i = (hash as u64 as usize) & mask;
        loop {
            let probes = linear_probes(i, mask);
            for j in i..=i + probes {
                match &self.table[j] {
                    Slot::Empty => return Err(j),
                    Slot::Active(h, v) if *h == hash && v == key => return Ok(j),
                    _ => {}
                }
            }
            i = next_probe(i, &mut perturb, mask);
        }
    }

    pub(crate) fn contains(&self, key: &Value, hash: i64) -> bool {
        self.lookup(key, hash).is_ok()
    }

    pub(crate) fn add(&mut self, key: Value, hash: i64) {
        let mask = self.mask();
        let mut perturb = hash as u64;
        let mut i = (hash as u64 as usize) & mask;
        let mut freeslot: Option<usize> = None;
        let slot = loop {
            let probes = linear_probes(i, mask);
            let mut found = None;
            for j in i..=i + probes {
                match &self.table[j] {
                    Slot::Empty => {
                        found = Some(j);
                        break;
                    }
                    Slot::Active(h, v) if *h == hash && *v == key => return,
                    Slot::Dummy => {
                        if freeslot.is_none() {
                            freeslot = Some(j);
                        }
                    }
                    Slot::Active(..) => {}
                }
            }
            if let Some(j) = found {
                break j;
            }
            i = next_probe(i, &mut perturb, mask);
        };
        if let Some(f) = freeslot {
            self.used += 1;
            self.table[f] = Slot::Active(hash, key);
            return;
        }
        self.fill += 1;
        self.used += 1;
        self.table[slot] = Slot::Active(hash, key);
        if self.fill * 5 < mask * 3 {
            return;
        }
        let minused = if self.used > 50000 {
            self.used * 2
        } else {
            self.used * 4
        };
        self.resize(minused);
    }

    fn insert_clean(table: &mut [Slot], key: Value, hash: i64) {
        let mask = table.len() - 1;
        let mut perturb = hash as u64;
        let mut i = (hash as u64 as usize) & mask;
        loop {
            if matches!(table[i], Slot::Empty) {
                table[i] = Slot::Active(hash, key);
                return;
            }
            if i + LINEAR_PROBES <= mask {
                if let Some(slot) = table[i + 1..=i + LINEAR_PROBES]
                    .iter_mut()
                    .find(|s| matches!(s, Slot::Empty))
                {
                    *slot = Slot::Active(hash, key);
                    return;
                }
            }
            i = next_probe(i, &mut perturb, mask);
        }
    }

    fn resize(&mut self, minused: usize) {
        let mut newsize = MIN_SIZE;
        while newsize <= minused {
            newsize <<= 1;
        }
        let old = std::mem::replace(&mut self.table, vec![Slot::Empty; newsize]);
        self.fill = self.used;
        for slot in old {
            if let Slot::Active(h, v) = slot {
                PySet::insert_clean(&mut self.table, v, h);
            }
        }
    }

    fn discard(&mut self, key: &Value, hash: i64) -> bool {
        match self.lookup(key, hash) {
            Ok(j) => {
                self.table[j] = Slot::Dummy;
                self.used -= 1;
                true
            }
            Err(_) => false,
        }
    }

    /// `set_merge`: adds every element of `other`.
    fn merge(&mut self, other: &PySet) {
        if other.used == 0 {
            return;
        }
        if (self.fill + other.used) * 5 >= self.mask() * 3 {
            self.resize((self.used + other.used) * 2);
        }
        let other_clean = other.fill == other.used;
        if self.fill == 0 && self.mask() == other.mask() && other_clean {
            self.table.clone_from(&other.table);
            self.fill = other.fill;
            self.used = other.used;
            return;
        }
        if self.fill == 0 {
            self.fill = other.used;
            self.used = other.used;
            for (h, v) in other.entries() {
                PySet::insert_clean(&mut self.table, v, h);
            }
            return;
        }
        for (h, v) in other.entries() {
            self.add(v, h);
        }
    }

    /// `set(self)`.
    fn copy(&self) -> PySet {
        let mut s = PySet::new();
        s.merge(self);
        s
    }

    /// `self & other`.
    pub(crate) fn intersection(&self, other: &PySet) -> PySet {
        let (so, other) = if other.len() > self.len() {
            (other, self)
        } else {
            (self, other)
        };
        let mut result = PySet::new();
        for (h, v) in other.entries() {
            if so.contains(&v, h) {
                result.add(v, h);
            }
        }
        result
    }

    /// `self - other`.
    pub(crate) fn difference(&self, other: &PySet) -> PySet {
        if (self.len() >> 2) > other.len() {
            let mut result = self.copy();
            for (h, v) in other.entries() {
                result.discard(&v, h);
            }
            return result;
        }
        let mut result = PySet::new();
        for (h, v) in self.entries() {
            if !other.contains(&v, h) {
                result.add(v, h);
            }
        }
        result
    }

    /// `self | other`.
    pub(crate) fn union(&self, other: &PySet) -> PySet {
        let mut result = self.copy();
        result.merge(other);
        result
    }

    /// `self ^ other`.
    pub(crate) fn symmetric_difference(&self, other: &PySet) -> PySet {
        let mut result = other.copy();
        for (h, v) in self.entries() {
            if !result.discard(&v, h) {
                result.add(v, h);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(items: &[&str]) -> Vec<Value> {
        items.iter().map(|s| Value::from(*s)).collect()
    }

    #[test]
    fn hashes_match_cpython_with_seed_zero() {
        // PYTHONHASHSEED=0 python3 -c "print(hash('configure'), hash('a'), hash('é'))"
        assert_eq!(str_hash("configure"), -8277084752118915166);
        assert_eq!(str_hash("a"), 4644417185603328019);
        assert_eq!(str_hash("é"), 6047309291227476195);
        assert_eq!(str_hash("日本"), 6243316497235261705);
        assert_eq!(str_hash(&"a".repeat(20)), 3291541819775287794);
        assert_eq!(str_hash(""), 0);
        assert_eq!(int_hash(-1), -2);
        assert_eq!(int_hash(12), 12);
    }

    #[test]
    fn intersection_order_matches_ansible_seed_zero() {
        let a = PySet::from_items(&strs(&[
            "powerdns",
            "pdnsdb",
            "pdnsadmin",
            "proxy",
            "configure",
        ]))
        .unwrap();
        let b = PySet::from_items(&strs(&[
            "p-hive0.pdns",
            "p-mother.pdns",
            "powerdns",
            "pdnsdb",
            "pdnsadmin",
            "proxy",
            "configure",
            "certbot",
        ]))
        .unwrap();
        let got: Vec<String> = a
            .intersection(&b)
            .items()
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(
            got,
            ["configure", "powerdns", "pdnsadmin", "proxy", "pdnsdb"]
        );
    }
}
