"""Image URLs for vnode root filesystems: what is accepted and how it is normalised."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote, urlparse

from pydistem.errors import ValidationError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tar")


def check_image_url(field: str, url: str) -> str:
    """Return the normalised ``file:///abs/path.tar.gz`` URL, or raise ValidationError.

    A bare absolute path gets ``file://``. Only local files are supported: the
    image must already be on the pnode (see ``distem image build``). A path with
    ``..`` segments is refused, whatever it resolves to.
    """
    if not isinstance(url, str) or not url:
        raise ValidationError(field, "an image URL is required, e.g. file:///root/image.tar.gz")
    if url.startswith("/"):
        url = "file://" + url
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise ValidationError(field, f"{url!r}: only file:// images are supported")
    if parsed.netloc not in ("", "localhost"):
        raise ValidationError(field, f"{url!r}: a file URL names no host (file:///path)")
    path = unquote(parsed.path)
    if not path.startswith("/"):
        raise ValidationError(field, f"{url!r}: the path must be absolute")
    if ".." in path.split("/"):
        raise ValidationError(field, f"{url!r}: '..' is not allowed in an image path")
    if posixpath.normpath(path) != path.rstrip("/") or "\x00" in path:
        raise ValidationError(field, f"{url!r}: the path is not in normal form")
    if not path.endswith(ARCHIVE_SUFFIXES):
        raise ValidationError(
            field, f"{url!r}: an image is a tar archive ({', '.join(ARCHIVE_SUFFIXES)})"
        )
    return "file://" + path


def image_path(url: str) -> str:
    """The local path of a normalised ``file://`` image URL."""
    return unquote(urlparse(url).path)
