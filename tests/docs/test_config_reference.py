"""docs/configuration.md is generated from the settings classes; this proves it is up to date."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
GENERATOR = ROOT / "docs" / "generate_config_reference.py"
#: Where the running code lives (tests and benchmarks read their own variables).
CODE_DIRS = ("pipeline", "api", "scheduler", "infra")
ENV_READ = re.compile(r"""os\.environ(?:\.get\(\s*|\[\s*)["']([A-Z][A-Z0-9_]*)["']|os\.getenv\(\s*["']([A-Z][A-Z0-9_]*)["']""")


def load_generator():
    spec = importlib.util.spec_from_file_location("generate_config_reference", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_md_matches_the_settings_classes():
    generator = load_generator()
    expected = generator.render()
    actual = generator.OUTPUT.read_text(encoding="utf-8")
    assert actual == expected, (
        f"docs/configuration.md is out of date with the settings classes; regenerate it with: {generator.REGENERATE}"
    )


def test_every_settings_field_has_one_row_and_names_are_unique_across_classes():
    generator = load_generator()
    text = generator.render()
    seen: dict[str, str] = {}
    for _, cls, _ in generator.settings_classes():
        for name in cls.model_fields:
            variable = "CLAW_" + name.upper()
            assert variable not in seen, f"{variable} is a field of both {seen[variable]} and {cls.__name__}"
            seen[variable] = cls.__name__
            assert text.count(f"| `{variable}` |") == 1, variable


def test_variables_read_outside_the_settings_are_the_documented_ones():
    """A new os.environ read in the code must be added to the reference (or, better, to a settings class)."""
    generator = load_generator()
    found = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            for match in ENV_READ.finditer(path.read_text(encoding="utf-8")):
                found.add(match.group(1) or match.group(2))
    documented = {name for name, _, _ in generator.OUTSIDE_SETTINGS}
    assert found == documented, (
        f"read in code but not in OUTSIDE_SETTINGS: {sorted(found - documented)}; "
        f"documented but no longer read: {sorted(documented - found)} (docs/generate_config_reference.py)"
    )
