"""Table 3's "+ RMSProp" row: `paper_v2_smoothing` without label smoothing (the one change; the
row below adds "Label Smoothing": "we used ... epsilon = 0.1", section 7).

    python -m trainers.imagenet --config paper_v2_rmsprop --data_dir /data/imagenet-tfrecords

The paper: 23.1% / 6.3% top-1/top-5 error, single crop, 3.8 billion operations. Everything
else is `paper_v2_smoothing` (7x7 stem, no BN on the auxiliary fully connected layer, the
paper's RMSprop).
"""

from configs import paper_v2_smoothing


def get_config():
    return paper_v2_smoothing.get_config().replace(name="paper_v2_rmsprop", label_smoothing=0.0)
