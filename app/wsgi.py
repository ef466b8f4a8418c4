"""The WSGI entry for production servers: `gunicorn 'app.wsgi:app'` (see docs/security.md)."""
from app.factory import create_app

app = create_app()
