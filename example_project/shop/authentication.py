"""``Authorization: Bearer <token>``, as the seed's usage examples send it."""

from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token authentication with the ``Bearer`` keyword instead of ``Token``."""

    keyword = "Bearer"
