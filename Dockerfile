# The production image: one image, three roles (api, worker, one-off migrate/train), chosen by the command.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hotline ./hotline
COPY routing ./routing
COPY nlp ./nlp
COPY agent_ui ./agent_ui
COPY wechat_bot ./wechat_bot
COPY channels ./channels
COPY migrations ./migrations
COPY alembic.ini ./
RUN pip install . && useradd --system --home /app hotline && mkdir -p /app/var && chown hotline /app/var
USER hotline
EXPOSE 8000
CMD ["hotline", "serve", "--host", "0.0.0.0", "--workers", "2"]
