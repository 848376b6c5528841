"""Only `tensorflow.examples.tutorials.mnist.input_data`, the MNIST reader that old GAN/VAE
scripts import from TensorFlow (manifest: shims: [tensorflow=tf_mnist]). Nothing else of
TensorFlow is here."""


def __getattr__(name):
    # tensorboard (Lightning's default logger) imports `tensorflow` when it can and then reads
    # tf.io.gfile and the like: hand it tensorboard's own stand-in, as if TensorFlow were absent
    from tensorboard.compat import tensorflow_stub

    return getattr(tensorflow_stub, name)
