"""Study reports from hand-made trial records: files, tables, figures and HParams agree with the records."""

from __future__ import annotations

import csv
import glob
import json
import os

import numpy as np
import pytest

from efficientnet_tpu.studies import optional, plots, report, report_spec, tables
from efficientnet_tpu.studies import spec as spec_lib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_record(trial, repeat, top1, *, params, macs, latency, status="done", error=None, group=None,
                axes=None, dataset="digits", profile="cpu", steps=(10, 20, 30), study="se_placement"):
    done = status == "done"
    return {
        "study": study, "trial": trial, "name": f"{study}/{trial}/seed{repeat}", "group": group,
        "repeat": repeat, "axes": axes if axes is not None else {"variant": trial},
        "profile": profile, "dataset": dataset,
        "config": {"variant": trial.split("/")[0], "seed": 100 + repeat, "train_steps": steps[-1],
                   "model_overrides": {"se_position": "end"}},
        "variant": trial.split("/")[0], "resolution": 32, "num_classes": 10,
        "params": params, "macs": macs,
        "latency_ms_batch1": latency if done else None, "latency_ms_batch": latency * 6 if done else None,
        "latency_batch_size": 32, "train_images_per_s": 120.0 + repeat if done else None,
        "machine": "2 cores, test", "wall_s": 50.0 + repeat,
        "top1": top1 if done else None, "top5": min(1.0, top1 + 0.03) if done else None,
        "loss": 1.0 - top1 if done else None,
        "history": ([{"step": s, "top1": top1 * (i + 1) / len(steps), "top5": 0.9, "loss": 1.0}
                     for i, s in enumerate(steps)] if done else []),
        "status": status, "error": error,
        "started": "2026-11-30T03:00:00Z", "finished": "2026-11-30T03:01:00Z",
    }


# Three repeats each with different top-1; b0 is the reference, one trial failed, one diverged.
TOP1 = {"b0": [0.950, 0.930, 0.940], "b0_seend": [0.945, 0.940, 0.950], "b0_nose": [0.800, 0.820, 0.810]}
PARAMS = {"b0": 4_000_000, "b0_seend": 3_880_000, "b0_nose": 3_520_000, "b0_broken": 4_100_000}
MACS = {"b0": 30_000_000, "b0_seend": 29_500_000, "b0_nose": 28_000_000, "b0_broken": 31_000_000}
LATENCY = {"b0": [10.0, 12.0, 11.0], "b0_seend": [9.0, 9.5, 10.0], "b0_nose": [8.0, 8.2, 7.8]}


def se_records():
    records = [make_record(trial, i + 1, top1, params=PARAMS[trial], macs=MACS[trial], latency=LATENCY[trial][i])
               for trial, values in TOP1.items() for i, top1 in enumerate(values)]
    records.append(make_record("b0_broken", 1, 0.0, params=PARAMS["b0_broken"], macs=MACS["b0_broken"],
                               latency=1.0, status="failed",
                               error="ValueError: model_overrides: se_position must be one of ..."))
    records.append(make_record("b0_broken", 2, 0.0, params=PARAMS["b0_broken"], macs=MACS["b0_broken"],
                               latency=1.0, status="diverged", error="loss became NaN at step 12"))
    return records


