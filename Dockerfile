# The legwatch monitor (`legwatch monitor`): MQTT in, episodes out to InfluxDB and MQTT.
# Built by docker-compose.yml (service `monitor`); configured only by LEGWATCH_* environment variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install the package (wheels for numpy, scipy and matplotlib exist for this base; nothing compiles).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY legwatch ./legwatch
COPY detector ./detector
COPY collector ./collector
RUN pip install . && rm -rf /src

# Run as an unprivileged user whose home is the data directory (SQLite fallback, checkpoints).
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin legwatch \
    && mkdir -p /data \
    && chown legwatch:legwatch /data
COPY deploy/monitor/healthcheck.py /usr/local/lib/legwatch/healthcheck.py
ENV LEGWATCH_DATA_DIR=/data \
    HOME=/data \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /data
VOLUME ["/data"]
USER legwatch

# Healthy = a `legwatch monitor` process is alive in this container AND it holds an established TCP
# connection to the broker port of LEGWATCH_MQTT_URL (read from /proc; no traffic of its own).
# It does not prove messages flow or that InfluxDB accepts writes. See deploy/monitor/healthcheck.py.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/lib/legwatch/healthcheck.py"]

CMD ["legwatch", "monitor"]
