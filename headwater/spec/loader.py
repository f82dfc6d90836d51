"""Read pipeline YAML into `PipelineSpec`, turning every problem into a `SpecProblem` with file,
line, field path and a hint. Secrets are refused as literals and never echoed back."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from headwater.errors import SpecError, SpecProblem
from headwater.spec.models import PipelineSpec

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
SECRET_KEY = re.compile(
    r"(?i)(password|passwd|secret|token|api[_-]?key|credential|authorization|salt|pepper)"
)
URL_PASSWORD = re.compile(r"://[^/:@\s?#]*:([^@\s/?#]+)@")
Path_ = tuple[str | int, ...]


class SpecYamlLoader(yaml.SafeLoader):
    """YAML 1.2 core scalars. YAML 1.1 (PyYAML's default) reads `on:`, `yes`, `no`, `off` as booleans,
    which would turn a join's `on:` key into True, and `1:1` or `10:30` as base-60 numbers (61, 630)."""


_YAML_1_1 = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
SpecYamlLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] not in _YAML_1_1]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpecYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
SpecYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)


def _yaml12_int(loader: SpecYamlLoader, node: yaml.ScalarNode) -> int:
    """Decimal unless 0x/0o: YAML 1.1 would read 010 as octal 8."""
    text = str(loader.construct_scalar(node))
    if text.startswith(("0x", "0o")):
        return int(text[2:], 16 if text[1] == "x" else 8)
    return int(text, 10)


