"""Run parameters: a spec declares typed `params:`, strings use `${params.NAME}`, a run gives values
(text from the CLI or a form, JSON from the Prefect UI) that are coerced, merged over the defaults,
checked, substituted, recorded with the run; every mistake is a SpecError naming file, parameter and
fix."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.cli import main
from headwater.errors import SpecError
from headwater.settings import Settings
from headwater.spec import load_pipeline
from headwater.spec.loader import find_pipeline, parse_spec
from headwater.spec.params import coerce
from headwater.store import Store
from tests.conftest import EXAMPLES, run_flow
from tests.test_vendor_prices import expected_vendor_prices

SPEC = """\
name: tiny
params:
  feed: {type: string, default: data/vendor_prices.csv, description: The feed file.}
  min_price: {type: number, default: 0, description: Drop prices below this.}
  top: {type: integer, default: 5}
  keep: {type: boolean, default: true}
  since: {type: date, default: 2026-01-01}
  city: {type: string, default: London, choices: [London, Leeds, York]}
sources:
  feed: {kind: file, path: "${params.feed}"}
steps:
  - {name: extract_feed, type: extract, source: feed}
  - name: clean
    type: transform
    depends_on: [extract_feed]
    ops:
      - filter: "city = '${params.city}' AND ${params.keep} AND updated_at >= '${params.since}'"
      - limit: ${params.top}
      - constant: {columns: {min_price: "${params.min_price}", label: "top ${params.top} in ${params.city}"}}
  - name: load
    type: load
    depends_on: [clean]
    destination: {table: vendors, mode: append}
