"""The supervisor pages (kefu web): an ASGI app, one module per page, templates in templates/."""
