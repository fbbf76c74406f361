"""Synthetic dealer data with messy identities and a ground-truth file, deterministic per seed."""

from __future__ import annotations

from datagen.generator import GenerationSummary, generate

__all__ = ["GenerationSummary", "generate"]
