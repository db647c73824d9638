"""The seed of one student's training: from its architecture's hash and the search's seed, so
the same student is initialised the same way wherever it is trained (a trial, the trust report,
the pre-screen, an export's recipe)."""

from __future__ import annotations


def student_seed(arch_hash: str, search_seed: int) -> int:
    return (int(arch_hash[:8], 16) + search_seed * 1_000_003) % (2**31)