REPORT = {
    "reference": "b0",
    "table": ["params", "params_vs_reference_pct", "macs", "macs_vs_reference_pct", "latency_ms_batch1",
              "latency_speedup_vs_reference", "top1", "top5"],
    "plots": ["accuracy_vs_macs", "accuracy_vs_latency", "training_curves"],
    "winner": {"by": "top1", "command": "python -m efficientnet_tpu.train --variant={variant} --seed={seed} "
                                        "--model_overrides='{model_overrides}' --se={se_position}"},
    "published": {"b0_seend": {"params_vs_reference_pct": -3.0, "top1": 76.2},
                  "b0_nose": {"params_vs_reference_pct": -12.0, "top1": 0.758,  # top-1 in % or as a fraction
                              "latency_speedup_vs_reference": "about 1.1x (text)"}},
    "published_source": "seed 000 (ImageNet, 224 px)",
    "published_profiles": ["paper"],
}
SPEC = spec_lib.parse_spec({"name": "se_placement", "title": "Squeeze-and-excitation placement", "seeds": ["000"],
        "axes": {"variant": ["b0", "b0_seend", "b0_nose", "b0_broken"]},
        "description": "Where the SE block sits.",
        "profiles": {"cpu": {"notes": "Digits are tiny; see the resolution line."},
                     "paper": {"notes": "ImageNet at 224 px."}},
        "report": REPORT}, "se_placement.yaml")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    study_dir = str(tmp_path_factory.mktemp("study"))
    records = se_records()
    paths = report.write_report(study_dir, SPEC, records, profile="cpu")
    with open(paths["report"], encoding="utf-8") as file:
        text = file.read()
    return study_dir, records, paths, text


def table_after(text, heading):
    """The first Markdown table after a heading, as a list of {header: cell} rows."""
    lines = text[text.index(heading):].splitlines()
    rows = [line for line in lines[1:] if line.startswith("|")]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    headers = rows[0]
    return [dict(zip(headers, row)) for row in rows[2:]]


def by_trial(rows):
    return {row["trial"]: row for row in rows}


