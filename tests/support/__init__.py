"""Helpers shared by kbox's test suites (images for the Docker tests, ...)."""
