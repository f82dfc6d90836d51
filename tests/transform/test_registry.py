"""The op registry: every op documented (description, example that parses, a description per
parameter, a known category), and docs/transforms.md equal to the registry."""

from __future__ import annotations

import pytest
import yaml

from headwater.cli import main
from headwater.spec.loader import SpecYamlLoader
from headwater.transform import OP_REGISTRY
from headwater.transform.docs import markdown
from headwater.transform.registry import CATEGORIES, parse_op
from tests.conftest import REPO

OPS = sorted(OP_REGISTRY)


def test_docs_match_registry() -> None:
    assert (REPO / "docs" / "transforms.md").read_text() == markdown(), (
        "docs/transforms.md is stale: run `headwater transforms --markdown > docs/transforms.md`"
    )


def test_cli_lists_every_op(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transforms"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines()[2:] if line and not line.startswith(" ")}
    assert set(OPS) <= listed
    assert f"{len(OPS)} ops" in out


@pytest.mark.parametrize("name", OPS)
def test_op_is_documented(name: str) -> None:
    cls = OP_REGISTRY[name]
    assert cls.category in CATEGORIES
    assert cls.description.strip() and len(cls.description) < 160
    ((op_name, params),) = yaml.load(cls.example, Loader=SpecYamlLoader).items()
    assert op_name == name, f"example of {name} must start with `{name}:`"
    parse_op({op_name: params}, 0)  # the example is valid
    for field_name, field in cls.model_fields.items():
        assert field.description, f"{name}.{field_name} has no description"


def test_the_library_has_at_least_50_ops_in_every_category() -> None:
    assert len(OPS) >= 50
    assert {OP_REGISTRY[n].category for n in OPS} == set(CATEGORIES)
