"""Datasets as whole uint8 tensors (N×C×H×W) and a seeded in-memory batcher.

Every dataset is held whole in memory (on the GPU when there is one), so
batching is an index into a tensor: no worker processes, a data order that is
a pure function of (seed, epoch), and an exact position to resume from.
"""
from wae_bench.data.batcher import Batcher  # noqa: F401
from wae_bench.data.spec import DatasetSpec, ImageSet, load_split  # noqa: F401
