"""Test-wide settings."""

import os

import torch

# The tests' models are tiny: one torch thread is as fast as two, and it keeps parallel
# subprocesses from thrashing each other's thread pools. Subprocesses inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)
