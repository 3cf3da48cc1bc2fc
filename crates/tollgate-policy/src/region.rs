//! The operator's CIDR → region table: longest-prefix match over IPv4 and IPv6.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::error::PolicyError;

/// Maps client addresses to region names by the most specific matching CIDR.
///
/// Lookup walks the prefix lengths present in the table from longest to shortest, one
/// hash probe each (at most 33 for IPv4, 129 for IPv6, usually a handful). IPv4-mapped
/// IPv6 addresses (`::ffff:a.b.c.d`) are looked up as IPv4.
#[derive(Debug, Clone, Default)]
pub struct RegionTable {
    v4: Family,
    v6: Family,
}

#[derive(Debug, Clone, Default)]
struct Family {
    /// Prefix lengths present, longest first.
    lengths: Vec<u8>,
    /// (prefix length, masked network) → region.
    nets: HashMap<(u8, u128), String>,
}

impl Family {
    fn insert(&mut self, len: u8, net: u128, region: String) -> Option<String> {
        if !self.lengths.contains(&len) {
            self.lengths.push(len);
            self.lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
        self.nets.insert((len, net), region)
    }

    fn lookup(&self, addr: u128, bits: u8) -> Option<&str> {
        self.lengths
            .iter()
            .find_map(|&len| self.nets.get(&(len, mask(addr, len, bits))))
            .map(String::as_str)
    }
}

fn mask(addr: u128, len: u8, bits: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let shift = u32::from(bits - len);
        (addr >> shift) << shift
    }
}

impl RegionTable {
    /// An empty table (every address: no region).
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a table from `(cidr, region)` pairs, e.g. `("10.0.0.0/8", "eu-west")`. A
    /// bare address is a host route; host bits set beyond the prefix and a CIDR listed
    /// twice are errors.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, PolicyError> {
        let mut table = Self::new();
        for (cidr, region) in entries {
            table.insert(cidr, region)?;
        }
        Ok(table)
    }

    /// Adds one entry.
    pub fn insert(&mut self, cidr: &str, region: &str) -> Result<(), PolicyError> {
        let err = |message: &str| PolicyError::Region {
            entry: cidr.to_owned(),
            message: message.to_owned(),
        };
        if region.is_empty() {
            return Err(err("empty region name"));
        }
        let (addr, len) = match cidr.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (cidr, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| err("not an IP address"))?;
        let (family, value, bits) = match addr {
            IpAddr::V4(a) => (&mut self.v4, u128::from(u32::from(a)), 32u8),
            IpAddr::V6(a) => (&mut self.v6, u128::from(a), 128u8),
        };
        let len = match len {
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= bits)
                .ok_or_else(|| err("bad prefix length"))?,
            None => bits,
        };
        if mask(value, len, bits) != value {
            return Err(err("host bits set beyond the prefix"));
        }
        if family.insert(len, value, region.to_owned()).is_some() {
            return Err(err("listed twice"));
        }
        Ok(())
    }

    /// The region of `addr`, by longest prefix match.
    pub fn lookup(&self, addr: IpAddr) -> Option<&str> {
        match addr {
            IpAddr::V4(a) => self.v4.lookup(u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => self.v4.lookup(u128::from(u32::from(v4)), 32),
                None => self.v6.lookup(u128::from(a), 128),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RegionTable {
        RegionTable::from_entries([
            ("0.0.0.0/0", "world"),
            ("10.0.0.0/8", "eu-west"),
            ("10.1.0.0/16", "us-east"),
            ("10.1.2.3", "lab"),
            ("2001:db8::/32", "eu-west"),
            ("2001:db8:1::/48", "ap-south"),
        ])
        .unwrap()
    }

    fn check(addr: &str, expected: Option<&str>) {
        assert_eq!(table().lookup(addr.parse().unwrap()), expected, "{addr}");
    }

    #[test]
    fn longest_prefix_wins() {
        check("10.2.3.4", Some("eu-west"));
        check("10.1.9.9", Some("us-east"));
        check("10.1.2.3", Some("lab"));
        check("192.0.2.1", Some("world"));
        check("::ffff:10.1.9.9", Some("us-east"));
        check("2001:db8:2::1", Some("eu-west"));
        check("2001:db8:1::1", Some("ap-south"));
        check("2001:db9::1", None);
    }

    #[test]
    fn bad_entries_are_rejected() {
        for (cidr, region) in [
            ("10.0.0.1/8", "x"),
            ("10.0.0.0/33", "x"),
            ("nope/8", "x"),
            ("10.0.0.0/8", ""),
            ("::/129", "x"),
        ] {
            assert!(
                RegionTable::from_entries([(cidr, region)]).is_err(),
                "{cidr}"
            );
        }
        assert!(RegionTable::from_entries([("10.0.0.0/8", "a"), ("10.0.0.0/8", "b")]).is_err());
    }
}
