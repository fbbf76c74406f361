"""`spark-submit jobs/train_winback.py [options]`: the same as `cdp run train_winback`."""

from app.submit import submit

if __name__ == "__main__":
    submit("train_winback")
