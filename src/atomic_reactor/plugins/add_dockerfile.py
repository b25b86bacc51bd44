"""``add_dockerfile``: put the Dockerfile the image was built from into the image."""

from __future__ import annotations

import os
import posixpath
import re
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._dockerfile import edit as _dfedit
from atomic_reactor.errors import PluginConfigError
from atomic_reactor.plugin import PreBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["AddDockerfilePlugin", "AddedDockerfile"]

_UNSAFE = re.compile(r"[\x00-\x1f\x7f$]")


@dataclass(frozen=True)
class AddedDockerfile:
    """Where the Dockerfile goes in the image and how it gets there."""

    #: absolute path in the image (``/root/buildinfo/Dockerfile-<n>-<v>-<r>``)
    path: str
    #: the file copied, relative to the build context
    source: str
    nvr: str
    #: was the Dockerfile as finally built copied (rather than a snapshot)?
    final: bool
    instruction: str


class AddDockerfilePlugin(PreBuildPlugin):
    """Add the Dockerfile to the image as ``<destdir>/Dockerfile-<name>-<version>-<release>``
    with a ``COPY`` appended to the end of the Dockerfile (the final stage).

    ``nvr`` names the file; without it, the ``name``, ``version`` and ``release``
    labels do (or their old names ``Name``, ``Version``, ``Release``), as the final
    stage sets them or inherits them from its base image; run
    ``add_labels_in_dockerfile`` first when it sets them. ``/`` in the name becomes
    ``-``. By default the file is a copy of the Dockerfile as it is when this plugin
    runs (pre-build plugins after it change only the built Dockerfile); with
    ``use_final_dockerfile`` it is the Dockerfile as finally built, with every
    pre-build change (and this plugin's COPY) in it.

    Result: :class:`AddedDockerfile`: the path in the image, the file copied (relative
    to the build context), the N-V-R used, whether it is the final Dockerfile, and
    the instruction appended.
    """

    key = "add_dockerfile"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow, nvr: str | None = None,
                 destdir: str = "/root/buildinfo/", use_final_dockerfile: bool = False) -> None:
        """
        :param nvr: name-version-release for the file name (default: from the labels)
        :param destdir: absolute directory in the image to put the Dockerfile into
        :param use_final_dockerfile: copy the Dockerfile as finally built (with the
            changes of later pre-build plugins) instead of a snapshot taken now
        """
        super().__init__(tasker, workflow)
        if not destdir.startswith("/"):
            raise PluginConfigError(
                f"plugin {self.key}: argument destdir must be an absolute path in the image",
                plugin=self.key, argument="destdir")
        if _UNSAFE.search(destdir):
            raise PluginConfigError(
                f"plugin {self.key}: argument destdir contains '$' or a control character",
                plugin=self.key, argument="destdir")
        if nvr is not None:
            self._check_nvr(nvr, "argument nvr")
        self.nvr = nvr
        self.destdir = destdir
        self.use_final_dockerfile = use_final_dockerfile

    def _check_nvr(self, nvr: str, where: str) -> str:
        nvr = nvr.replace("/", "-")
        if not nvr.strip() or _UNSAFE.search(nvr):
            raise PluginConfigError(
                f"plugin {self.key}: {where} {nvr!r} cannot name a file "
                "(empty, or '$' or a control character in it)", plugin=self.key, argument="nvr")
        return nvr

    def _nvr_from_labels(self) -> str:
        builder = self.builder
        base = _dfedit.base_image_config(builder, self.key)
        labels = {**base.labels,
                  **_dfedit.final_stage_labels(builder.df_path, builder.buildargs, base.env)}
        parts: list[str] = []
        missing: list[str] = []
        for label in ("name", "version", "release"):
            found = _dfedit.preferred_label(labels, label)
            if found is None:
                missing.append(label)
            else:
                parts.append(found[1])
        if missing:
            raise PluginConfigError(
                f"plugin {self.key}: no nvr argument and the image has no "
                f"{', '.join(missing)} label{'s' if len(missing) > 1 else ''}; pass nvr or "
                "set name, version and release labels (LABEL in the Dockerfile, or "
                "add_labels_in_dockerfile before add_dockerfile)",
                plugin=self.key, argument="nvr")
        return self._check_nvr("-".join(parts), "the labels give the N-V-R")

    def run(self) -> AddedDockerfile:
        builder = self.builder
        nvr = self._check_nvr(self.nvr, "argument nvr") if self.nvr else self._nvr_from_labels()
        name = f"Dockerfile-{nvr}"
        destination = posixpath.join(self.destdir, name)
        if self.use_final_dockerfile:
            source = os.path.relpath(builder.df_path, builder.df_dir).replace(os.sep, "/")
        else:
            source = name
            target = os.path.join(builder.df_dir, name)
            if os.path.realpath(target) == os.path.realpath(builder.df_path):
                raise PluginConfigError(
                    f"plugin {self.key}: the Dockerfile itself is named {name}; "
                    "use use_final_dockerfile", plugin=self.key, argument="nvr")
            if os.path.isdir(target) and not os.path.islink(target):
                raise PluginConfigError(
                    f"plugin {self.key}: the build context has a directory {name}",
                    plugin=self.key, argument="nvr")
            if os.path.lexists(target):
                self.log.warning("replacing %s in the build context", name)
                os.unlink(target)
            shutil.copyfile(builder.df_path, target)
        instruction = _dfedit.copy_instruction(source, destination)
        _dfedit.ensure_in_context(builder.df_dir, [source])
        _dfedit.append_lines(builder.df_path, [instruction])
        self.log.info("the image gets the Dockerfile as %s", destination)
        return AddedDockerfile(path=destination, source=source, nvr=nvr,
                               final=self.use_final_dockerfile, instruction=instruction)
