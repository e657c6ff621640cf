"""One training run, from its config to its trained directory.

- :mod:`~wae_bench.run.build`       config -> resolved plan -> nets, plugin, trainer, batches (the one way)
- :mod:`~wae_bench.run.train`       train or resume a run in its directory, then finish it
- :mod:`~wae_bench.run.directory`   the run directory: config.json, metrics, ``--out`` checks, resume config
- :mod:`~wae_bench.run.memory`      what the model needs in memory, estimated before anything is allocated
- :mod:`~wae_bench.run.checkpoint`  checkpoint files: save, safe load, latest, prune
- :mod:`~wae_bench.run.fingerprint` the data a run started on, recorded and compared on resume
- :mod:`~wae_bench.run.reload`      a trained model rebuilt from its directory (for evaluation)
- :mod:`~wae_bench.run.tensorboard` the optional TensorBoard log beside ``metrics.jsonl`` (``--log tensorboard``)

numpy is imported here, before :mod:`~wae_bench.run.build` imports torch:
torch's C module imports numpy when it loads and swallows whatever that
import raises, the ``KeyboardInterrupt`` of a Ctrl-C too, so a Ctrl-C then
neither stopped the command (the run trained on) nor left numpy importable
(a later ``import numpy`` recursed without end).  Imported first, a Ctrl-C
in it stops the command as at any other point before training.
"""
import numpy  # noqa: F401,E402  (before torch: see above)
