"""What is said about a built image, and attached to it in registries.

* ``packages``: the packages installed in an image, read from its layers (dpkg's
  status file, the rpm database through ``rpm --dbpath``, apk's database), and the
  distribution from ``os-release``; no container is run.
* ``sbom``: a CycloneDX 1.5 JSON SBOM of those packages and the base image.
* ``provenance``: an in-toto Statement v1 with a SLSA provenance v1 predicate.
* ``referrers``: pushing a document as an OCI artifact whose ``subject`` is the
  image's manifest, and finding the referrers of a manifest: through the registry's
  referrers API, or the referrers tag schema (``sha256-<hex>``) where it has none.
"""
