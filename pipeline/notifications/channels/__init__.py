"""Channel adapters, one provider per module; see :mod:`.base` for the interface and the registry."""

from pipeline.notifications.channels.base import ChannelAdapter, OutcomeUnknown, get_adapter_class, register

__all__ = ["ChannelAdapter", "OutcomeUnknown", "get_adapter_class", "register"]
