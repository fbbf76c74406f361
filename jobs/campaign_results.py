"""`spark-submit jobs/campaign_results.py [options]`: the same as `cdp run campaign_results`."""

from app.submit import submit

if __name__ == "__main__":
    submit("campaign_results")
