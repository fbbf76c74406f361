"""`spark-submit jobs/complaint_cases.py [options]`: the same as `cdp run complaint_cases`."""

from app.submit import submit

if __name__ == "__main__":
    submit("complaint_cases")
