"""Static assets served compressed and cacheable: our CSS/JS and plotly's bundle.

A page names each asset with a version taken from its content
(``/static/tuneback.css?v=1a2b3c4d``), so a browser may keep it for a year and
a changed file is a new URL. The pages' scripts are ES modules: a module's
imports of its siblings (``import { api } from "./http.js"``) go out carrying
the sibling's version too (``"./http.js?v=…"``), and a module's own version
covers the versions it imports, so a changed ``http.js`` is a new URL for every
module above it and nothing stale stays cached. A request without a version
revalidates with the ETag and gets a 304. Text assets are gzipped once per file
version and kept in memory: plotly's 4.8 MB bundle goes out as about 1.4 MB,
and no request pays for compressing it.
"""

from __future__ import annotations

import gzip
import hashlib
import re
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
STATIC = Path(__file__).parent / "static"


SIBLING_IMPORT = re.compile(r"""(\b(?:from|import)\s*)(["'])\./([\w.-]+\.js)\2""")
"""A static import of a sibling module: ``from "./http.js"`` or ``import "./dom.js"``."""

Imports = tuple[tuple[str, str], ...]
"""A module's sibling imports, each with the version it goes out with."""


@lru_cache(maxsize=256)
def _imported(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    text = Path(path).read_text(encoding="utf-8")
    return tuple(sorted({match[3] for match in SIBLING_IMPORT.finditer(text)}))


@lru_cache(maxsize=64)
def _module(path: str, mtime_ns: int, size: int, imports: Imports) -> bytes:
    versions = dict(imports)

    def with_version(match: re.Match[str]) -> str:
        lead, quote, name = match[1], match[2], match[3]
        if name not in versions:
            return match[0]
        return f"{lead}{quote}./{name}?v={versions[name]}{quote}"

    text = Path(path).read_text(encoding="utf-8")
    return SIBLING_IMPORT.sub(with_version, text).encode()


def _body(path: str, mtime_ns: int, size: int, imports: Imports) -> bytes:
    return _module(path, mtime_ns, size, imports) if imports else Path(path).read_bytes()


@lru_cache(maxsize=256)
def _digest(path: str, mtime_ns: int, size: int, imports: Imports) -> str:
    return hashlib.sha256(_body(path, mtime_ns, size, imports)).hexdigest()[:12]


@lru_cache(maxsize=64)
def _gzipped(path: str, mtime_ns: int, size: int, imports: Imports) -> bytes:
    # mtime 0 keeps the bytes (and so the ETag) the same across restarts.
    return gzip.compress(_body(path, mtime_ns, size, imports), compresslevel=6, mtime=0)


def _imports(path: Path, mtime_ns: int, size: int, seen: frozenset[Path]) -> Imports:
    """The sibling modules a static module imports, with their versions (none for other files)."""
    if path.suffix != ".js" or path.parent != STATIC:
        return ()
    found = []
    for name in _imported(str(path), mtime_ns, size):
        sibling = STATIC / name
        if sibling.is_file() and sibling not in seen:
            found.append((name, _version(sibling, seen | {path})))
    return tuple(found)


def _version(path: Path, seen: frozenset[Path]) -> str:
    stat = path.stat()
    imports = _imports(path, stat.st_mtime_ns, stat.st_size, seen)
    return _digest(str(path), stat.st_mtime_ns, stat.st_size, imports)


def version_of(path: Path) -> str:
    """A short hash of what the file goes out as, for the ``?v=`` of its URL."""
    return _version(path, frozenset())


def asset_response(path: Path, *, media_type: str, scope: Scope) -> Response:
    """The file, gzipped when the client takes it, with an ETag and a cache policy.

    A request naming a version (``?v=``) may be cached for good; any other
    revalidates each time, cheaply (304).
    """
    headers = Headers(scope=scope)
    stat = path.stat()
    imports = _imports(path, stat.st_mtime_ns, stat.st_size, frozenset())
    digest = _digest(str(path), stat.st_mtime_ns, stat.st_size, imports)
    query = scope.get("query_string", b"").decode("latin-1")
    cache = FOREVER if any(p.startswith("v=") for p in query.split("&")) else REVALIDATE
    compress = path.suffix in COMPRESSIBLE and "gzip" in headers.get("accept-encoding", "")
    etag = f'"{digest}{"-gz" if compress else ""}"'
    common = {"etag": etag, "cache-control": cache, "vary": "accept-encoding"}
    wanted = [tag.strip() for tag in headers.get("if-none-match", "").split(",")]
    if etag in wanted or "*" in wanted:
        return Response(status_code=304, headers=common)
    if not compress and not imports:
        return FileResponse(path, media_type=media_type, headers=common)
    if not compress:
        body = _module(str(path), stat.st_mtime_ns, stat.st_size, imports)
        return Response(body, media_type=media_type, headers=common)
    body = _gzipped(str(path), stat.st_mtime_ns, stat.st_size, imports)
    return Response(body, media_type=media_type, headers={**common, "content-encoding": "gzip"})


MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}
"""What the pages' own files are served as, whatever the machine's MIME table says (some map
``.js`` to the obsolete ``application/javascript``; RFC 9239 names ``text/javascript``)."""


class AssetFiles(StaticFiles):
    """:class:`StaticFiles` whose files go out through :func:`asset_response`."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if isinstance(response, FileResponse) and response.status_code == 200:
            file = Path(response.path)
            media_type = (
                MEDIA_TYPES.get(file.suffix) or response.media_type or "application/octet-stream"
            )
            return asset_response(file, media_type=media_type, scope=scope)
        return response


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
