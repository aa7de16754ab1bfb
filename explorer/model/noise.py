"""The samplers' seeded noise: one CPU ``torch.Generator`` for a whole batch, or one per block of rows.

Every sampler draws its noise through :func:`randn`. With a plain generator that is
``torch.randn(shape, generator=gen)``. With a :class:`GeneratorGroup` (several requests sampled as
one batch: the app's sessions moving sliders together) the rows of each request are drawn from that
request's own generator, in the same order as if it ran alone, so a request's noise — and so its
maps, up to the floating-point rounding of a larger batch — does not depend on the batch it joined.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GeneratorGroup:
    """CPU generators for consecutive blocks of a batch's rows: rows ``[0, counts[0])`` draw from
    ``generators[0]``, the next ``counts[1]`` rows from ``generators[1]``, and so on."""

    generators: tuple
    counts: tuple

    def __post_init__(self):
        generators, counts = tuple(self.generators), tuple(int(c) for c in self.counts)
        if not generators or len(generators) != len(counts) or min(counts) < 1:
            raise ValueError(f"a GeneratorGroup needs one positive row count per generator, got {len(generators)} "
                             f"generators and counts {counts}")
        if any(not isinstance(g, torch.Generator) or g.device.type != "cpu" for g in generators):
            raise ValueError("every generator of a GeneratorGroup must be a CPU torch.Generator")
        object.__setattr__(self, "generators", generators)
        object.__setattr__(self, "counts", counts)

    @classmethod
    def from_seeds(cls, seeds, counts) -> "GeneratorGroup":
        """One generator per seed (``torch.Generator("cpu").manual_seed(seed)``, as ``sample(seed=)`` makes)."""
        return cls(tuple(torch.Generator("cpu").manual_seed(int(s)) for s in seeds), tuple(counts))

    @property
    def rows(self) -> int:
        return sum(self.counts)


def check_generator(generator, rows: int) -> None:
    """ValueError unless ``generator`` is a CPU generator, or a group of exactly ``rows`` rows."""
    if isinstance(generator, GeneratorGroup):
        if generator.rows != rows:
            raise ValueError(f"the generator group covers {generator.rows} rows, the batch has {rows}")
    elif not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator or a GeneratorGroup, got {generator!r}")


def randn(shape, generator, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise of ``shape`` (rows first) on the CPU from ``generator``: a
    ``torch.Generator``, or a :class:`GeneratorGroup` whose blocks each draw their own rows."""
    if isinstance(generator, GeneratorGroup):
        shape = tuple(shape)
        if shape[0] != generator.rows:
            raise ValueError(f"noise for {shape[0]} rows from a generator group of {generator.rows}")
        return torch.cat([torch.randn((c, *shape[1:]), generator=g, dtype=dtype)
                          for g, c in zip(generator.generators, generator.counts)])
    return torch.randn(shape, generator=generator, dtype=dtype)
