"""Campaign definitions: what is accepted, what is refused with which message, and the hash."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from activation.campaigns import CampaignBook, CampaignError, competitors_before, definition_hash
from cdp.config import ConfigError, load_yaml_model

BOOK = {
    "campaigns": {
        "service_a": {"channel": "sms", "audience": {"lifecycle_stage": ["active"]}, "group": "service", "priority": 1},
        "service_b": {"channel": "sms", "audience": {"due": {"kind": "maintenance", "within_days": 30}}, "group": "service", "priority": 2},
        "service_c": {"channel": "phone", "audience": {}, "group": "service", "priority": 3},
        "solo": {"channel": "email", "audience": {"where": [{"feature": "lifetime_spend", "op": ">=", "value": 1000}]}},
    }
}


def _book(**changes) -> CampaignBook:
    raw = yaml.safe_load(yaml.safe_dump(BOOK))
    for name, patch in changes.items():
        raw["campaigns"][name].update(patch)
    return CampaignBook.model_validate(raw)


def test_project_campaigns_file_is_valid():
    from pathlib import Path

    book = load_yaml_model(Path(__file__).resolve().parents[2] / "conf" / "campaigns.yaml", CampaignBook)
    assert "maintenance_due_sms" in book.campaigns


def test_competitors_are_the_higher_priorities_of_the_group_in_order():
    book = _book()
    assert competitors_before(book, "service_c") == ["service_a", "service_b"]
    assert competitors_before(book, "service_a") == []
    assert competitors_before(book, "solo") == []


def test_definition_hash_is_stable_and_follows_the_rules_and_the_competitors():
    book = _book()
    assert definition_hash(book, "service_b") == definition_hash(_book(), "service_b")
    assert definition_hash(book, "service_b") != definition_hash(_book(service_b={"holdout_percent": 5}), "service_b")
    # A campaign above it in the group shapes its list, so its hash changes too.
    changed_rival = _book(service_a={"audience": {"lifecycle_stage": ["dormant"]}})
    assert definition_hash(book, "service_b") != definition_hash(changed_rival, "service_b")
    # A campaign below it does not.
    assert definition_hash(book, "service_a") == definition_hash(_book(service_c={"holdout_percent": 1}), "service_a")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"channel": "fax"}, "channel"),
        ({"holdout_percent": 60}, "less than or equal to 50"),
        ({"audience": {"due": {"kind": "maintenance"}}}, "give exactly one of within_days and month"),
        ({"audience": {"due": {"kind": "maintenance", "within_days": 30, "month": "next"}}}, "give exactly one of within_days and month"),
        ({"audience": {"due": {"kind": "oil_change", "within_days": 30}}}, "kind"),
        ({"audience": {"where": [{"feature": "age", "op": "in", "value": 3}]}}, "in needs a non-empty list"),
        ({"audience": {"where": [{"feature": "age", "op": ">", "value": [1, 2]}]}}, "> needs a single value"),
        ({"audience": {"where": [{"feature": "age", "op": "is_null", "value": 1}]}}, "is_null takes no value"),
        ({"audience": {"lifecycle": ["active"]}}, "Extra inputs are not permitted"),
        ({"fields": ["name", "mobile"]}, "fields must include customer_id"),
        ({"priority": 1}, "share group 'service' and priority 1"),
    ],
)
def test_invalid_campaigns_are_refused(patch, message):
    with pytest.raises(ValidationError, match=message):
        _book(service_b=patch)


def test_errors_name_the_file_and_the_key(tmp_path):
    path = tmp_path / "campaigns.yaml"
    path.write_text("campaigns:\n  x:\n    channel: sms\n    audience: {}\n    holdout: 10\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"campaigns.yaml: campaigns.x.holdout: unknown key"):
        load_yaml_model(path, CampaignBook)


def test_unknown_campaign_lists_the_known_ones():
    with pytest.raises(CampaignError, match=r"no campaign 'nope' \(campaigns: service_a, service_b, service_c, solo\)"):
        _book().get("nope")


def test_export_fields_default_by_channel():
    book = _book()
    assert book.get("solo").export_fields() == ["customer_id", "name", "email", "dealer_code", "reason"]
    assert "mobile" in book.get("service_a").export_fields()
