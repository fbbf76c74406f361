"""Users of the web app: argon2id hashes, the users file and `cdp user`."""

from __future__ import annotations

import stat

import pytest

from cdp.config import ConfigError
from web.users import UserBook, WebUser, hash_password, load_users, save_users, verify_password


def test_passwords_are_salted_argon2id_hashes():
    first, second = hash_password("a long passphrase"), hash_password("a long passphrase")
    assert first.startswith("$argon2id$") and first != second  # a salt of its own each time
    book = UserBook(users={"mia": WebUser(role="marketer", password_hash=first)})
    assert verify_password(book, "mia", "a long passphrase") == book.users["mia"]
    assert verify_password(book, "mia", "a long passphrasE") is None
    assert verify_password(book, "nobody", "a long passphrase") is None
    with pytest.raises(ConfigError, match="at least 10 characters"):
        hash_password("short")


def test_the_users_file_is_private_and_checked(tmp_path):
    path = tmp_path / "web_users.yaml"
    assert load_users(path).users == {}
    save_users(path, UserBook(users={"ada": WebUser(role="admin", password_hash=hash_password("0123456789"))}))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_users(path).users["ada"].role == "admin"
    path.write_text("users:\n  max: {role: manager, password_hash: $argon2id$x}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"web_users.yaml: users: Value error, managers need at least one dealer: \['max'\]"):
        load_users(path)
    path.write_text("users:\n  eve: {role: root, password_hash: $argon2id$x}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"web_users.yaml: users.eve.role"):
        load_users(path)


def test_cdp_user_add_list_remove(tmp_path, no_spark):
    import shutil

    import yaml

    from app.cli import main
    from tests.conftest import ROOT

    conf = tmp_path / "conf"
    conf.mkdir()
    profile = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text(encoding="utf-8"))
    profile["lake"] = {"root": str(tmp_path / "lake"), "raw_root": str(tmp_path / "raw")}
    (conf / "local.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    shutil.copy(ROOT / "conf" / "feeds.yaml", conf / "feeds.yaml")
    args = ["--conf", str(conf / "local.yaml")]
    import io
    import sys

    sys.stdin = io.StringIO("a good long password\n")
    try:
        assert main(["user", "add", "max", "--role", "manager", "--dealer", "GZ001", "--password-stdin", *args]) == 0
    finally:
        sys.stdin = sys.__stdin__
    assert main(["user", "add", "mia", "--role", "manager", "--password-stdin", *args]) == 2  # a manager needs a dealer
    assert main(["user", "add", "mia", "--role", "markter", "--password-stdin", *args]) == 2
    assert main(["user", "remove", "maxx", *args]) == 2
    assert set(load_users(conf / "web_users.yaml").users) == {"max"}
    assert main(["user", "remove", "max", *args]) == 0
    assert load_users(conf / "web_users.yaml").users == {}
