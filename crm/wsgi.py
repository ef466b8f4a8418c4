"""The WSGI entry for production servers: `gunicorn 'crm.wsgi:app'` (see docs/security.md)."""
from crm.app import create_app

app = create_app()
