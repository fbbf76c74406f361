"""Typed configuration of the analytics stages: customer features and segmentation.

Kept apart from `cdp.config` (profiles, lake, ingestion, resolution) so each module stays
small; `AppConfig` holds both sections.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["FeaturesConfig", "LifecycleConfig", "SegmentationConfig", "StrictModel"]


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LifecycleConfig(StrictModel):
    """Lifecycle thresholds in months. Brands differ: lost after 6, 12, 18 or 24 months."""

    new_owner_months: int = Field(default=6, gt=0, description="first vehicle delivered within this many months")
    dormant_after_months: int = Field(default=6, gt=0, description="owner without a visit for this long is dormant (休眠)")
    lost_after_months: int = Field(default=12, gt=0, description="owner without a visit for this long is lost (流失)")

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleConfig:
        if self.dormant_after_months >= self.lost_after_months:
            raise ValueError(
                f"dormant_after_months ({self.dormant_after_months}) must be less than lost_after_months ({self.lost_after_months})"
            )
        return self


def _default_price_bands() -> dict[str, float]:
    return {"entry": 0.0, "mid": 150_000.0, "premium": 300_000.0, "luxury": 500_000.0}


class FeaturesConfig(StrictModel):
    """Feature windows, business rules and bands (see `features.catalog` for every feature)."""

    recent_months: int = Field(default=12, gt=0, description="the window of the *_12m features")
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    age_bands: list[int] = Field(default_factory=lambda: [25, 35, 45, 55, 65], description="ascending band edges in years")
    price_bands: dict[str, float] = Field(
        default_factory=_default_price_bands, description="band name -> lowest vehicle price (CNY) in it"
    )

    @field_validator("age_bands")
    @classmethod
    def _ascending_ages(cls, edges: list[int]) -> list[int]:
        if not edges or edges != sorted(set(edges)) or edges[0] <= 0:
            raise ValueError("age_bands must be ascending, distinct, positive edges")
        return edges

    @field_validator("price_bands")
    @classmethod
    def _price_floor(cls, bands: dict[str, float]) -> dict[str, float]:
        if not bands or min(bands.values()) != 0:
            raise ValueError("price_bands needs one band starting at 0")
        if len(set(bands.values())) != len(bands):
            raise ValueError("price_bands must start at distinct prices")
        return dict(sorted(bands.items(), key=lambda item: item[1]))


class SegmentationConfig(StrictModel):
    """Model search, selection rule and registry name of the segmentation model."""

    model_name: str = "customer_segmentation"
    population: Literal["owners", "all"] = Field(
        default="owners", description="owners: customers who bought or serviced a vehicle; all: everyone"
    )
    algorithms: list[Literal["kmeans", "gmm"]] = Field(default_factory=lambda: ["kmeans", "gmm"])  # type: ignore[arg-type]
    k_range: tuple[int, int] = Field(default=(3, 8), description="smallest and largest number of segments tried")
    bootstrap_rounds: int = Field(default=5, ge=2, description="refits on resamples to measure stability")
    stability_for: Literal["needed", "all"] = Field(
        default="needed",
        description="needed: measure stability best candidate first until a stable one decides (same choice); all: every candidate",
    )
    min_stability: float = Field(
        default=0.75, ge=0.0, le=1.0, description="candidates less stable than this (mean adjusted Rand) are not chosen"
    )
    selection_metric: Literal["silhouette", "davies_bouldin", "bic"] = "silhouette"
    max_segment_share: float = Field(
        default=0.40, gt=0.0, le=1.0,
        description="a solution with a segment holding more than this share is chosen only when no stable one is below it",
    )
    preferred_k: tuple[int, int] | None = Field(
        default=(4, 8), description="segment counts a marketer can work with: preferred when one of them qualifies (None: no preference)",
    )
    train_sample_rows: int = Field(default=50_000, gt=100, description="customers sampled to the driver for training")
    metric_sample_rows: int = Field(default=10_000, gt=100, description="rows used for silhouette (quadratic cost)")
    parallel_jobs: int = Field(default=-1, description="candidates fitted at once on the driver (-1: one per core)")
    seed: int = 42

    @field_validator("k_range")
    @classmethod
    def _k_ordered(cls, k_range: tuple[int, int]) -> tuple[int, int]:
        if not 2 <= k_range[0] <= k_range[1]:
            raise ValueError("k_range must be [low, high] with 2 <= low <= high")
        return k_range
