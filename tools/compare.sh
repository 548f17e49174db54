#!/bin/sh
# Side-by-side speed comparison with the PyTorch reference on this machine; prints markdown tables.
# Needs Debian's PyTorch and OpenBLAS:  apt-get install python3-torch libopenblas0
# Options are passed on, e.g.  tools/compare.sh --threads 1 --json /tmp/compare.json  (see docs/performance.md).
set -eu
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "PyTorch for /usr/bin/python3 is missing: apt-get install python3-torch libopenblas0 (or pass --skip pytorch)." >&2
fi
exec dotnet run -c Release --project DiffusionClassifier.Benchmarks -- compare "$@"