def test_results_csv_and_json_hold_every_run(written):
    study_dir, records, paths, _ = written
    assert paths["csv"] == os.path.join(study_dir, "results.csv")
    with open(paths["csv"], newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(records)
    for row, record in zip(rows, records):
        for key in tables.RUN_COLUMNS:
            expected = "" if record[key] is None else str(record[key])
            assert row[key] == expected, (record["name"], key)
        assert row["axes.variant"] == record["axes"]["variant"]
    with open(paths["json"], encoding="utf-8") as file:
        results = json.load(file)
    assert results["runs"] == records  # everything, configs and histories included
    assert (results["study"], results["profile"], results["datasets"]) == ("se_placement", "cpu", ["digits"])


def test_trials_view_is_mean_and_std_over_repeats(written):
    _, _, paths, _ = written
    with open(paths["json"], encoding="utf-8") as file:
        trials = {t["trial"]: t for t in json.load(file)["trials"]}
    with open(paths["trials_csv"], newline="", encoding="utf-8") as file:
        csv_trials = {row["trial"]: row for row in csv.DictReader(file)}
    for trial, values in TOP1.items():
        assert trials[trial]["top1_mean"] == pytest.approx(np.mean(values))
        assert trials[trial]["top1_std"] == pytest.approx(np.std(values, ddof=1))
        assert trials[trial]["latency_ms_batch1_mean"] == pytest.approx(np.mean(LATENCY[trial]))
        assert (trials[trial]["runs"], trials[trial]["runs_done"]) == (3, 3)
        assert float(csv_trials[trial]["top1_mean"]) == pytest.approx(np.mean(values))
    broken = trials["b0_broken"]
    assert (broken["status"], broken["runs"], broken["runs_done"], broken["top1_mean"]) == ("diverged", 2, 0, None)
    assert broken["params_mean"] == PARAMS["b0_broken"]  # the network's size is known without training
    assert trials["b0_nose"]["params_vs_reference_pct"] == pytest.approx((3_520_000 / 4_000_000 - 1) * 100)


def test_table_rows_follow_the_spec_not_the_record_order(tmp_path):
    shuffled = sorted(se_records(), key=lambda r: r["trial"], reverse=True)
    text = open(report.write_report(str(tmp_path), SPEC, shuffled, profile="cpu")["report"]).read()
    assert list(by_trial(table_after(text, "## Results"))) == ["b0", "b0_seend", "b0_nose", "b0_broken"]
    grouped = spec_lib.parse_spec({"groups": {"width": {"axes": {"w": [1, 2]}},
                                              "depth": {"trials": [{"name": "d2"}, {"name": "d1"}]}}}, "g.yaml")
    records = [make_record(name, 1, 0.5, params=1, macs=1, latency=1.0, group=group, axes=axes)
               for name, group, axes in (("d1", "depth", {}), ("w2", "width", {"w": 2}), ("d2", "depth", {}),
                                         ("w1", "width", {"w": 1}))]
    ordered = sorted(tables.aggregate(records), key=report.spec_order(grouped))
    assert [t["trial"] for t in ordered] == ["w1", "w2", "d2", "d1"]


def test_report_md_main_table_numbers(written):
    _, _, _, text = written
    rows = by_trial(table_after(text, "## Results"))
    assert list(rows) == ["b0", "b0_seend", "b0_nose", "b0_broken"]
    for trial, values in TOP1.items():
        mean, std = np.mean(values) * 100, np.std(values, ddof=1) * 100
        assert rows[trial]["top-1 (%)"] == f"{mean:.2f} ± {std:.2f}"
        speedup = np.mean(LATENCY["b0"]) / np.mean(LATENCY[trial])
        assert rows[trial]["speedup b1 vs b0"] == f"{speedup:.2f}x"
        assert rows[trial]["params vs b0"] == f"{(PARAMS[trial] / PARAMS['b0'] - 1) * 100:+.1f}%"
        assert rows[trial]["MACs vs b0"] == f"{(MACS[trial] / MACS['b0'] - 1) * 100:+.1f}%"
    assert rows["b0_seend"]["params"] == "3.88M" and rows["b0_nose"]["MACs"] == "28.0M"
    assert rows["b0_broken"]["status"] == "diverged" and rows["b0_broken"]["top-1 (%)"] == "n/a"
    assert "mean ± sample standard deviation" in text


def test_differences_within_the_spread_are_marked(written):
    _, _, _, text = written
    rows = by_trial(table_after(text, "## Results"))
    column = "top-1 (%) vs b0"
    for trial in ("b0_seend", "b0_nose"):
        difference = (np.mean(TOP1[trial]) - np.mean(TOP1["b0"])) * 100
        spread = (np.std(TOP1[trial], ddof=1) + np.std(TOP1["b0"], ddof=1)) * 100
        verdict = f"within spread {spread:.2f}" if abs(difference) <= spread else f"finding: > {spread:.2f}"
        assert rows[trial][column] == f"{difference:+.2f} ({verdict})"
    # Computed from the data: +0.17 pp against a spread of 1.5 is no finding, -12.9 pp is one.
    assert "within spread" in rows["b0_seend"][column] and "finding" in rows["b0_nose"][column]
    assert "Here 1 of 2 differences are within the spread, so they are not findings: b0_seend." in text


def test_published_numbers_beside_ours_and_not_comparable_off_profile(written, tmp_path):
    _, _, _, text = written
    rows = by_trial(table_after(text, "## Results"))
    assert rows["b0_seend"]["top-1 (%) (seed)"] == "76.20"
    assert rows["b0_seend"]["params vs b0 (seed)"] == "-3.0%"
    assert rows["b0_nose"]["params vs b0 (seed)"] == "-12.0%" and rows["b0"]["top-1 (%) (seed)"] == ""
    assert rows["b0_nose"]["top-1 (%) (seed)"] == "75.80"
    assert rows["b0_nose"]["speedup b1 vs b0 (seed)"] == "about 1.1x (text)"
    assert "seed 000 (ImageNet, 224 px)" in text
    assert "`cpu` profile trains on digits data, so accuracy is not comparable with them" in text
    paper = [dict(r, profile="paper", dataset="imagenet2012") for r in se_records()]
    paper_text = open(report.write_report(str(tmp_path), SPEC, paper, profile="paper")["report"]).read()
    assert "not comparable" not in paper_text and "so accuracy and size are comparable with ours" in paper_text
    assert "ImageNet at 224 px." in paper_text and "Digits are tiny" not in paper_text


def test_profile_notes_and_what_digits_cannot_show(written):
    _, _, _, text = written
    assert "Profile: `cpu`; dataset: digits" in text and "reproduces seed 000" in text
    assert "Digits are tiny; see the resolution line." in text
    assert "digits images are 8x8 px and these trials ran at 32 px" in text


def test_winner_command_filled_from_the_winning_trial(written):
    _, records, _, text = written
    best = max(TOP1, key=lambda trial: np.mean(TOP1[trial]))
    assert best == "b0_seend"
    first = next(r for r in records if r["trial"] == best)
    expected = (f"python -m efficientnet_tpu.train --variant={best} --seed={first['config']['seed']} "
                f"--model_overrides='{{\"se_position\":\"end\"}}' --se=end")
    section = text[text.index("## Winner"):]
    assert f"**{best}**" in section and f"```\n{expected}\n```" in section
    assert "Within the spread of the winner, so not distinguishable from it on this data: b0." in section


def test_failed_and_diverged_runs_listed_with_reasons(written):
    _, _, _, text = written
    rows = {row["trial run"]: row for row in table_after(text, "## Failed and diverged trial runs")}
    assert rows["se_placement/b0_broken/seed1"]["status"] == "failed"
    assert rows["se_placement/b0_broken/seed1"]["reason"].startswith("ValueError: model_overrides")
    assert rows["se_placement/b0_broken/seed2"]["reason"] == "loss became NaN at step 12"
    assert "Trial runs: 11 (9 done, 1 failed, 1 diverged) over 4 trials." in text


def test_pngs_are_valid_and_plot_the_records(written):
    from PIL import Image

    study_dir, records, paths, text = written
    for name in plots.PLOTS:
        assert paths[name] == os.path.join(study_dir, f"{name}.png")
        with open(paths[name], "rb") as file:
            data = file.read()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
        with Image.open(paths[name]) as image:
            image.verify()
        assert f"]({name}.png)" in text
    done = ["b0_nose", "b0_seend", "b0"]  # sorted by MACs; the failed trial has no accuracy to plot
    macs = plots.read_plotted(paths["accuracy_vs_macs"])
    assert macs["point_labels"] == {"": done}
    np.testing.assert_allclose(macs["lines"][""], [[MACS[t] for t in done], [np.mean(TOP1[t]) for t in done]])
    latency = plots.read_plotted(paths["accuracy_vs_latency"])
    order = sorted(TOP1, key=lambda t: np.mean(LATENCY[t]))
    np.testing.assert_allclose(latency["lines"][""],
                               [[np.mean(LATENCY[t]) for t in order], [np.mean(TOP1[t]) for t in order]])
    curves = plots.read_plotted(paths["training_curves"])["lines"]
    assert sorted(curves) == sorted(TOP1)
    for trial, values in TOP1.items():
        histories = [[h["top1"] for h in r["history"]] for r in records if r["trial"] == trial]
        np.testing.assert_allclose(curves[trial], [[10, 20, 30], np.mean(histories, axis=0)])


def test_plot_lines_read_back_from_matplotlib():
    trials = tables.aggregate(se_records())
    plot = plots.accuracy_vs_macs(trials)
    assert plot.png.startswith(PNG_SIGNATURE)
    assert plots.read_plotted(plot.png)["lines"] == {k: list(map(list, v)) for k, v in plot.lines.items()}
    xs, ys = plot.lines[""]
    assert xs == sorted(MACS[t] for t in TOP1)


def test_series_draws_one_line_per_group_and_curves_per_repeat_when_steps_differ():
    records = [
        make_record(f"w{w}", 1, 0.5 + w / 10, params=1000 * w, macs=10_000 * w, latency=float(w), group="width",
                    axes={"model_overrides.width_coefficient": w}, study="scaling") for w in (1, 2, 3)
    ] + [
        make_record(f"d{d}", 1, 0.4 + d / 10, params=900 * d, macs=12_000 * d, latency=float(d), group="depth",
                    axes={"model_overrides.depth_coefficient": d}, study="scaling") for d in (1, 2)
    ]
    trials = tables.aggregate(records)
    plot = plots.accuracy_vs_macs(trials, series="group")
    assert set(plot.lines) == {"group = width", "group = depth"}
    np.testing.assert_allclose(plot.lines["group = width"], [[10_000, 20_000, 30_000], [0.6, 0.7, 0.8]])
    assert plot.point_labels["group = depth"] == ["d1", "d2"]
    uneven = [make_record("b0", 1, 0.9, params=1, macs=1, latency=1.0, steps=(10, 20)),
              make_record("b0", 2, 0.8, params=1, macs=1, latency=1.0, steps=(15, 30))]
    lines = plots.curves(uneven)
    assert sorted(lines) == ["b0/seed1", "b0/seed2"] and lines["b0/seed2"][0] == [15, 30]


def test_missing_numbers_are_not_drawn_and_the_report_says_why(tmp_path):
    records = [dict(r, latency_ms_batch1=None) for r in se_records()]
    paths = report.write_report(str(tmp_path), SPEC, records, profile="cpu")
    assert "accuracy_vs_latency" not in paths and not (tmp_path / "accuracy_vs_latency.png").exists()
    text = open(paths["report"]).read()
    assert "not drawn: no finished trial has both latency_ms_batch1 and top1" in text
    assert "accuracy_vs_macs" in paths


def test_pivot_table_in_the_seeds_table_2_form(tmp_path):
    records = []
    for dataset, offset in (("cifar10", 0.0), ("cifar100", -0.2)):
        for variant, base in (("baseline_convnet", 0.7), ("b0", 0.9)):
            for repeat, noise in ((1, 0.01), (2, -0.01)):
                records.append(make_record(f"{variant}/{dataset}", repeat, base + offset + noise, params=10,
                                           macs=10, latency=1.0, dataset=dataset, study="cifar_baselines",
                                           axes={"variant": variant, "dataset": dataset}, profile="cifar"))
    spec = {"name": "cifar_baselines", "title": "CIFAR baselines", "seeds": ["003"],
            "axes": {"variant": ["baseline_convnet", "b0"], "dataset": ["cifar10", "cifar100"]}, "report": {
        "table": ["top1"], "pivot": {"rows": "variant", "columns": "dataset", "value": "top1"},
        "published": {"b0/cifar10": {"top1": 98.1}}, "published_source": "seed 003, Table 2",
        "published_profiles": ["cifar"]}}
    spec = spec_lib.parse_spec(spec, "cifar.yaml")
    text = open(report.write_report(str(tmp_path), spec, records, profile="cifar")["report"]).read()
    rows = {row["variant"]: row for row in table_after(text, "## top-1 (%) by variant and dataset")}
    std = np.std([0.01, -0.01], ddof=1) * 100
    assert rows["b0"]["cifar10: top-1 (%)"] == f"{90.0:.2f} ± {std:.2f}"
    assert rows["baseline_convnet"]["cifar100: top-1 (%)"] == f"{50.0:.2f} ± {std:.2f}"
    assert rows["b0"]["cifar10 (seed)"] == "98.10" and rows["baseline_convnet"]["cifar10 (seed)"] == ""
    assert "cifar100 (seed)" not in rows["b0"]


def test_hparams_summaries_hold_each_runs_hparams_and_metrics(written):
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    study_dir, records, paths, _ = written
    assert paths["hparams"] == os.path.join(study_dir, "hparams")
    assert glob.glob(os.path.join(paths["hparams"], "events.out.tfevents.*"))  # the experiment's config
    for record in records:
        files = glob.glob(os.path.join(paths["hparams"], record["name"], "events.out.tfevents.*"))
        assert len(files) == 1, record["name"]
        hparams, scalars = {}, {}
        for event in tf.compat.v1.train.summary_iterator(files[0]):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if data.HasField("session_start_info"):
                        hparams = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
                                   for k, v in data.session_start_info.hparams.items()}
                elif not value.tag.startswith("history/"):
                    scalars[value.tag] = float(tf.make_ndarray(value.tensor))
        assert hparams["variant"] == record["variant"] and hparams["status"] == record["status"]
        assert hparams["resolution"] == 32 and hparams["profile"] == "cpu" and hparams["repeat"] == record["repeat"]
        for tag in ("top1", "top5", "loss", "params", "macs", "latency_ms_batch1"):
            if record[tag] is None:
                assert tag not in scalars
            else:
                assert scalars[tag] == pytest.approx(record[tag], rel=1e-6), (record["name"], tag)


