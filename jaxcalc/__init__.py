"""jaxcalc: calculus and gradients for machine learning, in pure JAX.

Finite differences against autodiff, a 2-layer MLP with a hand-written backward pass,
gradient descent and optimisers written by hand and checked against optax, and a
jit-compiled MNIST training loop.
"""

__version__ = "0.1.0"
