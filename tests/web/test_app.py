"""The web app on a small gold layer, through Flask's test client (no JVM, no browser)."""

from __future__ import annotations

import re

import pytest
import yaml
from deltalake import DeltaTable

from cdp import catalog
from tests.web.conftest import ALICE, BORIS, csrf, sign_in

pytestmark = pytest.mark.usefixtures("no_spark")
FULL_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def test_pages_need_a_signed_in_user(web_app):
    client = web_app.test_client()
    response = client.get(f"/customers/{ALICE}")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_name(web_app):
    client = web_app.test_client()
    assert sign_in(client, "mia", "wrong password!").status_code == 401
    for _ in range(5):
        sign_in(client, "mia", "wrong password!")
    locked = sign_in(client, "mia")  # the right password, but too many failures just before
    assert locked.status_code == 401 and "尝试次数过多" in locked.get_data(as_text=True)


def test_a_post_without_the_csrf_token_is_refused(web_app):
    client = web_app.test_client()
    sign_in(client, "pia")
    assert client.post(f"/customers/{ALICE}/reveal", data={"purpose": "call back about a complaint"}).status_code == 400
    assert client.post(f"/customers/{ALICE}/reveal", data={"purpose": "call back", "csrf_token": "forged"}).status_code == 400
    assert client.post("/login", data={"user": "pia", "password": "x"}).status_code == 400


def test_a_marketer_sees_masked_values_and_cannot_reveal(web_app):
    client = web_app.test_client()
    sign_in(client, "mia")
    page = client.get(f"/customers/{ALICE}").get_data(as_text=True)
    assert "138****8000" in page and "王**" in page and "LSV**********3294" in page
    assert not FULL_MOBILE.search(page) and "110101199003074514" not in page and "王小明" not in page
    assert client.post(f"/customers/{ALICE}/reveal", data={"purpose": "curious", "csrf_token": csrf(client)}).status_code == 403


def test_a_privileged_reveal_states_a_purpose_and_is_audited(web_app, gold):
    _, reader, _ = gold
    client = web_app.test_client()
    sign_in(client, "pia")
    assert client.post(f"/customers/{ALICE}/reveal", data={"purpose": "", "csrf_token": csrf(client)}).status_code == 400
    page = client.post(f"/customers/{ALICE}/reveal", data={"purpose": "complaint call-back", "csrf_token": csrf(client)})
    assert page.status_code == 200 and "13812348000" in page.get_data(as_text=True)
    audit = DeltaTable(reader.path(catalog.EXPORT_AUDIT)).to_pyarrow_table().to_pylist()
    mine = [r for r in audit if r["user"] == "pia" and r["list_name"] == ALICE]
    assert len(mine) == 1 and mine[0]["list_kind"] == "reveal" and mine[0]["purpose"] == "complaint call-back"
    assert not any(FULL_MOBILE.search(str(v)) for r in audit for v in r.values())


def test_a_manager_sees_only_their_dealers_customers(web_app):
    client = web_app.test_client()
    sign_in(client, "max")
    assert client.get(f"/customers/{ALICE}").status_code == 200
    assert client.get(f"/customers/{BORIS}").status_code == 403
    assert client.get(f"/customers/{BORIS}/why").status_code == 403
    assert client.get("/lists?dealer=BJ002").status_code == 403
    assert client.get("/lists?dealer=GZ01").status_code == 404  # a typo is named as unknown, not an empty list
    assert client.get("/review").status_code == 403


def test_search_by_mobile_vin_and_id(web_app):
    client = web_app.test_client()
    sign_in(client, "ada")
    for query in (ALICE, "138 1234 8000", "+86 13812348000", "lsvau2180n2183294"):
        response = client.get("/customers", query_string={"q": query})
        assert response.status_code == 302 and response.headers["Location"].endswith(f"/customers/{ALICE}"), query
    assert "未找到客户" in client.get("/customers", query_string={"q": "13700000000"}).get_data(as_text=True)


