//! RFC 9162 §2.1.3 inclusion proofs and §2.1.4 consistency proofs: generation from a
//! `NodeSource` in O(log n) node reads, and the verification algorithms of §2.1.3.2 and
//! §2.1.4.2 written step by step as the RFC states them.

use crate::error::{Error, Result};
use crate::tree::{Hash, NodeSource, node_hash, range_root, split};

/// `PATH(index, D[0:size])` (RFC 9162 §2.1.3.1), deepest sibling first.
pub fn inclusion(src: &impl NodeSource, index: u64, size: u64) -> Result<Vec<Hash>> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    // Walk down from the root recording siblings, then reverse: the RFC lists the path from
    // the leaf upwards. Only the first left turn off the right edge has a non-perfect sibling,
    // so the whole walk costs O(log n) `perfect` calls.
    let mut path = Vec::with_capacity(64);
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let k = split(end - start);
        if index < start + k {
            path.push(range_root(src, start + k, end)?);
            end = start + k;
        } else {
            path.push(range_root(src, start, start + k)?);
            start += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// `PROOF(old, D[0:new])` (RFC 9162 §2.1.4.1). Empty when `old == new` or `old == 0`.
pub fn consistency(src: &impl NodeSource, old: u64, new: u64) -> Result<Vec<Hash>> {
    if old > new {
        return Err(Error::BadConsistencyRange { old, new });
    }
    let mut proof = Vec::with_capacity(64);
    if old == 0 || old == new {
        return Ok(proof);
    }
    // SUBPROOF(m, D[start:end], b), unrolled: the recursion only ever descends into one child
    // and appends the other child's hash after returning, so collect those hashes on the way
    // down and emit them in reverse.
    let (mut m, mut start, mut end, mut b) = (old, 0u64, new, true);
    let mut after = Vec::with_capacity(64);
    loop {
        let n = end - start;
        if m == n {
            if !b {
                proof.push(range_root(src, start, end)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            after.push(range_root(src, start + k, end)?);
            end = start + k;
        } else {
            after.push(range_root(src, start, start + k)?);
            m -= k;
            start += k;
            b = false;
        }
    }
    proof.extend(after.into_iter().rev());
    Ok(proof)
}

/// RFC 9162 §2.1.3.2: checks that `leaf` (a leaf hash) is at `index` in the tree of `size`
/// leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<()> {
    let r = root_from_inclusion(leaf, index, size, path)?;
    if &r != root {
        return Err(Error::InclusionProof("computed root differs"));
    }
    Ok(())
}

/// The root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1–5 without the final
/// comparison), for callers that compare against several roots.
pub fn root_from_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash]) -> Result<Hash> {
    // 1. If leaf_index is greater than or equal to tree_size, then fail.
    if index >= size {
        return Err(Error::InclusionProof(
            "leaf index is not below the tree size",
        ));
    }
    // 2. Set fn to leaf_index and sn to tree_size - 1.
    let (mut fnn, mut sn) = (index, size - 1);
    // 3. Set r to hash.
    let mut r = *leaf;
    // 4. For each value p in the inclusion_path array:
    for p in path {
        // a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0 {
            return Err(Error::InclusionProof("proof is too long"));
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fnn & 1 == 1 || fnn == sn {
            // i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, &r);
            // ii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            //     either LSB(fn) is set or fn is 0.
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            // Otherwise: i. Set r to HASH(0x01 || r || p).
            r = node_hash(&r, p);
        }
        // c. Finally, right-shift both fn and sn one time.
        fnn >>= 1;
        sn >>= 1;
    }
    // 5. Compare sn to 0.
    if sn != 0 {
        return Err(Error::InclusionProof("proof is too short"));
    }
    Ok(r)
}

