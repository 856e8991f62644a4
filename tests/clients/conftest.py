"""The SDK's tests use the API's fixtures: the in-process app and the real server."""

from tests.api.conftest import api, api_settings, make_api, server  # noqa: F401  (fixtures)
