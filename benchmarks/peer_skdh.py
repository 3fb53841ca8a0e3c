"""The peer: scikit-digital-health's sleep pipeline on a legwatch recording CSV, as one process.

    benchmarks/.venv-peer/bin/python benchmarks/peer_skdh.py FILE.csv

Run by ``benchmarks/run.py`` in the benchmark's own virtualenv (scikit-digital-health is not a
legwatch dependency). A ``skdh.Pipeline`` reads the CSV (``skdh.io.ReadCSV``: pandas, ``timestamp``
in Unix seconds, ``ax, ay, az`` in g; gaps are filled as skdh does), cuts it into noon-to-noon
days (``skdh.preprocessing.GetDayWindowIndices(bases=12, periods=24)``) and runs
``skdh.sleep.Sleep(day_window=(12, 24))`` (total sleep opportunity and sleep endpoints). Prints
one JSON line: the sleep opportunity it found, for a sanity check against legwatch's sleep window.
"""

from __future__ import annotations

import json
import sys
import warnings


def main(path: str) -> int:
    warnings.simplefilter("ignore")  # "External wear detection not provided", divide by zero in angles
    import skdh
    from skdh.io import ReadCSV
    from skdh.preprocessing import GetDayWindowIndices
    from skdh.sleep import Sleep

    pipe = skdh.Pipeline()
    pipe.add(
        ReadCSV(
            time_col_name="timestamp",
            column_names={"accel": ["ax", "ay", "az"]},
            to_datetime_kwargs={"unit": "s"},
        )
    )
    pipe.add(GetDayWindowIndices(bases=12, periods=24))
    pipe.add(Sleep(day_window=(12, 24)))
    res = pipe.run(file=path)
    sleep = res["Sleep"]
    read = res.get("ReadCSV", {})
    out = {
        "skdh": skdh.__version__,
        "samples": int(len(read["time"])) if "time" in read else None,
        "fs": float(read["fs"]) if "fs" in read else None,
        "days": len(sleep.get("Day N", [])),
        "tso_start": _num(sleep.get("TSO Start Timestamp")),
        "tso_duration_min": _num(sleep.get("TSO Duration")),
        "total_sleep_time_min": _num(sleep.get("total sleep time")),
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


def _num(values) -> float | None:
    try:
        v = float(values[0])
    except (TypeError, IndexError, ValueError):
        return None
    return None if v != v else v


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: peer_skdh.py FILE.csv", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
