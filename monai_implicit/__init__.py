"""monai_implicit: implicit-kernel convolutional networks for MONAI.

Every layer in this package is a convolution whose kernel is a function of coordinates
(see ``monai_implicit.layers.ImplicitConv``).
"""

__version__ = "0.1.0"
