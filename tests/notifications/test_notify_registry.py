"""Every part that knows notification channels takes them from the one registry."""

import typing

from pipeline.maintenance.config import HealthSettings
from pipeline.notifications.channels.base import get_adapter_class
from pipeline.notifications.config import NotificationSettings
from pipeline.notifications.models import MAX_BODY, NotificationArgs
from pipeline.notifications.registry import CHANNELS


def test_the_four_channels_of_the_original_design_are_registered():
    assert list(CHANNELS) == ["email", "push", "sms", "system"]


def test_models_settings_health_and_adapters_derive_their_channels_from_the_registry():
    assert typing.get_args(NotificationArgs.model_fields["channel"].annotation) == tuple(CHANNELS)
    assert typing.get_args(HealthSettings.model_fields["health_alert_channel"].annotation) == tuple(CHANNELS)
    assert MAX_BODY == {name: spec.max_body for name, spec in CHANNELS.items()}
    for spec in CHANNELS.values():
        field = NotificationSettings.model_fields[f"notify_{spec.name}_provider"]
        assert field.default == spec.default_provider
        adapter = get_adapter_class(spec.name, spec.default_provider)
        assert (adapter.channel, adapter.provider) == (spec.name, spec.default_provider)


def test_channel_rules_come_from_their_entry():
    sms = NotificationArgs.model_validate({"channel": "sms", "recipient": "+1 (415) 555-0100", "body": "hi"})
    assert sms.recipient == "+14155550100"
    for channel, field, value, message in (("sms", "subject", "s", "sms has no subject"),
                                           ("push", "html_body", "<b>x</b>", "is only for the email channel"),
                                           ("email", "app", "shop", "is only for the push channel")):
        values = {"channel": channel, "recipient": "+14155550100" if channel == "sms" else
                  ("ada@example.com" if channel == "email" else "user-1"), "body": "hi", "subject": "s", field: value}
        if channel == "sms" and field != "subject":
            values.pop("subject")
        try:
            NotificationArgs.model_validate(values)
        except ValueError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"{channel} accepted {field}")
