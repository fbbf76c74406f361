"""`spark-submit jobs/ownership.py [options]`: the same as `cdp run ownership`."""

from app.submit import submit

if __name__ == "__main__":
    submit("ownership")
