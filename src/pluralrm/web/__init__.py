"""The web layer both apps share (the reward server and the labelling page): one principal/token store
(:mod:`pluralrm.web.tokens`), one bearer dependency and browser sessions with CSRF (:mod:`pluralrm.web.auth`),
one body-limit middleware (:mod:`pluralrm.web.limits`)."""

from pluralrm.web.tokens import (
    ADMIN,
    USER,
    Principal,
    RevokedTokenError,
    TokenStore,
    admin_token,
    is_loopback,
)

__all__ = ["ADMIN", "USER", "Principal", "RevokedTokenError", "TokenStore", "admin_token", "is_loopback"]
