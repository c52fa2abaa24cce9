"""WSGI entry point for gunicorn (Procfile `web`).

Who the client is comes from one place: create_app's ProxyFix, which believes as many
X-Forwarded-For/-Proto entries as ECHO_TRUSTED_PROXY_HOPS says (1 on Heroku). The Procfile tells
gunicorn to trust no forwarded headers itself (`--forwarded-allow-ips ''`), so a client cannot set
the scheme or SCRIPT_NAME by sending them.
"""

from echo import create_app

app = create_app()
