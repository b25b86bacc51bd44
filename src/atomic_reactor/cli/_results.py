"""What a build command (build, farm submit --wait, inside-build) does with its results
when the build is over: the metadata file, the summary lines, the exit status."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atomic_reactor._results import BuildResults


def write_metadata(path: str, results: BuildResults) -> None:
    """The results as JSON at ``path`` (written atomically)."""
    from atomic_reactor._files import write_text_atomic

    write_text_atomic(path, results.to_json(indent=2, sort_keys=True) + "\n")


def finish(results: BuildResults, *, quiet: bool) -> int:
    """Print what was built and pushed (unless ``quiet``); raise the build's error, if
    it failed; else 0, the exit status."""
    if not quiet:
        if results.image_id:
            print(f"built {results.image} {results.image_id}")
        for pushed in results.pushed:
            print(f"pushed {pushed.image}@{pushed.digest}")
    results.raise_for_status()
    return 0
