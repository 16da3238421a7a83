"""The web companion: an aiohttp app for secret STAR ballots and the party's public pages.

``app.make_app`` builds it for ``harmony web``, the tests and the benchmark alike.
Handlers stay thin: parse the request, call one use case in ``services/``, render.
"""
