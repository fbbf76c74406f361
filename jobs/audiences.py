"""`spark-submit jobs/audiences.py [options]`: the same as `cdp run audiences`."""

from app.submit import submit

if __name__ == "__main__":
    submit("audiences")
