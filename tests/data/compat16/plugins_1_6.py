# Plugins as they were written for atomic-reactor 1.6, unchanged: no type hints,
# old names (PluginFailedException), ImageName attributes assigned, push_conf read,
# dicts appended to exported_image_sequence. Loaded with plugin_files by
# tests/unit/test_compat16.py and tests/integration/test_compat16.py.
import hashlib
import os

from atomic_reactor.plugin import ExitPlugin, PluginFailedException, PostBuildPlugin, PreBuildPlugin
from atomic_reactor.util import ImageName


class FailIfAskedPlugin(PreBuildPlugin):
    key = "fail_if_asked_16"
    is_allowed_to_fail = False

    def __init__(self, tasker, workflow, fail=False, message="asked to fail"):
        super(FailIfAskedPlugin, self).__init__(tasker, workflow)
        self.fail = fail
        self.message = message

    def run(self):
        if self.fail:
            raise PluginFailedException(self.message)
        return "not failing"


class AddTagPlugin(PostBuildPlugin):
    """Adds <image>:<tag> to tag_conf by changing a copy's attributes, as 1.6 code did."""
    key = "add_tag_16"
    is_allowed_to_fail = False

    def __init__(self, tasker, workflow, tag="from-1-6"):
        super(AddTagPlugin, self).__init__(tasker, workflow)
        self.tag = tag

    def run(self):
        image = ImageName.parse(self.workflow.image)
        extra = image.copy()
        extra.registry = None
        extra.tag = self.tag
        self.workflow.tag_conf.add_primary_image(extra)
        return extra.to_str()


class ExportDictPlugin(PostBuildPlugin):
    """Saves the built image and appends a 1.6-style dict to exported_image_sequence."""
    key = "export_dict_16"
    is_allowed_to_fail = False

    def __init__(self, tasker, workflow, path):
        super(ExportDictPlugin, self).__init__(tasker, workflow)
        self.path = path

    def run(self):
        stream = self.tasker.d.get_image(self.workflow.builder.image_id)
        md5 = hashlib.md5()
        sha256 = hashlib.sha256()
        with open(self.path, "wb") as handle:
            for chunk in stream:
                handle.write(chunk)
                md5.update(chunk)
                sha256.update(chunk)
        metadata = {"path": self.path, "size": os.path.getsize(self.path),
                    "md5sum": md5.hexdigest(), "sha256sum": sha256.hexdigest()}
        self.workflow.exported_image_sequence.append(metadata)
        return metadata


class ReadExportedPlugin(PostBuildPlugin):
    """Reads the last exported image as the dict 1.6 kept there."""
    key = "read_exported_16"

    def run(self):
        last = self.workflow.exported_image_sequence[-1]
        return {"path": last["path"], "size": last["size"], "sha256sum": last["sha256sum"]}


class ReadPushConfPlugin(ExitPlugin):
    """Lists what push_conf says was pushed, as 1.6 metadata plugins did."""
    key = "read_push_conf_16"

    def run(self):
        pushed = {}
        for registry in self.workflow.push_conf.docker_registries:
            pushed[registry.uri] = dict(registry.digests)
        return pushed


class RecordPushPlugin(PostBuildPlugin):
    """Writes into push_conf itself, as 1.6 plugins that pushed on their own did."""
    key = "record_push_16"

    def __init__(self, tasker, workflow, registry, name, digest):
        super(RecordPushPlugin, self).__init__(tasker, workflow)
        self.registry = registry
        self.name = name
        self.digest = digest

    def run(self):
        entry = self.workflow.push_conf.add_docker_registry(self.registry, insecure=True)
        entry.digests[self.name] = self.digest


class CheckAndSetRebuildPlugin(PreBuildPlugin):
    """Stands in for 1.6's check_and_set_rebuild (which asked OpenShift): its result
    says whether this build is an automatic rebuild."""
    key = "check_and_set_rebuild"
    is_allowed_to_fail = False

    def __init__(self, tasker, workflow, is_rebuild=True):
        super(CheckAndSetRebuildPlugin, self).__init__(tasker, workflow)
        self.is_rebuild = is_rebuild

    def run(self):
        return self.is_rebuild


class EchoArgsPlugin(PreBuildPlugin):
    """Returns the arguments it got (1.6 translated special values in them)."""
    key = "echo_args_16"

    def __init__(self, tasker, workflow, **kwargs):
        super(EchoArgsPlugin, self).__init__(tasker, workflow)
        self.kwargs = kwargs

    def run(self):
        return self.kwargs
