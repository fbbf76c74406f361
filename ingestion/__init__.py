"""Feed ingestion: files -> bronze (raw) -> silver (typed, standardised) + quarantine."""

from __future__ import annotations

from ingestion.errors import FeedError
from ingestion.ingest import FeedReport, ingest_feed, ingest_feeds

__all__ = ["FeedError", "FeedReport", "ingest_feed", "ingest_feeds"]
