"""Published results (stn_course.published): one table, read by the report, the traffic-sign
table and the README's headline."""
from dataclasses import asdict

from stn_course import published, report
from stn_course.recipes import recipe_config
from stn_course.registry import MODEL_NAMES


def _record(dataset, model, accuracy, augment=False):
    config = recipe_config(dataset, model, 8)
    record_config = {**asdict(config), "augment": augment}
    return {"name": config.name, "config": record_config, "test_accuracy": accuracy,
            "test_error_percent": round(100 * (1 - accuracy), 3), "epochs": 8, "seconds_total": 600.0,
            "machine": {"cuda": None, "cpu_count": 2, "torch": "2.14.1"}, "finished_at": "2026-11-22T01:00:00+0000", "command": f"python -m stn_course train {config.name}"}


def test_every_published_model_is_one_of_the_course():
    models = set(published.PAPER_TABLE1) | set(published.CIFAR10_REPORTED)
    models |= {row["model"] for row in published.GTSRB_PUBLISHED if row["model"]}
    assert models <= set(MODEL_NAMES)
    assert all(set(errors) <= set(report.TABLE1_COLUMNS) for errors in published.PAPER_TABLE1.values())


def test_the_traffic_sign_table_and_the_headline_read_the_same_rows():
    records = [_record("gtsrb", "gtsrb-bn-st-cnn", 0.99)]
    gtsrb = report.gtsrb_table(records).splitlines()
    for row in published.GTSRB_PUBLISHED:
        assert any(line.startswith(f"| {row['name']} | {row['accuracy']:.2f}% | {row['input']} |") for line in gtsrb)
    assert gtsrb[-1].startswith("| ours: `gtsrb-bn-st-cnn`, seed 0 | 99.00% | 32x32 | none | 8 | 2-core CPU, 10 min |")
    headline = report.headline_table(records, selection={})
    for row in published.GTSRB_PUBLISHED:
        if row["model"]:
            assert f"| GTSRB (32x32), `{row['model']}` | test accuracy | {row['accuracy']:.2f}% ({row['by']}," in headline


def test_the_paper_and_course_figures_reach_the_report():
    headline = report.headline_table([])
    best_rts = min(errors["RTS"] for errors in published.PAPER_TABLE1.values())
    assert f"| rts-mnist (RTS) | test error | {best_rts}% (paper," in headline
    for model, accuracy in published.CIFAR10_REPORTED.items():
        assert f"| CIFAR-10, `{model}` | test accuracy | {accuracy:.0f}% (course material) |" in headline


def test_the_published_gtsrb_figures_are_the_sources_numbers():
    """Typed from the sources: Moodstocks' README (99.61% with two transformers; 98.85% for the same
    network without them, trained on the whole training set, `-n -1`), IDSIA's committee, and
    Arcos-García et al. (2018) with three transformers."""
    accuracies = {row["name"].split(":")[0] + (" ST" if "transformers" in row["name"] and "without" not in row["name"]
                                               else ""): row["accuracy"] for row in published.GTSRB_PUBLISHED}
    assert accuracies == {"Moodstocks ST": 99.61, "Moodstocks": 98.85, "IDSIA": 99.46, "Arcos-García et al. ST": 99.71}
    for row in published.GTSRB_PUBLISHED:  # each one's input, augmentation and hardware stated, not deferred
        assert row["input"] and row["augmentation"] and row["hardware"] and "see the paper" not in str(row.values()), row
