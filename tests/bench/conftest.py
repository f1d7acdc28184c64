"""Every benchmark module prints the durability settings of the database it ran against."""

import pytest

from tests.bench.database_settings import print_durability


@pytest.fixture(scope="module", autouse=True)
def database_durability(request: pytest.FixtureRequest, django_db_setup, django_db_blocker) -> None:
    with django_db_blocker.unblock():
        print_durability(f"{request.module.__name__} (in process)")