SpecYamlLoader.add_constructor("tag:yaml.org,2002:int", _yaml12_int)
SpecYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and where it came from."""

    spec: PipelineSpec
    path: Path
    lines: dict[Path_, int]
    notes: list[SpecProblem] = field(default_factory=list)
    """Things validation could not check here (secrets not set in this environment)."""

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def line(self, *loc: str | int) -> int | None:
        return _nearest_line(self.lines, loc)


def field_path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _nearest_line(lines: Mapping[Path_, int], loc: Iterable[str | int]) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get((), None)


def _compose_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int], dupes: list[Path_]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                dupes.append((*path, key))
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _compose_lines(value_node, (*path, key), lines, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _compose_lines(item, (*path, i), lines, dupes)


def _walk(data: Any, path: Path_ = ()) -> Iterable[tuple[Path_, Any]]:
    yield path, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _walk(v, (*path, str(k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _walk(v, (*path, i))


def mask_secrets(data: Any) -> Any:
    """A copy with every value under a secret-like key replaced by "***" (for storing spec config)."""
    if isinstance(data, dict):
        return {
            k: "***" if SECRET_KEY.search(str(k)) and isinstance(v, str) else mask_secrets(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [mask_secrets(v) for v in data]
    return data


def _only_env_refs(value: str) -> bool:
    """Only ${VAR} references, and none with a default (a default written here is a literal secret)."""
    refs = list(ENV_REF.finditer(value))
    return (
        bool(value.strip()) and ENV_REF.sub("", value).strip() == "" and all(m.group(2) is None for m in refs)
    )


def literal_secret_problems(data: Any, file: str, lines: Mapping[Path_, int]) -> list[SpecProblem]:
    """Secrets must come from ${ENV} or a block: flag literal values under secret-like keys and
    passwords written into URLs. The value itself is never repeated."""
    problems = []
    for path, value in _walk(data):
        if not isinstance(value, str) or not path:
            continue
        key = str(path[-1])
        if SECRET_KEY.search(key) and not _only_env_refs(value):
            problems.append(
                SpecProblem(
                    file,
                    field_path(path),
                    "a secret is written as a literal",
                    f"set it as ${{{key.upper().replace('-', '_')}}} from the environment "
                    "or a Prefect block, never in YAML",
                    _nearest_line(lines, path),
                )
            )
        match = URL_PASSWORD.search(value)
        if match and not _only_env_refs(match.group(1)):
            problems.append(
                SpecProblem(
                    file,
                    field_path(path),
                    "the URL contains a literal password",
                    "put the password (or the whole URL) in an environment variable, "
                    "e.g. url: ${WAREHOUSE_URL}, or use a block",
                    _nearest_line(lines, path),
                )
            )
    return problems


def interpolate(
    data: Any,
    env: Mapping[str, str],
    file: str,
    lines: Mapping[Path_, int],
    problems: list[SpecProblem],
    path: Path_ = (),
    unset_secrets: list[SpecProblem] | None = None,
) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string. With `unset_secrets` (validation without
    the run's secrets), an unset secret stays a `${VAR}` reference and is noted there instead."""
    if isinstance(data, dict):
        return {
            k: interpolate(v, env, file, lines, problems, (*path, str(k)), unset_secrets)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [
            interpolate(v, env, file, lines, problems, (*path, i), unset_secrets) for i, v in enumerate(data)
        ]
    if not isinstance(data, str) or "${" not in data:
        return data

    secret = bool(path) and bool(SECRET_KEY.search(str(path[-1])))

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None and not secret:
            return default
        hint = f"export {name}=..." if secret else f"export {name}=... or give a default: ${{{name}:-value}}"
        if secret and unset_secrets is not None:
            unset_secrets.append(
                SpecProblem(
                    file,
                    field_path(path),
                    f"secret {name} is not set here; runs need it",
                    hint,
                    _nearest_line(lines, path),
                )
            )
            return match.group(0)
        problems.append(
            SpecProblem(
                file,
                field_path(path),
                f"environment variable {name} is not set",
                hint,
                _nearest_line(lines, path),
            )
        )
        return ""

    return ENV_REF.sub(sub, data)


def _pydantic_problems(
    exc: ValidationError, file: str, data: Any, lines: Mapping[Path_, int]
) -> list[SpecProblem]:
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = _data_loc(data, err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        hint = None
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
            hint = "remove it or check its spelling against the README's spec reference"
        elif err["type"] == "missing":
            hint = f"add {loc[-1]!r}"
        elif err["type"] == "union_tag_invalid":
            hint = "use one of the kinds/types listed"
        elif err["type"] == "string_pattern_mismatch":
            hint = "use letters, digits and underscores, starting with a letter"
        problems.append(SpecProblem(file, field_path(loc), msg, hint, _nearest_line(lines, loc)))
    return problems


def _data_loc(data: Any, loc: Iterable[str | int]) -> Path_:
    """Drop the discriminator tags pydantic puts into error locations (e.g. steps.1.transform)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]  # type: ignore[index]
            out.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and "," not in part and "[" not in part:
            # a missing or unknown key: keep it; a union tag such as 'file' is skipped when it is a value
            if part in {str(v) for v in node.values() if isinstance(v, str)}:
                continue
            out.append(part)
            node = None
    return tuple(out)


def parse_spec(
    text: str, file: str, env: Mapping[str, str] | None = None, *, secrets_may_be_unset: bool = False
) -> LoadedSpec:
    """Parse and validate one spec's text. Raises SpecError listing every problem found."""
    env = os.environ if env is None else env
    try:
        node = yaml.compose(text, Loader=SpecYamlLoader)
        data = yaml.load(text, Loader=SpecYamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SpecError(
            [
                SpecProblem(
                    file,
                    "(yaml)",
                    f"not valid YAML: {getattr(exc, 'problem', exc)}",
                    "check indentation, colons and quotes on that line",
                    mark.line + 1 if mark else None,
                )
            ]
        ) from exc
    lines: dict[Path_, int] = {}
    dupes: list[Path_] = []
    if node is not None:
        _compose_lines(node, (), lines, dupes)
    if not isinstance(data, dict):
        raise SpecError(
            [
                SpecProblem(
                    file,
                    "(top level)",
                    "a pipeline spec must be a YAML mapping",
                    "start with `name: my_pipeline`",
                    1,
                )
            ]
        )
    problems = [SpecProblem(file, field_path(d), "key given twice", "keep one", lines.get(d)) for d in dupes]
    problems += literal_secret_problems(data, file, lines)
    notes: list[SpecProblem] | None = [] if secrets_may_be_unset else None
    resolved = interpolate(data, env, file, lines, problems, unset_secrets=notes)
    if problems:
        raise SpecError(problems)
    try:
        spec = PipelineSpec.model_validate(resolved)
    except ValidationError as exc:
        raise SpecError(_pydantic_problems(exc, file, resolved, lines)) from None
    return LoadedSpec(spec=spec, path=Path(file), lines=lines, notes=notes or [])


def load_pipeline(
    path: str | Path,
    env: Mapping[str, str] | None = None,
    *,
    check: bool = True,
    secrets_may_be_unset: bool = False,
) -> LoadedSpec:
    """Load one spec file; with `check`, also run the cross-field checks (graph, ops, cron, files)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(
            [SpecProblem(str(path), "(file)", f"cannot read: {exc.strerror}", "check the path")]
        ) from exc
    loaded = parse_spec(text, str(path), env, secrets_may_be_unset=secrets_may_be_unset)
    if check:
        from headwater.spec.checks import check_spec

        problems = check_spec(loaded)
        if problems:
            raise SpecError(problems)
    return loaded


def spec_files(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    if directory.is_file():
        return [directory]
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_pipelines(directory: str | Path, env: Mapping[str, str] | None = None) -> dict[str, LoadedSpec]:
    """Every spec in a folder, keyed by pipeline name. Collects the problems of all files."""
    problems: list[SpecProblem] = []
    found: dict[str, LoadedSpec] = {}
    files = spec_files(directory)
    if not files:
        raise SpecError(
            [
                SpecProblem(
                    str(directory),
                    "(folder)",
                    "no *.yaml pipeline specs found",
                    "point at the folder that holds your pipeline specs",
                )
            ]
        )
    for path in files:
        try:
            loaded = load_pipeline(path, env)
        except SpecError as exc:
            problems += exc.problems
            continue
        name = loaded.spec.name
        if name in found:
            problems.append(
                SpecProblem(
                    str(path),
                    "name",
                    f"pipeline {name!r} is also defined in {found[name].path}",
                    "give each pipeline a unique name",
                    loaded.line("name"),
                )
            )
        found[name] = loaded
    if problems:
        raise SpecError(problems)
    return found


def find_pipeline(directory: str | Path, name: str, env: Mapping[str, str] | None = None) -> LoadedSpec:
    """The spec named `name` in `directory` (file name first, then every file)."""
    directory = Path(directory)
    for candidate in (directory / f"{name}.yaml", directory / f"{name}.yml"):
        if candidate.is_file():
            loaded = load_pipeline(candidate, env)
            if loaded.spec.name == name:
                return loaded
    specs = load_pipelines(directory, env)
    if name not in specs:
        raise SpecError(
            [
                SpecProblem(
                    str(directory),
                    "name",
                    f"no pipeline named {name!r}",
                    f"choose one of: {', '.join(sorted(specs)) or '(none)'}",
                )
            ]
        )
    return specs[name]
