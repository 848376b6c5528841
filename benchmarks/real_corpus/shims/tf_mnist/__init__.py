"""Only `tensorflow.examples.tutorials.mnist.input_data`, the MNIST reader that old GAN/VAE
scripts import from TensorFlow (manifest: shims: [tensorflow=tf_mnist]). Nothing else of
TensorFlow is here."""
