"""RSO Case: case management and harmonised RSD for a Regional Support Office."""
from __future__ import annotations

from flask import Flask

from rso.config import DEFAULTS, REPO_ROOT, from_environment


def create_app(config: dict | None = None) -> Flask:
    """Build the application. ``config`` overrides the environment (tests pass their own)."""
    app = Flask(
        __name__,
        template_folder=str(REPO_ROOT / "templates"),
        static_folder=str(REPO_ROOT / "rso" / "static"),
    )
    app.config.update(DEFAULTS)
    app.config.update(from_environment())
    if config:
        app.config.update(config)
    _check_config(app)

    from rso import db, web

    db.init_app(app)
    web.init_app(app)
    _register_blueprints(app)
    # After the blueprints: their modules register the guards the procedure files name.
    from rso.workflow import registry

    registry.init_app(app)
    return app


def _check_config(app: Flask) -> None:
    # Fail fast on a configuration that would make the app unsafe.
    if len(app.config["SECRET_KEY"] or "") < 32:
        raise RuntimeError("RSO_SECRET_KEY must be at least 32 characters long.")


def _register_blueprints(app: Flask) -> None:
    from rso import web
    from rso.api import bp as api_bp
    from rso.audit.views import bp as audit_bp
    from rso.jobs import views as _jobs_views  # noqa: F401  (registers API routes)
    from rso.privacy.views import bp as privacy_bp
    from rso.profiling import api as _profiling_api  # noqa: F401  (registers API routes)
    from rso.profiling.views import bp as profiling_bp
    from rso.registration import api as _registration_api  # noqa: F401  (registers API routes)
    from rso.registration.import_views import bp as imports_bp
    from rso.registration.views import bp as registration_bp
    from rso.reporting import api as _reporting_api  # noqa: F401  (registers API routes)
    from rso.reporting.views import bp as reporting_bp
    from rso.resettlement import api as _resettlement_api  # noqa: F401  (registers API routes)
    from rso.resettlement.views import bp as resettlement_bp
    from rso.returns.views import bp as returns_bp  # (also registers its API routes)
    from rso.rsd import api as _rsd_api  # noqa: F401  (registers API routes)
    from rso.rsd.views import bp as rsd_bp
    from rso.users import api as _users_api  # noqa: F401  (registers API routes)
    from rso.users.views import bp as users_bp
    from rso.workflow import api as _workflow_api  # noqa: F401  (registers API routes)
    from rso.workflow.views import bp as workflow_bp

    app.register_blueprint(users_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(registration_bp)
    app.register_blueprint(imports_bp)
    app.register_blueprint(workflow_bp)
    app.register_blueprint(profiling_bp)
    app.register_blueprint(privacy_bp)
    app.register_blueprint(rsd_bp)
    app.register_blueprint(reporting_bp)
    app.register_blueprint(resettlement_bp)
    app.register_blueprint(returns_bp)
    app.register_blueprint(api_bp)
    # Bearer-token clients carry no CSRF token; cookie-authenticated API writes are checked in rso.web.
    web.csrf.exempt(api_bp)
