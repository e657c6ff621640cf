"""Datasets as whole uint8 tensors (N×C×H×W) and a seeded in-memory batcher.

Every dataset is held whole in memory (on the GPU when there is one), so
batching is an index into a tensor: no worker processes, a data order that is
a pure function of (seed, epoch), and an exact position to resume from.

- :mod:`~wae_bench.data.spec`     the dataset contract: :class:`DatasetSpec` -> :class:`ImageSet` (and :class:`DataScan`)
- :mod:`~wae_bench.data.builtin`  the built-in datasets (digits, cifar10, celeba, mnist, folder)
- :mod:`~wae_bench.data.files`    image files from a folder or a zip, read in place
- :mod:`~wae_bench.data.celeba`   CelebA's layouts and list_eval_partition (which images each split takes)
- :mod:`~wae_bench.data.batcher`  seeded batches from the whole-dataset tensor
- :mod:`~wae_bench.data.holdout`  the validation split held out of the training images (tuning)
- :mod:`~wae_bench.data.subset`   seeded random subsets, never "the first N"
"""
from wae_bench.data.batcher import Batcher  # noqa: F401
from wae_bench.data.spec import DataScan, DatasetSpec, ImageSet, load_split  # noqa: F401
