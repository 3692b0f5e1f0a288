"""Train the 2-layer network on MNIST, every step in view: the chapter's Project 3.

Reads top to bottom like JAX's examples/mnist_classifier_fromscratch.py, on the library's
pieces: the data (`jaxcalc.data`), the network and its hand-written backward pass
(`jaxcalc.mlp`), AdamW (`jaxcalc.optim`), random distortions (`jaxcalc.augment`).
`jaxcalc train` runs the full recipe (weight averaging, checkpoints, figures, several
devices); this is its core.

    python scripts/mnist_training.py                       # about 99.2% in 20 epochs
    python scripts/mnist_training.py --epochs 2 --hidden 128
"""

import argparse
import sys
import time

import jax
import jax.numpy as jnp

from jaxcalc import augment, data, mlp, optim, schedules
from jaxcalc.losses import smooth_labels
from jaxcalc.training.preprocess import inputs
from jaxcalc.training.step import epoch_order
from jaxcalc.validation import DataError

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--hidden", type=int, default=1024)
parser.add_argument("--batch-size", type=int, default=256)
parser.add_argument("--lr", type=float, default=3e-3)
parser.add_argument("--train-limit", type=int, default=None, help="train on N images only")
parser.add_argument("--data-dir", default=None, help="folder holding the four IDX files")
args = parser.parse_args()
if min(args.epochs, args.hidden, args.batch_size) < 1 or not 0 < args.lr < 1:
    parser.error("epochs, hidden and batch size must be >= 1, and 0 < lr < 1")

# 1. Data: 60,000 training images (5,000 held out to validate), 10,000 test images, all
#    straightened by their moments, kept on the device as uint8.
try:
    mnist = data.load("mnist", data_dir=args.data_dir, val_size=5000)
except DataError as e:
    sys.exit(f"mnist_training.py: error: {e}")
train_x = augment.deskew(mnist.train_images[: args.train_limit])
train_y = jnp.asarray(mnist.train_labels[: args.train_limit], jnp.int32)
val_x, test_x = augment.deskew(mnist.val_images), augment.deskew(mnist.test_images)
steps = len(train_y) // args.batch_size
if steps == 0:
    parser.error(f"--batch-size {args.batch_size} exceeds the {len(train_y)} training images")

# 2. The network 784-H-10 (ReLU, He initialisation) and AdamW with warm-up then cosine decay.
k_init, k_train = jax.random.split(jax.random.PRNGKey(0))
params = mlp.init_params(k_init, (784, args.hidden, 10), activation="relu")
total = steps * args.epochs
warmup = max(1, 3 * total // 100)
schedule = schedules.warmup_cosine_decay_schedule(0.0, args.lr, warmup, max(total, 2 * warmup))
opt = optim.adamw(schedule, weight_decay=1e-4)
opt_state = opt.init(params)


# 3. One step: distort the batch, forward and hand-written backward pass, the AdamW update.
def step(carry, batch):
    params, opt_state = carry
    images, labels, key = batch
    x = inputs(images, "affine", key)  # scaled to [0, 1], randomly distorted, flattened
    y = smooth_labels(labels, 10, 0.1)
    loss, grads = mlp.loss_and_grad(params, x, y, activation="relu")
    updates, opt_state = opt.update(grads, opt_state, params)
    return (optim.apply_updates(params, updates), opt_state), loss


# 4. One epoch: a permutation drawn on the device, then every step in one lax.scan.
@jax.jit
def epoch(params, opt_state, key):
    order, keys = epoch_order(key, len(train_y), args.batch_size)  # (steps, batch), (steps,)
    batches = (train_x[order], train_y[order], keys)
    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
    return params, opt_state, losses.mean()


# 5. Evaluation: the fraction of images whose largest logit is the label.
@jax.jit
def accuracy(params, images, labels):
    x = inputs(images)
    return jnp.mean(mlp.predict(params, x, activation="relu") == labels)


for e in range(args.epochs):
    start = time.perf_counter()
    params, opt_state, loss = epoch(params, opt_state, jax.random.fold_in(k_train, e))
    val = accuracy(params, val_x, jnp.asarray(mnist.val_labels))
    print(f"epoch {e + 1}: loss {loss:.4f}, validation accuracy {val:.4f}, "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
test = accuracy(params, test_x, jnp.asarray(mnist.test_labels))
print(f"test accuracy {100 * test:.2f}%")
