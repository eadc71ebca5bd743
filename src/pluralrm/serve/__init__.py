"""The reward server: FastAPI app factory (scoring, OpenRLHF ``/get_reward``, users, auth, metrics)."""

from pluralrm.serve.app import create_app
from pluralrm.web.tokens import Principal, TokenStore, admin_token

__all__ = ["Principal", "TokenStore", "admin_token", "create_app"]
