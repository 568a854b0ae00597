# Sourced by scripts/test before anything else: the programs outside the Python environment
# that the selected tests run. As root (CI, .ci/run) the missing ones are installed; otherwise
# scripts/test stops at once, one line per missing program with the command that installs
# it, instead of failing or skipping those tests after a long run.

# The programs the tests under a path need, read from the tests and their conftest files.
tools_for() {
  case "$1" in
    tests/unit* | tests/render* | tests/compare*) ;;
    tests/cli* | tests/gateway*) echo openssl ;; # the contract API server's TLS certificate
    tests/contract*) echo openssl kubectl ;;     # kubectl: an independent client of it
    tests/kube*) echo openssl moto_server ;;     # apply against it and moto's S3 server
    tests/integration*) echo prometheus moto_server ;;
    *) echo openssl kubectl prometheus moto_server ;; # the whole suite
  esac
}

# moto's S3 server (tests/s3_server.py) runs from the system Python, outside the venv.
MOTO_INSTALL="python3 -m pip install -q 'moto[server]==5.2.1'"

# require_tools PYTEST_ARGS...: the programs the tests those arguments select need (each path
# argument's; the whole suite's when none names a path), present or installed.
require_tools() {
  local arg tool paths=() names=() needed=() missing=() packages=()
  for arg in "$@"; do
    if [ -e "${arg%%::*}" ]; then paths+=("$arg"); fi
  done
  if [ ${#paths[@]} -eq 0 ]; then paths=(tests); fi
  for arg in "${paths[@]}"; do
    read -r -a names <<<"$(tools_for "$arg")"
    needed+=("${names[@]}")
  done
  for tool in $(printf '%s\n' "${needed[@]}" | sort -u); do
    if ! command -v "$tool" >/dev/null 2>&1; then missing+=("$tool"); fi
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  for tool in "${missing[@]}"; do  # each Debian package is named after its command
    if [ "$tool" != moto_server ]; then packages+=("$tool"); fi
  done
  if [ "$(id -u)" -ne 0 ]; then
    for tool in "${missing[@]}"; do
      if [ "$tool" = moto_server ]; then
        echo "scripts/test: moto_server is missing; install it: sudo $MOTO_INSTALL" >&2
      else
        echo "scripts/test: $tool is missing; install it: sudo apt-get update && sudo apt-get install -y $tool" >&2
      fi
    done
    exit 2
  fi
  echo "scripts/test: installing ${missing[*]}" >&2
  if [ ${#packages[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
  fi
  if [[ " ${missing[*]} " == *" moto_server "* ]]; then
    bash -c "$MOTO_INSTALL"
    hash -r
  fi
  for tool in "${missing[@]}"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "scripts/test: $tool is still not on PATH after installing it" >&2
      exit 2
    fi
  done
}
