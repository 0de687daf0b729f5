"""Formatting: terminal tables, Markdown, JSON helpers and plots. Nothing here collects data."""
