"""Read pipeline YAML into `PipelineSpec`, turning every problem into a `SpecProblem` with file,
line, field path and a hint. Secrets are refused as literals and never echoed back."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from headwater.errors import SpecError, SpecProblem
from headwater.spec.models import Params, ParamSpec, PipelineSpec
from headwater.spec.params import PARAM_REF, ParamValues, as_json, as_text, resolve_params

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_REF = re.compile(f"{PARAM_REF.pattern}|{ENV_REF.pattern}")  # one pass: a value is never re-read
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
    """Things validation could not check here (secrets not set in this environment, required
    parameters given no value)."""
    params: dict[str, Any] = field(default_factory=dict)
    """The run's parameter values (given, else defaults), coerced, JSON-ready (dates as ISO text)."""
    placeholder_paths: list[Path_] = field(default_factory=list)
    """Fields holding a required parameter's placeholder (validation without run values)."""

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def digest(self) -> str:
        """The spec's hash: what it says, not how it is written (comments, layout and fields left at
        their defaults do not count, so a new optional field in the model changes no hash)."""
        doc = self.spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

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
    params: ParamValues | None = None,
) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string. With `unset_secrets` (validation without
    the run's secrets), an unset secret stays a `${VAR}` reference and is noted there instead.
    With `params`, ${params.NAME} takes the parameter's value (a string that is only the reference
    takes the typed value); without, it is left as it is. Inserted values are not read again."""
    if isinstance(data, dict):
        return {
            k: interpolate(v, env, file, lines, problems, (*path, str(k)), unset_secrets, params)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [
            interpolate(v, env, file, lines, problems, (*path, i), unset_secrets, params)
            for i, v in enumerate(data)
        ]
    if not isinstance(data, str) or "${" not in data:
        return data

    secret = bool(path) and bool(SECRET_KEY.search(str(path[-1])))
    if params is not None:
        if data.count("${params.") > len(PARAM_REF.findall(data)):
            problems.append(
                SpecProblem(
                    file,
                    field_path(path),
                    "malformed parameter reference",
                    "write ${params.NAME}, NAME declared under params:",
                    _nearest_line(lines, path),
                )
            )
        names = PARAM_REF.findall(data)
        if any(name in params.placeholders for name in names):
            params.placeholder_paths.append(path)
        whole = PARAM_REF.fullmatch(data)
        if whole and whole.group(1) in params.values:
            return as_json(params.values[whole.group(1)])

    def sub(match: re.Match[str]) -> str:
        if match.group(1) is not None:  # ${params.NAME}
            if params is None:
                return match.group(0)
            if match.group(1) in params.values:
                return as_text(params.values[match.group(1)])
            if match.group(1) in params.declared:  # its value was refused: that problem is reported
                return match.group(0)
            declared = ", ".join(params.declared) or "(none)"
            problems.append(
                SpecProblem(
                    file,
                    field_path(path),
                    f"parameter {match.group(1)!r} is not declared",
                    f"declare it under params: or use a declared one: {declared}",
                    _nearest_line(lines, path),
                )
            )
            return match.group(0)
        name, default = match.group(2), match.group(3)
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

    return _REF.sub(sub, data)


def _pydantic_problems(
    exc: ValidationError, file: str, data: Any, lines: Mapping[Path_, int], prefix: Path_ = ()
) -> list[SpecProblem]:
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = _data_loc(data, (*prefix, *err["loc"]))
        msg = err["msg"].removeprefix("Value error, ")
        hint = getattr((err.get("ctx") or {}).get("error"), "hint", None)
        if hint is None and err["type"] == "value_error":
            msg, hint = split_fix(msg)
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


_FIX_START = re.compile(
    r"(?:: |; )(?=(?:give|use|set|write|remove|add|put|name|cast|rename|declare|choose|keep|check|make|"
    r"leave|select|split|quote|fill|filter|dedupe|mark|list|join|point|export|start|define)\b)"
)


def split_fix(message: str) -> tuple[str, str | None]:
    """("what is wrong", "the fix") from a validator's "problem: do this" / "problem; do this"."""
    one_of = re.match(r"give exactly one of (\S+) or (\S+)$", message)
    if one_of:
        return f"both or neither of {one_of.group(1)} and {one_of.group(2)} are given", message
    if _FIX_START.match(": " + message):  # the message is only the fix
        return "not valid as written", message
    parts = _FIX_START.split(message, maxsplit=1)
    if len(parts) == 2 and parts[0].strip():
        return parts[0], parts[1]
    return message, None


def _data_loc(data: Any, loc: Iterable[str | int]) -> Path_:
    """Drop the discriminator tags pydantic puts into error locations (e.g. steps.1.transform)."""
    out: list[str | int] = []
    node = data
    tagged: Any = None  # the node whose tag was skipped (a window step's tag is also its key `window`)
    for part in loc:
        if isinstance(node, dict) and node is not tagged and part in (node.get("type"), node.get("kind")):
            tagged = node
            continue
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


_PARAMS: TypeAdapter[dict[str, ParamSpec]] = TypeAdapter(Params)


