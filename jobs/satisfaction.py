"""`spark-submit jobs/satisfaction.py [options]`: the same as `cdp run satisfaction`."""

from app.submit import submit

if __name__ == "__main__":
    submit("satisfaction")
