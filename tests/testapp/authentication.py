from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """``Authorization: Bearer <token>``, as the seed's usage examples send it."""

    keyword = "Bearer"
