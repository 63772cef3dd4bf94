"""Vnode images: building tarballs (``build``) and the per-pnode extraction cache (``cache``)."""

from pydistem.images.build import build_busybox, build_debian
from pydistem.images.cache import ImageCache

__all__ = ["ImageCache", "build_busybox", "build_debian"]
