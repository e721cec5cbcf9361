"""mgvsr: multigrid and large-minibatch training of video super-resolution models.

An open implementation of Lin, Wang, Qi, Shan, "Accelerating the Training of Video
Super-Resolution Models" (AAAI 2023).  The package is split so that the schedule
(:mod:`mgvsr.schedule`) imports without torch; everything that touches tensors lives in
:mod:`mgvsr.models`, :mod:`mgvsr.data`, :mod:`mgvsr.metrics`, :mod:`mgvsr.train` and
:mod:`mgvsr.evaluate`.  Importing :mod:`mgvsr` itself is cheap.
"""

__version__ = "0.1.0"
