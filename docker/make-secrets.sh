#!/bin/sh
# Makes the secrets docker-compose.yml reads, once: ./secrets/* and ./.env. Never
# overwrites one that exists (a new secret_key would invalidate every open ballot link).
#   docker/make-secrets.sh
set -eu
cd "$(dirname "$0")/.."
umask 077
mkdir -p secrets
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
for name in secret_key matrix_password synapse_registration_shared_secret; do
    if [ ! -s "secrets/$name" ]; then
        random > "secrets/$name"
        echo "made secrets/$name"
    fi
done
# The containers run as their own users (Harmony 10001, Synapse 991) and compose mounts
# these files as they are: readable by them, while the folder keeps other host users out.
chmod 0700 secrets
chmod 0644 secrets/*
if ! grep -qs '^POSTGRES_PASSWORD=' .env; then
    echo "POSTGRES_PASSWORD=$(random)" >> .env
    echo "made .env (POSTGRES_PASSWORD)"
fi
