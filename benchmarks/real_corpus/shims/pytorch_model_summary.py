"""A stand-in for pytorch_model_summary: the printed summary is not what is compared."""


def summary(model, *inputs, **kwargs):
    return ""
