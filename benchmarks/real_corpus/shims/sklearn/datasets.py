from types import SimpleNamespace

import numpy as np


def _rng(random_state):
    return np.random.RandomState(0 if random_state is None else random_state)


def make_moons(n_samples=100, shuffle=True, noise=None, random_state=None):
    g = _rng(random_state)
    n_out, n_in = n_samples // 2, n_samples - n_samples // 2
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    X = np.vstack([np.c_[np.cos(t_out), np.sin(t_out)], np.c_[1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5]])
    y = np.hstack([np.zeros(n_out, int), np.ones(n_in, int)])
    if shuffle:
        p = g.permutation(n_samples)
        X, y = X[p], y[p]
    if noise:
        X = X + g.normal(scale=noise, size=X.shape)
    return X, y


def make_regression(n_samples=100, n_features=100, noise=0.0, random_state=None, **kwargs):
    g = _rng(random_state)
    X = g.normal(size=(n_samples, n_features))
    w = 100 * g.uniform(size=n_features)
    return X, X @ w + g.normal(scale=noise, size=n_samples) if noise else X @ w


def make_classification(n_samples=100, n_features=20, n_classes=2, random_state=None, **kwargs):
    g = _rng(random_state)
    y = g.randint(0, n_classes, n_samples)
    return g.normal(size=(n_samples, n_features)) + y[:, None], y


def make_blobs(n_samples=100, n_features=2, centers=3, random_state=None, **kwargs):
    g = _rng(random_state)
    k = centers if isinstance(centers, int) else len(centers)
    y = g.randint(0, k, n_samples)
    return g.normal(size=(n_samples, n_features)) + 4 * y[:, None], y


def load_digits(n_class=10, return_X_y=False):
    g = _rng(7)
    n = 1797  # as many as the real set: scripts slice it at fixed indices
    target = g.randint(0, n_class, n)
    images = ((g.rand(n, 8, 8) * 8 + target[:, None, None]) % 17).astype(np.float64)
    data = images.reshape(n, 64)
    if return_X_y:
        return data, target
    return SimpleNamespace(data=data, target=target, images=images, target_names=np.arange(n_class))


def load_breast_cancer(return_X_y=False):
    g = _rng(11)
    target = g.randint(0, 2, 569)
    data = g.rand(569, 30) * 10 + target[:, None] * 2
    if return_X_y:
        return data, target
    return SimpleNamespace(data=data, target=target, feature_names=[f"f{i}" for i in range(30)])
