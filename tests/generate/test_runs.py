"""The generated runs.py: the `runs` table, the `plot` PNG and the `fit --sweep` grid, on run
folders built by hand in the agreed layout (config.yaml, run.json, logs/metrics.csv)."""

import json
import re
import sys

import pytest
import yaml

from torch_scaffold.generate import render_project
from torch_scaffold.generate.render import templates_root
from torch_scaffold.spec.schema import Spec

from .helpers import project_module, write_files

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# The plain loop's layout: one row per logged step, the epoch's values on its last row.
PLAIN_CSV = """\
epoch,step,train_loss_step,train_loss_epoch,val_loss,val_accuracy,test_loss,test_accuracy
0,10,1.06,,,,,
0,26,,1.02,0.90,0.68,,
1,30,0.91,,,,,
1,52,,0.74,0.56,0.81,,
2,52,,,,,0.53,0.87
"""
# Lightning's CSVLogger: sorted columns, train and val values of an epoch on separate rows;
# resumed at epoch 1, which is logged again (the later row counts).
LIGHTNING_CSV = """\
epoch,step,test_accuracy,test_loss,train_loss_epoch,train_loss_step,val_accuracy,val_f1,val_loss
0,9,,,,1.06,,,
0,25,,,,,0.60,0.55,0.95
0,25,,,1.10,,,,
1,51,,,,,0.70,0.65,0.80
1,51,,,0.90,,,,
1,51,,,,,0.75,0.70,0.70
1,51,,,0.85,,,,
2,77,,,,,0.79,0.74,0.62
2,77,,,0.66,,,,
"""
BASE_CONFIG = {
    "output_dir": "outputs",
    "model": {"hidden_sizes": [128, 64], "dropout": 0.1},
    "optimizer": {"lr": 0.001, "betas": [0.9, 0.999]},
    "trainer": {"max_epochs": 10, "checkpoint": {"monitor": "val_loss", "mode": "min"}},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("p")
    return write_files(render_project(Spec(), "pytorch", format_code=False), folder)


@pytest.fixture
def runs(project):
    with project_module(project, "tabular_classifier", "runs") as module:
        yield module


def make_run(root, name, *, info=None, changes=None, csv=None):
    """A run folder: config.yaml (BASE_CONFIG with dotted `changes`), run.json, metrics.csv."""
    folder = root / name
    config = json.loads(json.dumps(BASE_CONFIG))
    for dotted, value in (changes or {}).items():
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[leaf] = value
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    if info is not None:
        (folder / "run.json").write_text(json.dumps({"name": name, **info}), encoding="utf-8")
    if csv is not None:
        (folder / "logs").mkdir()
        (folder / "logs" / "metrics.csv").write_text(csv, encoding="utf-8")
    return folder


def table_rows(table):
    """The table as {name: {column: cell}} (cells are separated by two or more spaces)."""
    header, *lines = table.splitlines()
    columns = re.split(r"\s{2,}", header)
    rows = {}
    for line in lines:
        cells = re.split(r"\s{2,}", line)
        rows[cells[0]] = dict(zip(columns, cells + [""] * (len(columns) - len(cells))))
    return columns, rows


def test_the_runs_module_is_copied_as_written_in_both_styles():
    shared = (templates_root() / "_shared" / "runs.py").read_text(encoding="utf-8")
    for style in ("pytorch", "lightning"):
        assert render_project(Spec(), style)["tabular_classifier/runs.py"] == shared


# -- runs -------------------------------------------------------------------------------------


def test_table_lists_runs_oldest_first_with_what_differs_best_and_status(runs, tmp_path):
    root = tmp_path / "outputs"
    make_run(
        root,
        "base",
        info={"started": "2026-12-02T01:00:00", "status": "finished", "best": 0.5},
        csv=PLAIN_CSV,
    )
    make_run(
        root,
        "fast",
        info={
            "started": "2026-12-02T00:30:00",
            "status": "diverged",
            "monitor": "val_accuracy",
            "mode": "max",
        },
        changes={"optimizer.lr": 0.01, "model.hidden_sizes": [64]},
        csv=PLAIN_CSV,
    )
    make_run(
        root,
        "resumed",
        info={
            "started": "2026-12-02T02:15:30",
            "status": "running",
            "monitor": "val_f1",
            "mode": "max",
            "best": None,
        },
        changes={"model.dropout": 0.2},
        csv=LIGHTNING_CSV,
    )
    (root / "checkpoints").mkdir()  # not a run: no run.json
    (root / "notes.txt").write_text("x")

    columns, rows = table_rows(runs.list_runs(str(root)))

    assert columns == ["name", "started", "best", "status", "differences"]
    assert list(rows) == ["fast", "base", "resumed"]  # by start time, not by name
    assert rows["base"]["started"] == "2026-12-02 01:00:00"
    # only the keys whose values differ between the runs, written as --set would take them
    assert (
        rows["fast"]["differences"] == "model.dropout=0.1 model.hidden_sizes=[64] optimizer.lr=0.01"
    )
    assert rows["base"]["differences"] == (
        "model.dropout=0.1 model.hidden_sizes=[128, 64] optimizer.lr=0.001"
    )
    assert rows["resumed"]["differences"] == (
        "model.dropout=0.2 model.hidden_sizes=[128, 64] optimizer.lr=0.001"
    )
    # run.json's best; else the best in metrics.csv by run.json's monitor and mode (the
    # config's checkpoint monitor, min, when run.json names none)
    assert rows["base"]["best"] == "val_loss=0.5"
    assert rows["fast"]["best"] == "val_accuracy=0.81"  # mode min would give 0.68
    assert rows["resumed"]["best"] == "val_f1=0.74"
    assert {name: row["status"] for name, row in rows.items()} == {
        "fast": "diverged",
        "base": "finished",
        "resumed": "running",
    }


def test_best_comes_from_the_config_monitor_when_run_json_names_none(runs, tmp_path):
    make_run(tmp_path, "a", info={"status": "finished"}, csv=PLAIN_CSV)
    make_run(
        tmp_path,
        "b",
        info={"status": "finished"},
        changes={"trainer.checkpoint": {"monitor": "val_accuracy", "mode": "max"}},
        csv=PLAIN_CSV,
    )
    make_run(tmp_path, "no-logs", info={"status": "failed"})
    _, rows = table_rows(runs.list_runs(str(tmp_path)))
    assert rows["a"]["best"] == "val_loss=0.56"
    assert rows["b"]["best"] == "val_accuracy=0.81"
    assert rows["no-logs"]["best"] == "-"


def test_named_runs_are_compared_among_themselves(runs, tmp_path):
    """fit --sweep prints the table of its own runs: the swept keys are what differs."""
    info = {"status": "finished", "started": "2026-12-02T00:00:00"}
    make_run(tmp_path, "earlier", info=info, changes={"model.dropout": 0.5})
    make_run(tmp_path, "lr=0.001", info=info, changes={"optimizer.lr": 0.001})
    make_run(tmp_path, "lr=0.01", info=info, changes={"optimizer.lr": 0.01})
    _, rows = table_rows(runs.list_runs(str(tmp_path), names=["lr=0.001", "lr=0.01"]))
    assert set(rows) == {"lr=0.001", "lr=0.01"}
    assert rows["lr=0.01"]["differences"] == "optimizer.lr=0.01"
    assert rows["lr=0.001"]["differences"] == "optimizer.lr=0.001"


def test_one_run_has_no_differences_and_an_unreadable_run_json_is_shown(runs, tmp_path):
    make_run(tmp_path, "only", info={"status": "finished", "started": "2026-12-02T00:00:00"})
    _, rows = table_rows(runs.list_runs(str(tmp_path)))
    assert rows["only"]["differences"] == ""

    broken = make_run(tmp_path, "broken", info={})
    (broken / "run.json").write_text("{not json", encoding="utf-8")
    _, rows = table_rows(runs.list_runs(str(tmp_path)))
    assert rows["broken"]["status"] == "unreadable run.json"
    assert rows["broken"]["started"] == "?"

    other = make_run(tmp_path, "other", info={"status": "failed"}, changes={"model.dropout": 0.3})
    (other / "config.yaml").unlink()  # compared without it, not as if every key differed
    _, rows = table_rows(runs.list_runs(str(tmp_path)))
    assert rows["other"]["differences"] == rows["only"]["differences"] == ""


@pytest.mark.parametrize("make", ["missing", "empty", "only-non-runs"])
def test_no_runs_is_said_plainly(runs, tmp_path, make):
    root = tmp_path / "outputs"
    if make != "missing":
        root.mkdir()
    if make == "only-non-runs":
        (root / "checkpoints").mkdir()
    assert runs.list_runs(str(root)) == (
        f"no runs in {root} yet; train one with: python -m tabular_classifier fit"
    )


# -- plot -------------------------------------------------------------------------------------


def test_plot_writes_a_png_with_every_runs_curves(runs, tmp_path):
    plain = make_run(tmp_path, "plain", info={"status": "finished"}, csv=PLAIN_CSV)
    lit = make_run(tmp_path, "lit", info={"status": "finished"}, csv=LIGHTNING_CSV)
    output = tmp_path / "plots" / "curves.png"

    figure = runs.plot_runs([str(plain), str(lit)], str(output))

    data = output.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    # the loss panel and one panel per validation metric that any run logged
    assert [ax.get_title() for ax in figure.axes] == ["loss", "val_accuracy", "val_f1"]
    loss, accuracy, f1 = figure.axes
    curves = {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in loss.lines
    }
    assert curves == {
        "plain train": ([0, 1], [1.02, 0.74]),
        "plain val": ([0, 1], [0.90, 0.56]),
        "lit train": ([0, 1, 2], [1.10, 0.85, 0.66]),  # the resumed epoch 1 counts once
        "lit val": ([0, 1, 2], [0.95, 0.70, 0.62]),
    }
    assert [line.get_label() for line in accuracy.lines] == ["plain", "lit"]
    assert [line.get_label() for line in f1.lines] == ["lit"]  # the plain run has no val_f1
    # each run has its own colour, the same in every panel
    colours = {line.get_label(): line.get_color() for ax in figure.axes for line in ax.lines}
    assert colours["plain train"] == colours["plain val"] == colours["plain"]
    assert colours["lit val"] == colours["lit"] != colours["plain"]


def test_plot_panels_fill_a_grid_of_three_columns(runs, tmp_path):
    csv = "epoch,step,val_loss,val_a,val_b,val_c\n0,5,1.0,0.1,0.2,0.3\n1,9,0.9,0.2,0.3,0.4\n"
    run = make_run(tmp_path, "many", info={"status": "finished"}, csv=csv)
    figure = runs.plot_runs([str(run)], str(tmp_path / "many.png"))
    # 2 rows of 3, without the two unused cells
    assert [ax.get_title() for ax in figure.axes] == ["loss", "val_a", "val_b", "val_c"]
    assert [ax.get_subplotspec().rowspan.start for ax in figure.axes] == [0, 0, 0, 1]
    assert [line.get_label() for line in figure.axes[0].lines] == ["many val"]  # no train loss


def test_plot_errors_name_the_run_and_write_nothing(runs, tmp_path):
    good = make_run(tmp_path, "good", info={"status": "finished"}, csv=PLAIN_CSV)
    bare = make_run(tmp_path, "bare", info={"status": "failed"})
    steps_only = PLAIN_CSV.splitlines()[0] + "\n0,10,1.06,,,,,\n"  # stopped in epoch 0
    header_only = make_run(tmp_path, "early", info={"status": "failed"}, csv=steps_only)
    output = tmp_path / "out.png"
    cases = [
        ([str(good), str(bare)], f"{bare}: no logs/metrics.csv to plot", "logging.csv is true"),
        ([str(tmp_path / "nope")], f"{tmp_path / 'nope'}: no such run folder", "runs"),
        (
            [str(header_only)],
            f"{header_only / 'logs' / 'metrics.csv'}: no train_loss_epoch or val_loss",
            "at least one epoch",
        ),
        ([], "plot needs at least one run", "python -m tabular_classifier runs"),
    ]
    for run_dirs, message, hint in cases:
        with pytest.raises(runs.ConfigError) as error:
            runs.plot_runs(run_dirs, str(output))
        assert str(error.value).startswith(message), error.value
        assert hint in error.value.hint
    with pytest.raises(runs.ConfigError, match="--output out.jpg: plot writes a PNG"):
        runs.plot_runs([str(good)], "out.jpg")
    assert not output.exists()


def test_plot_without_matplotlib_says_how_to_install_it(runs, tmp_path, monkeypatch):
    good = make_run(tmp_path, "good", info={"status": "finished"}, csv=PLAIN_CSV)
    for name in ("matplotlib", "matplotlib.backends.backend_agg", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    with pytest.raises(runs.ConfigError, match="^plot needs matplotlib$") as error:
        runs.plot_runs([str(good)], str(tmp_path / "out.png"))
    assert error.value.hint == "pip install -e .[plot]"
    assert not (tmp_path / "out.png").exists()


# -- fit --sweep ------------------------------------------------------------------------------


def test_sweep_points_are_the_grid_of_every_key(runs):
    points = runs.sweep_points(
        ["optimizer.lr=1e-3,3e-4", "model.dropout=0, 0.1,0.2", "trainer.max_epochs=3"]
    )
    assert len(points) == 6
    assert points[0] == ["optimizer.lr=1e-3", "model.dropout=0", "trainer.max_epochs=3"]
    assert points[-1] == ["optimizer.lr=3e-4", "model.dropout=0.2", "trainer.max_epochs=3"]
    assert len({tuple(point) for point in points}) == 6
    # commas inside brackets belong to one value
    assert runs.sweep_points(["model.hidden_sizes=[64,32],[128]"]) == [
        ["model.hidden_sizes=[64,32]"],
        ["model.hidden_sizes=[128]"],
    ]
    assert runs.sweep_points([]) == [[]]


@pytest.mark.parametrize(
    "assignments, message, hint",
    [
        (
            ["optimizer.lr"],
            "--sweep 'optimizer.lr': expected KEY=V1,V2,...",
            "--sweep optimizer.lr=",
        ),
        (["=1,2"], "--sweep '=1,2': expected KEY=V1,V2,...", "e.g."),
        (["optimizer lr=1"], "expected KEY=V1,V2,...", "e.g."),
        (["optimizer.lr="], "--sweep 'optimizer.lr=': optimizer.lr lists no values", "=V1,V2"),
        (["optimizer.lr=1e-3,"], "optimizer.lr has an empty value", "separate values by commas"),
        (["optimizer.lr=1e-3,,3e-4"], "optimizer.lr has an empty value", "commas"),
        (
            ["optimizer.lr=1e-3", "model.dropout=0", "optimizer.lr=3e-4"],
            "--sweep 'optimizer.lr=3e-4': optimizer.lr is swept twice",
            "list all its values once: optimizer.lr=V1,V2,...",
        ),
        (["model.dropout=0.1,0.2,0.1"], "model.dropout repeats the value 0.1", "once"),
        (  # 10^6 points: refused before the grid is built, not after minutes
            [f"optimizer.lr={','.join(map(str, range(1, 1001)))}", f"trainer.seed={','.join(map(str, range(1000)))}"],
            "the grid has 1,000,000 points, over the limit of 1,000 runs",
            "sweep fewer values",
        ),
        (
            [f"trainer.seed={','.join(map(str, range(1001)))}"],
            "--sweep 'trainer.seed=0,1,2,",
            "run the sweep in parts",
        ),
    ],
)
def test_bad_sweeps_are_config_errors_with_a_hint(runs, assignments, message, hint):
    with pytest.raises(runs.ConfigError) as error:
        runs.sweep_points(assignments)
    assert message in str(error.value) and len(str(error.value)) < 200
    assert hint in error.value.hint


def test_sweep_run_names_are_short_and_safe(runs):
    name = runs.sweep_run_name
    assert name(["optimizer.lr=0.001", "model.dropout=0.1"]) == "lr=0.001-dropout=0.1"
    # keys that end alike keep their full names
    assert name(["optimizer.lr=1", "scheduler.lr=2"]) == "optimizer.lr=1-scheduler.lr=2"
    assert name(["model.hidden_sizes=[64, 32]"]) == "hidden_sizes=64_32"
    assert name(["data.path=../data/my file.csv"]) == "path=.._data_myfile.csv"
    long_a, long_b = name([f"data.path={'x' * 200}a"]), name([f"data.path={'x' * 200}b"])
    assert len(long_a) == len(long_b) == 99 and long_a != long_b
    grid = runs.sweep_points(["optimizer.lr=1e-3,3e-4", "model.dropout=0,0.1"])
    assert len({name(point) for point in grid}) == 4
    for point in grid:
        assert re.fullmatch(r"[A-Za-z0-9._=+-]+", name(point)), name(point)
