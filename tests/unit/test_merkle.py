"""Merkle inclusion proofs (RFC 6962 shape): every leaf of every size proves; tampering fails."""

from __future__ import annotations

import pytest

from infra.merkle import inclusion_proof, leaf_hash, node_hash, root, root_from_proof


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31])
def test_every_leaf_proves_its_inclusion(size: int) -> None:
    leaves = [leaf_hash(f"event {i}".encode()) for i in range(size)]
    expected = root(leaves)
    for index in range(size):
        path = inclusion_proof(leaves, index)
        assert root_from_proof(leaves[index], index, size, path) == expected


def rfc_6962_root(leaves: list[bytes]) -> bytes:
    """MTH as RFC 6962 §2.1 writes it, recursively: the reference."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(rfc_6962_root(leaves[:k]), rfc_6962_root(leaves[k:]))


def test_the_root_is_rfc_6962_s_at_every_size() -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(70)]
    for size in range(1, len(leaves) + 1):
        assert root(leaves[:size]) == rfc_6962_root(leaves[:size]), size


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
