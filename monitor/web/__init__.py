"""The web side: the aiohttp server (``server``), the status pages (``status`` and
``templates/``), the charts (``charts``) and the login rate limiter (``ratelimit``)."""
