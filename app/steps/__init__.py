"""The registered steps. Importing this package registers every one of them."""

from app.steps import activation, features, ingest, models, operations, resolve  # noqa: F401
