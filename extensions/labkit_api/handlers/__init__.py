"""Tornado handlers: HTTP only (parse the request, call ``service`` as the requesting user, reply)."""
