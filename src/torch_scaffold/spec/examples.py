"""The example specs in examples/specs/, for the docs (docs/spec.md lists them).

A test checks that this table and the folder hold the same files, so a new example
cannot go undocumented.
"""

from __future__ import annotations

# (file, model, task, what it shows)
EXAMPLE_SPECS = (
    (
        "mlp_classification.yaml",
        "mlp",
        "classification",
        "the default spec written out; early stopping, best/last checkpoints",
    ),
    (
        "cnn_classification.yaml",
        "cnn",
        "classification",
        "conv blocks; `step` schedule; best checkpoint by `val_accuracy` (max)",
    ),
    (
        "mlp_regression.yaml",
        "mlp",
        "regression",
        "MSE loss, mse/mae metrics; `cosine` schedule; TensorBoard off",
    ),
    (
        "onecycle_clip_accumulate.yaml",
        "mlp",
        "classification",
        "SGD + `onecycle`; clipping by norm; gradient accumulation",
    ),
    (
        "cnn_clip_value_no_early_stop.yaml",
        "cnn",
        "regression",
        "clipping by value; early stopping and TensorBoard off",
    ),
    (
        "binary_mlp.yaml",
        "mlp",
        "binary",
        "one logit, BCEWithLogits; accuracy, f1, auroc; best checkpoint by `val_auroc`",
    ),
    (
        "multilabel_mlp.yaml",
        "mlp",
        "multilabel",
        "one logit per label, multi-hot targets; macro f1, precision, recall",
    ),
    (
        "resnet_images.yaml",
        "resnet",
        "multiclass",
        "residual stages, global average pooling; 3-channel images",
    ),
    (
        "rnn_sequence_classification.yaml",
        "rnn",
        "sequence_classification",
        "token embeddings, a bidirectional GRU",
    ),
    (
        "transformer_sequence_regression.yaml",
        "transformer",
        "regression",
        "an encoder over float sequences, mean pooling; the r2 metric",
    ),
    (
        "transformer_lm.yaml",
        "transformer",
        "language_modelling",
        "a causal decoder; perplexity and next-token accuracy",
    ),
    (
        "rnn_lm.yaml",
        "rnn",
        "language_modelling",
        "an LSTM with next-token logits at every step",
    ),
    (
        "autoencoder_reconstruction.yaml",
        "mlp",
        "reconstruction",
        "encoder to a bottleneck and a mirrored decoder; targets are the inputs",
    ),
    (
        "custom_model.yaml",
        "custom",
        "multiclass",
        "your own nn.Module (examples/models/my_net.py) with constructor arguments",
    ),
    (
        "plateau_sgd_nesterov.yaml",
        "mlp",
        "classification",
        "SGD + Nesterov; no weight decay on biases and norms; `plateau` schedule on `val_loss`",
    ),
    (
        "warmup_cosine_cnn.yaml",
        "cnn",
        "classification",
        "Adam; `warmup_cosine` (linear warm-up, then cosine, per optimizer step)",
    ),
    (
        "rmsprop_multistep_regression.yaml",
        "mlp",
        "regression",
        "RMSprop; `multistep` schedule (epochs 1 and 2)",
    ),
)
