"""``stop_autorebuild_if_disabled``: stop an automatic rebuild the repository disabled."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor.errors import AutoRebuildCanceled
from atomic_reactor.plugin import PreBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["AutorebuildCheck", "StopAutorebuildIfDisabledPlugin"]

#: the 1.6 plugin whose (truthy) result marks a build as an automatic rebuild
REBUILD_PLUGIN = "check_and_set_rebuild"


@dataclass(frozen=True)
class AutorebuildCheck:
    """What ``stop_autorebuild_if_disabled`` found (when it did not stop the build)."""

    rebuild: bool
    enabled: bool
    reason: str


class StopAutorebuildIfDisabledPlugin(PreBuildPlugin):
    """When this build is an automatic rebuild and the source disables those, stop
    the build (as 1.6 did): it raises
    :class:`~atomic_reactor.errors.AutoRebuildCanceled`, the build stops after the
    pre-build plugins (the exit plugins still run) and ``workflow.autorebuild_canceled``
    is set.

    Whether rebuilds are enabled is read from ``config_file`` (default
    ``.osbs-repo-config``) in the source root, an INI file::

        [autorebuild]
        enabled = false

    ``enabled`` is a boolean (``0``/``1``, ``false``/``true``, ``no``/``yes``, ``off``/
    ``on``); no file, no such option or an unreadable one means enabled (logged).
    Whether this build is a rebuild is ``rebuild`` when given, else (as in 1.6) the
    result of a ``check_and_set_rebuild`` plugin that ran before this one.

    Result: an :class:`AutorebuildCheck` when the build goes on.
    """

    key = "stop_autorebuild_if_disabled"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 config_file: str = ".osbs-repo-config", rebuild: bool | None = None) -> None:
        """
        :param config_file: the repository configuration file, relative to the source root
        :param rebuild: is this build an automatic rebuild? (default: the result of a
            ``check_and_set_rebuild`` plugin, false without one)
        """
        super().__init__(tasker, workflow)
        self.config_file = config_file
        self.rebuild = rebuild

    def _is_rebuild(self) -> bool:
        if self.rebuild is not None:
            return self.rebuild
        result = self.workflow.plugin_result(REBUILD_PLUGIN, False)
        return bool(result) and not isinstance(result, BaseException)

    def _enabled(self) -> tuple[bool, str]:
        path = os.path.join(self.workflow.source.path, self.config_file)
        if not os.path.isfile(path):
            return True, f"no {self.config_file}: autorebuild is enabled"
        parser = configparser.ConfigParser()
        try:
            parser.read(path, encoding="utf-8")
            enabled = parser.getboolean("autorebuild", "enabled")
        except (configparser.Error, ValueError, UnicodeDecodeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.log.warning("cannot read [autorebuild] enabled from %s (%s); "
                             "assuming autorebuild is enabled", self.config_file, reason)
            return True, f"{self.config_file} unreadable: autorebuild is enabled"
        state = "enabled" if enabled else "disabled"
        return enabled, f"autorebuild is {state} in {self.config_file}"

    def run(self) -> AutorebuildCheck:
        if not self._is_rebuild():
            self.log.info("not an automatic rebuild; nothing to check")
            return AutorebuildCheck(rebuild=False, enabled=True, reason="not a rebuild")
        enabled, reason = self._enabled()
        self.log.info("%s", reason)
        if not enabled:
            raise AutoRebuildCanceled(self.key, "autorebuild is disabled")
        return AutorebuildCheck(rebuild=True, enabled=True, reason=reason)
