"""Merkle trees over a checkpoint range, as in RFC 6962 (Certificate Transparency).

A leaf is SHA-256(0x00 || event bytes), a node SHA-256(0x01 || left || right); the tree of n
leaves splits at the largest power of two below n. An inclusion proof is the audit path from a
leaf to the root, so one event can be checked against a signed root without the rest.
Pure functions: the offline bundle verifier uses them with no database.
"""

from __future__ import annotations

import hashlib


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: list[bytes]) -> bytes:
    """The root over already-hashed leaves (empty tree: SHA-256 of nothing).

    RFC 6962 splits n leaves at the largest power of two below n, so the tree is the perfect
    subtrees of n's binary decomposition, largest first, folded from the right; each perfect
    subtree is hashed level by level (n - 1 node hashes in all, no recursion).
    """
    if not leaves:
        return hashlib.sha256(b"").digest()
    sha256 = hashlib.sha256
    subtrees = []
    start, remaining = 0, len(leaves)
    while remaining:
        size = 1 << (remaining.bit_length() - 1)
        level = leaves[start : start + size]
        while len(level) > 1:
            level = [
                sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)
            ]
        subtrees.append(level[0])
        start, remaining = start + size, remaining - size
    node = subtrees[-1]
    for left in reversed(subtrees[:-1]):
        node = node_hash(left, node)
    return node


def inclusion_proof(leaves: list[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index``, from the leaf's sibling up to the root's child."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} outside a tree of {len(leaves)}")
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_proof(leaves[:k], index), root(leaves[k:])]
    return [*inclusion_proof(leaves[k:], index - k), root(leaves[:k])]


def root_from_proof(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """Recompute the root from a leaf and its audit path (RFC 6962 §2.1.1 verification)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} outside a tree of {size}")

    def walk(node: bytes, index: int, size: int, path: list[bytes]) -> bytes:
        if size == 1:
            if path:
                raise ValueError("audit path too long")
            return node
        if not path:
            raise ValueError("audit path too short")
        k = _split(size)
        sibling = path[-1]
        if index < k:
            return node_hash(walk(node, index, k, path[:-1]), sibling)
        return node_hash(sibling, walk(node, index - k, size - k, path[:-1]))

    return walk(leaf, index, size, path)
