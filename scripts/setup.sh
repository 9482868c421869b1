#!/usr/bin/env bash
# Installs what ScaiDrive needs on a fresh machine, idempotently and quietly when everything is there:
# npm dependencies, and the Temporal CLI, MinIO and Weaviate built with `go install` into a cache outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR="${SCAIDRIVE_TOOLS_DIR:-$HOME/.cache/scaidrive/bin}"
LOG_DIR="$(dirname "$TOOLS_DIR")/logs"
mkdir -p "$TOOLS_DIR" "$LOG_DIR"

# npm dependencies: install when missing or when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies"
  # `npm install` from the lock file rather than `npm ci`: npm 11's ci rejects this lock file over optional
  # platform packages (@swc/core-*) it leaves out of it; install resolves the same versions.
  npm install --no-audit --no-fund --loglevel=error
fi

# Go-built tools. Each build runs only when its binary is missing; builds run in parallel.
declare -A modules=(
  [temporal]="github.com/temporalio/cli/cmd/temporal@v1.5.1"
  [minio]="github.com/minio/minio@latest"
  [weaviate-server]="github.com/weaviate/weaviate/cmd/weaviate-server@v1.39.0"
)
pids=()
for tool in "${!modules[@]}"; do
  if [ ! -x "$TOOLS_DIR/$tool" ]; then
    command -v go >/dev/null || { echo "setup: Go is needed to build $tool" >&2; exit 1; }
    echo "setup: building $tool (${modules[$tool]}), log in $LOG_DIR/$tool-build.log"
    (GOBIN="$TOOLS_DIR" GOFLAGS=-mod=mod go install "${modules[$tool]}" >"$LOG_DIR/$tool-build.log" 2>&1 \
      || { echo "setup: building $tool failed, see $LOG_DIR/$tool-build.log" >&2; exit 1; }) &
    pids+=($!)
  fi
done
for pid in "${pids[@]}"; do wait "$pid"; done

# Debian packages the stack needs (none yet beyond the machine's; listed here as they arrive).
packages=(
  chromium  # headless browser for the Swagger UI test
  samba     # smbd: the real SMB server the SMB connector tests start privately
  smbclient # Samba's own client: tests cross-check what the server allows
)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# PostgreSQL must be running (it is on this machine kind; start it if it stopped).
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
