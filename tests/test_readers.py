"""Reading what people have: every format by its content, checked against where it is documented.

Real samples are read from ``../shared/export-samples/`` (FORMATS.md there quotes each format's
documentation and says where each file comes from); they are never copied here. Formats without a
public sample are built in the test from their published description, cited at each test.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import SAMPLES, run_cli
from legwatch.readers import ReadOptions, RecordingError, read, sniff

UTC = ReadOptions(tz="UTC")


def sample(name: str) -> Path:
    p = SAMPLES / name
    assert p.is_file(), f"the shared sample {name} is missing"
    return p


def _one_line_error(proc) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


# --- real samples ----------------------------------------------------------------------------------


def test_axivity_ax3_equals_the_csv_export_of_the_same_file():
    """FORMATS.md §4 (cwa.h): packed AX3. The CSV export (Unix seconds of the RTC's local time read
    as UTC) has one sample per row; one row of it (06.22) was deleted, so rows are matched by time."""
    rec = read(sample("axivity_ax3_GGIRread_ax3_testfile.cwa"), UTC)
    ref = np.loadtxt(sample("axivity_omconvert_csv_GGIR_ax3_testfile_unix_timestamps.csv"), delimiter=",")
    assert rec.format == "Axivity .cwa" and len(rec.t) == 145 * 120
    j = np.abs(rec.t[:, None] - ref[None, :, 0]).argmin(axis=0)  # each CSV row's nearest sample
    assert np.abs(rec.t[j] - ref[:, 0]).max() < 0.005  # within half a sample at 100 Hz
    assert np.array_equal(rec.xyz[j], ref[:, 1:]), "the same values, exactly"
    assert len(np.unique(j)) == len(ref)


def test_axivity_ax6_equals_the_csv_export_of_the_same_file():
    """FORMATS.md §4: unpacked 6-axis AX6, gyro first, 1/2048 g. The export: formatted local times,
    Ax, Ay, Az (6 decimals), then the gyroscope; every sample a row."""
    rec = read(sample("axivity_ax6_GGIRread_ax6_testfile.cwa"), UTC)
    text = np.loadtxt(
        sample("axivity_omconvert_csv_GGIR_ax6_testfile_formatted_timestamps.csv"), delimiter=",", dtype=str
    )
    t = text[:, 0].astype("datetime64[us]").astype(np.int64) / 1e6
    n = len(t)
    assert np.abs(rec.xyz[:n] - text[:, 1:4].astype(float)).max() <= 5e-7 + 1e-12  # equal to the export's 6 decimals
    assert np.abs(rec.t[:n] - t).max() < 0.015  # within 1.5 samples: the export spaces samples its own way
    assert "gyroscope channels ignored" in rec.describe()


def test_polar_sensor_logger_is_mg_and_the_sensor_clock():
    """FORMATS.md §2: ``;``, integers in mg, sensor time in ns since 2000-01-01 (local wall clock)."""
    p = sample("polar_sensor_logger_VeritySense_ACC.txt")
    rec = read(p, UTC)
    assert rec.format == "Polar Sensor Logger" and len(rec.t) == 26_526
    assert rec.xyz[0].tolist() == pytest.approx([-0.777, 0.436, -0.499])
    assert rec.t[0] == pytest.approx(946_684_800 + 704201974831254116 / 1e9, abs=1e-6)
    assert 1 / np.median(np.diff(rec.t)) == pytest.approx(51.7, abs=0.1)
    assert rec.units.startswith("mg (from the header)")
    assert read(p, ReadOptions(tz="+03:00")).t[0] == pytest.approx(rec.t[0] - 3 * 3600)


def test_polar_files_that_are_not_acceleration_are_refused(tmp_path):
    """FORMATS.md §2: the same session's other streams, headers verbatim."""
    f = tmp_path / "gyro.txt"
    f.write_text("Phone timestamp;sensor timestamp [ns];X [dps];Y [dps];Z [dps]\n2022-04-25T11:39:36.978;1;0.42;0;0\n")
    with pytest.raises(RecordingError, match="gyroscope file, not acceleration"):
        read(f)
    with pytest.raises(RecordingError, match="not accelerometer data"):
        read(sample("polar_sensor_logger_MARKER.txt"))


