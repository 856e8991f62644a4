"""Key names have one source: the Lua scripts name keys exactly as Keys does, and spell none themselves."""

import re

import pytest

from pipeline.state import admission, housekeeping, lua, queries, quotas, records, workflow_lua, workflows
from pipeline.state.keys import Keys

SAMPLE = {"id": "3f1c-task", "actor": "send_notification", "queue": "t1_default", "state": "FAILURE",
          "key": "idem-7", "bucket": "178230", "wf": "9a2e-workflow", "user": "alice@acme"}
SCRIPTS = {
    name: source
    for module in (records, queries, housekeeping, admission, workflows, workflow_lua, quotas)
    for name, source in vars(module).items()
    if name.isupper() and isinstance(source, str) and "redis.call" in source
}


@pytest.mark.parametrize("lua_name", sorted(lua.KEY_FUNCTIONS))
def test_each_lua_key_function_names_the_key_exactly_as_keys_does(redis_client, lua_name):
    attribute, params = lua.KEY_FUNCTIONS[lua_name]
    values = [SAMPLE[p] for p in params or ()]
    call = f"return {lua_name}({', '.join(repr(v) for v in values)})"
    from_lua = redis_client.eval(lua.PRELUDE + "\n" + call, 0, "ns-x")
    from_python = getattr(Keys("ns-x"), attribute)
    assert from_lua == (from_python(*values) if params is not None else from_python)


def test_no_script_spells_a_key_name_or_the_namespace_by_hand():
    assert len(SCRIPTS) >= 12
    for name, source in SCRIPTS.items():
        body = source.split("\n" + lua.BODY_MARK + "\n", 1)[-1]
        assert not re.search(r"\bP\s*\.\.", body), f"{name} builds a key from the namespace itself"
        assert not re.search(r"'[a-z]*:[a-z]*:?'\s*\.\.", body), f"{name} spells a key fragment"
