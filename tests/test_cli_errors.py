"""Bad input on the command line: one line on stderr, exit status 2, nothing written.

The cases of issue 24 (each raised a traceback before): ``--out`` naming an existing file,
``--method nuts --draws 0``, ``--chains 0``, a 1-row and a 2-row CSV (the last two wrote half a
report first), an index column of day-first dates read month-first, unsorted dates; and the
explosive transition over a long run of missing values, which every function reports with the
same error.
"""

from __future__ import annotations

import numpy as np
import pytest

import pymc_dlm as dlm
import pymc_dlm.cli as cli


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "one.csv").write_text("t,y\n1,2.0\n")
    (tmp_path / "two.csv").write_text("t,y\n1,2.0\n2,3.0\n")
    (tmp_path / "taken").write_text("a file")
    (tmp_path / "unsorted.csv").write_text("t,y\n2020-01-01,1\n2020-03-01,2\n2020-02-01,3\n")
    (tmp_path / "dmy.csv").write_text("t,y\n" + "".join(
        f"01/{m:02d}/2020,{m}\n" for m in range(1, 8)))
    (tmp_path / "words.csv").write_text("t,y\nmonday,1\ntuesday,2\nfriday,3\n")
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (["--out", "{d}/taken"], "--out {d}/taken is an existing file; name a folder"),
    (["--method", "nuts", "--draws", "0"], "NUTS needs --draws >= 1, --chains >= 1"),
    (["--method", "nuts", "--chains", "0"], "NUTS needs --draws >= 1, --chains >= 1"),
    (["{d}/one.csv"], "the series has 1 observed value; the model 'level' needs at least 4"),
    (["{d}/two.csv"], "the series has 2 observed values; the model 'level' needs at least 4"),
    (["{d}/unsorted.csv"], "y's index is not sorted: 2020-03-01 comes before 2020-02-01"),
    (["{d}/words.csv"], "the index column 't' holds neither integers nor dates (row 2: "
                        "'monday'"),
])
def test_one_line_exit_2_nothing_written(files, capsys, args, message):
    out = files / "report"
    argv = ["fit"] + [a.format(d=files) for a in args]
    if "--out" not in argv:
        argv += ["--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pymc-dlm: error: ")
    assert message.format(d=files) in err[0]
    assert not out.exists()


def test_dates_are_parsed_and_the_reading_said(files):
    """01/02/2020 .. 01/07/2020: month starts read day-first, days read month-first."""
    from pymc_dlm.workflow.run import read_data

    notes = []
    y, _ = read_data(str(files / "dmy.csv"), dayfirst=True, echo=notes.append)
    assert y.index.freqstr == "MS" and str(y.index[1].date()) == "2020-02-01"
    assert "parsed day-first: '01/01/2020' -> 2020-01-01" in notes[0]
    y, _ = read_data(str(files / "dmy.csv"), echo=notes.append)
    assert y.index.freqstr == "D" and "parsed month-first (--dayfirst for dd/mm/yyyy)" in notes[2]


def test_explosive_gap_gives_one_error_everywhere():
    mod = dlm.StateSpaceModel(Z=[[1.0]], T=[[1.5]], Q=[[1.0]], H=[[1.0]], P1=[[1.0]],
                              diffuse=[False])
    y = np.r_[np.ones(5), np.full(2000, np.nan), np.ones(5)]
    calls = [lambda: dlm.kalman_filter(mod, y), lambda: dlm.loglike(mod, y),
             lambda: dlm.kalman_smoother(mod, y), lambda: dlm.forecast(mod, y[:1000], 3),
             # the gap runs to the end of the data: no observation meets the overflow
             lambda: dlm.kalman_filter(mod, y[:1000]), lambda: dlm.kalman_smoother(mod, y[:1000])]
    for call in calls:
        with pytest.raises(ValueError, match=r"covariances overflowed \(not finite.*\): an "
                                             r"explosive transition"):
            call()