def test_actigraph_gt3x_equals_pygt3x():
    """FORMATS.md §5b (actigraph/GT3X-File-Format): ACTIVITY records, 12-bit Y,X,Z, scale 256.
    Reference: ActiGraph's own reader, pygt3x 0.7.1, ``FileReader(path).to_pandas()`` on this file
    (rows with IdleSleepMode False, which it fills in between): 17,640 samples, these values
    (``scripts/reader_references.py`` prints them)."""
    rec = read(sample("actigraph_GGIR_actigraph_testfile.gt3x"), UTC)
    assert len(rec.t) == 17_640
    assert rec.t[0] == 1598436540.0 and rec.t[-1] == pytest.approx(1598438307.9666667)
    assert rec.xyz.sum(axis=0).tolist() == pytest.approx([1387.8828125, -843.0859375, 2186.76953125], abs=1e-9)
    assert rec.xyz[[0, 1, -1]].tolist() == [
        [0.00390625, 0.0234375, -0.95703125],
        [-0.01171875, -0.00390625, -0.953125],
        [-0.5, 0.01953125, -0.875],
    ]
    local = read(sample("actigraph_GGIR_actigraph_testfile.gt3x"))  # info.txt: TimeZone 02:00:00
    assert local.t[0] == rec.t[0] - 7200 and "info.txt's zone, +02:00" in local.times


def test_actilife_raw_csv_without_timestamps():
    """FORMATS.md §5a: 10 header lines padded with commas, start date and time, 'at 90 Hz', g."""
    rec = read(sample("actigraph_actilife_RAW_noTimestamp_AGread_exampleRAW.csv"), UTC)
    assert len(rec.t) == 10_800 and rec.xyz[0].tolist() == [-0.004, -0.008, 0.961]
    assert rec.t[0] == 1550134680.0  # 2019-02-14 08:58:00
    assert np.diff(rec.t) == pytest.approx(1 / 90, abs=1e-6)


def test_actilife_raw_csv_with_timestamps(tmp_path):
    """FORMATS.md §5a: the timestamped form (MIMSunit's re-creation: M/d/yyyy HH:mm:ss.fff)."""
    head = (
        "------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.4 Firmware v2.5.0 date format d/M/yyyy at 30 Hz"  # noqa: E501 (verbatim)
        "  Filter Normal -----------\nSerial Number: NEO1C04110003\nStart Time 11:55:00\nStart Date 20/12/2021\n"
        "Epoch Period (hh:mm:ss) 00:00:00\nDownload Time 12:09:58\nDownload Date 20/12/2021\nCurrent Memory Address: 0\n"  # noqa: E501 (verbatim)
        "Current Battery Voltage: 4.26     Mode = 12\n--------------------------------------------------\n"
    )
    rows = "".join(f"20/12/2021 11:55:00.{i * 33:03d},-0.015,0.029,-1.006\n" for i in range(3))
    f = tmp_path / "ts.csv"
    f.write_text(head + "Timestamp,Accelerometer X,Accelerometer Y,Accelerometer Z\n" + rows)
    rec = read(f, UTC)
    assert rec.t.tolist() == pytest.approx([1640001300.0, 1640001300.033, 1640001300.066])


def test_geneactiv_bin():
    """FORMATS.md §6: hex pages of 300 48-bit samples; g = (raw*100 - offset)/gain; the first sample
    (196, -3, -195) is (0.74, 0.01, -0.64) g; page times local in 'Time Zone:GMT +01:00'. The file is
    cut at 64 KiB: its last page is incomplete and left out."""
    rec = read(sample("geneactiv_GGIRread_GENEActiv_testfile.bin"))
    assert rec.xyz[0].tolist() == pytest.approx(
        [(196 * 100 - 439) / 25875, (-3 * 100 + 662) / 25734, (-195 * 100 + 3056) / 25538]
    )
    assert len(rec.t) % 300 == 0 and "incomplete page" in rec.describe()
    assert rec.t[0] == 1369905174.5  # 2013-05-30 10:12:54.500 at +01:00
    assert 1 / np.median(np.diff(rec.t)) == pytest.approx(85.7, abs=0.1)


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.iterdir()) if SAMPLES.is_dir() else [])
def test_no_traceback_on_any_sample(tmp_path, name):
    """Every shared sample through detect and convert: a result or a one-line error, never a traceback."""
    for args in (("detect", "--format", "json"), ("convert", "--output", str(tmp_path / "out.csv"))):
        p = run_cli(args[0], str(SAMPLES / name), *args[1:])
        assert "Traceback" not in p.stderr, p.stderr
        if p.returncode:
            _one_line_error(p)
        elif args[0] == "detect":
            assert "episodes" in json.loads(p.stdout)


# --- formats built from their description --------------------------------------------------------


