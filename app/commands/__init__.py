"""`cdp` commands beside `cdp run`: tools, read-only lookups and lists."""
