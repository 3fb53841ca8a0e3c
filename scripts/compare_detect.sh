#!/usr/bin/env bash
# Does a change alter what detection finds? `scripts/compare_detect.sh REF` runs `legwatch detect
# --format json` of this checkout and of commit REF (a temporary worktree, the same .venv) on
# generated nights of several seeds, rates and lengths, and prints both checksums per night.
set -euo pipefail
cd "$(dirname "$0")/.."
ref="${1:?usage: scripts/compare_detect.sh REF}"
py=.venv/bin/python
work=$(mktemp -d)
trap 'git worktree remove --force "$work/ref" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/ref" "$ref"
same=0 differ=0
for spec in "20260105 52 8" "11 26 3" "12 104 2" "13 52 4" "14 12.5 2"; do
  read -r seed rate hours <<<"$spec"
  csv="$work/night-$seed.csv"
  "$py" -m detector.synthetic --seed "$seed" --rate "$rate" --hours "$hours" --out "$csv" >/dev/null
  a=$(PYTHONPATH="$work/ref" "$py" -m legwatch detect "$csv" --format json | md5sum | cut -c1-16)
  b=$(PYTHONPATH="$PWD" "$py" -m legwatch detect "$csv" --format json | md5sum | cut -c1-16)
  if [ "$a" = "$b" ]; then same=$((same + 1)); verdict=same; else differ=$((differ + 1)); verdict=DIFFERENT; fi
  echo "seed $seed, $rate Hz, $hours h: $ref $a, this checkout $b: $verdict"
done
echo "$same night(s) the same, $differ different"
