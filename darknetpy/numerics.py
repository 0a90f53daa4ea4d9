"""How arithmetic is done: the stock -Ofast build, the build without fast-math, or fast."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Numerics:
    name: str
    exact: bool      # GEMM summed in Darknet's order, no FMA
    ftz: bool        # flush-to-zero / denormals-are-zero (the -Ofast build)
    vector: bool     # -Ofast softmax (libmvec expf, 4-lane sums, reciprocal)
    reciprocal: bool  # -Ofast avgpool (multiply by 1/(h*w))


NUMERICS = {
    # The stock -Ofast build: the reference.
    "darknet": Numerics("darknet", exact=True, ftz=True, vector=True, reciprocal=True),
    # The same sources built without fast-math (the kit's O2 flavor).
    "ieee": Numerics("ieee", exact=True, ftz=False, vector=False, reciprocal=False),
    # Winograd/FMA convolutions: not bit-exact, everything else as "darknet".
    "fast": Numerics("fast", exact=False, ftz=True, vector=True, reciprocal=True),
}
