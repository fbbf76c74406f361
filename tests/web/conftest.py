"""A small gold layer written with delta-rs (no JVM) and an app with one user per role."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from cdp import catalog
from cdp.config import LakeConfig
from cdp.reader import LakeReader
from web.users import UserBook, WebUser, hash_password, save_users

PASSWORD = "correct horse battery"
ALICE = "CU00000000000000a1"  # a customer of dealer GZ001
BORIS = "CU00000000000000b2"  # a customer of dealer BJ002
USERS = {"mia": ("marketer", []), "max": ("manager", ["GZ001"]), "pia": ("privileged", []), "rex": ("reviewer", []), "ada": ("admin", [])}


def _write(reader: LakeReader, table: catalog.TableRef, columns: dict[str, list], schema: pa.Schema | None = None) -> None:
    write_deltalake(reader.path(table), pa.table(columns, schema=schema))


@pytest.fixture(scope="module")
def gold(tmp_path_factory, app_config):
    root = tmp_path_factory.mktemp("web")
    conf = root / "conf"
    conf.mkdir()
    config = app_config.model_copy(update={"lake": LakeConfig(root=str(root / "lake"), raw_root=str(root / "raw")), "conf_dir": str(conf)})
    reader = LakeReader(str(root / "lake"))
    day = dt.date(2026, 6, 30)
    _write(reader, catalog.CUSTOMERS, {
        "customer_id": [ALICE, BORIS], "customer_type": ["individual"] * 2, "name": ["王小明", "=HYPERLINK(\"x\")"],
        "mobile": ["13812348000", "13912345678"], "mobiles": [["13812348000"], ["13912345678"]], "id_number": ["110101199003074514", None],
        "email": ["wang@example.com", None], "address": ["广东省广州市天河区体育西路1号", None], "birth_date": [dt.date(1990, 3, 7), None],
        "city": ["广州市", "北京市"], "dealers": [["GZ001"], ["BJ002"]],
    })
    _write(reader, catalog.CUSTOMER_VEHICLES, {
        "customer_id": [ALICE], "vin": ["LSVAU2180N2183294"], "role": ["owner"], "from_date": [dt.date(2024, 1, 5)], "to_date": [None],
        "records": [3], "is_current_owner": [True],
    }, pa.schema([("customer_id", pa.string()), ("vin", pa.string()), ("role", pa.string()), ("from_date", pa.date32()),
                  ("to_date", pa.date32()), ("records", pa.int64()), ("is_current_owner", pa.bool_())]))
    _write(reader, catalog.CUSTOMER_XREF, {"feed": ["sales_orders"], "record_id": ["SO1"], "mention_role": ["buyer"], "customer_id": [ALICE]})
    _write(reader, catalog.CUSTOMER_CONSENT, {"customer_id": [ALICE, ALICE], "channel": ["sms", "call"], "opted_out": [True, False],
                                              "opted_in": [False, False]})
    _write(reader, catalog.CUSTOMER_FEATURES, {
        "customer_id": [ALICE, BORIS], "as_of_date": [day, day], "lifecycle_stage": ["dormant", "active"],
        "days_since_last_visit": [400, 20], "lifetime_spend": [250000.0, 1000.0], "service_visits_12m": [0, 3],
    })
    _write(reader, catalog.PERSON_MENTIONS, {
        "mention_id": ["sales_orders:SO1:buyer", "surveys:SV9:respondent"], "feed": ["sales_orders", "surveys"], "dealer_code": ["GZ001", "GZ001"],
        "seen_at": [dt.datetime(2024, 1, 5), dt.datetime(2025, 2, 1)], "name_simplified": ["王小明", "王晓明"],
        "mobile": ["13812348000", "13812348001"], "id_number": [None, None], "vin": [None, None], "city": ["广州市", "广州市"],
    })
    _write(reader, catalog.RESOLUTION_REVIEW, {
        "kind": ["near_miss"], "mention_id_l": ["sales_orders:SO1:buyer"], "mention_id_r": ["surveys:SV9:respondent"],
        "customer_id_l": [ALICE], "customer_id_r": [BORIS], "match_probability": [0.9], "match_weight": [3.2],
    })
    users = conf / "web_users.yaml"
    save_users(users, UserBook(users={n: WebUser(role=r, password_hash=hash_password(PASSWORD), dealers=d) for n, (r, d) in USERS.items()}))
    return config, reader, users


@pytest.fixture
def web_app(gold):
    from web.app import create_app

    config, _, users = gold
    app = create_app(config, users_path=users)
    yield app
    app.extensions["cdp"]["runner"].close()


def sign_in(client, name: str, password: str = PASSWORD):
    """Sign `name` in through the form, CSRF token included, as a browser would."""
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    return client.post("/login", data={"user": name, "password": password, "csrf_token": token})


def csrf(client) -> str:
    with client.session_transaction() as session:
        return session["csrf"]
