"""`spark-submit jobs/consent.py [options]`: the same as `cdp run consent`."""

from app.submit import submit

if __name__ == "__main__":
    submit("consent")
