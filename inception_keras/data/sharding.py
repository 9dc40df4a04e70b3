"""File-level sharding of an input source across `tf.distribute` input pipelines."""

from inception_keras.data.errors import DataError


def pipeline_position(input_context):
    """(input_pipeline_id, num_input_pipelines) of a context; (0, 1) without one."""
    if input_context is None:
        return 0, 1
    return input_context.input_pipeline_id, input_context.num_input_pipelines


def shard_items(items, input_context, source):
    """This pipeline's share of `items` (files), every num_pipelines-th one from its id.

    Every pipeline must get at least one item: a pipeline without input would stall its replicas.
    """
    index, count = pipeline_position(input_context)
    if len(items) < count:
        raise DataError(
            f"{source}: {len(items)} file(s) cannot be shared by {count} input pipelines; "
            "file-level sharding needs at least one file per pipeline (re-shard into more files)"
        )
    return list(items[index::count])


def pipeline_seed(seed, input_context):
    """A per-pipeline seed (None stays None), so pipelines do not repeat each other's randomness."""
    if seed is None:
        return None
    return seed + 7919 * pipeline_position(input_context)[0]
