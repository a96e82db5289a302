#!/usr/bin/env bash
# Regenerates test/fixtures with PyTorch (torch 2.13.0+cpu in a scratch venv).
set -euo pipefail
cd "$(dirname "$0")/.."
"$(bash scripts/python-env.sh)" scripts/make_fixtures.py
"$(bash scripts/python-env.sh)" scripts/make_int8_fixtures.py
"$(bash scripts/python-env.sh)" scripts/make_segmentation_fixtures.py
"$(bash scripts/python-env.sh)" scripts/make_dataset_fixtures.py
"$(bash scripts/python-env.sh)" scripts/make_loss_fixtures.py
