"""`spark-submit jobs/winback.py [options]`: the same as `cdp run winback`."""

from app.submit import submit

if __name__ == "__main__":
    submit("winback")
