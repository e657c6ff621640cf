"""Evaluation metrics: FID, KID, precision/recall (and Inception Score) through
torch-fidelity, reference-statistics cache, offline FID weights, latent
diagnostics (MoCA Fig. 5).  Everything Inception goes through torch-fidelity's
``FeatureExtractorInceptionV3``; no Inception network is written here."""
