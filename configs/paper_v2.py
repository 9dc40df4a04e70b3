"""Table 3's first row, the Inception-v2 baseline: `paper_v2_rmsprop` trained with SGD and
momentum 0.9 instead of RMSprop (the one change; the row below adds "RMSProp"; section 8: "Our
earlier experiments used momentum with a decay of 0.9, while our best models were achieved
using RMSProp with decay of 0.9 and epsilon = 1.0").

    python -m trainers.imagenet --config paper_v2 --data_dir /data/imagenet-tfrecords

The paper: 23.4% top-1 error (no top-5 printed), single crop, 3.8 billion operations. So this is
`paper` minus the four changes: 7x7 first convolution, no BN on the auxiliary fully connected
layer, no label smoothing, SGD. One line per choice where the paper is silent:

- The learning rate stays 0.045 x global batch/32, x0.94 every 2 epochs (`paper`'s): 0.045 is
  BN-Inception's rate for momentum SGD ("BN-x30", Ioffe & Szegedy 2015, 30x Inception's
  0.0015), the network Inception-v2 grows from; the paper gives no SGD rate.
- Nesterov off, momentum 0.9 as plain heavy-ball momentum (Keras' SGD): the paper names none.
- Clipping at 2.0, weight decay, EMA and augmentation stay `paper`'s, so the row differs from
  the one below it in the optimizer only.
"""

from configs import paper_v2_rmsprop


def get_config():
    return paper_v2_rmsprop.get_config().replace(name="paper_v2", optimizer="sgd", momentum=0.9)
