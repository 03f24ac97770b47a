"""Typed configuration shared by every stage: pydantic models saved beside each output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from astrolatent.errors import ConfigError


def _problems(exc: ValidationError) -> str:
    """``field: problem; ...`` of a validation error; a nested configuration's own problems
    (raised by its ``__init__``) are named by their full path, not repeated as a root error."""
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        inner = (err.get("ctx") or {}).get("error")
        problems = getattr(inner, "problems", None)
        if problems is not None:
            out.extend(f"{where}.{p}" if where else p for p in problems)
        else:
            out.append(f"{where or '(root)'}: {err['msg'].removeprefix('Value error, ')}")
    return out


def _join(problems: list[str]) -> str:
    return "; ".join(p.replace(".(root):", ":") for p in problems)


def split_columns(value: object) -> object:
    """``"a,b , c"`` -> ``["a", "b", "c"]`` (``""`` -> ``[]``); anything else as given: the
    comma-separated form of a list of names, on the command line or in a file."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


#: A list of names (columns, labels, ids) that also reads from ``"a,b,c"``.
Columns = Annotated[list[str], BeforeValidator(split_columns)]


class Config(BaseModel):
    """Base of every configuration: strict (unknown keys are errors), frozen, serialisable.

    Invalid values raise :class:`~astrolatent.errors.ConfigError` naming the field, whether
    the configuration is built directly, from a dict or from a file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = _problems(exc)
            error = ConfigError(f"{type(self).__name__}: {_join(problems)}")
            error.problems = problems  # for a configuration that holds this one
            raise error from None

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def save(self, path: str | Path) -> Path:
        """Write the configuration as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in {".yaml", ".yml"}:
            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        else:
            text = json.dumps(self.to_dict(), indent=2)
        path.write_text(text)
        return path

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "configuration") -> Self:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {_join(_problems(exc))}") from None

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a configuration written by :meth:`save` (or by hand) from YAML or JSON."""
        return cls.from_dict(read_mapping(path), source=str(path))


def read_mapping(path: str | Path, *, what: str = "configuration") -> dict:
    """A YAML (``.yaml``/``.yml``) or JSON file holding a mapping; an empty file gives ``{}``.

    Raises ConfigError naming the file when it cannot be read or holds something else.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: {what} is not a text (YAML/JSON) file") from None
    try:
        data = yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        reason = " ".join(str(exc).split())  # YAML's messages span several lines
        raise ConfigError(f"{path}: not valid YAML/JSON ({reason})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping, got {type(data).__name__}")
    return data
