"""The explorer's web application (FastAPI): the page, its script, and a small JSON API.

Routes:

- ``GET /`` (and ``HEAD``), ``GET /static/explorer.js``, ``GET /static/explorer.css``: the page, read from
  the package once at start-up (no file is ever served by a path taken from a request);
- ``GET /api/meta``: latent dimensions (informative or not, data percentiles, allowed
  limits), labels and each one's best latent, the wavelength range;
- ``POST /api/decode`` ``{z, window?, max_points?}`` -> ``{wave, flux}``;
- ``POST /api/neighbors`` ``{z, k, window?, max_points?}`` -> ``{wave, neighbors: [{id,
  object, labels, z, distance, flux}]}``: the nearest real spectra by latent mean;
- ``GET /api/spectrum/{id}`` (``?window=lo,hi&max_points=``) -> ``{id, object, labels, z,
  wave, flux, decoded}``;
- ``GET /api/scatter?label=&dim=`` -> ``{label, dim, ids, x, y}``.

Bad requests get 422 (malformed: wrong types, non-finite numbers, unknown fields), 400
(impossible for this run: wrong vector length, out of range, unknown label or dim) or 404
(unknown spectrum id, unknown route), each with a one-line ``detail``. An unexpected error
is logged on the server and answered with a 500 that names only the error's type. A request
whose ``Host`` header is not the address served gets 400 (DNS-rebinding protection).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib.resources import files
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat
from starlette.middleware.trustedhost import TrustedHostMiddleware

from astrolatent.config import Config
from astrolatent.errors import AstrolatentError, ConfigError
from astrolatent.explorer.data import ExplorerData, UnknownIdError

log = logging.getLogger(__name__)

MAX_POINTS = 2000


class ExploreConfig(Config):
    """Options of ``astrolatent explore``: the address and port to listen on (0: any free
    port); anything but loopback is reachable by others."""

    host: str = "127.0.0.1"
    port: int = 8765


#: The page's files: URL path -> (file in the package's static folder, media type).
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/explorer.js": ("explorer.js", "text/javascript; charset=utf-8"),
    "/static/explorer.css": ("explorer.css", "text/css; charset=utf-8"),
}
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
}

Points = Annotated[int, Field(ge=16, le=20000, description="Most points per spectrum.")]
Window = tuple[FiniteFloat, FiniteFloat]


class ViewRequest(BaseModel):
    """Which part of the spectra to return: a wavelength window (Angstrom) and a resolution."""

    model_config = ConfigDict(extra="forbid")

    window: Window | None = None
    max_points: Points = MAX_POINTS


class DecodeRequest(ViewRequest):
    z: list[FiniteFloat] = Field(min_length=1, max_length=4096)


class NeighborsRequest(DecodeRequest):
    k: int = Field(default=5, ge=1)


def _validation_detail(exc: RequestValidationError) -> str:
    """One line from pydantic's error list: ``where: what; ...``."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _parse_window(text: str | None) -> Window | None:
    """``"lo,hi"`` -> ``(lo, hi)``; shape and finiteness are checked by ExplorerData."""
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"window={text!r}: expected two numbers 'low,high'") from None
    return lo, hi


def create_app(data: ExplorerData, *, hosts: Sequence[str] | None = None) -> FastAPI:
    """The web application over one loaded run.

    hosts: the only ``Host`` headers answered (others get 400), so that a web page on
    another site cannot read the run through DNS rebinding; None answers every host.
    """
    app = FastAPI(
        title=f"astrolatent explorer: {data.run_dir.name}",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    _add_error_handlers(app)
    _add_pages(app)
    _add_api(app, data)
    if hosts is not None:  # added last: runs first, before any route sees the request
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """422 for malformed requests, 400/404 for refused ones, 500 (logged) for the rest."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(AstrolatentError)
    async def _refused(_: Request, exc: AstrolatentError) -> JSONResponse:
        status = 404 if isinstance(exc, UnknownIdError) else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.middleware("http")
    async def _last_resort(request: Request, call_next) -> Response:
        # a handler for Exception would answer, then re-raise and drop the connection
        try:
            return await call_next(request)
        except Exception as exc:
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
            return JSONResponse(
                {"detail": f"internal error ({type(exc).__name__}); see the server log"},
                status_code=500,
            )


def _add_pages(app: FastAPI) -> None:
    """The static pages, read once from the package."""
    static_dir = files("astrolatent.explorer") / "static"
    pages = {
        route: (static_dir.joinpath(name).read_bytes(), media)
        for route, (name, media) in STATIC.items()
    }

    def page(route: str):
        body, media = pages[route]

        def serve() -> Response:
            return Response(body, media_type=media, headers=HEADERS)

        return serve

    for route in STATIC:
        app.api_route(route, methods=["GET", "HEAD"], include_in_schema=False)(page(route))


def _add_api(app: FastAPI, data: ExplorerData) -> None:
    """The JSON routes over the loaded run."""

    @app.get("/api/meta")
    def meta() -> JSONResponse:
        return JSONResponse(data.meta())

    @app.post("/api/decode")
    def decode(request: DecodeRequest) -> JSONResponse:
        z = data.check_z(request.z)
        wave, (flux,) = data.view(data.decode(z), request.window, request.max_points)
        return JSONResponse({"wave": wave, "flux": flux})

    @app.post("/api/neighbors")
    def neighbors(request: NeighborsRequest) -> JSONResponse:
        z = data.check_z(request.z)
        found = data.neighbors(z, request.k)
        wave, fluxes = data.view(
            data.real_flux([i for i, _ in found]), request.window, request.max_points
        )
        return JSONResponse(
            {
                "wave": wave,
                "neighbors": [
                    {**data.describe(i), "distance": d, "flux": flux}
                    for (i, d), flux in zip(found, fluxes, strict=True)
                ],
            }
        )

    @app.get("/api/spectrum/{spectrum_id:path}")
    def spectrum(
        spectrum_id: str,
        window: Annotated[str | None, Query(description="low,high in Angstrom")] = None,
        max_points: Annotated[int, Query(ge=16, le=20000)] = MAX_POINTS,
    ) -> JSONResponse:
        i = data.row_of(spectrum_id)
        described = data.describe(i)
        z = data.mu[i]
        wave, (flux, decoded) = data.view(
            [data.real_flux([i])[0], data.decode(z)], _parse_window(window), max_points
        )
        return JSONResponse({**described, "wave": wave, "flux": flux, "decoded": decoded})

    @app.get("/api/scatter")
    def scatter(label: Annotated[str, Query()], dim: Annotated[int, Query()]) -> JSONResponse:
        return JSONResponse(data.scatter(label, dim))