/// RFC 9162 §2.1.4.2: checks that the tree of `old` leaves with root `old_root` is a prefix of
/// the tree of `new` leaves with root `new_root`. Equal sizes need an empty proof and equal
/// roots; an empty old tree is consistent with everything and needs an empty proof.
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<()> {
    if old > new {
        return Err(Error::ConsistencyProof("old size is larger than new size"));
    }
    if old == new {
        if !proof.is_empty() {
            return Err(Error::ConsistencyProof(
                "proof for equal sizes must be empty",
            ));
        }
        if old_root != new_root {
            return Err(Error::ConsistencyProof("roots of equal sizes differ"));
        }
        return Ok(());
    }
    if old == 0 {
        if !proof.is_empty() {
            return Err(Error::ConsistencyProof(
                "proof from the empty tree must be empty",
            ));
        }
        return Ok(());
    }
    // 1. If consistency_path is an empty array, stop and fail the proof verification.
    if proof.is_empty() {
        return Err(Error::ConsistencyProof("proof is empty"));
    }
    // 2. If first is an exact power of 2, then prepend first_hash to the consistency_path.
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(old_root);
    }
    path.extend(proof.iter());
    // 3. Set fn to first - 1 and sn to second - 1.
    let (mut fnn, mut sn) = (old - 1, new - 1);
    // 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    // 5. Set both fr and sr to the first value in the consistency_path array.
    let (mut fr, mut sr) = (*path[0], *path[0]);
    // 6. For each subsequent value c in the consistency_path array:
    for c in &path[1..] {
        // a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0 {
            return Err(Error::ConsistencyProof("proof is too long"));
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fnn & 1 == 1 || fnn == sn {
            // i. Set fr to HASH(0x01 || c || fr). Set sr to HASH(0x01 || c || sr).
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // ii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            //     either LSB(fn) is set or fn is 0.
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            // Otherwise: i. Set sr to HASH(0x01 || sr || c).
            sr = node_hash(&sr, c);
        }
        // c. Finally, right-shift both fn and sn one time.
        fnn >>= 1;
        sn >>= 1;
    }
    // 7. Verify fr == first_hash, sr == second_hash and sn == 0.
    if sn != 0 {
        return Err(Error::ConsistencyProof("proof is too short"));
    }
    if &fr != old_root {
        return Err(Error::ConsistencyProof("computed old root differs"));
    }
    if &sr != new_root {
        return Err(Error::ConsistencyProof("computed new root differs"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{naive_mth, naive_split};
    use crate::tree::{MemoryTree, leaf_hash, root};
    use proptest::prelude::*;

    fn hx(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// The eight leaves of the Certificate Transparency reference tests
    /// (transparency-dev/merkle testonly/constants.go, certificate-transparency C++/Go).
    fn ct_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| hex::decode(s).unwrap())
        .collect()
    }

    /// Roots for sizes 1..=8 as published with those leaves.
    const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// (0-based leaf index, tree size, path): transparency-dev/merkle proof/verify_test.go
    /// `inclusionProofs` (which numbers leaves from 1) and testonly/reference_test.go.
    fn ct_inclusion() -> Vec<(u64, u64, Vec<&'static str>)> {
        vec![
            (0, 1, vec![]),
            (
                0,
                8,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                vec![
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                vec!["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                vec![
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                0,
                2,
                vec!["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
            ),
            (
                1,
                2,
                vec!["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
            ),
        ]
    }

    /// (old, new, proof): transparency-dev/merkle proof/verify_test.go `consistencyProofs`.
    fn ct_consistency() -> Vec<(u64, u64, Vec<&'static str>)> {
        vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                vec![
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                vec![
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                vec![
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ]
    }

    fn ct_tree() -> MemoryTree {
        MemoryTree::from_leaves(ct_leaves())
    }

    #[test]
    fn ct_roots_for_every_size() {
        let leaves = ct_leaves();
        let t = ct_tree();
        for n in 1..=8 {
            let want = hx(CT_ROOTS[n - 1]);
            assert_eq!(root(&t, n as u64).unwrap(), want, "size {n}");
            assert_eq!(naive_mth(&leaves[..n]), want, "naive size {n}");
        }
    }

    /// transparency-dev/merkle compact/range_test.go TestGetRootHashGolden: leaf i is the
    /// two bytes of i little-endian; roots published as base64.
    #[test]
    fn compact_range_golden_roots() {
        use base64::Engine;
        let golden = [
            (10, "VjWMPSYNtCuCNlF/RLnQy6HcwSk6CIipfxm+hettA+4="),
            (15, "j4SulYmocFuxdeyp12xXCIgK6PekBcxzAIj4zbQzNEI="),
            (16, "c+4Uc6BCMOZf/v3NZK1kqTUJe+bBoFtOhP+P3SayKRE="),
            (100, "dUh9hYH88p0CMoHkdr1wC2szbhcLAXOejWpINIooKUY="),
            (255, "SmdsuKUqiod3RX2jyF2M6JnbdE4QuTwwipfAowI4/i0="),
            (256, "qFI0t/tZ1MdOYgyPpPzHFiZVw86koScXy9q3FU5casA="),
            (1000, "RXrgb8xHd55Y48FbfotJwCbV82Kx22LZfEbmBGAvwlQ="),
            (4095, "cWRFdQhPcjn9WyBXE/r1f04ejxIm5lvg40DEpRBVS0w="),
            (4096, "6uU/phfHg1n/GksYT6TO9aN8EauMCCJRl3dIK0HDs2M="),
            (10000, "VZcav65F9haHVRk3wre2axFoBXRNeUh/1d9d5FQfxIg="),
            (65535, "iPuVYJhP6SEE4gUFp8qbafd2rYv9YTCDYqAxCj8HdLM="),
        ];
        let t = MemoryTree::from_leaves((0..65535u32).map(|i| [(i & 0xff) as u8, (i >> 8) as u8]));
        for (n, b64) in golden {
            let want = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            assert_eq!(root(&t, n).unwrap().to_vec(), want, "size {n}");
        }
    }

    #[test]
    fn ct_inclusion_paths_generate_and_verify() {
        let leaves = ct_leaves();
        let t = ct_tree();
        for (i, n, want) in ct_inclusion() {
            let want: Vec<Hash> = want.iter().map(|s| hx(s)).collect();
            assert_eq!(inclusion(&t, i, n).unwrap(), want, "path ({i}, {n})");
            verify_inclusion(
                &leaf_hash(&leaves[i as usize]),
                i,
                n,
                &want,
                &hx(CT_ROOTS[n as usize - 1]),
            )
            .unwrap();
        }
    }

    #[test]
    fn ct_consistency_proofs_generate_and_verify() {
        let t = ct_tree();
        for (m, n, want) in ct_consistency() {
            let want: Vec<Hash> = want.iter().map(|s| hx(s)).collect();
            assert_eq!(consistency(&t, m, n).unwrap(), want, "proof ({m}, {n})");
            let (r1, r2) = (hx(CT_ROOTS[m as usize - 1]), hx(CT_ROOTS[n as usize - 1]));
            verify_consistency(m, n, &want, &r1, &r2).unwrap();
        }
    }

    /// A damaged proof: what was changed, the claimed index (or old size) and size, the proof.
    type Mutant = (String, u64, u64, Vec<Hash>);

    /// Every way of damaging the proof itself (transparency-dev/merkle's
    /// corruptInclusionProof mutations): extra, missing and flipped elements.
    fn element_mutants(a: u64, b: u64, proof: &[Hash]) -> Vec<Mutant> {
        let mut out = Vec::new();
        let mut extra = proof.to_vec();
        extra.push([7u8; 32]);
        out.push(("extra element".to_string(), a, b, extra));
        let mut front = vec![[7u8; 32]];
        front.extend_from_slice(proof);
        out.push(("preceding element".into(), a, b, front));
        if !proof.is_empty() {
            out.push((
                "missing element".into(),
                a,
                b,
                proof[..proof.len() - 1].to_vec(),
            ));
            out.push(("missing first element".into(), a, b, proof[1..].to_vec()));
        }
        if proof.len() > 1 {
            let mut swapped = proof.to_vec();
            swapped.swap(0, 1);
            if swapped != proof {
                out.push(("swapped elements".into(), a, b, swapped));
            }
        }
        for k in 0..proof.len() {
            let mut p = proof.to_vec();
            p[k][0] ^= 8;
            out.push((format!("flipped element {k}"), a, b, p));
        }
        out
    }

    #[test]
    fn every_corrupted_proof_is_rejected() {
        let leaves: Vec<Vec<u8>> = (0..81u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let t = MemoryTree::from_leaves(&leaves);
        let roots: Vec<Hash> = (0..=80).map(|n| naive_mth(&leaves[..n])).collect();
        for n in 1..=40u64 {
            let rn = roots[n as usize];
            for i in 0..n {
                let lh = leaf_hash(&leaves[i as usize]);
                let path = inclusion(&t, i, n).unwrap();
                verify_inclusion(&lh, i, n, &path, &rn).unwrap();
                // A wrong index against the right root.
                for i2 in [i.wrapping_sub(1), i + 1, i ^ 2, n] {
                    assert!(
                        verify_inclusion(&lh, i2, n, &path, &rn).is_err(),
                        "({i}, {n}) as index {i2}"
                    );
                }
                // A wrong size against that size's own root (a root binds its size).
                for n2 in [n - 1, n + 1, n * 2, n / 2] {
                    let r2 = roots[n2 as usize];
                    assert!(
                        verify_inclusion(&lh, i, n2, &path, &r2).is_err(),
                        "({i}, {n}) as size {n2}"
                    );
                }
                for (what, i2, n2, p) in element_mutants(i, n, &path) {
                    assert!(
                        verify_inclusion(&lh, i2, n2, &p, &rn).is_err(),
                        "inclusion ({i}, {n}) accepted after {what}"
                    );
                }
                // The right proof for the wrong leaf, and against the wrong root.
                assert!(verify_inclusion(&[9u8; 32], i, n, &path, &rn).is_err());
                assert!(verify_inclusion(&lh, i, n, &path, &roots[0]).is_err());
            }
            for m in 1..n {
                let rm = roots[m as usize];
                let proof = consistency(&t, m, n).unwrap();
                verify_consistency(m, n, &proof, &rm, &rn).unwrap();
                for (m2, n2) in [
                    (m - 1, n),
                    (m + 1, n),
                    (m, n - 1),
                    (m, n + 1),
                    (m, n * 2),
                    (m - 1, n - 1),
                ] {
                    if m2 == 0 || m2 >= n2 {
                        continue; // trivially consistent or equal sizes: no proof to corrupt
                    }
                    let (r1, r2) = (roots[m2 as usize], roots[n2 as usize]);
                    assert!(
                        verify_consistency(m2, n2, &proof, &r1, &r2).is_err(),
                        "consistency ({m}, {n}) accepted as ({m2}, {n2})"
                    );
                }
                for (what, m2, n2, p) in element_mutants(m, n, &proof) {
                    assert!(
                        verify_consistency(m2, n2, &p, &rm, &rn).is_err(),
                        "consistency ({m}, {n}) accepted after {what}"
                    );
                }
                // Swapped or foreign roots.
                assert!(verify_consistency(m, n, &proof, &rn, &rm).is_err());
                assert!(verify_consistency(m, n, &proof, &rm, &roots[n as usize + 1]).is_err());
                assert!(verify_consistency(m, n, &proof, &roots[m as usize - 1], &rn).is_err());
            }
        }
    }

    #[test]
    fn degenerate_sizes() {
        let t = ct_tree();
        assert!(inclusion(&t, 0, 0).is_err());
        assert!(inclusion(&t, 3, 3).is_err());
        assert!(consistency(&t, 4, 3).is_err());
        assert!(consistency(&t, 0, 5).unwrap().is_empty());
        let r = root(&t, 5).unwrap();
        verify_consistency(0, 5, &[], &crate::tree::empty_root(), &r).unwrap();
        verify_consistency(5, 5, &[], &r, &r).unwrap();
        assert!(verify_consistency(5, 5, &[r], &r, &r).is_err());
        assert!(verify_consistency(5, 5, &[], &r, &[0; 32]).is_err());
        assert!(verify_consistency(0, 5, &[r], &[0; 32], &r).is_err());
        assert!(verify_inclusion(&r, 0, 0, &[], &r).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn proofs_verify_and_roots_match_the_definition(n in 1usize..300, a in any::<u64>(), b in any::<u64>()) {
            let leaves: Vec<Vec<u8>> = (0..n).map(|i| format!("leaf {i} {a}").into_bytes()).collect();
            let t = MemoryTree::from_leaves(&leaves);
            let m = (b % n as u64) + 1;
            let i = a % n as u64;
            let rn = naive_mth(&leaves);
            let rm = naive_mth(&leaves[..m as usize]);
            prop_assert_eq!(root(&t, n as u64).unwrap(), rn);
            prop_assert_eq!(root(&t, m).unwrap(), rm);
            let path = inclusion(&t, i, n as u64).unwrap();
            prop_assert!(verify_inclusion(&leaf_hash(&leaves[i as usize]), i, n as u64, &path, &rn).is_ok());
            let proof = consistency(&t, m, n as u64).unwrap();
            prop_assert!(verify_consistency(m, n as u64, &proof, &rm, &rn).is_ok());
            // The path has one element per level of the RFC tree, never more than log2(n)+1.
            prop_assert!(path.len() <= 64 - (n as u64).leading_zeros() as usize);
            let _ = naive_split(2);
        }
    }
}