def test_metabase_dialects(tmp_path):
    """FORMATS.md §1: MbientLab's own test asset (iOS, streamed: rows sharing an epoch), the Android
    header (``epoch (ms),time (01:00)``), MetaBase 5 (epoch in seconds, X,Y,Z), verbatim rows."""
    ios = (
        "epoc (ms),timestamp (-0800),elapsed (s),x-axis (g),y-axis (g),z-axis (g)\n"
        "1515983969561,2018-01-14T18.39.29.561,0.000,-0.013,-0.062,0.994\n"
        "1515983969561,2018-01-14T18.39.29.561,0.000,-0.013,-0.062,1.003\n"
        "1515983969561,2018-01-14T18.39.29.561,0.000,-0.014,-0.063,1.000\n"
        "1515983969801,2018-01-14T18.39.29.801,0.240,-0.014,-0.063,1.000\n"
        "1515983969801,2018-01-14T18.39.29.801,0.240,-0.013,-0.062,1.001"
    )
    android = (
        "epoch (ms),time (01:00),elapsed (s),x-axis (g),y-axis (g),z-axis (g)\n"
        "1547472169751,2019-01-14T14:22:49.751,0.000,-0.147,0.702,-0.276\n"
        "1547472169831,2019-01-14T14:22:49.831,0.080,-0.120,0.710,-0.360\n"
    )
    v5 = (
        "Epoch,Timestamp (-0800),Elapsed (s),X,Y,Z\n"
        "1639715268.244,2021-12-16T20.27.48.244,0.000,-0.0450,0.0048,1.0206\n"
        "1639715268.245,2021-12-16T20.27.48.245,0.001,-0.0455,0.0063,1.0309"
    )
    for name, text, t0 in (
        ("ios", ios, 1515983969.561),
        ("android", android, 1547472169.751),
        ("v5", v5, 1639715268.244),
    ):
        f = tmp_path / f"{name}.csv"
        f.write_text(text)
        rec = read(f)
        assert rec.format == "MbientLab MetaBase CSV" and rec.t[0] == pytest.approx(t0)
        assert np.all(np.diff(rec.t) > 0)
    assert read(tmp_path / "ios.csv").t.tolist() == pytest.approx(1515983969.561 + np.arange(5) * 0.08)
    f = tmp_path / "gyro.csv"
    f.write_text("epoch (ms),time (01:00),elapsed (s),x-axis (deg/s),y-axis (deg/s),z-axis (deg/s)\n1,t,0,1,2,3\n")
    with pytest.raises(RecordingError, match="another sensor"):
        read(f)
    f = tmp_path / "excel.csv"  # FORMATS.md §1b: copies re-saved through Excel
    f.write_text(
        android.splitlines()[0] + "\n" + "".join("1.54747E+12,t,0.08,-0.147,0.702,-0.276\n" for _ in range(50))
    )
    with pytest.raises(RecordingError, match="distinct values"):
        read(f)


def test_witmotion_tab_and_comma_forms(tmp_path):
    """FORMATS.md §3 (no real sample: the columns independent readers agree on). The 2024 PC app's
    comma form with leading spaces; the older tab-separated form with a colon before the ms."""
    cols = [
        "Time",
        "Device name",
        "Chip Time()",
        "Acceleration X(g)",
        "Acceleration Y(g)",
        "Acceleration Z(g)",
        "Angular velocity X(°/s)",
    ]
    f = tmp_path / "data__1.csv"
    f.write_text(
        ",".join(cols)
        + "\n"
        + " 16:44:16.689, WT901BLE67, 2024-3-19 16:44:16.689, 0.012, -0.03, 0.998, 0.1\n"
        + " 16:44:16.709, WT901BLE67, 2024-3-19 16:44:16.709, 0.013, -0.03, 0.997, 0.1\n"
    )
    rec = read(f, UTC)
    assert rec.format == "WitMotion export" and rec.t[0] == pytest.approx(1710866656.689)
    assert rec.xyz[1].tolist() == [0.013, -0.03, 0.997]
    g = tmp_path / "old.txt"
    g.write_text("\t".join(cols) + "\n" + "16:44:16.689\tWT901\t2024-3-19 6:4:16:689\t0,012\t-0,03\t0,998\t0,1\n")
    rec = read(g, UTC)
    assert rec.t[0] == pytest.approx(1710828256.689) and rec.xyz[0].tolist() == [0.012, -0.03, 0.998]


