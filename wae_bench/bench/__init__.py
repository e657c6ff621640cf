"""The benchmark runner: train every regularizer on the same architectures,
data and budget, and tabulate FID as the MoCA paper's Table 1 does (Arpit et
al. 2021, Table 1; ablations after its Tables 3-4 and Figs. 3-5).

- :mod:`~wae_bench.bench.spec`      a TOML spec, validated (typed dataclasses)
- :mod:`~wae_bench.bench.grid`      spec -> (tuning cells) -> cells (one run each); ``--only``, ``--shard``
- :mod:`~wae_bench.bench.tune`      the tuning protocol: validation scores -> each final cell's values
- :mod:`~wae_bench.bench.folder`    the results folder: spec record, cell states
- :mod:`~wae_bench.bench.runner`    train + evaluate each cell (in process, or one
  subprocess per device)
- :mod:`~wae_bench.bench.preflight` what every cell would fail on alike (a device, a data root),
  refused in one line before the first cell
- :mod:`~wae_bench.bench.concurrent` N cells at once in one process on one device
  (``--concurrent``), each on its own CUDA stream
- :mod:`~wae_bench.bench.output`    what bench prints: a line a finished cell, each cell's full
  output in its log (``--verbose``: on the console too)
- :mod:`~wae_bench.bench.aggregate` mean ± std over seeds (pure math)
- :mod:`~wae_bench.bench.table`     the Table-1-style table's entries: scores per row and column, cited values
- :mod:`~wae_bench.bench.table_notes` the budget and evaluation-protocol notes stated above the table
- :mod:`~wae_bench.bench.tuning_summary` with ``[tune]``: each row's tuned value, the tuning section, ``tuning.csv``
- :mod:`~wae_bench.bench.table_render` the table written and printed (Markdown, CSV, rich)
- :mod:`~wae_bench.bench.export`    numbers out for scripts and papers: per-cell JSON, per-seed CSV, LaTeX
- :mod:`~wae_bench.bench.plots`     FID vs λ / K, validation FID vs each tuned axis, spectra
- :mod:`~wae_bench.bench.report`    the results folder as one self-contained HTML page
- :mod:`~wae_bench.bench.estimate`  how long a grid will take, from committed measured rates (``--dry-run``)
- :mod:`~wae_bench.bench.compare`   ``wae-bench compare REG REG ...``: a head-to-head as a generated spec
- :mod:`~wae_bench.bench.reuse`     finished cells taken over from a sibling head-to-head done alike
"""
