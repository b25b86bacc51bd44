#!/usr/bin/env bash
# The main job: build the example in examples/hello with atomic-reactor and push it
# to a local registry (started here when none runs), then show the pushed digest.
#
#   bash scripts/example.sh            # registry 127.0.0.1:5000
#   REGISTRY=127.0.0.1:5050 bash scripts/example.sh
set -euo pipefail
cd "$(dirname "$0")/.."

REGISTRY=${REGISTRY:-127.0.0.1:5000}
BASE=atomic-reactor/busybox:latest
OUT=${OUT:-$PWD/example-output}

bash scripts/ensure-env.sh
command -v curl >/dev/null || { apt-get install -y -q curl >/dev/null; }
bash scripts/ensure-registry.sh "$REGISTRY"

# The example's base image is made locally (no image can be pulled from the
# internet here) and put into the registry, where pull_base_image finds it.
.venv/bin/python - "$REGISTRY" "$BASE" <<'PY'
import sys
from tests.support.env import Registry, ensure_base_image, push_base_image
registry, base = sys.argv[1], sys.argv[2]
host, port = registry.rsplit(":", 1)
ensure_base_image(base)
push_base_image(Registry(host=host, port=int(port), username=None, password=None,
                         root=None), base)
PY

# The whole pipeline (examples/build.json): pull the base, label, bump the release,
# check labels and scope, add help and the Dockerfile, pin FROM to the pulled id,
# build, squash and export, list packages, tag by labels and from additional-tags,
# compress, push every tag, write metadata and logs.
rm -rf "$OUT" && mkdir -p "$OUT"
REGISTRIES="{\"$REGISTRY\": {\"insecure\": true}}"
.venv/bin/atomic-reactor build json examples/build.json \
    --substitute "source.uri=file://$PWD/examples/hello" \
    --substitute "parent_registry=$REGISTRY" \
    --substitute "target_registries=[\"$REGISTRY\"]" \
    --substitute "prebuild_plugins.pull_base_image.parent_registry=$REGISTRY" \
    --substitute "prepublish_plugins.squash.export_dir=$OUT/images" \
    --substitute "postbuild_plugins.compress.export_dir=$OUT/images" \
    --substitute "postbuild_plugins.tag_and_push.registries=$REGISTRIES" \
    --substitute "exit_plugins.store_metadata.path=$OUT/metadata.json" \
    --substitute "exit_plugins.store_logs_to_file.file_path=$OUT/plugin-results.json" \
    --metadata-file "$OUT/results.json" --iidfile "$OUT/image-id"
echo "example: results in $OUT (results.json, metadata.json, images/)"
