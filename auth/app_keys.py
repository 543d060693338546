"""Typed keys for what the auth app holds."""

from aiohttp import web

from auth.accounts import Accounts
from auth.tokens import TokenSigner
from auth.users import Users

ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts", Accounts)
SIGNER: web.AppKey[TokenSigner] = web.AppKey("signer", TokenSigner)
USERS: web.AppKey[Users] = web.AppKey("users", Users)
