"""`spark-submit jobs/dealer_kpis.py [options]`: the same as `cdp run dealer_kpis`."""

from app.submit import submit

if __name__ == "__main__":
    submit("dealer_kpis")
