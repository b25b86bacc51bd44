"""Public home of :class:`ImageName` (``atomic_reactor.util.ImageName``, as in 1.6).

Nothing else belongs here: helpers live next to the code that uses them.
"""

from atomic_reactor._reference import DEFAULT_TAG, ImageName

__all__ = ["DEFAULT_TAG", "ImageName"]
