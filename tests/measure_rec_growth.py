"""The divergence check's ratio (log window's mean rec / rec at step 1) over a default
digits/tiny run of each built-in regularizer (30 epochs, 690 steps), log_every 10: the largest ratio
the check saw (wae_bench.step.trainer.RecGrowth; docs/resume.md). Usage: python -m tests.measure_rec_growth ae,moca,..."""
import sys, tempfile, time
from pathlib import Path
from wae_bench.run.train import train_run
from wae_bench.step.trainer import RecGrowth
seen = []
real = RecGrowth.grown
def grown(self, rec, factor):
    seen.append(rec / self.early[0])
    return real(self, rec, factor)
RecGrowth.grown = grown
for reg in sys.argv[1].split(","):
    t0, seen[:] = time.time(), []
    with tempfile.TemporaryDirectory() as d:
        train_run({"regularizer": reg, "log_every": 10, "expost": []}, Path(d) / "r", quiet=True)
    print(f"{reg}: max rec/rec(step 1) {max(seen):.3g} over {len(seen)} logs (last {seen[-1]:.3g}); "
          f"{time.time() - t0:.0f}s", flush=True)
