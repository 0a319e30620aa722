"""Merkle inclusion proofs (RFC 6962 shape): every leaf of every size proves; tampering fails."""

from __future__ import annotations

import pytest

from infra.merkle import Tree, inclusion_proof, leaf_hash, node_hash, root, root_from_proof


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31])
def test_every_leaf_proves_its_inclusion(size: int) -> None:
    leaves = [leaf_hash(f"event {i}".encode()) for i in range(size)]
    expected = root(leaves)
    for index in range(size):
        path = inclusion_proof(leaves, index)
        assert root_from_proof(leaves[index], index, size, path) == expected


def test_the_incremental_tree_has_the_same_root_at_every_size() -> None:
    tree, leaves = Tree(), []
    assert tree.root() == root([])
    for i in range(70):
        leaf = leaf_hash(i.to_bytes(2, "big"))
        tree.add(leaf)
        leaves.append(leaf)
        assert tree.root() == root(leaves), len(leaves)


def test_the_tree_shape_follows_rfc_6962() -> None:
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert root([a, b, c]) == node_hash(node_hash(a, b), c)


def test_a_changed_leaf_or_path_does_not_prove() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(10)]
    path = inclusion_proof(leaves, 6)
    good = root(leaves)
    assert root_from_proof(leaf_hash(b"forged"), 6, 10, path) != good
    assert root_from_proof(leaves[6], 5, 10, path) != good
    with pytest.raises(ValueError):
        root_from_proof(leaves[6], 6, 10, path[:-1])
    with pytest.raises(ValueError):
        root_from_proof(leaves[6], 6, 10, [*path, path[0]])
