"""`spark-submit jobs/features_job.py [options]`: the same as `cdp run features`."""

from app.submit import submit

if __name__ == "__main__":
    submit("features")