"""
DEFAULTS = {
    "feed": "data/vendor_prices.csv",
    "min_price": 0.0,
    "top": 5,
    "keep": True,
    "since": "2026-01-01",
    "city": "London",
}


def write(spec_dir: Path, text: str = SPEC, name: str = "tiny.yaml") -> Path:
    path = spec_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def problems_of(path: Path, params: dict[str, Any] | None = None, **kw: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_pipeline(path, env={}, params=params, **kw)
    return [str(p) for p in info.value.problems]


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# ------------------------------------------------------------------ coercion


@pytest.mark.parametrize(
    ("kind", "given", "expected"),
    [
        ("string", "data/x.csv", "data/x.csv"),
        ("string", " padded ", " padded "),
        ("string", 12, "12"),
        ("integer", "12", 12),
        ("integer", " -3 ", -3),
        ("integer", 7, 7),
        ("integer", 7.0, 7),
        ("number", "12.5", 12.5),
        ("number", "1e3", 1000.0),
        ("number", "-0.25", -0.25),
        ("number", 3, 3.0),
        ("boolean", "true", True),
        ("boolean", "FALSE", False),
        ("boolean", "yes", True),
        ("boolean", "0", False),
        ("boolean", True, True),
        ("boolean", 1, True),
        ("date", "2026-01-31", date(2026, 1, 31)),
        ("date", date(2026, 2, 1), date(2026, 2, 1)),
    ],
)
def test_coerce(kind: Any, given: Any, expected: Any) -> None:
    value = coerce(kind, given)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("kind", "given"),
    [
        ("string", ["a"]),
        ("string", True),
        ("integer", "12.5"),
        ("integer", "twelve"),
        ("integer", True),
        ("integer", 7.5),
        ("number", "abc"),
        ("number", "nan"),
        ("number", False),
        ("boolean", "maybe"),
        ("boolean", 2),
        ("date", "31/01/2026"),
        ("date", "2026-02-30"),
        ("date", 20260131),
    ],
)
def test_coerce_refuses(kind: Any, given: Any) -> None:
    with pytest.raises(ValueError, match=f"expected {kind} .*got {re.escape(repr(given))}"):
        coerce(kind, given)


# ------------------------------------------------------------------ values in the spec


def test_defaults_apply_and_are_substituted(spec_dir: Path) -> None:
    loaded = load_pipeline(write(spec_dir), env={})
    assert loaded.params == DEFAULTS
    assert loaded.spec.sources["feed"].path == "data/vendor_prices.csv"  # type: ignore[union-attr]
    ops = loaded.spec.steps[1].ops  # type: ignore[union-attr]
    assert ops[0] == {"filter": "city = 'London' AND true AND updated_at >= '2026-01-01'"}
    assert ops[1] == {"limit": 5}  # a string that is only the reference takes the typed value
    assert ops[2] == {"constant": {"columns": {"min_price": 0.0, "label": "top 5 in London"}}}
    assert loaded.spec.params["since"].default == date(2026, 1, 1)
    assert loaded.spec.params["feed"].description == "The feed file."


def test_text_values_from_a_cli_are_coerced_and_merged_over_defaults(spec_dir: Path) -> None:
    given = {"min_price": "12.5", "top": "3", "keep": "false", "since": "2026-03-02", "city": "Leeds"}
    loaded = load_pipeline(write(spec_dir), env={}, params=given)
    assert loaded.params == {
        "feed": "data/vendor_prices.csv",
        "min_price": 12.5,
        "top": 3,
        "keep": False,
        "since": "2026-03-02",
        "city": "Leeds",
    }
    ops = loaded.spec.steps[1].ops  # type: ignore[union-attr]
    assert ops[0] == {"filter": "city = 'Leeds' AND false AND updated_at >= '2026-03-02'"}
    assert ops[1] == {"limit": 3}
    assert ops[2] == {"constant": {"columns": {"min_price": 12.5, "label": "top 3 in Leeds"}}}


def test_json_values_are_coerced(spec_dir: Path) -> None:
    loaded = load_pipeline(
        write(spec_dir), env={}, params={"min_price": 4, "top": 2.0, "keep": 0, "since": date(2026, 3, 1)}
    )
    assert (loaded.params["min_price"], loaded.params["top"]) == (4.0, 2)
    assert (loaded.params["keep"], loaded.params["since"]) == (False, "2026-03-01")


def test_a_none_value_means_the_default(spec_dir: Path) -> None:
    assert load_pipeline(write(spec_dir), env={}, params={"top": None}).params["top"] == 5


def test_params_are_not_env_vars_and_values_are_not_reinterpolated(spec_dir: Path) -> None:
    text = SPEC.replace('path: "${params.feed}"', 'path: "${DATA_DIR:-data}/${params.feed}"')
    path = write(spec_dir, text)
    env = {"params": "env-not-used", "feed": "env-not-used", "HOME_SECRET": "leak"}
    loaded = parse_spec(path.read_text(), str(path), env, params={"feed": "${HOME_SECRET}.csv"})
    assert loaded.spec.sources["feed"].path == "data/${HOME_SECRET}.csv"  # type: ignore[union-attr]
    loaded = parse_spec(path.read_text(), str(path), {"DATA_DIR": "in"}, params={"feed": "x.csv"})
    assert loaded.spec.sources["feed"].path == "in/x.csv"  # type: ignore[union-attr]


def test_declarations_may_use_env_vars(spec_dir: Path) -> None:
    path = write(spec_dir, SPEC.replace("default: 5}", 'default: "${TOP:-5}"}'))
    assert load_pipeline(path, env={"TOP": "9"}).params["top"] == 9
    assert load_pipeline(path, env={}).params["top"] == 5


# ------------------------------------------------------------------ errors


def test_unknown_parameter_lists_the_declared_ones(spec_dir: Path) -> None:
    path = write(spec_dir)
    (problem,) = problems_of(path, {"feeed": "x.csv"})
    assert problem.startswith(f"{path}:2: params.feeed: unknown parameter 'feeed'")
    assert "give only declared parameters: feed, min_price, top, keep, since, city" in problem


NO_PARAMS = """\
name: plain
sources:
  feed: {kind: file, path: data/vendor_prices.csv}
steps:
  - {name: extract_feed, type: extract, source: feed}
  - {name: load, type: load, depends_on: [extract_feed], destination: {table: vendors}}
