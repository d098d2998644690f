# smtpfault: the mock SMTP endpoint as a container image.
#   docker build -t smtpfault .
#   docker run --rm -p 2525:2525 -p 2465:2465 -p 8025:8025 smtpfault
# Build stage: Debian 12 with the project's own dependency script; runtime stage: debian:12-slim
# with only the shared libraries the binary links (see docs/docker.md).

FROM debian:12 AS build
WORKDIR /src
COPY ci/install-deps.sh ci/install-deps.sh
RUN ./ci/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DSMTPFAULT_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target smtpfault \
 && strip /build/smtpfault \
 && /build/smtpfault --version

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libssl3 liblua5.4-0 libtomlplusplus3 libboost-json1.81.0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/smtpfault --create-home \
      --shell /usr/sbin/nologin smtpfault \
 && install -d -o smtpfault -g smtpfault /scenarios /var/lib/smtpfault/mail
COPY --from=build /build/smtpfault /usr/local/bin/smtpfault

# Configuration is entirely environment variables (every key has one, see `smtpfault serve
# --help`) or a TOML file mounted and named by SMTPFAULT_CONFIG. Own scenarios go in /scenarios:
# SMTPFAULT_SCENARIO=/scenarios/mine.lua; built-in ones by name: SMTPFAULT_SCENARIO=greylist.
ENV SMTPFAULT_LISTEN=0.0.0.0:2525 \
    SMTPFAULT_TLS_LISTEN=0.0.0.0:2465 \
    SMTPFAULT_API=0.0.0.0:8025 \
    SMTPFAULT_HOSTNAME=smtpfault.test \
    SMTPFAULT_TLS_NAMES=smtpfault \
    SMTPFAULT_HEALTHCHECK_TIMEOUT=1.5

USER smtpfault
WORKDIR /var/lib/smtpfault
EXPOSE 2525 2465 8025
# PID 1 handles SIGTERM itself: open sessions get 421 4.3.2 and the process exits 0 within 1 s.
STOPSIGNAL SIGTERM
# Docker before 25 (Debian 12 ships 20.10) probes first one interval after start, and a compose
# service waiting for service_healthy starts only then: a short interval keeps that wait short.
# A probe is one HTTP request to /readyz; its own timeout (SMTPFAULT_HEALTHCHECK_TIMEOUT) is
# below Docker's, so that a probe that fails says why in `docker inspect` instead of being killed.
HEALTHCHECK --interval=2s --timeout=2s --start-period=10s --retries=3 \
  CMD ["smtpfault", "healthcheck"]
ENTRYPOINT ["smtpfault"]
CMD ["serve"]
