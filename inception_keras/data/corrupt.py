"""Dropping and counting corrupt records without `py_function`.

Records are decoded in chunks of CHUNK_SIZE, each inside its own small dataset with
`ignore_errors()`, padded with placeholders flagged `ok=False` back to the chunk's length: a
chunk always yields as many elements as it had records, the failed ones as placeholders. A
filter then drops placeholders and adds them to a process-wide counter. Unlike a bare
`ignore_errors()`, the count is exact (nothing is in flight between the failure and the
count); chunks amortise the per-dataset overhead and are decoded in parallel.
`corrupt_records_seen()` is the process's total, for the caller to report (the trainer does at
each epoch's end).
"""

import threading

import tensorflow as tf

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
