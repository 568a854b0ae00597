# syntax=docker/dockerfile:1
# The xpool image that the rendered gateway Deployment and reconciler CronJob run
# (spec.images.xpool, default xpool:0.1.0): the wheel built from this checkout, without the
# `local` extra (no Xinference, no torch), run as a non-root user.
# Build and push: docs/operations.md, "Building the image". tests/unit/test_image.py keeps the
# Python and xpool versions here equal to pyproject.toml's.

# python:3.11.14-slim-bookworm, pinned by tag and by the digest of its multi-architecture index.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY toolkit ./toolkit
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The wheel of this version only: a version bump without this line fails the build.
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/xpool-0.1.0-py3-none-any.whl
RUN groupadd --gid 10001 xpool \
    && useradd --uid 10001 --gid 10001 --home-dir /home/xpool --create-home --shell /usr/sbin/nologin xpool
USER 10001:10001
WORKDIR /home/xpool
ENTRYPOINT ["xpool"]
CMD ["--help"]
