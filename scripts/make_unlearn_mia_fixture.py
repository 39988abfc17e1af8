#!/usr/bin/env python3
"""Writes test/fixtures/unlearn_mia.json: softmax outputs on D_r, the test set and D_f (10 classes,
float32-exact values) whose entropies overlap, and the entropy MIA computed exactly as the authors'
Classification/evaluation/mia.py does it (LogisticRegression(class_weight="balanced", solver="lbfgs",
multi_class="multinomial") fitted on the entropies of D_r (members, 1) and the test set (0); the share
of D_f predicted member), for test/unlearn-metrics.test.ts.

Also stored, so the test can show it tells them apart: the share without class weights (a wrong
implementation), and the binary C=2 fit that the two-class multinomial fit equals (same predictions).
The sets are unbalanced (900 members, 300 non-members) so class weights matter, and no D_f sample lies
within 1e-3 of the decision boundary, so float32 inputs cannot flip a prediction.

Run: /usr/bin/python3 scripts/make_unlearn_mia_fixture.py   (numpy, scikit-learn 1.2)
"""
import json
import os

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

C = 10
rng = np.random.default_rng(20261202)


def probs(n, conc_top, conc_rest):
    """n softmax rows: a Dirichlet draw with a heavier weight on a random top class."""
    out = np.empty((n, C))
    for i in range(n):
        a = np.full(C, conc_rest)
        a[rng.integers(C)] = conc_top
        out[i] = rng.dirichlet(a)
    return out.astype(np.float32)


def entropy(p):
    p = p.astype(np.float64)
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0).sum(1)


remain = probs(900, 12.0, 0.25)
test = probs(300, 5.0, 0.45)
forget = probs(100, 8.0, 0.35)

X = np.concatenate([entropy(remain), entropy(test)])[:, None]
y = np.concatenate([np.ones(len(remain)), np.zeros(len(test))])
xf = entropy(forget)[:, None]

authors = LogisticRegression(class_weight="balanced", solver="lbfgs", multi_class="multinomial", tol=1e-10, max_iter=10000).fit(X, y)
binary2 = LogisticRegression(class_weight="balanced", C=2.0, tol=1e-10, max_iter=10000).fit(X, y)
unweighted = LogisticRegression(solver="lbfgs", multi_class="multinomial", tol=1e-10, max_iter=10000).fit(X, y)

pred = authors.predict(xf)
assert (pred == binary2.predict(xf)).all(), "two-class multinomial and binary C=2 disagree"
margin = np.abs(binary2.decision_function(xf)).min()
assert margin > 1e-3, f"a D_f sample lies {margin} from the boundary: reseed"
pct = 100.0 * pred.mean()
pct_unweighted = 100.0 * unweighted.predict(xf).mean()
assert abs(pct - pct_unweighted) >= 5, f"class weights change too little ({pct} vs {pct_unweighted}): reseed"

out = {
    "sklearn": sklearn.__version__,
    "numClasses": C,
    "remainProbs": remain.ravel().tolist(),
    "testProbs": test.ravel().tolist(),
    "forgetProbs": forget.ravel().tolist(),
    "miaEntropyPercent": pct,
    "unweightedPercent": pct_unweighted,
    "binaryC2": {"coef": float(binary2.coef_[0, 0]), "intercept": float(binary2.intercept_[0])},
    "minForgetMargin": float(margin),
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "unlearn_mia.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", path, "MIA", pct, "unweighted", pct_unweighted, "margin", margin)