def test_rerunning_the_report_replaces_the_hparams_runs(written):
    study_dir, records, _, _ = written
    report.write_report(study_dir, SPEC, records, profile="cpu")
    run_dir = os.path.join(study_dir, "hparams", records[0]["name"])
    assert len(glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))) == 1


def test_no_records_yet(tmp_path):
    paths = report.write_report(str(tmp_path), SPEC, [], profile="cpu")
    assert "No trial has a record yet." in open(paths["report"]).read()
    assert open(paths["csv"]).read() == "\n"


def test_winner_template_naming_a_missing_field_says_so(tmp_path):
    spec = spec_lib.parse_spec(dict(SPEC.raw, report=dict(REPORT, winner={"command": "train --phi={phi_typo}"})),
                               "se_placement.yaml")
    text = open(report.write_report(str(tmp_path), spec, se_records(), profile="cpu")["report"]).read()
    assert "The command could not be filled in: the template names 'phi_typo'" in text


def test_single_runs_say_the_spread_is_unknown(tmp_path):
    records = [r for r in se_records() if r["repeat"] == 1 and r["trial"] != "b0_nose"]
    text = open(report.write_report(str(tmp_path), SPEC, records, profile="cpu")["report"]).read()
    assert "The seed also has numbers for b0_nose, which have no record here (yet)." in text
    assert "Each trial finished once, so the spread between seeds is unknown" in text
    assert "top-1 (%) vs b0" not in text  # no spread column without repeats
    assert "The winner ran once" in text


