"""Server time of each web page on a built lake (a benchmark, not a test).

    python -m bench.web --conf /path/to/profile.yaml [--repeat 3] [--out bench/results/web.json]

Signs a temporary admin in through Flask's test client (no network, no browser) and times
every page the way a user reaches it, once the app's start-up warm-up is over (its time is
reported): the first request (DuckDB plans, delta-rs opens the tables) and the best and median
of `--repeat` more. A customer's pages are timed for the first customer by ID and for the
customer with the most records, the slowest to explain. The users file is a temporary one: the
profile's real users are never touched."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cdp import catalog
from cdp.config import load_config
from cdp.reader import LakeReader


def _pages(reader: LakeReader) -> list[str]:
    customer = reader.query("SELECT customer_id, mobile FROM c WHERE mobile IS NOT NULL ORDER BY customer_id LIMIT 1",
                            {"c": catalog.CUSTOMERS})[0]
    vin = reader.query("SELECT vin FROM v WHERE customer_id = ? LIMIT 1", {"v": catalog.CUSTOMER_VEHICLES}, [customer["customer_id"]])
    dealer = reader.query("SELECT dealer_code FROM w WHERE dealer_code IS NOT NULL LIMIT 1", {"w": catalog.WINBACK})
    segment = reader.query("SELECT segment_name FROM s LIMIT 1", {"s": catalog.CUSTOMER_SEGMENTS})
    largest = reader.query("SELECT customer_id FROM x GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1", {"x": catalog.CUSTOMER_XREF})
    pages = ["/", "/segments", "/customers", f"/customers?q={customer['customer_id']}", f"/customers?q={customer['mobile']}",
             f"/customers/{customer['customer_id']}", f"/customers/{customer['customer_id']}/why", "/review", "/campaigns",
             "/campaigns/maintenance_due_sms", "/lists", "/kpis", "/audit"]
    if vin:
        pages.insert(5, f"/customers?q={vin[0]['vin']}")
    if dealer:
        pages.append(f"/lists?dealer={dealer[0]['dealer_code']}")
    if segment:
        pages.append(f"/segments/{segment[0]['segment_name']}")
    if largest and largest[0]["customer_id"] != customer["customer_id"]:
        pages += [f"/customers/{largest[0]['customer_id']}", f"/customers/{largest[0]['customer_id']}/why"]
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out")
    parser.add_argument("--settle", type=float, default=60.0, help="longest wait for the app's start-up warm-up before the first request")
    args = parser.parse_args(argv)

    from web.app import create_app
    from web.users import UserBook, WebUser, hash_password, save_users

    config = load_config(args.conf)
    reader = LakeReader(config.resolve(config.lake.root))
    with tempfile.TemporaryDirectory() as tmp:
        users = Path(tmp, "users.yaml")
        save_users(users, UserBook(users={"bench": WebUser(role="admin", password_hash=hash_password("bench password"))}))
        started = time.perf_counter()
        app = create_app(config, users_path=users)
        warmed = app.extensions["cdp"]["warmed"].wait(args.settle)
        warm_up_s = round(time.perf_counter() - started, 3)
        print(f"app start and warm-up {warm_up_s:.3f}s" + ("" if warmed else " (still warming: timed out)"))
        client = app.test_client()
        client.get("/login")
        with client.session_transaction() as session:
            token = session["csrf"]
        client.post("/login", data={"user": "bench", "password": "bench password", "csrf_token": token})
        results: list[dict[str, Any]] = []
        for page in _pages(reader):
            timings, status = [], 0
            for _ in range(args.repeat + 1):
                started = time.perf_counter()
                status = client.get(page).status_code
                timings.append(time.perf_counter() - started)
            results.append({"page": page.split("?")[0] + ("?q=..." if "?q=" in page else ""), "status": status,
                            "first_s": round(timings[0], 3), "best_s": round(min(timings[1:]), 3),
                            "median_s": round(statistics.median(timings[1:]), 3)})
            print(f"{results[-1]['page']:<45} {status} first {timings[0]:6.3f}s  best {min(timings[1:]):6.3f}s")
        app.extensions["cdp"]["runner"].close()
    if args.out:
        Path(args.out).write_text(json.dumps({"conf": args.conf, "warm_up_s": warm_up_s, "warmed": warmed, "pages": results}, indent=2),
                                  encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
