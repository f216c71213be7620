"""The "corral" parallel backend of joblib (so scikit-learn's n_jobs runs on
corral.Pool's workers):

    import corral, joblib
    with joblib.parallel_backend("corral", n_jobs=4, memory="2G"):
        scores = cross_val_score(model, X, y, cv=5, n_jobs=4)

Keyword arguments after n_jobs are corral.Pool's options (memory, timeout,
retries, ...). A batch whose worker is OOM-killed, killed by a signal or
timed out raises corral's exception (corral.OOMKilled, ...) from Parallel,
naming the batch and the cause. ``import corral`` registers the backend as
soon as joblib is imported (or at once, when it already is).
"""
import sys

from . import _worker as W
from ._pool import Pool

__all__ = ["register"]

_REGISTERED = False


def _backend_class():
    from joblib._parallel_backends import (AutoBatchingMixin, FallbackToBackend,
                                           ParallelBackendBase, PoolManagerMixin,
                                           SequentialBackend)

    class CorralBackend(PoolManagerMixin, AutoBatchingMixin, ParallelBackendBase):
        """joblib backend over corral.Pool: every worker in its own cgroup."""

        supports_timeout = True

        def __init__(self, nesting_level=None, inner_max_num_threads=None, **pool_options):
            super().__init__(nesting_level=nesting_level,
                             inner_max_num_threads=inner_max_num_threads)
            self.pool_options = pool_options

        def effective_n_jobs(self, n_jobs):
            if W.IN_WORKER:
                return 1  # no pool inside a worker: nested calls run in place
            return super().effective_n_jobs(n_jobs)

        def configure(self, n_jobs=1, parallel=None, prefer=None, require=None, **kwargs):
            n_jobs = self.effective_n_jobs(n_jobs)
            if n_jobs == 1:
                raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
            self._pool = Pool(n_jobs, **self.pool_options)
            self.parallel = parallel
            return n_jobs

        def apply_async(self, func, callback=None):
            from joblib._parallel_backends import SafeFunction
            return self._get_pool().apply_async(_Batch(SafeFunction(func)), callback=callback)

        def terminate(self):
            super().terminate()
            self.reset_batch_stats()

    return CorralBackend


class _Batch:
    """One joblib batch, with a repr that names its calls in corral's
    messages ("joblib batch of 1 call(s): _fit_and_score")."""

    def __init__(self, func):
        self.func = func

    def __call__(self):
        return self.func()

    def __repr__(self):
        inner = getattr(self.func, "func", self.func)
        calls = getattr(inner, "items", None)
        if calls:
            names = sorted({getattr(c[0], "__name__", type(c[0]).__name__) for c in calls})
            return f"joblib batch of {len(calls)} call(s): {', '.join(names)}"
        return f"joblib batch: {inner!r}"[:80]


def register():
    """Register the "corral" backend with joblib (imports joblib)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from joblib import register_parallel_backend
    register_parallel_backend("corral", _backend_class())
    _REGISTERED = True


class _Hook:
    """A meta path finder that registers the backend once joblib.parallel has
    been imported, without importing joblib itself (211 ms) at `import corral`."""

    def find_spec(self, name, path=None, target=None):
        if name != "joblib.parallel" or _REGISTERED:
            return None
        import importlib.machinery
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            try:
                module.register_parallel_backend("corral", _backend_class())
                globals()["_REGISTERED"] = True
            except Exception:
                pass

        loader.exec_module = exec_and_register
        return spec


def install():
    if "joblib.parallel" in sys.modules:
        register()
    elif not any(isinstance(f, _Hook) for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())
