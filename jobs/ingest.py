"""`spark-submit jobs/ingest.py [options]`: the same as `cdp run ingest`."""

from app.submit import submit

if __name__ == "__main__":
    submit("ingest")
