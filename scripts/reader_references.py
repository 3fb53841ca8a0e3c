"""Print the reference figures tests/test_readers.py checks the .gt3x reader against.

Run with a Python that has ActiGraph's reader (GPL-3.0, so not a legwatch dependency):

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install pygt3x==0.7.1
    /tmp/ref/bin/python scripts/reader_references.py ../shared/export-samples/actigraph_GGIR_actigraph_testfile.gt3x

It prints what ``pygt3x.reader.FileReader(path).to_pandas()`` gives outside idle sleep mode (rows
pygt3x fills in, which legwatch leaves as gaps): the sample count, the first and last timestamp
(Unix seconds of the device's local time, as if UTC: legwatch with ``--tz UTC``), the column sums
and three rows.
"""

import sys

from pygt3x.reader import FileReader

with FileReader(sys.argv[1]) as reader:
    df = reader.to_pandas()
d = df[~df["IdleSleepMode"]]
xyz = d[["X", "Y", "Z"]]
print(f"samples {len(d)}; first {d.index.values[0]!r}; last {d.index.values[-1]!r}")
print(f"sums {[float(v) for v in xyz.sum().values]}")
print(f"rows 0, 1, -1: {xyz.values[[0, 1, -1]].tolist()}")
