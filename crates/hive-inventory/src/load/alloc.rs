//! Persistent number allocation: drbd device ids and published ports.

use indexmap::IndexMap;

/// Allocations shared by every services file of one load.
pub(crate) struct Allocations {
    pub drbd_device_map: Allocator,
    pub published_port_map: Allocator,
}

/// A persistent name -> number map handing out the lowest free number of a range.
pub(crate) struct Allocator {
    pub map: IndexMap<String, i64>,
    counts: std::collections::HashMap<i64, usize>,
    start: i64,
    floor: i64,
    end: i64,
}

impl Allocator {
    pub fn new(map: IndexMap<String, i64>, range: std::ops::Range<i64>) -> Self {
        let mut counts = std::collections::HashMap::new();
        for v in map.values() {
            *counts.entry(*v).or_insert(0) += 1;
        }
        Allocator {
            map,
            counts,
            start: range.start,
            floor: range.start,
            end: range.end,
        }
    }

    pub fn get(&self, key: &str) -> Option<i64> {
        self.map.get(key).copied()
    }

    /// Another name holding `value`, if any.
    pub fn other_owner(&self, value: i64, key: &str) -> Option<String> {
        let count = self.counts.get(&value).copied().unwrap_or(0);
        let own = usize::from(self.map.get(key) == Some(&value));
        if count > own {
            self.map
                .iter()
                .find(|(k, v)| **v == value && *k != key)
                .map(|(k, _)| k.clone())
        } else {
            None
        }
    }

    pub fn insert(&mut self, key: String, value: i64) {
        if let Some(old) = self.map.insert(key, value) {
            if let Some(c) = self.counts.get_mut(&old) {
                *c -= 1;
                if *c == 0 {
                    self.counts.remove(&old);
                    // A number freed below the range (a port declared
                    // twice, or a seeded entry) must not move the floor
                    // out of the range.
                    self.floor = self.floor.min(old.max(self.start));
                }
            }
        }
        *self.counts.entry(value).or_insert(0) += 1;
    }

    /// The lowest number of the range no name holds.
    pub fn lowest_free(&mut self) -> Option<i64> {
        while self.floor < self.end && self.counts.contains_key(&self.floor) {
            self.floor += 1;
        }
        (self.floor < self.end).then_some(self.floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_declared_twice_below_the_range_keeps_the_floor() {
        let mut a = Allocator::new(IndexMap::new(), 61001..65535);
        a.insert("dns53".into(), 53);
        a.insert("dns53".into(), 53);
        assert_eq!(a.lowest_free(), Some(61001));
    }

    #[test]
    fn a_freed_number_in_the_range_is_handed_out_again() {
        let seeded = IndexMap::from([("a".to_string(), 61001), ("b".to_string(), 61002)]);
        let mut a = Allocator::new(seeded, 61001..65535);
        assert_eq!(a.lowest_free(), Some(61003));
        a.insert("a".into(), 8080);
        assert_eq!(a.lowest_free(), Some(61001));
    }
}
