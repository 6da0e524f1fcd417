"""Unit tests build the app without serving it: nothing connects to a database or Redis."""

from __future__ import annotations

import pytest
from quart import Quart

from service.app import create_app
from service.settings import Settings
from tests.helpers import TEST_API_KEY, TEST_JWT_SECRET


@pytest.fixture
def offline_app() -> Quart:
    return create_app(
        Settings(
            database_url="postgresql://u:p@127.0.0.1:1/never-connected",
            api_key=TEST_API_KEY,
            jwt_secret=TEST_JWT_SECRET,
        )
    )
