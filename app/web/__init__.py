"""Generated Flask-AppBuilder screens and REST APIs, built from the specs."""
