"""spark-submit entry points, one per step: each runs `cdp run NAME` through the step registry.

A script run by spark-submit has its own folder first on the path, so no file here may
share its name with a top-level package (hence `features_job.py`)."""
