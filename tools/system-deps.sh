#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing.
set -euo pipefail
need=()
dpkg -s libsodium23 >/dev/null 2>&1 || need+=(libsodium23)
# PostgreSQL server binaries (initdb, pg_ctl): the tests start a throwaway cluster.
dpkg -s postgresql >/dev/null 2>&1 || need+=(postgresql)
# Java for the Spark engine's tests (PySpark starts a JVM).
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
# Chromium: the portal's tests drive it headless through Playwright (tests/portal).
dpkg -s chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
