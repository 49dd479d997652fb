"""docs/config-reference.md is generated from the config classes, so it cannot drift: the
committed file must be exactly what docs/gen_config_reference.py prints."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import attrs
import pytest

from supervisor.config import Config

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "gen_config_reference.py"
REFERENCE = ROOT / "docs" / "config-reference.md"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_reference", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_reference_is_the_generated_one() -> None:
    generated = load_generator().render()
    committed = REFERENCE.read_text(encoding="utf-8")
    assert committed == generated, (
        "docs/config-reference.md is out of date: run "
        "`python docs/gen_config_reference.py > docs/config-reference.md`"
    )


def test_every_table_of_the_config_is_documented() -> None:
    generator = load_generator()
    documented = {cls for _header, cls, _note in generator.TABLES}

    def tables(cls: type) -> set[type]:
        attrs.resolve_types(cls)
        found = set()
        for field in attrs.fields(cls):
            for kind in (field.type, *getattr(field.type, "__args__", ())):
                for inner in (kind, *getattr(kind, "__args__", ())):
                    if isinstance(inner, type) and attrs.has(inner):
                        found |= {inner} | tables(inner)
        return found

    assert tables(Config) <= documented


def test_a_field_without_a_meaning_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = load_generator()
    meanings = dict(generator.MEANINGS)
    del meanings["RiskConfig.stop_loss_pct"]
    monkeypatch.setattr(generator, "MEANINGS", meanings)
    with pytest.raises(KeyError, match=r"RiskConfig\.stop_loss_pct"):
        generator.render()


def test_a_meaning_for_a_field_that_does_not_exist_stops_the_generator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generator = load_generator()
    monkeypatch.setattr(generator, "MEANINGS", {**generator.MEANINGS, "RiskConfig.gone": "x"})
    with pytest.raises(KeyError, match=r"RiskConfig\.gone"):
        generator.render()
