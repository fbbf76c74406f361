"""`spark-submit jobs/pipeline.py [options]`: the same as `cdp run pipeline`."""

from app.submit import submit

if __name__ == "__main__":
    submit("pipeline")
