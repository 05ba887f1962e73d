"""How the engine's rules are compiled: ``@kernel``."""

from __future__ import annotations

from numba import njit

# cache=True: compiled once per machine (about a minute), loaded from __pycache__ by later imports.
# _nrt=False (Numba's switch for its reference-counting runtime): the rules only read and write arrays
# the engine owns, which stay alive for the whole call, and never allocate (the contact solver works in
# a scratch array the engine hands it). With counting on, the per-match views (players[m], weapons[m],
# ...) and the array arguments passed down the call tree cost two atomic updates each, about half of
# every frame: measured 0.9M -> 1.8M match-frames/s at N=4096 (benchmarks/env_speed.py), with the same
# results (benchmarks/fidelity.py: 221 of 221 traces). A function that allocates an array does not
# compile like this, and a function a kernel calls is compiled like it: keep every rule a kernel.
kernel = njit(cache=True, _nrt=False)
