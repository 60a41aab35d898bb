"""Put the JSON API on an app: configuration, the spec, every resource's blueprints.

Apart from the package itself, whose ``blueprint`` the resource modules build on, so that the
package imports none of them back.
"""

from __future__ import annotations

from flask import Flask

from prefsvc.extensions import csrf
from prefsvc.web.api import (
    EXTENSION_KEY,
    PREFIX,
    PrefsvcApi,
    RedactAddresses,
    audit,
    campaigns,
    contacts,
    docs,
    imports,
    privacy,
    webhooks,
)


def init_app(app: Flask) -> None:
    """Register the API and every resource's blueprints on the app, each exempt from CSRF."""
    app.config.update(
        API_TITLE="prefsvc",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": (
                    "JSON API of the preference service. Send an API key as "
                    "`Authorization: Bearer <key>` (`prefsvc apikeys create`); each key's role "
                    "(marketing, privacy, admin) decides which routes it may call. Contacts are "
                    "named by their `public_id`, never by address. Errors are RFC 9457 problems "
                    "with `errors` naming each bad field."
                )
            },
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
            "servers": [{"url": "/"}],
        },
    )
    api = PrefsvcApi(app)
    for module in (contacts, campaigns, imports, privacy, audit, webhooks, docs):
        for bp in module.blueprints:
            api.register_blueprint(bp)
            csrf.exempt(bp)
    app.extensions[EXTENSION_KEY] = api
    RedactAddresses.install()
    app.register_blueprint(docs.bp)
