"""`spark-submit jobs/resolve.py [options]`: the same as `cdp run resolve`."""

from app.submit import submit

if __name__ == "__main__":
    submit("resolve")
