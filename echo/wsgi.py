"""WSGI entry point for gunicorn (Procfile `web`)."""

from echo import create_app

app = create_app()
