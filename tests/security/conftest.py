"""The web fixtures (a real app on a real case database, a test clock, tokens and links)."""

from tests.web.conftest import client, clock, referral, web_settings, world  # noqa: F401