@pytest.mark.parametrize("section, message", [
    ("not a mapping", "report must be a mapping"),
    ({"tabel": ["top1"]}, "unknown key 'tabel'"),
    ({"table": ["top1", "accuracy"]}, "report.table: unknown column 'accuracy'"),
    ({"table": []}, "report.table must be a non-empty list"),
    ({"plots": ["accuracy_vs_flops"]}, "report.plots: unknown plot 'accuracy_vs_flops'"),
    ({"pivot": {"rows": "variant", "value": "top1"}}, "report.pivot must be a mapping with exactly"),
    ({"pivot": {"rows": "variant", "columns": "dataset", "value": "acc"}}, "report.pivot.value: unknown metric"),
    ({"winner": {"by": "accuracy", "command": "x"}}, "report.winner.by: unknown metric 'accuracy'"),
    ({"winner": {"command": "train --phi={phi"}}, "report.winner.command is not a valid template"),
    ({"published": {"b0": {"top1": 76.2}}}, "report.published needs published_source"),
    ({"published": {"b0": {"acc": 76.2}}, "published_source": "x"}, "report.published.b0: unknown column 'acc'"),
    ({"published_profiles": "paper"}, "report.published_profiles must be a list"),
    ({"reference": ""}, "report.reference must be a non-empty string"),
])
def test_validate_report_section_rejects_with_one_line(section, message):
    with pytest.raises(ValueError) as error:
        report_spec.parse(section, "configs/studies/x.yaml")
    text = str(error.value)
    assert text.startswith("configs/studies/x.yaml: report") and message in text and "\n" not in text


