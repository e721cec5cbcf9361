"""What only the notebooks need: the series' shared runs and scales (:mod:`~mgvsr.tutorial.series`),
the experiments the notebooks make (:mod:`~mgvsr.tutorial.fig2_shapes`: the cost of a shape, Fig. 2;
:mod:`~mgvsr.tutorial.eq1_restarts`: Eq. 1's restarts against one cosine;
:mod:`~mgvsr.tutorial.eq3_minibatch`: Eq. 3 against Eq. 4 measured), the explorers
(:mod:`~mgvsr.tutorial.explore`, :mod:`~mgvsr.tutorial.widgets`), their figures
(:mod:`~mgvsr.tutorial.viz`), the training samples as images (:mod:`~mgvsr.tutorial.samples`) and the
qualitative comparisons (:mod:`~mgvsr.tutorial.qualitative`).

The tutorial reads the library; the library (schedule, presets, models, data, train, runs,
evaluate, metrics, figures, demo, reproduce, cli) never imports it.  Importing this package
imports nothing.
"""
