"""What a fresh interpreter has imported: for the tests that keep heavy modules (the
Docker SDK, requests, celery, the workflow) out of what does not need them."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Sequence


def loaded_after(imports: Sequence[str], watched: Sequence[str], *, then: str = "") -> list[str]:
    """The modules of ``watched`` a new interpreter has in ``sys.modules`` after
    importing ``imports`` (and running the statement ``then``), in ``watched``'s order."""
    # nothing imported here but sys (already loaded): the answer is printed as a repr
    code = (f"import sys\nimport {', '.join(imports)}\n{then}\n"
            f"print([n for n in {list(watched)!r} if n in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    found: list[str] = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    return found
