"""The netns ``lab`` fixture of tests/integration, for the review's lab reproductions."""

from tests.integration.conftest import lab  # noqa: F401
