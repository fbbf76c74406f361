"""`spark-submit jobs/reminders.py [options]`: the same as `cdp run reminders`."""

from app.submit import submit

if __name__ == "__main__":
    submit("reminders")
