"""The image toolkit: everything done to image bytes without an engine.

* ``tarstream``: safe streaming extraction, hand-written and deterministic tar
  members, fan-out of one produced stream to several consumers.
* ``hashing``: several digests of one stream in parallel; registry digests.
* ``compression``: gzip (pigz) / xz / zstd on every core, with library fallbacks;
  detecting and undoing others' compression.
* ``layout``: docker-archive and OCI image layout, read and written; media types,
  descriptors and manifests.
* ``merge``: merging layers (whiteouts, opaque directories, hard links) into one.
* ``normalize``: reproducible images: new layers and the config rewritten so two
  builds of one commit are byte-identical (times clamped to SOURCE_DATE_EPOCH).
* ``compare``: two images compared file by file (``--check-reproducible``).
* ``push``: uploading an image's blobs and manifests to registries ourselves.

The plugins ``squash`` and ``compress`` (and the push of ``tag_and_push``) are
thin layers over these modules.
"""
