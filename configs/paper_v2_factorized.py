"""Table 3's "+ Factorized 7x7" row: `paper` without batch norm on the auxiliary head's fully
connected layer (the one change from `paper`, whose row adds "BN-auxiliary").

    python -m trainers.imagenet --config paper_v2_factorized --data_dir /data/imagenet-tfrecords

The paper: 21.6% / 5.8% top-1/top-5 error, single crop, 4.8 billion operations. "BN-auxiliary
refers to the version in which the fully connected layer of the auxiliary classifier is also
batch-normalized, not just the convolutions" (Table 3's caption). One line per choice:

- The auxiliary head's "fully connected layer" is its 5x5 convolution to 768 channels over the
  whole 5x5 pooled map (TF-slim's AuxLogits/Conv2d_2a_5x5, padding VALID); without BN it has a
  bias (`aux_batch_norm=False`, see inception_keras/models/canonical.py `aux_head`).
- Everything else is `paper` (see its docstring for each of its choices).
"""

from configs import paper


def get_config():
    return paper.get_config().replace(name="paper_v2_factorized", aux_batch_norm=False)
