"""`spark-submit jobs/train_segments.py [options]`: the same as `cdp run train_segments`."""

from app.submit import submit

if __name__ == "__main__":
    submit("train_segments")
