"""The web app end to end in real headless Chromium, on a small generated and resolved lake:
sign-in, masking by role, a privileged reveal with its audit row, a manager kept to their
dealers, CSRF, an audience built and downloaded through the page, the Chinese UI, and no
request leaving 127.0.0.1. Screenshots go to `$CDP_SCREENSHOT_DIR` (default: a temp folder).

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml
from deltalake import DeltaTable

from cdp import catalog
from cdp.reader import LakeReader
from tests.conftest import RESOLVED_AS_OF, ROOT

pytestmark = pytest.mark.spark

D = RESOLVED_AS_OF
PASSWORD = "correct horse battery"
CAMPAIGN = "insurance_renewal_wechat"
FORMULA_CITY = '=HYPERLINK("http://evil.example/c","c")'


def _browser_paths() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are not installed: .ci/run installs them")
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    return chromium, driver


@pytest.fixture(scope="module")
def served(spark, resolved, tmp_path_factory):
    """A resolved lake with features and reminders, one user per role, and the app on a free port."""
    from werkzeug.serving import make_server

    from tests.conftest import copy_resolved
    from tests.steps import run_step
    from web.app import create_app
    from web.users import UserBook, WebUser, hash_password, save_users

    base = tmp_path_factory.mktemp("browser")
    config = copy_resolved(resolved, base)
    conf = base / "conf"
    conf.mkdir()
    campaigns = yaml.safe_load((ROOT / "conf" / "campaigns.yaml").read_text(encoding="utf-8"))
    campaigns["campaigns"][CAMPAIGN]["fields"] = ["customer_id", "name", "mobile", "dealer_code", "reason", "city"]
    (conf / "campaigns.yaml").write_text(yaml.safe_dump(campaigns, allow_unicode=True), encoding="utf-8")
    config = config.model_copy(update={"conf_dir": str(conf)})
    run_step(spark, config, "consent")
    run_step(spark, config, "ownership", as_of=D)
    # A city that a spreadsheet would run as a formula, on every customer's features.
    reader = LakeReader(config.lake.root)
    features = reader.path(catalog.CUSTOMER_FEATURES)
    spark.sql(f"UPDATE delta.`{features}` SET city = '{FORMULA_CITY.replace(chr(39), chr(39) * 2)}'")
    customers = DeltaTable(reader.path(catalog.CUSTOMERS)).to_pyarrow_table(columns=["customer_id", "dealers", "mobile"]).to_pylist()
    dealers = sorted({d for c in customers for d in c["dealers"] or []})
    users = {"mia": ("marketer", []), "pia": ("privileged", []), "max": ("manager", [dealers[0]]), "rex": ("reviewer", [])}
    save_users(conf / "web_users.yaml", UserBook(users={
        n: WebUser(role=r, password_hash=hash_password(PASSWORD), dealers=d) for n, (r, d) in users.items()}))
    app = create_app(config, spark_factory=lambda _config: spark)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield config, f"http://127.0.0.1:{server.server_port}", customers, dealers
    server.shutdown()
    app.extensions["cdp"]["runner"].close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _browser_paths()
    downloads = tmp_path_factory.mktemp("downloads")
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1360,1000",
                     "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync",
                     "--disable-default-apps", "--lang=zh-CN"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def _requested(driver) -> list[str]:
    """Every URL the browser requested since the last call (from Chrome's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _shot(driver, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("CDP_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / f"{name}.png"))


def _sign_in(driver, base: str, name: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.delete_all_cookies()
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "user").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    # The sign-in's redirect must land before the next navigation, or it would replace it.
    WebDriverWait(driver, 20).until(lambda d: d.current_url.rstrip("/") == base)


def _wait_job(driver, seconds: float = 300) -> str:
    from selenium.common.exceptions import NoSuchElementException
    from selenium.webdriver.common.by import By

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:  # right after the click the job's page may not have loaded yet
            state = driver.find_element(By.ID, "job-state").get_attribute("data-state")
            if state in ("done", "failed"):
                return state + ": " + driver.find_element(By.ID, "job-message").text
        except NoSuchElementException:
            pass
        time.sleep(0.5)
    raise AssertionError("the background job did not finish")


def test_the_app_in_a_browser(served, browser, tmp_path):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    config, base, customers, dealers = served
    driver = browser
    local = (f"{base}/", "data:")

    # Sign-in page and overview, in Chinese.
    driver.get(f"{base}/")
    assert driver.current_url.startswith(f"{base}/login") and "登录" in driver.page_source
    _sign_in(driver, base, "mia")
    assert driver.find_element(By.TAG_NAME, "h1").text == "总览"
    assert int(driver.find_element(By.ID, "customers").text.replace(",", "")) == len(customers)
    _shot(driver, "overview", tmp_path)

    # A marketer sees masked mobiles and no reveal.
    someone = next(c for c in customers if c["mobile"])
    driver.get(f"{base}/customers/{someone['customer_id']}")
    shown = driver.find_element(By.ID, "mobile").text
    assert shown == someone["mobile"][:3] + "****" + someone["mobile"][-4:] and someone["mobile"] not in driver.page_source
    assert not driver.find_elements(By.ID, "reveal")
    _shot(driver, "customer", tmp_path)
    driver.find_element(By.ID, "why").click()
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("合并依据")
    _shot(driver, "why", tmp_path)

    # A POST without the CSRF token (a form another site could submit) is refused.
    driver.execute_script(
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
        "document.body.appendChild(f); f.submit();", f"{base}/campaigns/{CAMPAIGN}/build")
    assert "400" in driver.find_element(By.TAG_NAME, "h1").text

    # Build the campaign's list, then download it as CSV.
    driver.get(f"{base}/campaigns/{CAMPAIGN}")
    _shot(driver, "campaign", tmp_path)
    driver.find_element(By.ID, "build").click()
    assert _wait_job(driver).startswith("done: version 1")
    driver.get(f"{base}/campaigns/{CAMPAIGN}")
    driver.find_element(By.CSS_SELECTOR, "button.download-csv").click()
    assert _wait_job(driver).startswith("done")
    driver.find_element(By.ID, "job-download").click()
    deadline = time.time() + 30
    while time.time() < deadline and not list(driver.downloads.glob("*.csv")):
        time.sleep(0.2)
    raw = next(driver.downloads.glob("*.csv")).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows and all(r["mobile"][3:7] == "****" for r in rows if r["mobile"])
    assert not [cell for r in rows for cell in r.values() if cell and cell[0] in "=+-@"]
    assert {r["city"] for r in rows} == {"'" + FORMULA_CITY}
    consent = DeltaTable(LakeReader(config.lake.root).path(catalog.CUSTOMER_CONSENT)).to_pyarrow_table().to_pylist()
    opted_out = {c["customer_id"] for c in consent if c["channel"] == "wechat" and c["opted_out"]}
    assert opted_out and not opted_out & {r["customer_id"] for r in rows}

    # A privileged user reveals with a purpose; the audit has a row for it.
    _sign_in(driver, base, "pia")
    driver.get(f"{base}/customers/{someone['customer_id']}")
    driver.find_element(By.ID, "purpose").send_keys("回访投诉客户")
    driver.find_element(By.ID, "reveal").click()
    # The reveal posts the form and the page loads again: wait for the new page, not the old one.
    revealed = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: [e.text for e in d.find_elements(By.ID, "mobile") if "*" not in e.text]
    )
    assert revealed == [someone["mobile"]]
    audit = DeltaTable(LakeReader(config.lake.root).path(catalog.EXPORT_AUDIT)).to_pyarrow_table().to_pylist()
    assert [(a["user"], a["list_kind"], a["purpose"]) for a in audit if a["list_name"] == someone["customer_id"]] == [("pia", "reveal", "回访投诉客户")]
    assert any(a["user"] == "mia" and a["list_kind"] == "audience" and a["masked"] for a in audit)

    # A manager of one dealer gets 403 for another dealer's customer, even by URL.
    _sign_in(driver, base, "max")
    other = next(c for c in customers if c["dealers"] and dealers[0] not in c["dealers"])
    driver.get(f"{base}/customers/{other['customer_id']}")
    assert "403" in driver.find_element(By.TAG_NAME, "h1").text and "无权访问" in driver.page_source

    # A reviewer's queue: pairs side by side, masked.
    _sign_in(driver, base, "rex")
    driver.get(f"{base}/review")
    assert driver.find_element(By.TAG_NAME, "h1").text == "匹配审核"
    _shot(driver, "review", tmp_path)

    # English on request; and nothing was requested from anywhere but the app.
    driver.get(f"{base}/lang/en")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Overview"
    requested = _requested(driver)
    assert requested and [u for u in requested if not u.startswith(local)] == []
