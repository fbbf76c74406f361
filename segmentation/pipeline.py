"""The segmentation model: impute, log-transform money, scale, cluster (scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

__all__ = ["build_pipeline", "build_preprocessor"]


def build_preprocessor(features: list[str], money: list[str]) -> ColumnTransformer:
    """Median-impute every feature (with a missing-value indicator, so "never surveyed" is
    information, not an average score), log1p the skewed money columns, then scale."""
    others = [f for f in features if f not in money]
    money_steps = Pipeline(
        [("impute", SimpleImputer(strategy="median", add_indicator=True)), ("log", FunctionTransformer(np.log1p, feature_names_out="one-to-one"))]
    )
    return ColumnTransformer(
        [("money", money_steps, money), ("other", SimpleImputer(strategy="median", add_indicator=True), others)],
        verbose_feature_names_out=False,
    )


def build_pipeline(algorithm: str, k: int, features: list[str], money: list[str], seed: int) -> Pipeline:
    """An unfitted pipeline ending in k-means or a Gaussian mixture with `k` segments."""
    if algorithm == "kmeans":
        model = KMeans(n_clusters=k, n_init=10, random_state=seed)
    elif algorithm == "gmm":
        model = GaussianMixture(n_components=k, covariance_type="full", n_init=2, random_state=seed, reg_covar=1e-4)
    else:
        raise ValueError(f"unknown algorithm {algorithm!r}; use kmeans or gmm")
    return Pipeline([("prepare", build_preprocessor(features, money)), ("scale", StandardScaler()), ("cluster", model)])
