"""Name -> class registries for pluggable parts (readers, MI estimators, PID measures).

A :class:`Registry` is a dict with a class decorator that checks the type and refuses a
second class under the same name, and a lookup whose error names the option and the choices.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from astrolatent.errors import ConfigError

T = TypeVar("T", bound=type)


class Registry(dict[str, T], Generic[T]):
    """Classes derived from ``base`` by their ``name`` attribute; ``option`` is the option
    users choose them with (for error messages, e.g. ``"estimator"``)."""

    def __init__(self, base: type, option: str) -> None:
        super().__init__()
        self.base, self.option = base, option

    def register(self, cls: T) -> T:
        """Class decorator: make ``cls`` available by its ``name``."""
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"{cls!r} is not a subclass of {self.base.__name__}")
        if self.get(cls.name, cls) is not cls:
            raise ConfigError(f"{self.option} {cls.name!r} is already registered")
        self[cls.name] = cls
        return cls

    def lookup(self, name: str) -> T:
        """The class registered as ``name``; ConfigError listing the choices otherwise."""
        if name not in self:
            raise ConfigError(f"{self.option}={name!r} is not known; choose one of {sorted(self)}")
        return self[name]
