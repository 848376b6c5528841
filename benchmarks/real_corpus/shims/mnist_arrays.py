"""Synthetic MNIST as numpy arrays, for scripts whose own helper downloads MNIST files.

`load_mnist(ntrain, ntest, onehot)` has the signature and return values of the helpers that
tutorials ship (trX, teX, trY, teY: flattened 28x28 floats in [0, 1], labels or one-hot).
The manifest maps a script's helper module onto it (shims: [data_util=mnist_arrays]).
"""
import numpy as np

TRAIN, TEST = 600, 200


def one_hot(x, n):
    x = np.asarray(x).flatten()
    o = np.zeros((len(x), n))
    o[np.arange(len(x)), x] = 1
    return o


def load_mnist(ntrain=TRAIN, ntest=TEST, onehot=True):
    g = np.random.default_rng(1234)
    ntrain, ntest = min(ntrain, TRAIN), min(ntest, TEST)

    def part(n):
        y = g.integers(0, 10, n)
        x = (g.random((n, 784)) * 0.5 + y[:, None] / 20.0).astype(float)
        return x, y

    trX, trY = part(ntrain)
    teX, teY = part(ntest)
    if onehot:
        trY, teY = one_hot(trY, 10), one_hot(teY, 10)
    return trX, teX, trY, teY