def parse_spec(
    text: str,
    file: str,
    env: Mapping[str, str] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    secrets_may_be_unset: bool = False,
    params_may_be_unset: bool = False,
) -> LoadedSpec:
    """Parse and validate one spec's text with the run's `params` (text or JSON values, coerced to
    their declared types, over the defaults). Raises SpecError listing every problem found. With
    `params_may_be_unset` (validation), a required parameter given no value takes a placeholder."""
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
    # the declarations first (they may use ${ENV}), then every other string with their values
    declarations = interpolate(data.get("params"), env, file, lines, problems, ("params",), notes)
    try:
        declared = _PARAMS.validate_python({} if declarations is None else declarations)
    except ValidationError as exc:
        raise SpecError(
            problems + _pydantic_problems(exc, file, {"params": declarations}, lines, ("params",))
        ) from None
    values, param_problems, param_notes = resolve_params(
        declared, params, file, lines, may_be_unset=params_may_be_unset
    )
    problems += param_problems
    body = {k: v for k, v in data.items() if k != "params"}
    resolved = interpolate(body, env, file, lines, problems, unset_secrets=notes, params=values)
    if "params" in data:
        resolved["params"] = declarations
    if problems:
        raise SpecError(problems)
    try:
        spec = PipelineSpec.model_validate(resolved)
    except ValidationError as exc:
        raise SpecError(_pydantic_problems(exc, file, resolved, lines)) from None
    return LoadedSpec(
        spec=spec,
        path=Path(file),
        lines=lines,
        notes=(notes or []) + param_notes,
        params=values.resolved(),
        placeholder_paths=values.placeholder_paths,
    )


def load_pipeline(
    path: str | Path,
    env: Mapping[str, str] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    check: bool = True,
    secrets_may_be_unset: bool = False,
    params_may_be_unset: bool = False,
    validating: bool = False,
) -> LoadedSpec:
    """Load one spec file with the run's `params`; with `check`, also run the cross-field checks
    (graph, ops, cron, files), except of fields that hold a required parameter's placeholder.
    `validating` (`headwater validate`): also report source files that cannot be read and ops whose
    column types do not fit, as far as the files' first rows tell (a run finds those at its steps,
    with the whole data)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(
            [SpecProblem(str(path), "(file)", f"cannot read: {exc.strerror}", "check the path")]
        ) from exc
    loaded = parse_spec(
        text,
        str(path),
        env,
        params=params,
        secrets_may_be_unset=secrets_may_be_unset,
        params_may_be_unset=params_may_be_unset,
    )
    if check:
        from headwater.spec.checks import check_spec

        unknowable = [field_path(p) for p in loaded.placeholder_paths]
        problems = [
            p
            for p in check_spec(loaded, validating=validating)
            if not any(p.field == f or p.field.startswith((f"{f}.", f"{f}[")) for f in unknowable)
        ]
        if problems:
            raise SpecError(problems)
    return loaded


def spec_files(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    if directory.is_file():
        return [directory]
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_pipelines(directory: str | Path, env: Mapping[str, str] | None = None) -> dict[str, LoadedSpec]:
    """Every spec in a folder, keyed by pipeline name, with its parameters' defaults (a required
    parameter takes a placeholder, see `LoadedSpec.notes`). Collects the problems of all files."""
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
            loaded = load_pipeline(path, env, params_may_be_unset=True)
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


class PipelineNotFound(SpecError):
    """No spec in the folder declares the pipeline asked for."""

    def __init__(self, directory: Path, name: str, known: list[str], unreadable: list[Path]) -> None:
        self.directory, self.name, self.known = directory, name, known
        hint = f"choose one of: {', '.join(known) or '(none)'}"
        if unreadable:
            hint += f"; not valid YAML, so not searched: {', '.join(p.name for p in unreadable)}"
        super().__init__([SpecProblem(str(directory), "name", f"no pipeline named {name!r}", hint)])


def peek_name(path: Path) -> str | None:
    """The `name:` a spec file declares, read from the YAML alone (no environment, no checks), so
    finding a pipeline never depends on another spec's secrets. None when it cannot be read."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SpecYamlLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def spec_path_for(directory: str | Path, name: str) -> Path:
    """The spec file of pipeline `name` in `directory`: the file whose `name:` is `name` (or, when
    none says so, an unreadable `<name>.yaml`). Raises PipelineNotFound, or SpecError when two
    files declare the name."""
    directory = Path(directory)
    files = spec_files(directory)
    names = {path: peek_name(path) for path in files}
    matches = [path for path, declared in names.items() if declared == name]
    if not matches:
        matches = [p for p, declared in names.items() if declared is None and p.stem == name]
    if len(matches) > 1:
        raise SpecError(
            [
                SpecProblem(
                    str(path),
                    "name",
                    f"pipeline {name!r} is defined in {len(matches)} files",
                    "give each pipeline a unique name",
                )
                for path in matches
            ]
        )
    if not matches:
        known = sorted({n for n in names.values() if n})
        unreadable = [p for p, declared in names.items() if declared is None]
        raise PipelineNotFound(directory, name, known, unreadable)
    return matches[0]


def find_pipeline(
    directory: str | Path,
    name: str,
    env: Mapping[str, str] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    params_may_be_unset: bool = False,
    reading: bool = False,
) -> LoadedSpec:
    """The spec named `name` in `directory`, loaded with the run's `params`. Only that spec is
    validated: another spec's problems (a secret not set here) do not stop this one.
    `params_may_be_unset`: for reading the spec (e.g. to build a form), not running it: a required
    parameter without a value takes a placeholder instead of failing. `reading`: only to look at it
    (its parameters, where it loads): no cross-field checks (they read the source files), and unset
    secrets stay references."""
    unset = params_may_be_unset or reading
    light = {"check": False, "secrets_may_be_unset": True} if reading else {}
    path = spec_path_for(directory, name)
    return load_pipeline(path, env, params=params, params_may_be_unset=unset, **light)
