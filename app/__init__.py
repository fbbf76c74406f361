"""The layer that wires steps together: run context, step registry, pipeline, run ledger and
the `cdp` command line. The only package that imports every domain package."""
