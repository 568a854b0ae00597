# Sourced by scripts/run and scripts/test: one virtualenv per set of dependency files,
# kept outside the checkout so fresh clones (and CI) reuse it instead of reinstalling.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
# Keyed on what the install depends on (not on tool settings such as the import contract).
KEY="$("$PYTHON" - "$ROOT/pyproject.toml" <<'PY' | sha256sum | cut -c1-16
import json, sys, tomllib
doc = tomllib.load(open(sys.argv[1], "rb"))
project = doc["project"]
keys = ("dependencies", "optional-dependencies", "requires-python", "scripts")
print(json.dumps([doc.get("build-system"), *(project.get(k) for k in keys)], sort_keys=True))
PY
)"
VENV="${XPOOL_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/xpool/venv-$KEY}"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  echo "setting up $VENV (first run only)" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip "setuptools>=77" wheel
  # torch first, pinned to the build the local package index holds (about 5.5 GB, installed
  # from disk), so that xinference (-> timm -> torchvision -> torch) downloads no other one.
  "$VENV/bin/pip" install --quiet "torch==2.14.1" "torchvision==0.29.1"
  "$VENV/bin/pip" install --quiet -e "$ROOT[dev,local]"
  touch "$VENV/.complete"
fi
# The venv is shared by every checkout with the same dependency files; PYTHONPATH makes
# this checkout's code win over whichever checkout the editable install last pointed at.
export PYTHONPATH="$ROOT/toolkit${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
