"""Table 3's "+ Label Smoothing" row: `paper_v2_factorized` with the Inception-v2 baseline's 7x7
first convolution in place of the three 3x3 convolutions (the one change; the row below it,
"+ Factorized 7x7", "factorizes the first 7x7 convolutional layer into a sequence of 3x3
convolutional layers").

    python -m trainers.imagenet --config paper_v2_smoothing --data_dir /data/imagenet-tfrecords

The paper: 22.8% / 6.1% top-1/top-5 error, single crop, 3.8 billion operations. One line per
choice where it is silent:

- The 7x7 layer: one 7x7 convolution, stride 2, no padding, 64 channels (`stem="7x7"`):
  BN-Inception's first layer ("convolution 7x7/2", 64 outputs; Ioffe & Szegedy 2015), on which
  Inception-v2 builds; unpadded so it ends in the 147x147x64 map of the 3x3 sequence it stands
  for, and every later layer is the same. It costs 0.41 G multiply-adds less than the 3x3
  sequence at 299x299, not the paper's 1.0 billion (README "Reproducing the paper").
- Everything else is `paper_v2_factorized`.
"""

from configs import paper_v2_factorized


def get_config():
    return paper_v2_factorized.get_config().replace(name="paper_v2_smoothing", stem="7x7")
