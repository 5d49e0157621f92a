"""Each GLUE metric equals the independent reference implementation (scikit-learn, SciPy)."""

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from lmlab.data.sources import ClassificationSpec
from lmlab.errors import ConfigError
from lmlab.metrics.classification import make_metrics
from lmlab.tasks.classification import write_submission

rng = np.random.default_rng(0)


@pytest.mark.parametrize("num_labels", [2, 3])
def test_classification_metrics(num_labels):
    y = rng.integers(0, num_labels, 500)
    p = np.where(rng.random(500) < 0.7, y, rng.integers(0, num_labels, 500))  # correlated predictions
    names = ("accuracy", "matthews_correlation", "f1_macro") + (("f1",) if num_labels == 2 else ())
    m = make_metrics(names, num_labels)
    for chunk in np.array_split(np.arange(500), 7):  # several batches, as in validation
        m.update(torch.tensor(p[chunk]), torch.tensor(y[chunk]))
    out = {k: v.item() for k, v in m.compute().items()}
    assert out["accuracy"] == pytest.approx(accuracy_score(y, p), abs=1e-6)
    assert out["matthews_correlation"] == pytest.approx(matthews_corrcoef(y, p), abs=1e-5)
    assert out["f1_macro"] == pytest.approx(f1_score(y, p, average="macro"), abs=1e-5)
    if num_labels == 2:
        assert out["f1"] == pytest.approx(f1_score(y, p), abs=1e-5)  # positive class, as GLUE scores MRPC/QQP


def test_regression_metrics():
    y = rng.uniform(0, 5, 300)
    p = y + rng.normal(0, 1, 300)
    m = make_metrics(("pearson", "spearmanr"), 1)
    for chunk in np.array_split(np.arange(300), 4):
        m.update(torch.tensor(p[chunk], dtype=torch.float32), torch.tensor(y[chunk], dtype=torch.float32))
    out = {k: v.item() for k, v in m.compute().items()}
    assert out["pearson"] == pytest.approx(pearsonr(p, y)[0], abs=1e-5)
    assert out["spearmanr"] == pytest.approx(spearmanr(p, y)[0], abs=1e-5)


def test_metric_must_fit_the_task():
    with pytest.raises(ConfigError, match="does not fit a regression task"):
        make_metrics(("accuracy",), 1)
    with pytest.raises(ConfigError, match="'f1' \\(positive class\\) needs two labels"):
        make_metrics(("f1",), 3)


def test_submission_format(tmp_path):
    nli = ClassificationSpec("rte", ("entailment", "not_entailment"), None, ("accuracy",), "accuracy")
    write_submission(tmp_path / "RTE.tsv", [2, 0, 1, 0], [1, 0, 0, 0], nli)  # unordered, with a DDP repeat
    assert (
        tmp_path / "RTE.tsv"
    ).read_text() == "index\tprediction\n0\tentailment\n1\tentailment\n2\tnot_entailment\n"
    sts = ClassificationSpec("stsb", None, None, ("pearson", "spearmanr"), "combined_score")
    write_submission(tmp_path / "STS-B.tsv", [0, 1], [4.12345, 0.5], sts)
    assert (tmp_path / "STS-B.tsv").read_text() == "index\tprediction\n0\t4.123\n1\t0.500\n"
