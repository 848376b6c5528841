import numpy as np


def train_test_split(*arrays, test_size=0.25, random_state=None, shuffle=True, **kwargs):
    n = len(arrays[0])
    n_test = int(np.ceil(test_size * n)) if isinstance(test_size, float) else int(test_size)
    idx = np.random.RandomState(random_state or 0).permutation(n) if shuffle else np.arange(n)
    test, train = idx[:n_test], idx[n_test:]
    out = []
    for a in arrays:
        a = np.asarray(a)
        out += [a[train], a[test]]
    return out
