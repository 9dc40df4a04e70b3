"""Table 2's 151x151 network: `paper` at 151x151 input, its first convolution with stride 1
(the one change; the paper: "151 x 151 receptive field with stride 1 and maximum pooling after
the first layer", against 299x299 "with stride 2").

    python -m trainers.imagenet --config paper_res151 --data_dir /data/imagenet-tfrecords

The paper: 76.4% top-1 accuracy (299x299: 76.6%), "almost identical computational cost". Here
the stride-1 first layer maps 151 pixels onto the 149x149 grid that 299 reach with stride 2, so
every later layer is the 299 network's and the cost is the same to the multiply-add. One line
per choice:

- image_size 151 (`receptive_field=151` needs it): the paper's input for this network.
- Evaluation crops the central 87.5% and resizes it to 151 (the 299 network's preprocessing at
  151): the paper does not say how its low-resolution images were made.
- Everything else is `paper` (100 epochs; the paper trained each "until convergence").
"""

from configs import paper


def get_config():
    return paper.get_config().replace(name="paper_res151", image_size=151, receptive_field=151)
