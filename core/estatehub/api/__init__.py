"""The hub's REST API (aiohttp) and its bearer-token auth."""
