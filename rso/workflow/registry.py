"""The loaded procedures, held once per application (or once per process outside Flask)."""
from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from flask import current_app, has_app_context

from rso.errors import NotFound
from rso.workflow.definitions import Procedure
from rso.workflow.loader import load_procedures

#: The repository's ``workflows/`` directory.
DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "workflows"

#: Key under ``app.extensions``.
EXTENSION = "workflows"


class Registry:
    """Procedures by name. Build it with :meth:`from_directory` (validates every file)."""

    def __init__(self, procedures: Mapping[str, Procedure], directory: Path | None = None):
        self._procedures = dict(procedures)
        self.directory = directory

    @classmethod
    def from_directory(cls, directory: str | Path = DEFAULT_DIRECTORY) -> Registry:
        return cls(load_procedures(directory), Path(directory))

    def get(self, name: str) -> Procedure:
        try:
            return self._procedures[name]
        except KeyError:
            raise NotFound(f"There is no procedure named '{name}'.") from None

    def names(self) -> list[str]:
        return sorted(self._procedures)

    def __contains__(self, name: object) -> bool:
        return name in self._procedures

    def __iter__(self) -> Iterator[Procedure]:
        return iter(self._procedures[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._procedures)

    def __repr__(self) -> str:
        return f"<Registry {len(self)} procedures>"


_default: Registry | None = None
_lock = threading.Lock()


def init_app(app, directory: str | Path | None = None) -> Registry:
    """Load the procedures at start-up (an invalid file raises WorkflowError: start-up stops).

    Directory: ``directory``, else ``app.config["WORKFLOWS_DIR"]``, else the repository's
    ``workflows/``. Import every module that registers guards before calling this."""
    registry = Registry.from_directory(directory or app.config.get("WORKFLOWS_DIR") or DEFAULT_DIRECTORY)
    app.extensions[EXTENSION] = registry
    return registry


def get_registry() -> Registry:
    """The app's registry inside an app context (if wired), else a process-wide default
    loaded lazily from ``workflows/`` (CLI scripts, tests; see :func:`set_default_registry`)."""
    global _default
    if has_app_context():
        registry = current_app.extensions.get(EXTENSION)
        if isinstance(registry, Registry):
            return registry
        if isinstance(registry, Mapping):
            return Registry(registry)
    if _default is None:
        with _lock:
            if _default is None:
                _default = Registry.from_directory(DEFAULT_DIRECTORY)
    return _default


def set_default_registry(registry: Registry | None) -> Registry | None:
    """Replace the process-wide default (None: reload lazily); returns the previous one."""
    global _default
    with _lock:
        previous, _default = _default, registry
    return previous
