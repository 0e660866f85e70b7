#!/bin/sh
# Installs the fieldpost agent on this Linux PC or Mac as a service and enrols it with the collector.
# Rendered from packaging/unix/install.sh for fieldpost {{version}}. Run as root:
#   sudo sh install.sh --collector URL --token TOKEN [--package SPEC] [--ca-file PEM] [--insecure-http]
# 1. Creates a virtual environment in /opt/fieldpost (Python 3.11 or newer must be installed).
# 2. Installs the agent into it (--package upgrades, e.g. --package "fieldpost==1.2.0").
# 3. Runs `fieldpost-agent install`: writes the configuration, enrols with the token, installs the
#    systemd unit or launchd daemon and starts it. Running it again changes nothing. --ca-file pins a
#    private CA; --insecure-http allows a plain http:// collector on another machine (not recommended).
set -eu

collector= token= package="fieldpost=={{version}}" prefix=/opt/fieldpost ca_file= insecure=
while [ $# -gt 0 ]; do
    case "$1" in
        --collector) collector=$2; shift 2 ;;
        --token) token=$2; shift 2 ;;
        --package) package=$2; shift 2 ;;
        --prefix) prefix=$2; shift 2 ;;
        --ca-file) ca_file=$2; shift 2 ;;
        --insecure-http) insecure=1; shift ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -z "$collector" ] || [ -z "$token" ]; then
    echo "usage: sh install.sh --collector URL --token TOKEN [--package SPEC] [--prefix DIR] [--ca-file PEM]" \
        "[--insecure-http]" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo sh install.sh ...)" >&2
    exit 1
fi

python=
for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        python=$candidate
        break
    fi
done
if [ -z "$python" ]; then
    echo "install.sh: Python 3.11 or newer is needed (Debian/Ubuntu: apt-get install python3 python3-venv;" \
        "Fedora: dnf install python3; macOS: xcode-select --install or python.org)" >&2
    exit 1
fi

if [ ! -x "$prefix/bin/python" ]; then
    echo "creating $prefix"
    "$python" -m venv "$prefix"
fi
"$prefix/bin/python" -m pip install --quiet --disable-pip-version-check "$package"
set -- install --collector "$collector" --token "$token"
if [ -n "$ca_file" ]; then set -- "$@" --ca-file "$ca_file"; fi
if [ -n "$insecure" ]; then set -- "$@" --insecure-http; fi
exec "$prefix/bin/fieldpost-agent" "$@"