def test_validate_report_section_accepts_the_contract_example():
    parsed = report_spec.parse(REPORT, "x.yaml")
    assert parsed.winner == report_spec.Winner(REPORT["winner"]["command"], "top1")
    assert parsed.table == tuple(REPORT["table"]) and parsed.published_profiles == ("paper",)
    assert report_spec.parse(None, "x.yaml") == report_spec.ReportSpec()
    default = report_spec.ReportSpec()
    assert default.table == ("params", "macs", "top1") and default.plots == plots.PLOTS and default.winner is None
    parsed = report_spec.parse({"series": "group", "plots": ["accuracy_vs_macs"], "notes": "n",
                                "pivot": {"rows": "variant", "columns": "dataset", "value": "top1"},
                                "winner": {"by": "top1", "command": "train --alpha={alpha} --phi={{2..7}}"}},
                               "x.yaml")
    assert parsed.pivot == report_spec.Pivot("variant", "dataset", "top1") and parsed.plots == ("accuracy_vs_macs",)


def test_remote_study_dir_goes_through_gfile():
    """study_dir may be gs://; TensorFlow's in-memory ram:// filesystem takes the same code path here."""
    import tensorflow as tf

    study_dir = "ram://studies/se_placement"
    paths = report.write_report(study_dir, SPEC, se_records(), profile="cpu")
    assert paths["report"] == f"{study_dir}/report.md" and paths["accuracy_vs_macs"].startswith("ram://")
    with tf.io.gfile.GFile(paths["report"], "r") as file:
        assert "## Results" in file.read()
    with tf.io.gfile.GFile(paths["accuracy_vs_macs"], "rb") as file:
        assert plots.read_plotted(file.read())["point_labels"] == {"": ["b0_nose", "b0_seend", "b0"]}
    with tf.io.gfile.GFile(paths["json"], "r") as file:
        assert json.load(file)["runs"] == se_records()
    assert tf.io.gfile.glob(f"{study_dir}/hparams/se_placement/b0/seed1/events.out.tfevents.*")


