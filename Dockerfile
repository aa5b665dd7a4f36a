# contactd: slim image, non-root. Redis is bundled for the embedded default; point
# CONTACTD_REDIS_URL / CONTACTD_DATABASE_URL at shared services to scale out.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    CONTACTD_DATA_DIR=/var/lib/contactd CONTACTD_HOST=0.0.0.0 CONTACTD_PORT=8080

RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/contactd --uid 10001 contactd

WORKDIR /app
COPY pyproject.toml README.md ./
COPY contactd ./contactd
COPY config ./config
COPY web_client ./web_client
RUN pip install --no-compile . && rm -rf /root/.cache

USER contactd
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz').status==200 else 1)"
ENTRYPOINT ["contactd"]
CMD ["serve"]
