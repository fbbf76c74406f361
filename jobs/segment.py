"""`spark-submit jobs/segment.py [options]`: the same as `cdp run segment`."""

from app.submit import submit

if __name__ == "__main__":
    submit("segment")