def test_sensor_logger_and_phyphox(tmp_path):
    """FORMATS.md §7c (Sensor Logger: ``time,seconds_elapsed,z,y,x``, ns, m/s²; Accelerometer.csv has
    no gravity) and §7a (phyphox: quoted header, 9-decimal scientific numbers, meta/time.csv)."""
    f = tmp_path / "TotalAcceleration.csv"
    f.write_text(
        "time,seconds_elapsed,z,y,x\n1679068247354694100,0.155694091796875,9.66539192199707,-0.002394201699644327,0.12689268589019775\n"
    )
    rec = read(f)
    assert rec.t[0] == pytest.approx(1679068247.3546941) and rec.xyz[0, 2] == pytest.approx(9.66539192199707 / 9.80665)
    lin = tmp_path / "Accelerometer.csv"
    lin.write_text(
        "time,seconds_elapsed,z,y,x\n1679068247354694100,0.155694091796875,-0.1404123306274414,0.00003547011874616146,-0.0018799155950546265\n"
    )
    with pytest.raises(RecordingError, match=r"TotalAcceleration\.csv"):
        read(lin)
    head = '"Time (s)","Acceleration x (m/s^2)","Acceleration y (m/s^2)","Acceleration z (m/s^2)","Absolute acceleration (m/s^2)"\n'  # noqa: E501 (verbatim)
    body = "6.999333331E-3,-3.049845558E-2,-2.898154166E-2,9.806650000E0,9.806699E0\n1.699833333E-2,0.0E0,0.0E0,9.8E0,9.8E0\n"  # noqa: E501 (verbatim)
    meta = '"event","experiment time","system time","system time text"\n"START",0.000000000000000E0,1.705472086068796E9,"2024-01-17 08:14:46.069 UTC+02:00"\n'  # noqa: E501 (verbatim)
    z = tmp_path / "phyphox.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("Raw Data.csv", head + body)
        zf.writestr("meta/time.csv", meta)
    rec = read(z)
    assert rec.format == "phyphox export" and rec.t[0] == pytest.approx(1705472086.068796 + 0.006999333331)
    assert rec.xyz[0, 2] == pytest.approx(1.0)
    bare = tmp_path / "Raw Data.csv"
    bare.write_text(head + body)
    with pytest.raises(RecordingError, match=r"meta/time\.csv"):
        read(bare)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "time.csv").write_text(meta)
    assert read(bare).t[0] == rec.t[0]
    linear = tmp_path / "lin.csv"
    linear.write_text(head.replace("Acceleration x", "Linear Acceleration x") + body)
    with pytest.raises(RecordingError, match="no gravity"):
        read(linear)


def test_readers_import_only_what_their_docstring_allows():
    from test_layers import GRAPH

    allowed = ("legwatch.readers", "legwatch.csvio", "legwatch.errors", "legwatch")
    bad = [
        (m, d)
        for m, deps in GRAPH.items()
        if m.startswith("legwatch.readers")
        for d in deps
        if d not in allowed and not d.startswith("legwatch.readers.")
    ]
    assert bad == [] and any(m.startswith("legwatch.readers.") for m in GRAPH)


def test_sniffing_is_by_content_not_by_name(tmp_path):
    f = tmp_path / "night.cwa"  # a name that lies
    f.write_text("timestamp,ax,ay,az\n1767650000,0,0,1\n")
    assert sniff(f) == "legwatch_csv"
    g = tmp_path / "notes.csv"
    g.write_text("hello,world\n")
    with pytest.raises(RecordingError, match="not a recording legwatch reads"):
        read(g)


# --- the same night in every format: the same episodes ------------------------------------------------

_T0 = 1767650400.0  # 2026-01-05 22:00 UTC


@pytest.fixture(scope="module")
def base_night(tmp_path_factory):
    """A 1.5-hour generated night at the resolution every format below holds exactly (ms, mg)."""
    from detector.synthetic import generate_night

    night = generate_night(5, hours=1.5, rate_hz=52.0, cramps=1, plm_series=1, twitches=4, gaps=0)
    t = np.round(night.t - night.t[0] + _T0, 3)
    xyz = np.round(night.xyz, 3)
    d = tmp_path_factory.mktemp("formats")
    ref = d / "ref.csv"
    ref.write_text(
        "timestamp,ax,ay,az\n"
        + "".join(f"{a:.3f},{x:.3f},{y:.3f},{z:.3f}\n" for a, x, y, z in zip(t, *xyz.T, strict=True))
    )
    return t, xyz, d, _episodes(run_cli("detect", str(ref), "--format", "json", check=True))


def _episodes(proc) -> list:
    return [(e["kind"], round(e["start"], 2), round(e["end"], 2)) for e in json.loads(proc.stdout)["episodes"]]


def _iso_local(t: np.ndarray) -> list[str]:
    return np.datetime_as_string((t * 1000).round().astype("datetime64[ms]"), unit="ms").tolist()


