"""Every random seed of a run, derived from the master seed by one function.

The workflow (``workflow/rules/common.smk``) derives each job's seed here and hands it to the
job as a parameter; no script derives seeds itself. A seed depends only on the config and the
job's identity (cohort, draw, training seed, ...), never on job order or the machine.
"""

from __future__ import annotations

import zlib

import numpy as np

KINDS = ("knockoffs", "train", "prune", "simulate", "peers")


def derive_seed(master: int, kind: str, *parts: str | int) -> int:
    """A 32-bit seed for one job of ``kind`` from the master seed and the job's identity.

    SeedSequence mixes the parts so neighbouring draws/seeds get unrelated streams.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown seed kind {kind!r}; one of {KINDS}")
    words = [int(master)] + [
        int(p) if isinstance(p, int) else zlib.crc32(str(p).encode()) for p in (kind, *parts)
    ]
    return int(np.random.SeedSequence(words).generate_state(1)[0])
