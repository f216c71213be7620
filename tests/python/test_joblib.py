"""joblib's "corral" backend: scikit-learn's n_jobs on corral.Pool's
workers (Debian's python3-joblib and python3-sklearn), including a fold that
is OOM-killed at its limit."""
import os
import unittest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no BLAS threads at fork time
os.environ.setdefault("OMP_NUM_THREADS", "1")

import corral_test_support as sup  # noqa: E402

sup.require_host()

try:
    import joblib
    import numpy as np
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, cross_val_score
except ImportError as e:  # pragma: no cover
    if os.environ.get("CORRAL_NO_SKIP"):
        raise
    sup.skip(f"needs python3-joblib and python3-sklearn ({e}): scripts/install-deps.sh test")

import corral  # noqa: E402


class HogOnOneFold(BaseEstimator, ClassifierMixin):
    """Allocates 512 MiB when fitting the fold that leaves sample 0 out."""

    def fit(self, X, y):
        if 0 not in X[:, 0]:
            self.junk_ = bytearray(512 << 20)
        self.classes_ = np.unique(y)
        self.pid_ = os.getpid()
        return self

    def predict(self, X):
        return np.zeros(len(X))


class JoblibTest(unittest.TestCase):
    X = np.arange(60.0).reshape(30, 2)
    y = np.arange(30) % 2

    def tearDown(self):
        self.assertEqual(sup.own_batch_cgroups(), [], "batch cgroups left behind")

    def test_cross_val_score_runs_on_corral(self):
        expect = cross_val_score(LogisticRegression(), self.X, self.y, cv=3)
        with joblib.parallel_backend("corral", memory="512M"):
            got = cross_val_score(LogisticRegression(), self.X, self.y, cv=3, n_jobs=2)
            pids = joblib.Parallel(n_jobs=2)(joblib.delayed(os.getpid)() for _ in range(4))
        self.assertEqual(list(got), list(expect))
        self.assertNotIn(os.getpid(), pids)

    def test_oom_killed_fold(self):
        with joblib.parallel_backend("corral", memory="128M"):
            with self.assertRaises(corral.OOMKilled) as cm:
                cross_val_score(HogOnOneFold(), self.X, self.y, cv=KFold(3), n_jobs=2)
            e = cm.exception
            self.assertIn("joblib batch", str(e))
            self.assertIn("_fit_and_score", str(e))
            self.assertEqual(e.memory_limit, 128 << 20)
            print(f"\n    [measured] OOM-killed fold: {e}")
            # the backend stays usable afterwards
            self.assertEqual(joblib.Parallel(n_jobs=2)(joblib.delayed(abs)(-i)
                                                        for i in range(3)), [0, 1, 2])


if __name__ == "__main__":
    unittest.main()
