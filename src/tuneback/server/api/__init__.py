"""Routers of the JSON API."""