"""


def test_unknown_parameter_when_none_are_declared(spec_dir: Path) -> None:
    path = write(spec_dir, NO_PARAMS)
    assert load_pipeline(path, env={}).params == {}
    (problem,) = problems_of(path, {"feed": "x.csv"})
    assert str(path) in problem and "unknown parameter 'feed'" in problem
    assert "this spec declares no params" in problem


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("top", "many", ["parameter top expects integer, got 'many'", "fix: give a whole number"]),
        ("min_price", "cheap", ["parameter min_price expects number, got 'cheap'", "fix: give a number"]),
        ("keep", "perhaps", ["parameter keep expects boolean, got 'perhaps'", "fix: give true or false"]),
        ("since", "31/01/2026", ["parameter since expects date, got '31/01/2026'", "YYYY-MM-DD"]),
        ("feed", ["a.csv"], ["parameter feed expects string, got ['a.csv']", "fix: give text"]),
    ],
)
def test_wrong_type_says_the_expected_type_and_the_value(
    spec_dir: Path, name: str, value: Any, words: list[str]
) -> None:
    path = write(spec_dir)
    (problem,) = problems_of(path, {name: value})
    assert problem.startswith(f"{path}:{line_of(path, f'  {name}:')}: params.{name}: ")
    for word in words:
        assert word in problem


def test_value_not_in_choices(spec_dir: Path) -> None:
    path = write(spec_dir)
    (problem,) = problems_of(path, {"city": "Paris"})
    assert problem.startswith(f"{path}:{line_of(path, '  city:')}: params.city:")
    assert "'Paris' is not one of the allowed values" in problem
    assert "fix: use one of: London, Leeds, York" in problem


def test_every_bad_value_is_reported_at_once(spec_dir: Path) -> None:
    problems = problems_of(write(spec_dir), {"top": "x", "city": "Paris", "nope": 1})
    assert [p.split(": ")[1] for p in problems] == ["params.nope", "params.top", "params.city"]


def test_a_secret_looking_parameter_is_not_echoed(spec_dir: Path) -> None:
    text = SPEC.replace("params:\n", "params:\n  api_token_id: {type: integer, default: 1}\n")
    (problem,) = problems_of(write(spec_dir, text), {"api_token_id": "s3cr3t-value"})
    assert "parameter api_token_id expects integer" in problem and "s3cr3t-value" not in problem


REQUIRED = SPEC.replace(
    "  feed: {type: string, default: data/vendor_prices.csv, description: The feed file.}",
    "  feed: {type: string, required: true, description: The feed file.}",
)


def test_required_parameter_not_given_fails_a_run(spec_dir: Path) -> None:
    path = write(spec_dir, REQUIRED)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{line_of(path, '  feed:')}: params.feed: ")
    assert "required parameter feed was not given" in problem
    assert "--param feed=" in problem
    loaded = load_pipeline(path, env={}, params={"feed": "data/vendor_prices.csv"})
    assert loaded.params["feed"] == "data/vendor_prices.csv"
    with pytest.raises(SpecError, match="required parameter feed was not given"):
        find_pipeline(spec_dir, "tiny", env={})
    # reading the spec (a run-now form) is not running it
    read = find_pipeline(spec_dir, "tiny", env={}, params_may_be_unset=True)
    assert read.spec.params["feed"].required and "feed" not in read.params


def test_validate_accepts_a_required_parameter_without_value_and_notes_it(
    spec_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(spec_dir, REQUIRED)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"ok  {path}" in out
    assert "note: " in out and "params.feed: required parameter feed has no default" in out
    assert "runs must give it: headwater run ... --param feed=..." in out
    # the placeholder stands only for validation: it is no resolved value
    loaded = load_pipeline(path, env={}, params_may_be_unset=True)
    assert "feed" not in loaded.params and loaded.params["top"] == 5
    assert loaded.placeholder_paths == [("sources", "feed", "path")]
    # other checks still run: a broken step is reported, the unknowable file path is not
    broken = write(spec_dir, REQUIRED.replace("depends_on: [clean]", "depends_on: [cleen]"), "broken.yaml")
    problems = problems_of(broken, params_may_be_unset=True)
    assert len(problems) == 1 and "unknown step 'cleen'" in problems[0]


def test_reference_to_an_undeclared_parameter_names_its_line(spec_dir: Path) -> None:
    path = write(spec_dir, SPEC.replace("limit: ${params.top}", "limit: ${params.topp}"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{line_of(path, 'params.topp')}: steps[1].ops[1].limit: ")
    assert "parameter 'topp' is not declared" in problem
    assert "declare it under params: or use a declared one: feed, min_price" in problem


def test_malformed_reference(spec_dir: Path) -> None:
    path = write(spec_dir, SPEC.replace("city = '${params.city}'", "city = '${params.city-x}'"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{line_of(path, 'params.city-x')}: steps[1].ops[0].filter: ")
    assert "malformed parameter reference" in problem and "${params.NAME}" in problem


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("default: 0,", "default: cheap,", "params.min_price", "default: expected number"),
        ("default: London,", "default: Paris,", "params.city", "default 'Paris' is not one of the choices"),
        (
            "choices: [London, Leeds, York]",
            "choices: [London, true]",
            "params.city",
            "choices: expected string",
        ),
        ("{type: integer, default: 5}", "{type: integer}", "params.top", "give a default, or set required"),
        (
            "{type: integer, default: 5}",
            "{type: integer, default: 5, required: true}",
            "params.top",
            "remove",
        ),
        ("type: integer,", "type: int,", "params.top.type", "Input should be 'string', 'integer'"),
        ("  top:", "  top-n:", "params.top-n", "String should match pattern"),
        (
            "keep: {type: boolean, default: true}",
            "keep: {type: boolean, default: true, min: 1}",
            "params.keep.min",
            "unknown key 'min'",
        ),
    ],
)
def test_bad_declarations(spec_dir: Path, old: str, new: str, field: str, words: str) -> None:
    text = SPEC.replace(old, new)
    assert text != SPEC
    path = write(spec_dir, text)
    problems = problems_of(path)
    assert any(p.startswith(f"{path}:") and f": {field}: " in p and words in p for p in problems), problems


# ------------------------------------------------------------------ runs


def warehouse_prices(settings: Settings) -> pl.DataFrame:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        return pl.read_database("SELECT * FROM vendor_prices ORDER BY vendor_id", engine).with_columns(
            pl.col("price_missing").cast(pl.Boolean),
            pl.col("updated_at").str.to_datetime("%Y-%m-%d %H:%M:%S%.f"),
        )
    finally:
        engine.dispose()


SECOND_FEED = """\
vendor_id,vendor_name,category,city,price,currency,updated_at
W001,Lakeside Strings,music,Keswick,£900,GBP,2026-04-01 09:00:00
W002,Fern & Fable Stationery,stationery,York,"£1,050.00",GBP,2026-04-01 10:00:00
W001,Lakeside Strings,music,Keswick,£950,GBP,2026-04-02 09:00:00
W003,Hilltop Marquees,venue,Harrogate, £4200 ,GBP,2026-04-03 12:30:00
"""


def test_vendor_prices_declares_its_feed() -> None:
    loaded = find_pipeline(EXAMPLES, "vendor_prices")
    assert loaded.params == {"feed": "data/vendor_prices.csv"}
    assert loaded.spec.sources["feed"].path == "data/vendor_prices.csv"  # type: ignore[union-attr]
    assert loaded.spec.params["feed"].description


@pytest.mark.prefect
def test_a_run_loads_the_feed_it_is_given(hw_env: Settings, prefect_api: str, tmp_path: Path) -> None:
    feed = tmp_path / "second_feed.csv"
    feed.write_text(SECOND_FEED)
    expected = expected_vendor_prices(feed)
    assert expected["vendor_id"].to_list() == ["W001", "W002", "W003"]
    assert expected["price_gbp"].to_list() == [950.0, 1050.0, 4200.0]

    result = run_flow("vendor_prices", EXAMPLES, params={"feed": str(feed)})
    assert result["status"] == "completed", result
    assert (result["records_processed"], result["records_inserted"]) == (4, 3)
    assert_frame_equal(warehouse_prices(hw_env), expected)
    store = Store(hw_env.database_url)
    run = store.run(result["run_id"])
    assert run is not None and run["parameters"] == {"feed": str(feed)}
    store.dispose()


@pytest.mark.prefect
def test_cli_param(
    hw_env: Settings, prefect_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = tmp_path / "second_feed.csv"
    feed.write_text(SECOND_FEED)
    assert main(["run", "vendor_prices", "--pipelines", str(EXAMPLES), "--param", f"feed={feed}"]) == 0
    out = capsys.readouterr().out
    match = re.search(r"vendor_prices: completed\s+\(run ([0-9a-f-]+)\)", out)
    assert match, out
    assert "rows read 4, loaded 3 (inserted 3, updated 0)" in out
    assert_frame_equal(warehouse_prices(hw_env), expected_vendor_prices(feed))

    assert main(["runs", "--run", match.group(1)]) == 0
    shown = capsys.readouterr().out
    assert f'{"parameters":18} feed="{feed}"' in shown

    # a parameter the spec does not declare: the run does not start, the message says what to give
    assert main(["run", "vendor_prices", "--pipelines", str(EXAMPLES), "--param", "fede=x.csv"]) == 2
    err = capsys.readouterr().err
    assert "vendor_prices.yaml" in err and "params.fede: unknown parameter 'fede'" in err
    assert "give only declared parameters: feed" in err


def test_cli_param_must_be_key_value(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "vendor_prices", "--param", "feed"])
    assert info.value.code == 2
    assert "'feed' is not key=value" in capsys.readouterr().err


def test_store_masks_secret_looking_parameters(hw_env: Settings) -> None:
    store = Store(hw_env.database_url).migrate()
    loaded = find_pipeline(EXAMPLES, "vendor_prices")
    pipeline_id = store.register_pipeline(loaded, hw_env.warehouse_url)
    run_id = store.start_run(
        pipeline_id,
        "vendor_prices",
        [("extract_feed", "extract")],
        execution_type="manual",
        flow_run_id=None,
        parameters={"feed": "a.csv", "api_key": "k-123", "limit": 3},
    )
    run = store.run(run_id)
    assert run is not None
    assert run["parameters"] == {"feed": "a.csv", "api_key": "***", "limit": 3}
    store.dispose()
