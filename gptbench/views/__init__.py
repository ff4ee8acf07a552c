"""What people read: text and tables made from reports. Views return renderables or text; only cli/ prints.

    summary.py        the summary after a run
    tables.py         the series, probe and peak tables
    load.py           reports (files, folders, globs) -> rows, with warnings for what could not be read
    compare.py        runs side by side: relative speed, $ per billion tokens, FineWeb-10B hours
    compare_table.py  the comparison as a table, its headers and footnotes
    export.py         CSV, Markdown and HTML exports of a comparison
    files.py          the exports' shared page style and atomic, never-overwriting writes (pandas-free)
    plan.py           `plan`'s table, answers and its time-against-cost page
"""
