"""Playbooks shipped with Advocado (YAML, package data)."""
