# syntax=docker/dockerfile:1
# The Harmony image: the bot and the web companion (`harmony run --only bot|web`), and the
# one-shot `harmony db upgrade`. docker-compose.yml runs them; docs/deploying.md explains.

# --- build: the project's wheel, from the source -------------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
# Only what the wheel is made of (pyproject.toml: web/, locales/ and alembic/ are copied
# into the package). The compiled CSS and JavaScript are committed under
# web/static/vendor/, so no Node.js is needed here.
COPY pyproject.toml README.md ./
COPY harmony_matrix ./harmony_matrix
COPY web ./web
COPY locales ./locales
COPY alembic ./alembic
RUN PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    python -m pip wheel --no-deps --quiet --wheel-dir /wheels .

# --- runtime: the wheel and its dependencies in a venv, run by a user that is not root --
FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/harmony/bin:$PATH
# The same steps as tests/test_deployment_files.py runs without Docker.
COPY docker/install.sh /usr/local/bin/harmony-install
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    sh /usr/local/bin/harmony-install /opt/harmony /wheels/harmony_matrix-*.whl --no-cache-dir
# uid 10001: above any uid a host gives its own users, so a bind mount owned by one of
# them is not writable by the container by accident.
RUN groupadd --system --gid 10001 harmony \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/harmony \
        --no-create-home --shell /usr/sbin/nologin harmony \
    && mkdir -p /etc/harmony /var/lib/harmony/matrix-store /var/lib/harmony/ballot-keys \
    && chown -R 10001:10001 /var/lib/harmony \
    && chmod 0700 /var/lib/harmony/matrix-store /var/lib/harmony/ballot-keys
WORKDIR /var/lib/harmony
USER 10001:10001
# The bot's end-to-end encryption store ([matrix] store_path) and the private keys of open
# ballot rounds ([security] ballot_keys_path): as precious as the database, so volumes
# that outlive the container (docs/deploying.md, "Backups"). docker/harmony.toml points
# the two settings here.
VOLUME ["/var/lib/harmony/matrix-store", "/var/lib/harmony/ballot-keys"]
EXPOSE 8080
# The web companion's liveness; a bot container overrides it (docker-compose.yml). No curl
# in the slim image: Python's urllib. HARMONY_WEB__PORT is the port setting's variable.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HARMONY_WEB__PORT', '8080') + '/healthz', timeout=4)"]
ENTRYPOINT ["harmony"]
CMD ["run", "--config", "/etc/harmony/harmony.toml"]
