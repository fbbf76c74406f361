"""Typed configuration of activation: consent, service reminders, the win-back model,
exports and privacy. Campaign definitions live in their own file (`campaigns.yaml`, see
`activation.campaigns`), named here by `activation.campaigns_file`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from cdp.analytics_config import StrictModel

__all__ = [
    "ActivationConfig",
    "ConsentConfig",
    "ExportsConfig",
    "InspectionRules",
    "PrivacyConfig",
    "RemindersConfig",
    "ServiceRules",
    "WinbackConfig",
]

CHANNELS = ("sms", "phone", "wechat", "email")


class ConsentConfig(StrictModel):
    """How contact preferences decide who may be contacted on a channel."""

    require_opt_in: list[str] = Field(
        default_factory=list,
        description="channels on which only customers with an opt-in statement may be contacted "
        "(others: anyone who has not opted out)",
    )

    @field_validator("require_opt_in")
    @classmethod
    def _known_channels(cls, channels: list[str]) -> list[str]:
        unknown = sorted(set(channels) - set(CHANNELS))
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}; channels are {list(CHANNELS)}")
        return channels


class ServiceRules(StrictModel):
    """A brand's service schedule (the manufacturer's maintenance and warranty terms)."""

    first_maintenance_months: int = Field(default=6, gt=0)
    first_maintenance_km: int = Field(default=5_000, gt=0)
    maintenance_interval_days: int = Field(default=180, gt=0, description="used until the customer has an interval of their own")
    maintenance_interval_km: int = Field(default=10_000, gt=0)
    warranty_years: int = Field(default=3, gt=0)
    warranty_km: int = Field(default=100_000, gt=0)


class InspectionRules(StrictModel):
    """Periodic inspection (年检) of private passenger cars by age in years since delivery.
    The default follows the 2022 rule: exempt until 6 and 10 years, yearly from 10 to 15,
    twice a year after 15."""

    exempt_checks_years: list[int] = Field(default_factory=lambda: [6], description="label-only checks before yearly inspection")
    yearly_from_years: int = Field(default=10, gt=0)
    half_yearly_from_years: int = Field(default=15, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> InspectionRules:
        if self.half_yearly_from_years <= self.yearly_from_years:
            raise ValueError("half_yearly_from_years must be after yearly_from_years")
        if any(not 0 < y < self.yearly_from_years for y in self.exempt_checks_years):
            raise ValueError("exempt_checks_years must lie between 0 and yearly_from_years")
        return self


class RemindersConfig(StrictModel):
    """Which reminders `cdp run reminders` writes and how far ahead it looks."""

    horizon_days: int = Field(default=365, gt=0, description="reminders due within this many days of the as-of date")
    overdue_days: int = Field(default=90, ge=0, description="maintenance overdue by up to this many days is still reminded")
    default_rules: ServiceRules = Field(default_factory=ServiceRules)
    brands: dict[str, ServiceRules] = Field(default_factory=dict, description="brand -> its own service schedule")
    inspection: InspectionRules = Field(default_factory=InspectionRules)
    min_visits_for_own_interval: int = Field(
        default=2, ge=2, description="maintenance visits needed before the customer's own interval is trusted"
    )


class WinbackConfig(StrictModel):
    """The win-back model: who it ranks, how it learns, and how lists are called."""

    model_name: str = "winback"
    stages: list[str] = Field(default_factory=lambda: ["dormant", "lost"])
    horizon_months: int = Field(default=6, gt=0, description="a customer 'came back' if serviced within this many months")
    snapshot_step_months: int = Field(default=3, gt=0)
    snapshots: int = Field(default=4, ge=2, description="past as-of dates; the latest is the time-based holdout")
    train_sample_rows: int = Field(default=200_000, gt=100, description="rows sampled to the driver to fit the classifier")
    min_expected_value: float = Field(default=800.0, ge=0, description="yearly value (CNY) assumed for a customer with no paid history")
    channel: str = Field(default="phone", description="channel of the win-back call list")
    seed: int = 42

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, channel: str) -> str:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; channels are {list(CHANNELS)}")
        return channel


class ExportsConfig(StrictModel):
    """Who may export full contact details."""

    privileged_users: list[str] = Field(
        default_factory=list, description="users allowed `--privileged` exports (unmasked); empty: nobody"
    )


class PrivacyConfig(StrictModel):
    """Erasure and tokens."""

    vacuum_retention_hours: int = Field(
        default=168, ge=0, description="Delta history kept after an erasure before VACUUM removes the old files"
    )
    token_key_env: str = Field(
        default="CDP_PRIVACY_KEY", description="environment variable holding the HMAC key for erasure tokens (kept outside the lake)"
    )


class ActivationConfig(StrictModel):
    campaigns_file: str = Field(default="campaigns.yaml", description="campaign definitions, beside the profile")
    list_engine: Literal["auto", "duckdb", "spark"] = Field(
        default="auto",
        description="what evaluates a campaign for its list: auto is DuckDB on a local master with the lake on local disk "
        "(the gold tables' files read in place), else Spark; the same SQL either way",
    )
    consent: ConsentConfig = Field(default_factory=ConsentConfig)
    reminders: RemindersConfig = Field(default_factory=RemindersConfig)
    winback: WinbackConfig = Field(default_factory=WinbackConfig)
    exports: ExportsConfig = Field(default_factory=ExportsConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
