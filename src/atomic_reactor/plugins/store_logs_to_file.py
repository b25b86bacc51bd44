"""``store_logs_to_file``: write the build's results, per phase, to a JSON file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atomic_reactor._files import write_text_atomic
from atomic_reactor._results import jsonable
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.plugin import PHASES, ExitPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["StoreLogsToFilePlugin", "StoredLogs"]

#: version of the document's layout
DOCUMENT_VERSION = 1


@dataclass(frozen=True)
class StoredLogs:
    """Where the results went."""

    path: str
    size: int


class StoreLogsToFilePlugin(ExitPlugin):
    """Write what the build produced to a JSON file: the build results
    (``BuildResults.to_dict()``: build logs, image ids, pushes, timings, errors)
    plus, as in atomic-reactor 1.6, each phase's plugin results under
    ``prebuild_plugins``, ``prepublish_plugins``, ``postbuild_plugins`` and
    ``exit_plugins`` (the exit plugins that ran before this one).

    The file is written atomically (a temporary file in the same directory, then
    renamed) with mode 0644; missing parent directories are created.

    Result: a :class:`StoredLogs` (the absolute path written and its size in bytes).
    """

    key = "store_logs_to_file"
    is_allowed_to_fail = True

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow, file_path: str) -> None:
        """
        :param file_path: the file to write (absolute, or relative to the working directory)
        """
        super().__init__(tasker, workflow)
        if not file_path or not file_path.strip() or "\0" in file_path:
            raise PluginConfigError(f"plugin {self.key}: argument file_path must be a "
                                    "non-empty path", plugin=self.key, argument="file_path")
        if file_path.endswith(("/", os.sep)):
            raise PluginConfigError(f"plugin {self.key}: argument file_path must name a file, "
                                    "not a directory", plugin=self.key, argument="file_path")
        self.file_path = os.path.abspath(file_path)

    def document(self) -> dict[str, Any]:
        """The JSON document this plugin writes."""
        data: dict[str, Any] = {"document_version": DOCUMENT_VERSION}
        data.update(self.workflow.current_results().to_dict())
        for phase in PHASES:
            data[f"{phase}_plugins"] = jsonable(self.workflow.plugin_results.get(phase, {}))
        return data

    def run(self) -> StoredLogs:
        text = json.dumps(self.document(), indent=2, sort_keys=True) + "\n"
        if os.path.isdir(self.file_path):
            raise AtomicReactorError(f"{self.key}: {self.file_path} is a directory")
        directory = os.path.dirname(self.file_path)
        try:
            os.makedirs(directory, exist_ok=True)
            write_text_atomic(self.file_path, text, mode=0o644)
        except OSError as exc:
            raise AtomicReactorError(
                f"{self.key}: cannot write {self.file_path}: {exc.strerror or exc}") from None
        size = len(text.encode("utf-8"))
        self.log.info("build results written to %s (%d bytes)", self.file_path, size)
        return StoredLogs(path=self.file_path, size=size)
