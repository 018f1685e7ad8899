# syntax=docker/dockerfile:1.7
# The Lakeplane control plane image: one image for web (gunicorn), Celery worker, Celery beat and
# the migration Job (infra/controlplane). Runtime dependencies only (requirements.lock), non-root,
# read-only root filesystem friendly (writes go to /tmp).

# --- the console --------------------------------------------------------------------------------
FROM node:20.19.5-bookworm-slim AS console
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# --- Python dependencies -------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS python-deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install "uv==0.13.9"
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/uv pip install --python /opt/venv/bin/python --require-hashes -r /tmp/requirements.lock
COPY pyproject.toml manage.py /src/
COPY controlplane/ /src/controlplane/
COPY computeplane_agent/ /src/computeplane_agent/
RUN /opt/venv/bin/uv pip install --python /opt/venv/bin/python --no-deps /src \
    && /opt/venv/bin/pip uninstall --yes uv

# --- runtime -------------------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=controlplane.settings.production \
    LAKEPLANE_DATA_DIR=/tmp/lakeplane \
    STATIC_ROOT=/app/staticfiles
RUN groupadd --system --gid 10001 lakeplane \
    && useradd --system --uid 10001 --gid lakeplane --home-dir /app --shell /usr/sbin/nologin lakeplane
WORKDIR /app
COPY --from=python-deps /opt/venv /opt/venv
COPY manage.py ./
COPY controlplane/ ./controlplane/
COPY computeplane_agent/ ./computeplane_agent/
COPY --from=console /src/frontend/dist/ ./frontend/dist/
# Static files are collected at build time with placeholder settings that exist only for this
# step; the running container gets its real ones from the ConfigMap and Secret.
RUN SECRET_KEY=collectstatic-only \
    DATABASE_URL=postgres://build@localhost/build \
    CELERY_BROKER_URL=redis://localhost:6379/0 \
    LAKEPLANE_VENDOR_PRINCIPAL=arn:aws:iam::111111111111:role/build \
    python manage.py collectstatic --noinput \
    && chown -R lakeplane:lakeplane /app/staticfiles
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "--config", "python:controlplane.gunicorn_conf", "controlplane.wsgi"]
