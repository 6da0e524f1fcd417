"""Alembic migrations (env.py, versions/) and the API database role they leave behind (api_role.py)."""
