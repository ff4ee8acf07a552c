"""What runs many measurements. Each study is a series of named points (series.py), measured one process each.

    series.py       the shape every study shares: SeriesItem, run_series (each run written as it finishes)
    sweep.py        the cross product of option lists
    ablate.py       the optimization ladder: one change per rung
    autobatch.py    --batch auto: the largest micro-batch that fits, then the fastest of the candidates
    batchplan.py    the batch search's memory line: which probe would not fit, predicted before it starts
    chapter5.py     the book's chapter-5 training run, timed
    suite.py        `gptbench suite`: which runs the ladder takes from the default run and the batch search
"""