def test_a_review_decision_is_recorded_with_who_and_when(web_app, gold):
    config, _, _ = gold
    client = web_app.test_client()
    sign_in(client, "rex")
    page = client.get("/review").get_data(as_text=True)
    assert "王**" in page and "138****8001" in page and "13812348001" not in page
    form = {"left": "sales_orders:SO1:buyer", "right": "surveys:SV9:respondent", "csrf_token": csrf(client)}
    assert client.post("/review", data={**form, "decision": "split"}).status_code == 302
    assert client.post("/review", data={**form, "decision": "merge!"}).status_code == 400
    saved = yaml.safe_load(open(config.conf_path(config.resolution.overrides_file), encoding="utf-8"))
    assert saved["must_link"] == [] and len(saved["cannot_link"]) == 1
    assert saved["cannot_link"][0]["decided_by"] == "rex" and saved["cannot_link"][0]["left"] == "sales_orders:SO1:buyer"
    client.post("/review", data={**form, "decision": "confirm"})  # a second look replaces the first
    saved = yaml.safe_load(open(config.conf_path(config.resolution.overrides_file), encoding="utf-8"))
    assert len(saved["must_link"]) == 1 and saved["cannot_link"] == []


def test_the_ui_is_chinese_first_with_an_english_switch(web_app):
    client = web_app.test_client()
    sign_in(client, "ada")
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page and "客户数" in page and "休眠" in page
    client.get("/lang/en")
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in page and "Customers" in page and "Dormant" in page


def test_pages_load_nothing_from_outside_the_app(web_app):
    client = web_app.test_client()
    sign_in(client, "ada")
    for url in ("/", "/segments", "/customers", f"/customers/{ALICE}", "/review", "/campaigns", "/lists", "/kpis", "/audit"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        page = response.get_data(as_text=True)
        assert not re.search(r"""(src|href)=["'](https?:)?//""", page), url
        assert "=HYPERLINK" not in page or "=HYPERLINK(&#34;x&#34;)" in page  # escaped, never markup


def test_unknown_campaign_and_customer_are_404(web_app):
    client = web_app.test_client()
    sign_in(client, "mia")
    assert client.get("/campaigns/insurance_renewal_wechta").status_code == 404
    assert client.get("/customers/CU0000000000000000").status_code == 404
    assert client.post("/campaigns/nope/build", data={"csrf_token": csrf(client)}).status_code == 404


def test_a_removed_user_is_signed_out(web_app, gold):
    from web.users import UserBook, load_users, save_users

    _, _, users = gold
    client = web_app.test_client()
    sign_in(client, "mia")
    assert client.get("/").status_code == 200
    book = load_users(users)
    save_users(users, UserBook(users={n: u for n, u in book.users.items() if n != "mia"}))
    try:
        assert client.get("/").status_code == 302
    finally:
        save_users(users, book)


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example/x", "https://evil.example/x"])
def test_sign_in_never_redirects_to_another_site(web_app, target):
    client = web_app.test_client()
    client.get("/login")
    response = client.post(f"/login?next={target}", data={"user": "mia", "password": "correct horse battery", "csrf_token": csrf(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_the_cli_reads_and_decides_the_same_queue(gold, tmp_path, capsys):
    import json
    import shutil

    from app.cli import main
    from tests.conftest import ROOT

    config, _, _ = gold
    profile = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text(encoding="utf-8"))
    profile["lake"] = {"root": config.lake.root, "raw_root": config.lake.raw_root}
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    shutil.copy(ROOT / "conf" / "feeds.yaml", tmp_path / "feeds.yaml")
    args = ["--conf", str(tmp_path / "local.yaml")]
    capsys.readouterr()
    assert main(["review", "list", "--json", *args]) == 0
    pairs = json.loads(capsys.readouterr().out)
    assert [(p["mention_id_l"], p["mention_l"]["mobile"]) for p in pairs] == [("sales_orders:SO1:buyer", "138****8000")]
    assert main(["review", "decide", "sales_orders:SO1:buyer", "surveys:SV9:respondent", *args]) == 2  # no decision given
    assert main(["review", "decide", "sales_orders:SO1", "surveys:SV9:respondent", "--split", *args]) == 2
    assert "feed:record_id:role" in capsys.readouterr().err
    assert main(["review", "decide", "sales_orders:SO1:buyer", "surveys:SV9:respondent", "--split", *args]) == 0
    saved = yaml.safe_load((tmp_path / "resolution_overrides.yaml").read_text(encoding="utf-8"))
    assert [d["left"] for d in saved["cannot_link"]] == ["sales_orders:SO1:buyer"] and saved["cannot_link"][0]["decided_by"]
