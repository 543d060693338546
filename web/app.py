"""Builds the web site: `create_app(config)` does no I/O; Redis and the API session open in
cleanup contexts."""

from __future__ import annotations

import ipaddress

import aiohttp_jinja2
import jinja2
from aiohttp import web

from common.http import service_app
from web import i18n, middleware
from web.addresses import TRUSTED
from web.assets import ASSETS, Assets
from web.clients import api_ctx
from web.config import Config
from web.pages import common_context
from web.revoked import revocations_ctx, revoked_sessions
from web.routes import setup_routes
from web.sessions import session_ctx, sessions
from web.settings import SETTINGS, Settings
from web.standin import standin_ctx


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="tourbook web", description=(
        "The web site: pages for travellers and operators."),
        middlewares=[sessions, middleware.language, middleware.error_pages, revoked_sessions])
    app[SETTINGS] = Settings.of(config)
    app[ASSETS] = Assets()
    app[TRUSTED] = tuple(ipaddress.ip_network(n, strict=False) for n in config.trusted_proxies)
    app[i18n.CATALOGUES] = i18n.load_catalogues()
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("web", "templates"), autoescape=True,
        extensions=["jinja2.ext.i18n"], context_processors=[common_context],
        trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True)
    env.globals["_"] = env.globals["gettext"]
    app.cleanup_ctx.extend([session_ctx(config), revocations_ctx(config), api_ctx(config),
                            standin_ctx(config)])
    app.on_response_prepare.append(middleware.security_headers)
    setup_routes(app)
    return app
