"""The training step and what makes it fast.

- :mod:`~wae_bench.step.trainer`      one training iteration (:class:`Trainer`), the only place that
  calls ``backward()`` and ``optimizer.step()``
- :mod:`~wae_bench.step.first_step`   the checks of a plugin's first (eager) step: z modified in place,
  draws from a process-global generator
- :mod:`~wae_bench.step.meter`        device-side metric sums and the non-finite guard
- :mod:`~wae_bench.step.loop`         the loop over steps: lr schedule, logging, checkpoints, signals
- :mod:`~wae_bench.step.rng`          the random state a checkpoint carries
- :mod:`~wae_bench.step.graph`        the whole step captured as one CUDA graph
- :mod:`~wae_bench.step.compile`      ``torch.compile`` of the nets and the plugin's penalty
- :mod:`~wae_bench.step.distributed`  several processes (torchrun, DistributedDataParallel)
"""