def _write(fmt: str, t: np.ndarray, xyz: np.ndarray, path: Path) -> None:
    rows = zip(t.tolist(), *xyz.T.tolist(), strict=True)
    out = io.StringIO()
    if fmt == "ms-mg":
        out.write(
            "timestamp,ax,ay,az\n"
            + "".join(f"{round(a * 1000)},{x * 1000:.0f},{y * 1000:.0f},{z * 1000:.0f}\n" for a, x, y, z in rows)
        )
    elif fmt == "us-ms2":
        out.write(
            "timestamp,ax,ay,az\n"
            + "".join(f"{round(a * 1e6)},{x * 9.80665!r},{y * 9.80665!r},{z * 9.80665!r}\n" for a, x, y, z in rows)
        )
    elif fmt == "iso-zone":
        out.write(
            "timestamp,ax,ay,az\n"
            + "".join(
                f"{s}+01:00,{x:.3f},{y:.3f},{z:.3f}\n"
                for s, (x, y, z) in zip(_iso_local(t + 3600), xyz.tolist(), strict=True)
            )
        )
    elif fmt == "polar":
        out.write("Phone timestamp;sensor timestamp [ns];X [mg];Y [mg];Z [mg]\n")
        ns = (np.round(t * 1000).astype(np.int64) - 946_684_800_000) * 1_000_000
        out.write(
            "".join(
                f"{s};{n};{x * 1000:.0f};{y * 1000:.0f};{z * 1000:.0f}\n"
                for s, n, (x, y, z) in zip(_iso_local(t), ns.tolist(), xyz.tolist(), strict=True)
            )
        )
    elif fmt == "metabase":
        out.write("epoc (ms),timestamp (+0000),elapsed (s),x-axis (g),y-axis (g),z-axis (g)")
        out.write(
            "".join(
                f"\n{round(a * 1000)},{s.replace(':', '.')},{a - t[0]:.3f},{x:.3f},{y:.3f},{z:.3f}"
                for s, (a, x, y, z) in zip(_iso_local(t), rows, strict=True)
            )
        )
    elif fmt == "witmotion":
        out.write("Time,Device name,Chip Time(),Acceleration X(g),Acceleration Y(g),Acceleration Z(g)\n")
        out.write(
            "".join(
                f" {s[11:]}, WT901BLE67, {s.replace('T', ' ')}, {x:.3f}, {y:.3f}, {z:.3f}\n"
                for s, (x, y, z) in zip(_iso_local(t), xyz.tolist(), strict=True)
            )
        )
    elif fmt == "sensor-logger":
        out.write("time,seconds_elapsed,z,y,x\n")
        out.write(
            "".join(
                f"{round(a * 1000) * 1_000_000},{a - t[0]!r},{z * 9.80665!r},{y * 9.80665!r},{x * 9.80665!r}\n"
                for a, x, y, z in rows
            )
        )
    path.write_text(out.getvalue())


@pytest.mark.parametrize("fmt", ["ms-mg", "us-ms2", "iso-zone", "polar", "metabase", "witmotion", "sensor-logger"])
def test_the_same_night_in_any_format_gives_the_same_episodes(base_night, fmt):
    t, xyz, d, want = base_night
    f = d / f"night-{fmt}.txt"
    _write(fmt, t, xyz, f)
    got = run_cli("detect", str(f), "--format", "json", "--tz", "UTC", check=True)
    assert want and _episodes(got) == want
    read_as = json.loads(got.stdout)["read"]
    assert {"ms-mg": "mg", "us-ms2": "m/s²", "polar": "mg", "sensor-logger": "m/s²"}.get(fmt, "g") == read_as[
        "units"
    ].split(" ")[0]


# --- units and time units of legwatch CSV ----------------------------------------------------------------


def _csv(tmp_path, rows: list[str], name: str = "r.csv") -> Path:
    f = tmp_path / name
    f.write_text("timestamp,ax,ay,az\n" + "\n".join(rows) + "\n")
    return f


def test_units_are_said_in_the_output(tmp_path):
    f = _csv(tmp_path, [f"{1767650400000 + 20 * i},{i % 3},-10,1000" for i in range(100)])
    out = run_cli("detect", str(f), check=True).stdout
    assert "acceleration in mg" in " ".join(out.split()) and "timestamps in ms" in " ".join(out.split())
    doc = json.loads(run_cli("detect", str(f), "--format", "json", check=True).stdout)
    assert doc["read"]["units"].startswith("mg") and doc["read"]["timestamps"].startswith("in ms")
    assert doc["remarks"] and "short" in doc["remarks"][0]


@pytest.mark.parametrize(
    ("rows", "flags", "says"),
    [
        ([f"{1767650400 + i / 50},0,0,3.3" for i in range(100)], (), "--units"),  # 3.3: neither g nor m/s²
        ([f"{1767650400 + i / 50},0,0,0.05" for i in range(100)], (), "no gravity"),
        ([f"{1767650400 + i / 50},0,0,1" for i in range(100)], ("--units", "furlongs"), "--units 'furlongs'"),
        ([f"{1767650400 + i / 50},0,0,1" for i in range(100)], ("--tz", "Mars/Olympus"), "--tz 'Mars/Olympus'"),
    ],
)
def test_ambiguous_or_bad_units_are_one_line_errors(tmp_path, rows, flags, says):
    f = _csv(tmp_path, rows)
    assert says in _one_line_error(run_cli("detect", str(f), *flags))


