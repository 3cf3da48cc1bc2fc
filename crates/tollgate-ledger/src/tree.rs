//! RFC 9162 §2.1 Merkle tree hashing: leaf and interior hashes, the `NodeSource` abstraction
//! over stored perfect subtrees, roots of any range from O(log n) node reads, and the compact
//! range (frontier) that tracks the right edge while appending.

use sha2::{Digest, Sha256};

use crate::error::Result;

/// A SHA-256 output: leaf hashes, interior node hashes and tree roots.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ leaf)`: the domain-separated hash of one log entry (RFC 9162 §2.1.1).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// `SHA-256("")`: the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`): RFC 9162's split point `k`.
pub(crate) fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Where perfect-subtree hashes come from. `perfect(level, index)` is the root of the perfect
/// subtree over leaves `[index·2^level, (index+1)·2^level)`; level 0 is the leaf hash. Callers
/// only ask for subtrees that lie entirely inside the tree they work on, so a stored log
/// answers from immutable data.
pub trait NodeSource {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash>;
}

impl<T: NodeSource + ?Sized> NodeSource for &T {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash> {
        (**self).perfect(level, index)
    }
}

/// `MTH(D[start:end])` for a range that is a node of the RFC 9162 tree: `start` is a multiple
/// of the smallest power of two `>= end - start`. Such a range is a sequence of aligned perfect
/// subtrees of decreasing size (the set bits of its length), folded right to left, so it costs
/// one `perfect` call per set bit.
pub fn range_root(src: &impl NodeSource, start: u64, end: u64) -> Result<Hash> {
    debug_assert!(start <= end);
    let len = end - start;
    if len == 0 {
        return Ok(empty_root());
    }
    let mut parts = Vec::with_capacity(len.count_ones() as usize);
    let mut pos = start;
    for level in (0..64u32).rev() {
        if len & (1 << level) != 0 {
            parts.push(src.perfect(level, pos >> level)?);
            pos += 1 << level;
        }
    }
    let mut acc = parts.pop().expect("len > 0 has a set bit");
    while let Some(left) = parts.pop() {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

/// The tree head `MTH(D[0:n])`.
pub fn root(src: &impl NodeSource, n: u64) -> Result<Hash> {
    range_root(src, 0, n)
}

/// The compact range `[0, size)`: one perfect-subtree root per set bit of `size`, largest
/// first. Appending costs O(1) amortized hashing and reports every perfect subtree it
/// completes, which is how the writer fills the node storage without ever re-reading it.
#[derive(Clone, Debug, Default)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

impl CompactRange {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from a node source.
    pub fn from_source(src: &impl NodeSource, size: u64) -> Result<Self> {
        let mut hashes = Vec::new();
        let mut pos = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                hashes.push(src.perfect(level, pos >> level)?);
                pos += 1 << level;
            }
        }
        Ok(Self { size, hashes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash. `emit(level, index, hash)` is called for the leaf itself
    /// (level 0) and for every perfect subtree this leaf completes, in increasing level.
    pub fn push(&mut self, leaf: Hash, mut emit: impl FnMut(u32, u64, &Hash)) {
        let index = self.size;
        emit(0, index, &leaf);
        let mut h = leaf;
        let mut level = 0u32;
        while (index >> level) & 1 == 1 {
            let left = self.hashes.pop().expect("a set bit has a stored subtree");
            h = node_hash(&left, &h);
            level += 1;
            emit(level, index >> level, &h);
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The root of the tree of `size()` leaves.
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// A whole tree held in memory, every level stored: the reference node source for tests and
/// small logs.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    frontier: CompactRange,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_leaves<L: AsRef<[u8]>>(leaves: impl IntoIterator<Item = L>) -> Self {
        let mut t = Self::new();
        for l in leaves {
            t.push(l.as_ref());
        }
        t
    }

    /// Appends a leaf (its body; the leaf hash is computed here).
    pub fn push(&mut self, leaf: &[u8]) {
        self.push_hash(leaf_hash(leaf));
    }

    /// Appends a leaf given its leaf hash.
    pub fn push_hash(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        self.frontier.push(leaf, |level, index, h| {
            let level = level as usize;
            if levels.len() <= level {
                levels.push(Vec::new());
            }
            debug_assert_eq!(levels[level].len() as u64, index);
            levels[level].push(*h);
        });
    }

    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The current root, from the frontier (no node reads).
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}

impl NodeSource for MemoryTree {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash> {
        self.levels
            .get(level as usize)
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or(crate::Error::IndexOutOfRange {
                index: index << level,
                size: self.size(),
            })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// RFC 9162 §2.1.1's definition, written as recursively as the text: the independent
    /// reference every optimised path is checked against.
    pub(crate) fn naive_mth(leaves: &[Vec<u8>]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = naive_split(n);
                node_hash(&naive_mth(&leaves[..k]), &naive_mth(&leaves[k..]))
            }
        }
    }

    pub(crate) fn naive_split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    #[test]
    fn split_is_the_largest_power_of_two_below_n() {
        for n in 2..300u64 {
            assert_eq!(split(n), naive_split(n as usize) as u64, "n={n}");
        }
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(MemoryTree::new().root(), empty_root());
    }

    #[test]
    fn frontier_memory_tree_and_node_source_roots_agree_with_the_definition() {
        let leaves: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let mut t = MemoryTree::new();
        for n in 0..=leaves.len() {
            let want = naive_mth(&leaves[..n]);
            assert_eq!(t.root(), want, "frontier n={n}");
            assert_eq!(root(&t, n as u64).unwrap(), want, "node source n={n}");
            assert_eq!(
                CompactRange::from_source(&t, n as u64).unwrap().root(),
                want,
                "rebuilt frontier n={n}"
            );
            if n < leaves.len() {
                t.push(&leaves[n]);
            }
        }
    }
}
