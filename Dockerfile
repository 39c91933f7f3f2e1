# syntax=docker/dockerfile:1
# Throwback: gunicorn serving throwback.wsgi on port 8000 with gunicorn.conf.py
# (gthread workers, and the selfie encoder it starts and restarts); data
# (SQLite database, media) under /data. See README.md ("Docker") and
# docs/deployment.md.
#
#   docker build -t throwback .
#   docker run -p 8000:8000 -v throwback-data:/data -e SECRET_KEY=… throwback
FROM python:3.11-slim-bookworm

# No apt packages: every compiled dependency is a manylinux wheel. dlib-bin's
# _dlib_pybind11 module links only libc, libm, libpthread, libstdc++ and
# libgcc_s (checked with ldd); libstdc++6 and libgcc-s1 are already in the
# base image (apt depends on them). numpy, Pillow and psycopg2-binary bundle
# their own libraries. So no compiler, cmake or build-essential.

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    THROWBACK_DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles \
    GUNICORN_BIND=0.0.0.0:8000 \
    GUNICORN_WORKERS=2 \
    GUNICORN_THREADS=8 \
    THROWBACK_ENCODERS=1 \
    THROWBACK_MIGRATE=true

WORKDIR /app

# The same two steps as the Makefile: face_recognition goes in without its
# dependencies because it declares the source-only `dlib`, whose module the
# dlib-bin wheel in requirements.txt already provides.
COPY requirements.txt requirements-nodeps.txt ./
RUN pip install -r requirements.txt \
 && pip install --no-deps -r requirements-nodeps.txt

# Code stays owned by root (read-only for the app); only /data is writable.
COPY . .

# Static files are collected into the image (outside the /data volume, so a
# mounted volume cannot hide them) and served by whitenoise. The settings need
# no database for this; the SECRET_KEY below exists only for this one command.
RUN SECRET_KEY=collectstatic-build-only python manage.py collectstatic --noinput --verbosity 0

RUN groupadd --system --gid 10001 throwback \
 && useradd --system --uid 10001 --gid throwback --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin throwback \
 && install --directory --owner=throwback --group=throwback --mode=0750 /data

# Numeric, so a runtime can see it is not root without reading /etc/passwd.
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

# The login page needs no database query. The request names the first entry
# of ALLOWED_HOSTS (Django answers 400 to other hosts) and says it came over
# https, so SECURE_SSL_REDIRECT does not turn it into a redirect.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; h = [x.strip().lstrip('.') for x in os.environ.get('ALLOWED_HOSTS', 'localhost').split(',') if x.strip() and '*' not in x]; u.urlopen(u.Request('http://127.0.0.1:8000/accounts/login/', headers={'Host': (h or ['localhost'])[0], 'X-Forwarded-Proto': 'https'}), timeout=4)"]

# Migrations run before the command when THROWBACK_MIGRATE is true/1/yes/on
# (the default). Set THROWBACK_MIGRATE=false for one-off commands, and when
# several containers start at once and migrate in a separate step.
# Any command can replace gunicorn, e.g. `python manage.py import_albums`, or
# `python manage.py run_encoder` for an encoder container of its own (then set
# THROWBACK_ENCODERS=0 on the web container). gunicorn reads gunicorn.conf.py
# from /app: bind address, workers, threads, the encoder and, since this user
# has no home directory, no control socket.
ENTRYPOINT ["/bin/sh", "-c", "set -e; case \"$THROWBACK_MIGRATE\" in true|1|yes|on) python manage.py migrate --noinput ;; esac; exec \"$@\"", "throwback-entrypoint"]
CMD ["gunicorn", "throwback.wsgi"]