def test_best_trial_minimises_losses_and_latencies_and_skips_unfinished():
    trials = tables.aggregate(se_records())
    assert tables.best_trial(trials, "top1")["trial"] == "b0_seend"
    assert tables.best_trial(trials, "loss")["trial"] == "b0_seend"  # loss = 1 - top1 in these records
    assert tables.best_trial(trials, "latency_ms_batch1")["trial"] == "b0_nose"
    smallest_failed = tables.aggregate([dict(r, macs=1) if r["trial"] == "b0_broken" else r for r in se_records()])
    assert tables.best_trial(smallest_failed, "macs")["trial"] == "b0_nose"  # b0_broken never finished


@pytest.mark.parametrize("missing", ["matplotlib", "tabulate", "tensorboard"])
def test_a_missing_optional_package_is_one_line_naming_it_and_the_extra(tmp_path, monkeypatch, missing):
    """Rendering without a package of the studies extra says which and how to install it; nothing is written."""
    import sys

    for name in [m for m in sys.modules if m == missing or m.startswith(missing + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` now raises ImportError
    with pytest.raises(optional.MissingPackage) as error:
        report.write_report(str(tmp_path / "study"), SPEC, se_records(), profile="cpu")
    text = str(error.value)
    assert text == (f"the study report needs {missing}, not installed here: pip install 'efficientnet_tpu[studies]' "
                    "(in a checkout: pip install -e '.[studies]')")
    assert not os.path.exists(tmp_path / "study")


def test_rendering_a_part_without_its_package_names_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tabulate", None)
    with pytest.raises(optional.MissingPackage, match=r"^a study report table needs tabulate, not installed here: "
                                                       r"pip install 'efficientnet_tpu\[studies\]'"):
        tables.markdown(["a"], [["1"]])
    assert optional.missing(("tabulate", "json")) == ["tabulate"]


def test_native_resolutions_are_declared_once_for_the_sources_and_the_report():
    from efficientnet_tpu.data import native, registry

    assert {name: native.native_resolution(name) for name in registry.DATASET_NAMES} == {
        "imagenet2012": None, "cifar10": 32, "cifar100": 32, "cifar10_3class": 32, "folder": None,
        "tfrecord": None, "tfrecord_0based": None, "digits": 8, "synthetic": None}
    assert registry.get_source("digits").info().native_resolution == 8