def test_flags_settle_what_the_file_cannot(tmp_path):
    f = _csv(tmp_path, [f"{1767650400 + i / 50},0,0,3.3" for i in range(100)])
    doc = json.loads(run_cli("detect", str(f), "--units", "g", "--format", "json", check=True).stdout)
    assert doc["read"]["units"] == "g (as --units says)"
    g = _csv(tmp_path, [f"{1767650400123 + 20 * i},0,0,1" for i in range(100)], "ms.csv")
    doc = json.loads(run_cli("detect", str(g), "--time-unit", "us", "--format", "json", check=True).stdout)
    assert doc["read"]["timestamps"] == "in µs (as --time-unit says)"


def test_local_iso_times_follow_tz(tmp_path):
    f = _csv(tmp_path, [f"2026-07-05T22:00:{i / 50:06.3f},0,0,1" for i in range(100)])
    berlin = read(f, ReadOptions(tz="Europe/Berlin"))
    assert berlin.t[0] == 1783288800.0 - 7200  # 22:00 UTC less summer time's +02:00
    assert "local time in Europe/Berlin" in berlin.times


# --- import: what cannot be a night, many files, in parallel -------------------------------------------


def _store_nights(d: Path) -> int:
    import sqlite3

    db = d / "legwatch.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        table = next(t for t in tables if "point" in t)
        return con.execute(f"SELECT count(*) FROM {table} WHERE measurement='night'").fetchone()[0]


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (["1767650400,0,0,1", "1767650400.02,0,0,1"], "short"),
        ([f"{1767650400 + i / 5},0,0,1" for i in range(5 * 1200)], "sample rate is 5 Hz"),
        ([f"{1767650400 + i / 50},0,0,1.6" for i in range(50 * 1200)], "no accelerometer at rest"),
        ([f"{i / 50},0,0,1" for i in range(50 * 1200)], "outside 2000-2100"),
    ],
)
def test_import_refuses_what_cannot_be_a_night_and_stores_nothing(tmp_path, rows, says):
    f = _csv(tmp_path, rows)
    d = tmp_path / "data"
    line = _one_line_error(run_cli("import", str(f), "--data-dir", str(d)))
    assert says in line and "nothing stored" in line
    assert _store_nights(d) == 0


def test_import_of_a_millisecond_file_on_sqlite(tmp_path, base_night):
    t, xyz, _, _ = base_night
    f = tmp_path / "ms.csv"
    _write("ms-mg", t, xyz, f)
    d = tmp_path / "data"
    out = run_cli("import", str(f), "--data-dir", str(d), check=True).stdout
    assert "timestamps in ms" in out and "stored the night" in out
    assert _store_nights(d) == 1


def test_import_a_folder_in_parallel_reports_each_file(tmp_path, base_night):
    t, xyz, _, _ = base_night
    folder = tmp_path / "nights"
    folder.mkdir()
    _write("ms-mg", t, xyz, folder / "left.csv")
    _write("polar", t + 86400, xyz, folder / "right.txt")
    (folder / "broken.csv").write_text("timestamp,ax,ay,az\n1767650400,0,0,1\n1767650400.02,0,zero,1\n")
    (folder / "README.md").write_text("not a recording\n")
    d = tmp_path / "data"
    p = run_cli("import", str(folder), "--data-dir", str(d), "--tz", "UTC")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "broken.csv:3: ay is not a number" in p.stderr
    assert p.stdout.count("stored the night of") == 2 and "README.md: not a recording" in p.stdout
    assert "2 of 3 files stored, 1 refused, 1 skipped" in p.stdout
    assert _store_nights(d) == 2


def test_convert_writes_legwatch_csv(tmp_path):
    out = tmp_path / "ax3.csv"
    p = run_cli(
        "convert", str(sample("axivity_ax3_GGIRread_ax3_testfile.cwa")), "--output", str(out), "--tz", "UTC", check=True
    )
    assert "read as Axivity .cwa" in p.stderr and "wrote 17400 samples" in p.stderr
    back = read(out)
    rec = read(sample("axivity_ax3_GGIRread_ax3_testfile.cwa"), UTC)
    assert np.abs(back.t - rec.t).max() < 1e-6 and np.abs(back.xyz - rec.xyz).max() < 1e-5
    p = run_cli("convert", str(sample("polar_sensor_logger_VeritySense_ACC.txt")), "--tz", "UTC", check=True)
    assert p.stdout.startswith("timestamp,ax,ay,az\n") and p.stdout.count("\n") == 26_527


