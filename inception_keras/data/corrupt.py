"""Dropping, counting and reporting corrupt records without `py_function`.

Records are decoded in chunks of CHUNK_SIZE, each inside its own small dataset with
`ignore_errors()`, padded with placeholders flagged `ok=False` back to the chunk's length: a
chunk always yields as many elements as it had records, the failed ones as placeholders. A
filter then drops placeholders and adds them to a process-wide counter. Unlike a bare
`ignore_errors()`, the count is exact (nothing is in flight between the failure and the
count); chunks amortise the per-dataset overhead and are decoded in parallel.
"""

import logging
import threading

import keras
import tensorflow as tf

_logger = logging.getLogger(__name__)
_lock = threading.Lock()
_counter = None


def _create_counter(created):
    with tf.init_scope(), tf.device("/CPU:0"):
        created.append(tf.Variable(0, dtype=tf.int64, trainable=False, name="corrupt_records"))


def _counter_variable():
    # A plain host-CPU variable: the tf.data functions that capture it run on the host. Strategy
    # scopes are thread-local, so creating it in a fresh thread keeps it from becoming a
    # (TPU-)mirrored variable when the first pipeline is built inside `strategy.scope()`.
    global _counter
    with _lock:
        if _counter is None:
            created = []
            thread = threading.Thread(target=_create_counter, args=(created,))
            thread.start()
            thread.join()
            _counter = created[0]
        return _counter


def corrupt_records_seen():
    """Corrupt or undecodable records dropped so far by all input pipelines of this process."""
    return int(_counter_variable().numpy())


CHUNK_SIZE = 16


def map_dropping_corrupt(dataset, fn, placeholder, *, deterministic):
    """`dataset.map(fn)` in parallel, where elements on which `fn` fails are dropped and counted.

    `placeholder` is a structure shaped like `fn`'s output (it is never emitted). The output
    order is the input order when `deterministic`.
    """
    counter = _counter_variable()
    padding = tf.data.Dataset.from_tensors((placeholder, False)).repeat()

    def decode_chunk(*chunk):
        size = tf.shape(tf.nest.flatten(chunk)[0], out_type=tf.int64)[0]
        decoded = (
            tf.data.Dataset.from_tensor_slices(chunk).map(lambda *e: (fn(*e), True)).ignore_errors()
        )
        return decoded.concatenate(padding).take(size)

    def keep(output, ok):
        counted = counter.assign_add(tf.cast(tf.logical_not(ok), tf.int64))
        with tf.control_dependencies([counted]):
            return tf.identity(ok)

    flagged = dataset.batch(CHUNK_SIZE).interleave(
        decode_chunk,
        cycle_length=tf.data.AUTOTUNE,
        block_length=CHUNK_SIZE,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    return flagged.filter(keep).map(lambda output, ok: output)


class CorruptRecordReport(keras.callbacks.Callback):
    """Logs, once per epoch, how many corrupt records the input pipelines dropped in that epoch.

    `log` is called with one line (default: `logging.warning`), and only when records were
    dropped; `dropped_per_epoch` keeps every epoch's count. Read-ahead means a few of an epoch's
    drops may belong to the first batches of the next one.
    """

    def __init__(self, log=None):
        super().__init__()
        self._log = log or _logger.warning
        self._seen = corrupt_records_seen()
        self.dropped_per_epoch = []

    def on_epoch_end(self, epoch, logs=None):
        total = corrupt_records_seen()
        dropped, self._seen = total - self._seen, total
        self.dropped_per_epoch.append(dropped)
        if dropped:
            self._log(
                f"epoch {epoch + 1}: dropped {dropped} corrupt or undecodable records ({total} in total)"
            )
