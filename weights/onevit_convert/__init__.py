"""Checkpoint → .ovit converter (see weights/FORMAT.md); the CLI is weights/convert.py."""