_HEADS = [
    b"timestamp,ax,ay,az\n",
    b"epoc (ms),timestamp (-0800),elapsed (s),x-axis (g),y-axis (g),z-axis (g)\n",
    b"Epoch,Timestamp (-0800),Elapsed (s),X,Y,Z\n",
    b"Phone timestamp;sensor timestamp [ns];X [mg];Y [mg];Z [mg]\n",
    b"Time,Device name,Chip Time(),Acceleration X(g),Acceleration Y(g),Acceleration Z(g)\n",
    b'"Time (s)","Acceleration x (m/s^2)","Acceleration y (m/s^2)","Acceleration z (m/s^2)"\n',
    b"time,seconds_elapsed,z,y,x\n",
    b"------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.4 date format M/d/yyyy at 30 Hz\n",
    b"Device Identity\r\nDevice Unique Serial Code:012967\r\n",
    b"MD\xfc\x03",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.sampled_from(_HEADS), tail=st.binary(max_size=2000))
def test_fuzz_every_format_only_raises_recording_error(tmp_path, head, tail):
    """Whatever follows a format's header, a reader gives a recording or a one-line RecordingError."""
    p = tmp_path / "f"
    p.write_bytes(head + tail)
    try:
        rec = read(p)
    except RecordingError as exc:
        assert "\n" not in str(exc)
        return
    assert len(rec.t) == len(rec.xyz) > 0


# --- binary formats built from their published layout: the same episodes as legwatch CSV ----------


def _even_night(rate: float, scale: float):
    """A 1.5-hour generated night resampled onto an even clock at ``rate`` (a logger's), values in
    whole counts of 1/``scale`` g: what the binary formats below hold exactly."""
    from detector.synthetic import generate_night

    night = generate_night(6, hours=1.5, rate_hz=rate, cramps=1, plm_series=1, twitches=4, gaps=0)
    n = len(night.t)
    t = _T0 + np.arange(n) / rate
    counts = np.clip(np.round(night.xyz * scale), -2047, 2047).astype(np.int64)
    return t, counts


def _cwa_time(naive: float) -> int:
    import datetime as dt

    d = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=naive)
    return (d.year - 2000) << 26 | d.month << 22 | d.day << 17 | d.hour << 12 | d.minute << 6 | d.second


def _write_cwa(path: Path, t: np.ndarray, counts: np.ndarray, rate: float) -> None:
    """cwa.h: header "MD" (1024 bytes), 512-byte "AX" blocks of 80 unpacked int16 x,y,z samples,
    each stamped with the whole second that sample ``timestampOffset`` falls on, checksum 0."""
    import struct

    head = bytearray(1024)
    struct.pack_into("<2sHB", head, 0, b"MD", 1020, 0)
    head[36] = 0x4A  # 100 Hz, ±8 g
    out = [bytes(head)]
    per = 80
    for seq, i in enumerate(range(0, len(t) - per + 1, per)):
        first = t[i]
        whole = np.ceil(first)
        offset = int(round((whole - first) * rate))
        blk = bytearray(512)
        struct.pack_into(
            "<2sHHIIIHHBBBBhH", blk, 0, b"AX", 508, 0, 0, seq, _cwa_time(whole), 0, 0, 0, 0, 0x4A, 0x32, offset, per
        )
        blk[30 : 30 + per * 6] = counts[i : i + per].astype("<i2").tobytes()
        words = np.frombuffer(bytes(blk), "<u2")
        struct.pack_into("<H", blk, 510, (-int(words[:255].sum())) & 0xFFFF)
        out.append(bytes(blk))
    path.write_bytes(b"".join(out))


