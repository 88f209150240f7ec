"""Study outputs: ``<name>.csv``, ``<name>.md`` (a Markdown table) and ``<name>.png``,
each written through a temporary file and a rename, so none is ever half written."""

import os

import pandas as pd

from clsr_tf.files import atomic_file, write_atomic


def _cell(value):
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.4f}"
    return "" if value is None or value is pd.NA else str(value).replace("|", "\\|")


def markdown_table(table):
    """A Markdown table of a DataFrame (floats with 4 decimals, empty cells for missing).

    Args:
        table (pandas.DataFrame): The table.

    Returns:
        str: The Markdown text (one line per row, header first).
    """
    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def seed_summary(table):
    """Mean and standard deviation over seeds of a study run once per seed.

    Every seed's run has the same rows in the same order; a numeric column that varies
    between seeds becomes its mean and ``<column>_std`` (sample standard deviation), other
    columns keep their value (distinct texts are joined with ``;``).

    Args:
        table (pandas.DataFrame): The runs, with a ``seed`` column.

    Returns:
        pandas.DataFrame: One row per row of a run, ``seeds`` (the count) first.

    Raises:
        ValueError: If the runs differ in their number of rows.
    """
    runs = [part.drop(columns="seed").reset_index(drop=True)
            for _, part in table.groupby("seed", sort=False)]
    if len({len(run) for run in runs}) != 1:
        raise ValueError("the seeds' runs have different rows; no summary")
    summary = {"seeds": [len(runs)] * len(runs[0])}
    for column in runs[0].columns:
        values = pd.concat([run[column] for run in runs], axis=1, ignore_index=True)
        numeric = all(pd.api.types.is_numeric_dtype(values[c])
                      and not pd.api.types.is_bool_dtype(values[c]) for c in values)
        if numeric and not values.nunique(axis=1, dropna=False).eq(1).all():
            summary[column] = values.mean(axis=1)
            summary[f"{column}_std"] = values.std(axis=1, ddof=1)
        elif numeric:
            summary[column] = values.iloc[:, 0]
        else:
            summary[column] = [";".join(dict.fromkeys(str(v) for v in row
                                                      if not pd.isna(v) and str(v) != ""))
                               for row in values.itertuples(index=False)]
    return pd.DataFrame(summary)


def write_outputs(table, output_dir, name, figure=None):
    """Write a study's table (CSV and Markdown) and figure (PNG) into ``output_dir``.

    Args:
        table (pandas.DataFrame): The study table.
        output_dir (str): Destination folder (created if missing).
        name (str): Base name of the files.
        figure (matplotlib.figure.Figure): The figure, or None.

    Returns:
        dict: ``csv``, ``md`` and (with a figure) ``png`` -> path.
    """
    os.makedirs(output_dir, exist_ok=True)
    paths = {ext: os.path.join(output_dir, f"{name}.{ext}") for ext in ("csv", "md")}
    write_atomic(paths["csv"], table.to_csv(index=False))
    write_atomic(paths["md"], markdown_table(table))
    if figure is not None:
        paths["png"] = os.path.join(output_dir, f"{name}.png")
        with atomic_file(paths["png"], "wb") as handle:
            figure.savefig(handle, format="png", dpi=120)
    return paths
