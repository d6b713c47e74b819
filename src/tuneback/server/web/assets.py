"""Static assets served compressed and cacheable: our CSS/JS and plotly's bundle.

A page names each asset with a version taken from its content
(``/static/tuneback.css?v=1a2b3c4d``), so a browser may keep it for a year and
a changed file is a new URL. Without the version (an ES module importing
``./http.js``) the browser revalidates with the ETag and gets a 304. Text
assets are gzipped once per file version and kept in memory: plotly's 4.8 MB
bundle goes out as about 1.4 MB, and no request pays for compressing it.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
COMPRESSIBLE = (".js", ".css", ".svg", ".json", ".map", ".txt", ".html")


@lru_cache(maxsize=256)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


@lru_cache(maxsize=64)
def _gzipped(path: str, mtime_ns: int, size: int) -> bytes:
    # mtime 0 keeps the bytes (and so the ETag) the same across restarts.
    return gzip.compress(Path(path).read_bytes(), compresslevel=6, mtime=0)


def version_of(path: Path) -> str:
    """A short hash of the file's content, for the ``?v=`` of its URL."""
    stat = path.stat()
    return _digest(str(path), stat.st_mtime_ns, stat.st_size)


def asset_response(path: Path, *, media_type: str, scope: Scope) -> Response:
    """The file, gzipped when the client takes it, with an ETag and a cache policy.

    A request naming a version (``?v=``) may be cached for good; any other
    revalidates each time, cheaply (304).
    """
    headers = Headers(scope=scope)
    stat = path.stat()
    digest = _digest(str(path), stat.st_mtime_ns, stat.st_size)
    query = scope.get("query_string", b"").decode("latin-1")
    cache = FOREVER if any(p.startswith("v=") for p in query.split("&")) else REVALIDATE
    compress = path.suffix in COMPRESSIBLE and "gzip" in headers.get("accept-encoding", "")
    etag = f'"{digest}{"-gz" if compress else ""}"'
    common = {"etag": etag, "cache-control": cache, "vary": "accept-encoding"}
    wanted = [tag.strip() for tag in headers.get("if-none-match", "").split(",")]
    if etag in wanted or "*" in wanted:
        return Response(status_code=304, headers=common)
    if not compress:
        return FileResponse(path, media_type=media_type, headers=common)
    body = _gzipped(str(path), stat.st_mtime_ns, stat.st_size)
    return Response(body, media_type=media_type, headers={**common, "content-encoding": "gzip"})


class AssetFiles(StaticFiles):
    """:class:`StaticFiles` whose files go out through :func:`asset_response`."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if isinstance(response, FileResponse) and response.status_code == 200:
            media_type = response.media_type or "application/octet-stream"
            return asset_response(Path(response.path), media_type=media_type, scope=scope)
        return response


STATIC = Path(__file__).parent / "static"


def plotly_bundle() -> Path | None:
    """Plotly's browser bundle as the plotly package ships it (None without the package)."""
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    bundle = Path(spec.submodule_search_locations[0]) / "package_data" / "plotly.min.js"
    return bundle if bundle.is_file() else None


def plotly_url() -> str:
    """Where pages load plotly from, versioned so browsers keep it."""
    bundle = plotly_bundle()
    return f"/ui/plotly.js?v={version_of(bundle)}" if bundle else "/ui/plotly.js"


def versioned(url_for: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the templates' ``url_for`` so a static file's URL carries its content version."""

    @pass_context
    def url_for_with_version(context: Any, name: str, /, **params: Any) -> Any:
        url = url_for(context, name, **params)
        if name == "static" and isinstance(params.get("path"), str):
            file = STATIC / params["path"]
            if file.is_file():
                return url.include_query_params(v=version_of(file))
        return url

    return url_for_with_version