def _write_gt3x(path: Path, t: np.ndarray, counts: np.ndarray, rate: int) -> None:
    """GT3X-File-Format: a ZIP of info.txt and log.bin; one ACTIVITY2 record (0x1A: int16 X,Y,Z)
    per second, stamped in Unix seconds (local), checksum = ~XOR of the record's bytes."""
    import struct

    records = []
    for i in range(0, len(t) - rate + 1, rate):
        payload = counts[i : i + rate].astype("<i2").tobytes()
        rec = struct.pack("<BBIH", 0x1E, 0x1A, int(t[i]), len(payload)) + payload
        records.append(rec + bytes([np.bitwise_xor.reduce(np.frombuffer(rec, np.uint8)) ^ 0xFF]))
    info = (
        f"Serial Number: MOS0TEST\nDevice Type: wGT3XBT\nSample Rate: {rate}\nTimeZone: 00:00:00\n"
        "Acceleration Scale: 256.0\n"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("log.bin", b"".join(records))
        z.writestr("info.txt", info)


def _write_geneactiv(path: Path, t: np.ndarray, counts: np.ndarray, rate: float) -> None:
    """FORMATS.md §6: the header's sections, then pages of 300 samples as 3600 hex digits (12-bit
    x, y, z, 12 bits of light/button), g = (raw * 100 - offset) / gain with gain 25600, offset 0."""
    import datetime as dt

    def stamp(x: float) -> str:
        d = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=round(x, 3))
        return d.strftime("%Y-%m-%d %H:%M:%S:") + f"{d.microsecond // 1000:03d}"

    lines = [
        "Device Identity",
        "Device Unique Serial Code:000001",
        "",
        "Configuration Info",
        f"Measurement Frequency:{rate:g} Hz",
        f"Start Time:{stamp(t[0])}",
        "Time Zone:GMT +00:00",
        "",
        "Calibration Data",
    ] + [f"{a} {k}:{v}" for a in "xyz" for k, v in (("gain", 25600), ("offset", 0))]
    lines += ["Volts:300", "Lux:800", "", "Memory Status", f"Number of Pages:{len(t) // 300}", ""]
    for p, i in enumerate(range(0, len(t) - 299, 300)):
        c = counts[i : i + 300] & 0xFFF
        v = (c[:, 0] << 36) | (c[:, 1] << 24) | (c[:, 2] << 12)
        hexline = "".join(f"{int(x):012X}" for x in v)
        lines += [
            "Recorded Data",
            "Device Unique Serial Code:000001",
            f"Sequence Number:{p}",
            f"Page Time:{stamp(t[i])}",
            "Unassigned:",
            "Temperature:21.5",
            "Battery voltage:4.1",
            "Device Status:Recording",
            f"Measurement Frequency:{rate:g}",
            hexline,
        ]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="ascii")


@pytest.mark.parametrize(("fmt", "rate"), [("cwa", 100), ("gt3x", 30), ("geneactiv", 100)])
def test_binary_formats_built_from_their_layout_give_the_same_episodes(tmp_path, fmt, rate):
    t, counts = _even_night(rate, 256.0)
    n = {"cwa": 80, "gt3x": rate, "geneactiv": 300}[fmt]
    t, counts = t[: len(t) // n * n], counts[: len(t) // n * n]
    ref = tmp_path / "ref.csv"
    xyz = counts / 256.0
    ref.write_text(
        "timestamp,ax,ay,az\n"
        + "".join(f"{a!r},{x!r},{y!r},{z!r}\n" for a, x, y, z in zip(t.tolist(), *xyz.T.tolist(), strict=True))
    )
    f = tmp_path / {"cwa": "n.cwa", "gt3x": "n.gt3x", "geneactiv": "n.bin"}[fmt]
    {"cwa": _write_cwa, "gt3x": _write_gt3x, "geneactiv": _write_geneactiv}[fmt](f, t, counts, rate)
    rec = read(f, UTC)
    assert np.array_equal(rec.xyz, xyz) and np.abs(rec.t - t).max() < 1e-6
    want = _episodes(run_cli("detect", str(ref), "--format", "json", check=True))
    got = _episodes(run_cli("detect", str(f), "--format", "json", "--tz", "UTC", check=True))
    assert want and got == want


def test_a_polar_sensor_clock_never_set_moves_onto_the_phone_clock(tmp_path):
    """FORMATS.md §2: 'On an H10 whose clock was never set the value restarts from a firmware default'."""
    f = tmp_path / "h10.txt"
    ns0 = 600_000_000_000_000_000  # 2019-01-05: not the phone's 2022-04-25
    rows = "".join(f"2022-04-25T11:39:{36 + i * 0.02:06.3f};{ns0 + i * 20_000_000};-777;436;-499\n" for i in range(50))
    f.write_text("Phone timestamp;sensor timestamp [ns];X [mg];Y [mg];Z [mg]\n" + rows)
    rec = read(f, UTC)
    assert rec.t[0] == pytest.approx(1650886776.0, abs=1e-3) and np.diff(rec.t) == pytest.approx(0.02, abs=1e-6)
    assert "moved onto the phone's clock" in rec.describe()


def test_an_epoch_of_no_known_unit_names_time_unit(tmp_path):
    """MetaBase 5's ``Epoch`` column has no unit in its header: its size decides, else --time-unit."""
    f = tmp_path / "mb5.csv"
    f.write_text("Epoch,Timestamp (-0800),Elapsed (s),X,Y,Z\n12345.6,t,0,0,0,1\n12345.7,t,0,0,0,1\n")
    line = _one_line_error(run_cli("detect", str(f)))
    assert "--time-unit" in line and "mb5.csv" in line
    ok = run_cli("detect", str(f), "--time-unit", "s", "--format", "json", check=True)
    assert json.loads(ok.stdout)["remarks"]
