"""Scores from features (wae_bench.metrics.fid) against independent references
(scipy's sqrtm, closed forms, brute-force KID / precision-recall / IS), the
stand-in feature extractor, the reference cache, and independence of the
generated images from the batch size and the process split."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_missing_deps import needs_test_extra
from wae_bench.errors import WaeError
from wae_bench.metrics import fid as F
from wae_bench.metrics import generate, reference
from wae_bench.metrics.features import STANDIN, StandInFeatures, extract, make_extractor


pytestmark = pytest.mark.usefixtures("single_thread")


def _feats(n, d, seed, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * scale + shift


def test_frechet_distance_matches_a_direct_scipy_computation():
    a, b = _feats(300, 12, 0), _feats(250, 12, 1, shift=0.3, scale=torch.linspace(0.5, 2, 12))
    x, y = a.double().numpy(), b.double().numpy()
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = needs_test_extra("scipy.linalg").sqrtm(s1 @ s2).real
    ref = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    got = F.frechet_distance(F.statistics(a), F.statistics(b))
    assert got == pytest.approx(ref, rel=1e-5)
    assert F.frechet_distance(F.statistics(a), F.statistics(a)) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_matches_the_closed_form_for_two_gaussians():
    # Σ1 = Q diag(a) Qᵀ, Σ2 = Q diag(b) Qᵀ commute: d² = |μ1 − μ2|² + Σ (√a − √b)²
    rng = np.random.default_rng(0)
    d = 6
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.uniform(0.2, 3, d), rng.uniform(0.2, 3, d)
    mu1, mu2 = rng.normal(size=d).astype(np.float32), rng.normal(size=d).astype(np.float32)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    closed = float(((mu1.astype(np.float64) - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    got = F.frechet_distance({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2})
    assert got == pytest.approx(closed, rel=1e-5)


def _poly(x, y):
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def test_kid_matches_brute_force_unbiased_mmd_when_the_subset_is_everything():
    a, b = _feats(40, 5, 2), _feats(40, 5, 3, shift=0.5)
    x, y = a.double().numpy(), b.double().numpy()
    m = len(x)
    kxx, kyy, kxy = _poly(x, x), _poly(y, y), _poly(x, y)
    mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
    out = F.kid(a, b, subsets=3, subset_size=m)   # every subset is the whole set, permuted
    assert out["kid_mean"] == pytest.approx(mmd, rel=1e-4, abs=1e-7)
    assert out["kid_std"] == pytest.approx(0.0, abs=1e-6)


def test_kid_refuses_fewer_samples_than_its_subset_size():
    with pytest.raises(WaeError, match="KID draws subsets of 50 images.*20 are generated") as e:
        F.kid(_feats(20, 4, 0), _feats(100, 4, 1), subset_size=50)
    assert "\n" not in str(e.value) and "--kid-subset-size" in str(e.value)
    with pytest.raises(WaeError, match="reference split has only 20; lower --kid-subset-size to 20") as e:
        F.kid(_feats(100, 4, 0), _feats(20, 4, 1), subset_size=50)
    assert "--fid-samples" not in str(e.value)                  # more generated samples cannot help
    with pytest.raises(WaeError, match="at least 1 subset"):
        F.kid(_feats(100, 4, 0), _feats(100, 4, 1), subsets=0, subset_size=50)


def test_precision_recall_match_brute_force_knn_balls():
    gen, real = _feats(30, 3, 4, shift=0.4), _feats(35, 3, 5)
    g, r = gen.double().numpy(), real.double().numpy()

    def radii(p):
        d = np.linalg.norm(p[:, None] - p[None], axis=2)
        return np.sort(d, axis=1)[:, 3]   # k = 3 (index 0 is the point itself)

    rr, rg = radii(r), radii(g)
    prec = np.mean([any(np.linalg.norm(x - r[j]) <= rr[j] for j in range(len(r))) for x in g])
    rec = np.mean([any(np.linalg.norm(y - g[j]) <= rg[j] for j in range(len(g))) for y in r])
    out = F.precision_recall(gen, real)
    assert out["precision"] == pytest.approx(prec, abs=1e-6)
    assert out["recall"] == pytest.approx(rec, abs=1e-6)
    assert 0 < prec < 1 and 0 < rec < 1   # the case is not degenerate


def test_inception_score_matches_its_definition_for_one_split():
    logits = _feats(50, 7, 6, scale=2.0).double()
    p = torch.softmax(logits, 1).numpy()
    py = p.mean(0)
    ref = float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(py)), 1))))
    assert F.inception_score(logits.float(), splits=1)["is_mean"] == pytest.approx(ref, rel=1e-5)


def test_standin_extractor_is_registered_fixed_and_batch_size_independent():
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    assert FEATURE_EXTRACTORS_REGISTRY[STANDIN] is StandInFeatures
    a, b = StandInFeatures(), StandInFeatures()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    ext = make_extractor("standin", torch.device("cpu"))
    assert "not FID" in ext.label
    x = torch.randint(0, 256, (23, 3, 16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    f3, f11 = extract(ext, x, 3)["128"], extract(ext, x, 11)["128"]
    assert torch.allclose(f3, f11, atol=1e-5)
    gray = extract(ext, x[:, :1], 5)["128"]                        # grayscale is repeated to RGB
    assert torch.allclose(gray, extract(ext, x[:, :1].repeat(1, 3, 1, 1), 5)["128"], atol=1e-6)
    # FID from either batching agrees
    ref = F.statistics(extract(ext, x.flip(0)[:20] // 2, 7)["128"])
    assert F.frechet_distance(F.statistics(f3), ref) == pytest.approx(F.frechet_distance(F.statistics(f11), ref),
                                                                     rel=1e-4)


def test_reference_statistics_are_cached_per_key(tmp_path, monkeypatch):
    monkeypatch.setenv("WAE_BENCH_CACHE", str(tmp_path))
    x = torch.randint(0, 256, (12, 3, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    feats = _feats(12, 4, 7)
    calls = []

    def compute():
        calls.append(1)
        return feats

    key = reference.make_key(x, "toy-variant", "test", "standin", "none")
    s1, f1, hit1 = reference.reference(key, compute, need_features=False)
    s2, f2, hit2 = reference.reference(key, compute, need_features=False)
    assert (hit1, hit2, len(calls)) == (False, True, 1) and f2 is None
    np.testing.assert_array_equal(s1["sigma"], s2["sigma"])
    np.testing.assert_allclose(s1["mu"], feats.numpy().mean(0), rtol=1e-6)
    _, f3, hit3 = reference.reference(key, compute, need_features=True)   # KID/PR need the features: recompute
    assert not hit3 and len(calls) == 2 and torch.equal(f3, feats)
    assert reference.reference(key, compute, need_features=True)[2] and len(calls) == 2
    other = reference.make_key(x.flip(0), "toy-variant", "test", "standin", "none")   # other pixels, other key
    assert other != key and other.filename() != key.filename()
    assert key.filename().startswith("toy-variant-test-8px-n12-")
    assert reference.make_key(x, "toy-variant", "test", "inception", "ab" * 32).filename() != key.filename()


def _tiny_model(d=6):
    from tests.helpers import make_trainer

    tr = make_trainer("moca", B=8, size=8, d=d)
    tr.ae.eval(), tr.reg.eval()
    return tr.ae, tr.reg


def test_generated_images_do_not_depend_on_batch_size_or_process_split(monkeypatch):
    from wae_bench import expost

    monkeypatch.setattr(generate, "CHUNK", 16)      # so that 60 samples cross chunk boundaries
    ae, reg = _tiny_model()
    test = torch.randint(0, 256, (20, 3, 8, 8), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    lat = torch.nn.functional.normalize(torch.randn(200, 6, generator=torch.Generator().manual_seed(3)), dim=1)
    dens = {"n": expost.fit(lat, "n"), "gmm": expost.fit(lat, "gmm")}
    cols = generate.columns(generate.WHAT, ae, reg, dens, test, 60, seed=5, device=torch.device("cpu"),
                            alphas=(0.25, 0.5))
    assert [c.name for c in cols] == list(generate.WHAT) and cols[3].n == 20   # rec: the 20 test images
    for col in cols:
        a = generate.images(ae, col, 7)
        b = generate.images(ae, col, 50)
        halves = torch.cat([generate.images(ae, col, 9, 0, 23), generate.images(ae, col, 9, 23, col.n)])
        assert a.dtype == torch.uint8 and len(a) == col.n
        assert torch.equal(a, b), col.name
        assert torch.equal(a, halves), col.name
        assert torch.allclose(col.latents(0, col.n)[17:41], col.latents(17, 41)), col.name
    z = cols[0].latents(0, 60)
    assert torch.allclose(z.norm(dim=1), torch.ones(60), atol=1e-5)      # MoCA: prior on the sphere
    other = generate.columns(["samples"], ae, reg, dens, test, 60, seed=6, device=torch.device("cpu"))[0]
    assert not torch.allclose(other.latents(0, 60), z)                   # the seed matters


def test_interpolation_pairs_and_alphas_follow_the_index():
    ae, reg = _tiny_model()
    test = torch.randint(0, 256, (5, 3, 8, 8), generator=torch.Generator().manual_seed(4), dtype=torch.uint8)
    col = generate.columns(["interp"], ae, reg, {}, test, 18, seed=0, device=torch.device("cpu"),
                           alphas=(0.0, 1.0, 0.25))[0]
    z = col.latents(0, 18)
    enc = reg.constrain(ae.encode(test.float() / 255))
    perm = torch.randperm(5, generator=generate.chunk_generator(0, "interp", 0))
    # pair p = i // 3 joins z_a = Enc(test[perm[j]]) and z_b = Enc(test[perm[(j + 2) mod 5]]), j = p mod 5;
    # α = 0 gives z_b, α = 1 gives z_a, α = 0.25 gives constrain(0.25 z_a + 0.75 z_b) (MoCA's sphere projection)
    for i in range(0, 18, 3):
        j = (i // 3) % 5
        za, zb = enc[perm[j]], enc[perm[(j + 2) % 5]]                       # z_b is another image
        assert torch.allclose(z[i], zb, atol=1e-5)
        assert torch.allclose(z[i + 1], za, atol=1e-5)
        assert torch.allclose(z[i + 2], torch.nn.functional.normalize(0.25 * za + 0.75 * zb, dim=0), atol=1e-5)
    with pytest.raises(WaeError, match="alphas"):
        generate.columns(["interp"], ae, reg, {}, test, 4, 0, torch.device("cpu"), alphas=(1.5,))
    with pytest.raises(WaeError, match="no ex-post 'gmm' density"):
        generate.columns(["gmm"], ae, reg, {}, test, 4, 0, torch.device("cpu"))
