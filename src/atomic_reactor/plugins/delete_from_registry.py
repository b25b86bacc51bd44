"""``delete_from_registry``: delete the manifests this build pushed from registries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from atomic_reactor._reference import ImageName
from atomic_reactor._registry.client import DeleteNotAllowed, RegistryClient
from atomic_reactor.errors import PluginConfigError, RegistryError
from atomic_reactor.plugin import REGISTRIES_ARG_SCHEMA, ExitPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["DeleteFromRegistryPlugin", "DeletedManifest"]

DeleteStatus = Literal["deleted", "not_found", "delete_disabled", "no_digest", "failed"]


@dataclass(frozen=True)
class DeletedManifest:
    """One manifest this build pushed, and what deleting it did.

    ``status``: ``deleted``; ``not_found`` (the registry no longer had it);
    ``delete_disabled`` (the registry does not allow deletes); ``no_digest`` (the
    push reported no digest, so nothing was deleted); ``failed`` (see ``error``).
    """

    registry: str
    repository: str
    digest: str | None
    references: tuple[str, ...]
    status: DeleteStatus
    error: str | None = None


def _hostname(registry: str) -> tuple[str, bool]:
    """``host[:port]`` of a registry given with or without a scheme; http means insecure."""
    text = registry.strip()
    insecure = text.startswith("http://")
    for prefix in ("https://", "http://"):
        text = text.removeprefix(prefix)
    text = text.rstrip("/").removesuffix("/v2").removesuffix("/v1").rstrip("/")
    return text, insecure


class DeleteFromRegistryPlugin(ExitPlugin):
    """Delete, by digest, the manifests this build pushed (``workflow.pushed_images``)
    from the listed registries, e.g. to clean up the temporary registries of a test
    build.

    ``registries`` maps ``host[:port]`` (a scheme is ignored; ``http://`` means
    insecure) to ``{"insecure": bool, "secret": path}`` as for ``tag_and_push``;
    credentials come from ``secret`` (a directory or file with docker credentials)
    or else from the docker config docker itself would read. A manifest the
    registry no longer has, and a registry that does not allow deletes, are logged
    as warnings; any other failure (credentials refused, registry errors) fails the
    plugin after every manifest was tried.

    Result: a list of :class:`DeletedManifest` (registry, repository, digest, the
    pushed references it carried, and the outcome).
    """

    key = "delete_from_registry"
    is_allowed_to_fail = False
    args_schema = {
        "type": "object",
        "properties": {
            "registries": REGISTRIES_ARG_SCHEMA,
        },
        "required": ["registries"],
        "additionalProperties": False,
    }

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 registries: dict[str, dict[str, Any]]) -> None:
        """
        :param registries: registry (``host[:port]``) -> ``{"insecure": bool,
            "secret": path}``; the registries to delete this build's manifests from
        """
        super().__init__(tasker, workflow)
        self.registries: dict[str, tuple[bool, str | None]] = {}
        for registry, settings in registries.items():
            host, http = _hostname(registry)
            if not host:
                raise PluginConfigError(f"plugin {self.key}: argument registries has an empty "
                                        "registry name", plugin=self.key, argument="registries")
            conf = settings or {}
            self.registries[host] = (http or bool(conf.get("insecure")), conf.get("secret"))

    def _pushed_to(self, registry: str) -> dict[tuple[str, str | None], list[str]]:
        """(repository, digest) -> references pushed to ``registry`` by this build."""
        found: dict[tuple[str, str | None], list[str]] = {}
        for pushed in self.workflow.pushed_images:
            if _hostname(pushed.registry)[0] != registry:
                continue
            repository = ImageName.parse(pushed.image).to_str(registry=False, tag=False)
            refs = found.setdefault((repository, pushed.digest), [])
            if pushed.image not in refs:
                refs.append(pushed.image)
        return found

    def _delete(self, client: RegistryClient, registry: str, repository: str, digest: str,
                references: tuple[str, ...]) -> DeletedManifest:
        shown = f"{registry}/{repository}@{digest}"
        try:
            deleted = client.delete_manifest(repository, digest)
        except DeleteNotAllowed:
            self.log.warning("cannot delete %s: the registry does not allow deletes", shown)
            return DeletedManifest(registry, repository, digest, references, "delete_disabled")
        except RegistryError as exc:
            self.log.error("failed to delete %s: %s", shown, exc)
            return DeletedManifest(registry, repository, digest, references, "failed", str(exc))
        if not deleted:
            self.log.warning("cannot delete %s: not found", shown)
            return DeletedManifest(registry, repository, digest, references, "not_found")
        self.log.info("deleted %s", shown)
        return DeletedManifest(registry, repository, digest, references, "deleted")

    def run(self) -> list[DeletedManifest]:
        outcomes: list[DeletedManifest] = []
        for registry, (insecure, secret) in self.registries.items():
            pushed = self._pushed_to(registry)
            if not pushed:
                self.log.warning("asked to delete from %s, but this build pushed nothing there",
                                 registry)
                continue
            try:
                client = RegistryClient(registry, insecure=insecure, secret=secret)
            except RegistryError as exc:  # unreadable secret
                for (repository, digest), refs in pushed.items():
                    outcomes.append(DeletedManifest(registry, repository, digest, tuple(refs),
                                                    "failed", str(exc)))
                self.log.error("cannot delete from %s: %s", registry, exc)
                continue
            with client:
                for (repository, digest), refs in pushed.items():
                    if not digest:
                        self.log.warning("cannot delete %s: its push reported no digest",
                                         ", ".join(refs))
                        outcomes.append(DeletedManifest(registry, repository, None, tuple(refs),
                                                        "no_digest"))
                        continue
                    outcomes.append(self._delete(client, registry, repository, digest,
                                                 tuple(refs)))
        failed = [outcome for outcome in outcomes if outcome.status == "failed"]
        if failed:
            first = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise RegistryError(f"{self.key}: {first.error}{more}", registry=first.registry)
        return outcomes
